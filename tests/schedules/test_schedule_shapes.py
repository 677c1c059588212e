"""Each spec has the shape its docs describe: previews checked against closed forms written
out here, composites checked segment by segment against their parts run alone."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

import tunewidgets.schedules as S

K = np.arange(40)


def lr_of(spec, n=40, base=0.5, **kw):
    return spec.preview(n, base, **kw)["lr"].to_numpy()


def close(actual, expected, rtol=1e-12):
    np.testing.assert_allclose(actual, expected, rtol=rtol, atol=1e-15)


def test_constant_step_multistep_exponential():
    close(lr_of(S.Constant()), np.full(40, 0.5))
    close(lr_of(S.Step(step_size=7, gamma=0.3)), 0.5 * 0.3 ** (K // 7))
    close(lr_of(S.MultiStep(milestones=[5, 12, 30], gamma=0.2)),
          0.5 * 0.2 ** np.searchsorted([5, 12, 30], K, side="right"))
    close(lr_of(S.Exponential(gamma=0.9)), 0.5 * 0.9 ** K, rtol=1e-10)


@pytest.mark.parametrize("total_iters", [None, 25])
def test_polynomial(total_iters):
    t = 40 if total_iters is None else total_iters
    close(lr_of(S.Polynomial(total_iters=total_iters, power=2.0)), 0.5 * (1 - np.minimum(K, t) / t) ** 2, rtol=1e-9)


def test_cosine_reaches_eta_min_just_after_the_run():
    lr = lr_of(S.Cosine(eta_min=0.01))
    close(lr, 0.01 + (0.5 - 0.01) * (1 + np.cos(np.pi * K / 40)) / 2, rtol=1e-9)
    assert lr[0] == 0.5 and lr[-1] > 0.01


def test_cosine_warm_restarts_cycles_grow_by_t_mult():
    lr = lr_of(S.CosineWarmRestarts(T_0=4, T_mult=2, eta_min=0.0), n=28)
    t_cur, t_i = [], []
    start, length = 0, 4
    for k in range(28):
        if k - start >= length:
            start, length = start + length, length * 2
        t_cur.append(k - start)
        t_i.append(length)
    close(lr, 0.5 * (1 + np.cos(np.pi * np.array(t_cur) / np.array(t_i))) / 2, rtol=1e-12)
    assert [k for k in range(28) if lr[k] == 0.5] == [0, 4, 12]  # restarts after 4, then 8 steps


def test_cyclic_modes_and_momentum():
    up = 3
    x = np.abs(K / up % 2 - 1)  # 1 at the bottom, 0 at the top
    cycle = K // (2 * up)
    tri = S.Cyclic(base_lr=0.01, max_lr=0.1, step_size_up=up).preview(40)
    close(tri["lr"], 0.01 + 0.09 * (1 - x), rtol=1e-9)
    close(tri["momentum"], 0.8 + 0.1 * x, rtol=1e-9)
    close(lr_of(S.Cyclic(base_lr=0.01, max_lr=0.1, step_size_up=up, mode="triangular2")),
          0.01 + 0.09 * (1 - x) / 2.0 ** cycle, rtol=1e-9)
    close(lr_of(S.Cyclic(base_lr=0.01, max_lr=0.1, step_size_up=up, mode="exp_range", gamma=0.97)),
          0.01 + 0.09 * (1 - x) * 0.97 ** K, rtol=1e-9)
    assert "momentum" not in S.Cyclic(cycle_momentum=False, step_size_up=5).preview(10).columns


def test_one_cycle_linear_closed_form_and_beta1():
    spec = S.OneCycle(max_lr=1.0, pct_start=0.5, anneal_strategy="linear", div_factor=10.0, final_div_factor=100.0)
    frame = spec.preview(10, optimizer="adam")
    k = np.arange(10)
    start, low = 0.1, 0.1 / 100
    up = start + (1.0 - start) * k / 4
    down = 1.0 + (low - 1.0) * (k - 4) / 5
    close(frame["lr"], np.where(k <= 4, up, down), rtol=1e-12)
    m_up = 0.95 + (0.85 - 0.95) * k / 4
    m_down = 0.85 + (0.95 - 0.85) * (k - 4) / 5
    close(frame["beta1"], np.where(k <= 4, m_up, m_down), rtol=1e-12)


def test_one_cycle_default_base_is_its_own_peak_and_ignores_base_lr():
    a = S.OneCycle(max_lr=0.3).preview(50)
    b = S.OneCycle(max_lr=0.3).preview(50, base_lr=7.0)
    np.testing.assert_array_equal(a["lr"], b["lr"])
    assert a["lr"].max() == pytest.approx(0.3)


@pytest.mark.parametrize("then", [S.Cosine(eta_min=1e-3), S.OneCycle(max_lr=2.0), S.Cyclic(step_size_up=4),
                                  S.Step(step_size=5), S.Sequential(specs=[S.Constant(), S.Exponential()],
                                                                    milestones=[3])])
def test_warmup_ramps_to_the_first_lr_of_then_and_then_runs_it_as_alone(then):
    warm = S.Warmup(steps=6, then=then, start_factor=0.1)
    frame = warm.preview(30, base_lr=0.5, momentum=0.7)
    alone = then.preview(24, base_lr=0.5, momentum=0.7)
    target = alone["lr"].iloc[0]
    close(frame["lr"].iloc[:6], target * (0.1 + 0.9 * np.arange(6) / 6))
    np.testing.assert_array_equal(frame["lr"].iloc[6:], alone["lr"])
    if then._cycles_momentum():
        np.testing.assert_array_equal(frame["momentum"].iloc[:6], 0.7)  # the optimizer's own during warm-up
        np.testing.assert_array_equal(frame["momentum"].iloc[6:], alone["momentum"])


def test_sequential_runs_each_spec_as_alone_even_those_that_set_their_own_lr():
    parts = [S.Cosine(), S.OneCycle(max_lr=0.2, pct_start=0.25), S.Cyclic(step_size_up=3), S.Step(step_size=2)]
    seq = S.Sequential(specs=parts, milestones=[8, 20, 30])
    frame = seq.preview(41, base_lr=0.05, optimizer="adamw", momentum=0.6)
    for spec, (a, b) in zip(parts, [(0, 8), (8, 20), (20, 30), (30, 41)]):
        alone = spec.preview(b - a, base_lr=0.05, optimizer="adamw", momentum=0.6)
        np.testing.assert_array_equal(frame["lr"].iloc[a:b], alone["lr"])
        expected = alone["beta1"] if "beta1" in alone else 0.6
        np.testing.assert_array_equal(frame["beta1"].iloc[a:b], expected)


@pytest.mark.parametrize("decay,shape", [("linear", lambda p: 1 - p),
                                         ("cosine", lambda p: 0.5 * (1 + np.cos(np.pi * p))),
                                         ("1-sqrt", lambda p: 1 - np.sqrt(p))])
def test_wsd(decay, shape):
    spec = S.WSD(warmup_steps=5, decay_fraction=0.25, decay=decay, final_factor=0.1, start_factor=0.2)
    lr = lr_of(spec)  # 40 steps: warm-up 0-4, stable 5-29, decay over the last 10
    k = K.astype(float)
    warm = 0.2 + 0.8 * k / 5
    p = np.clip((k - 30) / 10, 0, 1)
    expected = np.where(k < 5, warm, np.where(k < 30, 1.0, 0.1 + 0.9 * shape(p)))
    close(lr, 0.5 * expected)


def test_inverse_sqrt():
    close(lr_of(S.InverseSqrt(warmup_steps=4, start_factor=0.5)),
          0.5 * np.where(K < 4, 0.5 + 0.5 * K / 4, np.sqrt(4 / np.maximum(K, 1))))
    close(lr_of(S.InverseSqrt(warmup_steps=0, timescale=10)), 0.5 * np.sqrt(10 / (K + 10)))


def test_reduce_on_plateau_follows_the_metric():
    spec = S.ReduceOnPlateau(mode="max", factor=0.5, patience=0, cooldown=1, min_lr=0.15)
    # accuracy after each 2-step epoch: better, better, stalls (cut), stalls in cooldown, stalls (cut),
    # in cooldown, stalls (cut, stopped by min_lr); the last value comes after the last step
    frame = spec.preview(16, base_lr=0.8, steps_per_epoch=2, metrics=[0.5, 0.6] + [0.6] * 6)
    assert frame["lr"].tolist() == [0.8] * 6 + [0.4] * 4 + [0.2] * 4 + [0.15] * 2
    # without steps_per_epoch the run is split evenly among the metrics
    even = spec.preview(12, base_lr=0.8, metrics=[0.5, 0.6, 0.6])
    assert even["lr"].tolist() == [0.8] * 12 and even["epoch"].tolist() == [i // 4 for i in range(12)]


def test_cycling_momentum_on_sgd_without_momentum_turns_it_on_as_torch_does():
    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=0.1, momentum=0.0)
    S.OneCycle(max_lr=0.1).build(opt, 10)
    assert opt.param_groups[0]["momentum"] == 0.95


def _train(spec, total, opt_factory, resume_at=None):
    """Record (lr, momentum) of each step; optionally checkpoint and resume at ``resume_at``."""
    param = torch.nn.Parameter(torch.ones(2))
    opt = opt_factory([param])
    sched = spec.build(opt, total)
    seen = []
    for i in range(total):
        if i == resume_at:
            saved_opt, saved_sched = opt.state_dict(), sched.state_dict()
            param = torch.nn.Parameter(param.detach().clone())
            opt = opt_factory([param])
            sched = spec.build(opt, total)
            opt.load_state_dict(saved_opt)
            sched.load_state_dict(saved_sched)
        g = opt.param_groups[0]
        seen.append((g["lr"], g["momentum"]))
        param.grad = torch.ones(2)
        opt.step()
        sched.step()
    return seen


@pytest.mark.parametrize("resume_at", [2, 5, 9, 17])
def test_composite_scheduler_resumes_from_a_checkpoint(resume_at):
    spec = S.Sequential(specs=[S.Warmup(steps=3, then=S.OneCycle(max_lr=0.3, pct_start=0.4)),
                               S.Cosine(eta_min=0.01)], milestones=[10])

    def sgd(params):
        return torch.optim.SGD(params, lr=0.1, momentum=0.5)

    assert _train(spec, 20, sgd, resume_at) == _train(spec, 20, sgd)


def test_each_param_group_follows_its_own_lr():
    p1, p2 = torch.nn.Parameter(torch.zeros(1)), torch.nn.Parameter(torch.zeros(1))
    opt = torch.optim.SGD([{"params": [p1], "lr": 0.1}, {"params": [p2], "lr": 0.01}], momentum=0.9)
    sched = S.Warmup(steps=3, then=S.Cosine()).build(opt, 12)
    for _ in range(12):
        a, b = (g["lr"] for g in opt.param_groups)
        assert math.isclose(b, a / 10, rel_tol=1e-12)
        opt.step()
        sched.step()
