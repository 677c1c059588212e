"""The ramp, the smoothing formula and the stopping rules, on losses fixed in advance."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from lr_helpers import FLAT, RecordingSGD, scripted

import tunewidgets as tw


def _run(values, **kwargs):
    objects = scripted(values)
    kwargs = {"steps": len(values), **kwargs}
    return tw.lr_range_test(**objects, **kwargs), objects


@pytest.mark.parametrize("mode", ["exp", "linear"])
def test_ramp_values_are_exact_first_is_start_last_is_end(mode):
    n, start, end = 25, 1e-6, 3.0
    objects = scripted([1.0] * n)
    opt = RecordingSGD(objects["model"].parameters(), lr=0.5)
    res = tw.lr_range_test(**{**objects, "optimizer": opt}, start_lr=start, end_lr=end, steps=n, mode=mode,
                           **FLAT)
    i = np.arange(n)
    want = start * (end / start) ** (i / (n - 1)) if mode == "exp" else start + (end - start) * i / (n - 1)
    assert res.lrs[0] == start and res.lrs[-1] == end
    np.testing.assert_allclose(res.lrs, want, rtol=1e-12)
    np.testing.assert_allclose([s[0] for s in opt.seen], want, rtol=1e-12)  # what the optimizer used
    assert len(opt.seen) == n
    assert opt.param_groups[0]["lr"] == 0.5  # restored afterwards


def test_exp_ramp_is_even_in_log_lr():
    res, _ = _run([1.0] * 31, start_lr=1e-6, end_lr=1e-3, **FLAT)
    steps = np.diff(np.log10(res.lrs))
    np.testing.assert_allclose(steps, 0.1, rtol=1e-9)


def test_smoothing_follows_the_bias_corrected_formula_and_raw_losses_are_kept():
    rng = np.random.default_rng(0)
    values = (2.0 + rng.normal(0, 0.3, 40)).tolist()
    beta = 0.9
    res, _ = _run(values, smoothing=beta, **FLAT)
    avg, want = 0.0, []
    for i, v in enumerate(values):
        avg = beta * avg + (1 - beta) * v
        want.append(avg / (1 - beta ** (i + 1)))
    np.testing.assert_allclose(res.losses, values, rtol=1e-6)  # float32 loss tensors
    np.testing.assert_allclose(res.smoothed, want, rtol=1e-6)
    assert res.smoothed[0] == pytest.approx(values[0], rel=1e-6)  # bias correction: no pull towards 0


def test_smoothing_zero_gives_the_raw_losses():
    values = [3.0, 1.0, 2.0, 0.5] * 5
    res, _ = _run(values, smoothing=0.0, **FLAT)
    np.testing.assert_allclose(res.smoothed, res.losses)


def test_divergence_stops_where_the_smoothed_loss_passes_diverge_times_the_best():
    values = [2.0 - 0.05 * i for i in range(20)] + [1.0 + 2.0 * i for i in range(1, 30)]
    beta, diverge = 0.5, 4.0
    res, _ = _run(values, smoothing=beta, diverge=diverge)
    avg, best, expect = 0.0, math.inf, None
    for i, v in enumerate(values):
        avg = beta * avg + (1 - beta) * v
        s = avg / (1 - beta ** (i + 1))
        best = min(best, s)
        if s > diverge * best:
            expect = i
            break
    assert expect is not None and 20 < expect < len(values) - 1
    assert res.stop_reason == "diverged" and res.stopped_early
    assert res.stopped_at == expect + 1 and len(res.lrs) == len(res.losses) == len(res.smoothed) == expect + 1
    assert res.smoothed[-1] > diverge * res.smoothed.min()
    assert res.smoothed[-2] <= diverge * res.smoothed[:-1].min()


def test_a_nan_loss_stops_the_test_and_is_recorded():
    values = [1.0] * 12 + [float("nan")] + [1.0] * 10
    res, _ = _run(values)
    assert res.stop_reason == "diverged" and res.nonfinite and res.stopped_at == 13 and len(res.losses) == 13
    assert math.isnan(res.losses[-1]) and math.isnan(res.smoothed[-1])
    assert np.isfinite(res.losses[:-1]).all()
    assert "non-finite" in res.warning


def test_an_infinite_loss_stops_too():
    res, _ = _run([1.0] * 5 + [float("inf")] + [1.0] * 5)
    assert res.stop_reason == "diverged" and res.nonfinite and res.stopped_at == 6


def test_nan_tail_gives_no_suggestions_when_too_few_points_remain():
    res, _ = _run([2.0, 1.5, 1.0, float("nan")] + [1.0] * 20)
    assert res.suggestions == {"valley": None, "steepest": None, "minimum": None}
    assert res.suggested is None and res.band is None
    assert "fewer than the 10" in res.warning


def test_negative_losses_do_not_trigger_divergence_while_they_fall():
    values = np.linspace(-1.0, -5.0, 40).tolist()  # always improving, all negative
    res, _ = _run(values, smoothing=0.0)
    assert res.stop_reason == "finished" and len(res.losses) == 40  # "4 x best" would stop at once


def test_negative_losses_diverge_by_distance_from_the_best():
    # best = -5; the rule smoothed - best > (diverge - 1) * |best| stops above -5 + 3 * 5 = 10
    values = [-1.0, -3.0, -5.0, 0.0, 9.0, 10.5, 20.0]
    res, _ = _run(values, smoothing=0.0, diverge=4.0)
    assert res.stop_reason == "diverged" and res.stopped_at == 6


def test_a_best_of_exactly_zero_uses_the_first_loss_as_scale():
    values = [2.0, 1.0, 0.0, 0.5, 5.0, 7.0, 8.0]  # stop above 0 + 3 * |2.0| = 6
    res, _ = _run(values, smoothing=0.0, diverge=4.0)
    assert res.stop_reason == "diverged" and res.stopped_at == 6


def test_diverge_inf_never_stops_on_divergence():
    res, _ = _run([1.0, 100.0, 1e6, 1e9] + [1e9] * 8, smoothing=0.0, diverge=math.inf)
    assert res.stop_reason == "finished" and len(res.losses) == 12


def test_a_real_model_diverges_at_a_huge_lr():
    task = tw.Task(model=lambda: torch.nn.Linear(4, 3), train=torch.utils.data.TensorDataset(
        torch.randn(64, 4), torch.randint(0, 3, (64,))), batch_size=16)
    res = tw.lr_range_test(task, start_lr=1e-3, end_lr=1e4, steps=60, device="cpu")
    assert res.stop_reason == "diverged" and len(res.lrs) < 60
    assert res.lrs[-1] > 1.0
