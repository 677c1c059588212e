"""LRFinder headless: controls -> settings, the state after a run, stop, errors, picking an lr."""
from __future__ import annotations

import asyncio
import math
import threading
import time

import numpy as np
import pytest
import torch
from bokeh.events import Tap
from torch import nn
from torch.utils.data import TensorDataset
from traitlets import TraitError

import tunewidgets as tw
from tunewidgets.plots.lr import CHOSEN, CURVE, MARKERS
from tunewidgets.widgets import LRFinder
from tunewidgets.widgets._bokeh import saved_columns


def blobs(n: int = 256) -> TensorDataset:
    g = torch.Generator().manual_seed(0)
    y = torch.randint(0, 3, (n,), generator=g)
    x = torch.tensor([[2.0, 0.0], [-2.0, 1.0], [0.0, -2.0]])[y] + 0.7 * torch.randn(n, 2, generator=g)
    return TensorDataset(x, y)


def mlp(width: int = 16) -> nn.Module:
    return nn.Sequential(nn.Linear(2, width), nn.ReLU(), nn.Linear(width, 3))


class Broken(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.lin = nn.Linear(2, 3)

    def forward(self, x):
        raise RuntimeError("forward failed: shapes do not match")


@pytest.fixture(scope="module")
def task() -> tw.Task:
    return tw.Task(model=mlp, train=blobs(), loss="cross_entropy", batch_size=32)


def finder(task, **kw) -> LRFinder:
    kw.setdefault("steps", 40)
    kw.setdefault("device", "cpu")
    kw.setdefault("interval", 0.02)
    return LRFinder(task, **kw)


def test_controls_give_the_range_test_settings(task):
    f = finder(task, start_lr=1e-5, end_lr=10.0, steps=80, optimizer="adam", smoothing=0.9,
               mode="linear", seed=3)
    assert f.test_settings() == {"optimizer": "adam", "start_lr": 1e-5, "end_lr": 10.0, "steps": 80,
                                 "mode": "linear", "smoothing": 0.9, "device": "cpu", "seed": 3}
    # the range slider works in log10 units; its label shows the learning rates
    assert f.lr_range.value == pytest.approx((-5.0, 1.0))
    f.lr_range.value = (-6.0, -2.5)
    s = f.test_settings()
    assert s["start_lr"] == pytest.approx(1e-6) and s["end_lr"] == pytest.approx(10 ** -2.5)
    assert f.lr_range_label.value == "1.00e-6 &rarr; 3.16e-3"  # as slider readouts show lrs
    f.steps.value, f.optimizer.value, f.mode.value, f.smoothing.value = 25, "sgd", "exp", 0.5
    s = f.test_settings()
    assert (s["steps"], s["optimizer"], s["mode"], s["smoothing"]) == (25, "sgd", "exp", 0.5)
    assert list(f.optimizer.options) == list(tw.engine.optimizers.OPTIMIZERS)


def test_a_run_fills_the_plot_and_picks_the_suggestion(task):
    f = finder(task, steps=40)
    assert f.run() is True
    assert f.status == "running" and f.run_bar.run_button.disabled and not f.run_bar.stop_button.disabled
    assert f.steps.disabled and f.lr_range.disabled  # settings stay as the run started
    res = f.wait(timeout=60)
    assert f.status == "finished" and res is f.result and isinstance(res, tw.LRRangeTestResult)
    curve = f.figure.select_one({"name": CURVE}).data
    assert len(curve["lr"]) == len(res) == 40  # every point: 40 is under the cap
    np.testing.assert_allclose(curve["lr"], res.lrs)
    np.testing.assert_allclose(curve["loss"], res.losses)
    np.testing.assert_allclose(curve["smoothed"], res.smoothed)
    assert list(curve["step"]) == list(range(1, 41))  # steps count from 1
    markers = f.figure.select_one({"name": MARKERS}).data
    expected = {m: v for m, v in res.suggestions.items() if v is not None}
    assert dict(zip(markers["method"], markers["x"])) == expected and expected
    assert f.lr == res.suggested and f.pick.value == res.method
    assert f.chosen.value == pytest.approx(res.suggested)
    span = f.figure.select_one({"name": CHOSEN})
    assert span.visible and span.location == res.suggested
    cfg = f.config(epochs=2)
    assert isinstance(cfg, tw.TrainConfig) and (cfg.lr, cfg.optimizer, cfg.epochs, cfg.device) == (
        res.suggested, "sgd", 2, "cpu")
    assert (f.run_bar.progress.value, f.run_bar.progress.max) == (40, 40)
    assert not f.run_bar.run_button.disabled and f.run_bar.stop_button.disabled
    assert not f.steps.disabled and not f.optimizer.disabled
    assert "40 steps" in f.status_line.value and not f.error_area.visible
    # the widget was re-rendered from its figure, so a saved notebook shows the final plot
    np.testing.assert_allclose(saved_columns(f.plot, CURVE)["lr"], res.lrs)
    assert saved_columns(f.plot, MARKERS)["method"] == markers["method"]


def test_long_runs_are_thinned_to_the_cap(task):
    f = finder(task, steps=80, max_points=16, start_lr=1e-4, end_lr=1e-1)
    f.run()
    res = f.wait(timeout=60)
    curve = f.figure.select_one({"name": CURVE}).data
    assert 8 <= len(curve["lr"]) <= 16
    assert curve["lr"][0] == res.lrs[0] and curve["lr"][-1] == res.lrs[-1]
    idx = curve["step"]
    np.testing.assert_allclose(curve["loss"], res.losses[np.asarray(idx) - 1])  # step k is entry k - 1
    assert len({b - a for a, b in zip(idx[:-2], idx[1:-1])}) == 1  # evenly spaced (the last may not be)


def test_stop_from_another_thread_leaves_stopped_and_the_model_restored(task):
    net = mlp()
    before = {k: v.clone() for k, v in net.state_dict().items()}
    f = finder(task, steps=5000, model=net, end_lr=1e-2)
    f.run()

    def press_stop():
        while f.session.records_seen < 5 and not f.session.done:
            time.sleep(0.005)
        f.stop()

    presser = threading.Thread(target=press_stop)
    presser.start()
    res = f.wait(timeout=60)
    presser.join()
    assert f.status == "stopped" and res.stop_reason == "stopped" and 5 <= len(res) < 5000
    assert "stopped at step" in f.status_line.value
    assert not f.run_bar.run_button.disabled and f.run_bar.stop_button.disabled
    assert len(f.figure.select_one({"name": CURVE}).data["lr"]) == len(res)
    for k, v in net.state_dict().items():
        assert torch.equal(v, before[k]), k


def test_bad_range_shows_inline_and_starts_nothing(task):
    f = finder(task)
    f.lr_range.value = (-3.0, -3.0)  # the slider's ends can meet; they cannot cross
    assert f.run() is False
    assert f.status == "invalid" and f.session.status == "idle" and f.session._thread is None
    assert f.error_area.visible
    assert "LR range: the start (1.00e-3) must be below the end (1.00e-3)" in f.error_area.message
    assert "nothing was started" in f.error_area.value and "must be below the end" in f.status_line.value
    assert f.wait() is None and f.result is None
    with pytest.raises(ValueError, match=r"start_lr: must be below end_lr \(1.00e-3\), got 1.00e-2"):
        f.set_range(1e-2, 1e-3)
    f.set_range(1e-4, 1e-1)
    assert f.run() is True and not f.error_area.visible
    f.wait(timeout=60)
    assert f.status == "finished"


def test_an_error_in_the_test_shows_in_the_widget(task):
    broken = tw.Task(model=Broken, train=blobs(64), loss="cross_entropy", batch_size=16)
    f = finder(broken)
    assert f.run() is True
    assert f.wait(timeout=60) is None
    assert f.status == "failed" and isinstance(f.error, RuntimeError)
    assert "RuntimeError: forward failed: shapes do not match" in f.error_area.message
    assert "<details><summary>Traceback</summary>" in f.error_area.value and "forward" in f.error_area.value
    assert "failed" in f.status_line.value and not f.run_bar.run_button.disabled and f.lr is None
    assert not f.lr_range.disabled


def test_picking_an_lr_from_the_list_the_slider_and_the_plot(task):
    f = finder(task, steps=40)
    with pytest.raises(ValueError, match="no learning rate chosen yet"):
        f.config()
    f.run()
    res = f.wait(timeout=60)
    seen = []
    f.observe(lambda change: seen.append(change["new"]), names="lr")
    other = next(m for m, v in res.suggestions.items() if v is not None and v != res.suggested)
    f.pick.value = other
    assert f.lr == res.suggestions[other]
    f.chosen.value = 5e-3
    assert f.lr == 5e-3 and f.pick.value == "custom"
    f.figure._trigger_event(Tap(f.figure, x=2e-2, y=1.0))  # a click on the plot at lr 2e-2
    assert f.lr == 2e-2 and f.chosen.value == pytest.approx(2e-2)
    assert f.figure.select_one({"name": CHOSEN}).location == 2e-2
    assert seen == [res.suggestions[other], 5e-3, 2e-2]
    base = tw.TrainConfig(optimizer="adam", lr=1.0, epochs=7, momentum=0.5)
    cfg = f.config(base, weight_decay=1e-4)
    assert (cfg.lr, cfg.optimizer, cfg.epochs, cfg.momentum, cfg.weight_decay) == (2e-2, "sgd", 7, 0.5, 1e-4)
    with pytest.raises(TraitError, match="lr: must be a finite number > 0"):
        f.lr = -1.0
    with pytest.raises(TraitError):
        f.lr = math.nan


def test_the_page_snapping_a_slider_to_its_step_keeps_the_exact_values(task):
    # a browser's slider sends back a value set from Python, snapped to its step
    f = finder(task, start_lr=3e-5, end_lr=0.5)
    f.lr_range.value = (-4.5, round(math.log10(0.5), 1))
    assert (f.start_lr, f.end_lr) == (3e-5, 0.5)
    f.lr_range.value = (-4.0, -0.3)  # a real move of one end: taken from the slider
    assert f.start_lr == pytest.approx(1e-4) and f.end_lr == 0.5
    f.run()
    res = f.wait(timeout=60)
    f.chosen.value = 10 ** (round(math.log10(res.suggested), 2))
    assert f.lr == res.suggested and f.pick.value == res.method
    f.chosen.value = 10 ** (round(math.log10(res.suggested), 2) + 0.01)  # one notch: the user's pick
    assert f.lr != res.suggested and f.pick.value == "custom"


def _notch(lr: float) -> float:
    return 10 ** round(math.log10(lr), 2)  # the picker's slider: 100 notches a decade


def test_late_echoes_of_a_new_range_and_a_new_lr_pick_nothing(task):
    # after a run over another range, the page sends back the old lr (snapped to the new
    # range's notches) and then the new one, both after the kernel has shown the new one
    f = finder(task, optimizer="adam", start_lr=1e-4, end_lr=1.0)
    f.run()
    first = f.wait(timeout=60)
    f.set_range(3.16e-6, 1e-2)
    f.run()
    res = f.wait(timeout=60)
    assert res.suggested is not None and _notch(first.suggested) != _notch(res.suggested)
    assert f.lr == res.suggested and f.pick.value == res.method
    f.chosen.value = _notch(first.suggested)
    f.chosen.value = _notch(res.suggested)
    assert f.lr == res.suggested and f.pick.value == res.method  # not 3 digits of a notch, "custom"
    f.chosen.value = _notch(res.suggested * 3)  # a drag after the echoes is a pick
    assert f.lr == pytest.approx(res.suggested * 3, rel=0.02) and f.pick.value == "custom"


def test_after_each_run_the_pick_follows_its_suggestion_unless_set_during_it(task):
    f = finder(task, optimizer="adam", start_lr=1e-4, end_lr=1.0)
    f.run()
    f.wait(timeout=60)
    f.lr = 7e-3  # a pick after the run: the next run's suggestion replaces it
    for change in ({"steps": 60}, {"smoothing": 0.9}, {"optimizer": "adamw"}):
        (name, value), = change.items()
        getattr(f, name).value = value
        f.run()
        res = f.wait(timeout=60)
        assert res.settings[name] == value
        assert f.lr == res.suggested and f.pick.value == res.method, change
    f.run()
    f.lr = 3e-3  # set while the test runs: this run keeps it
    res = f.wait(timeout=60)
    assert res.suggested != 3e-3 and f.lr == 3e-3 and f.pick.value == "custom"
    assert "lr stays 3.00e-3, set while the test ran" in f.status_line.value


def test_data_updates_the_page_sends_back_are_not_applied_again(task):
    # a browser's view sends each stream and data change it gets back to the kernel
    from bokeh.core.serialization import Serializer
    from bokeh.document.events import ColumnsStreamedEvent, ModelChangedEvent

    f = finder(task)
    source = f.figure.select_one({"name": CURVE})
    row = {"step": [0], "lr": [1e-7], "loss": [1.0], "smoothed": [1.0]}
    f.curve.push(row)
    f.curve.push({**row, "step": [1]})
    for event in (ColumnsStreamedEvent(source.document, source, "data", {**row, "step": [1]}, None),
                  ModelChangedEvent(source.document, source, "data", row)):
        f.plot._sync_model(f.plot, {**Serializer().encode(event), "event": "jsevent"}, [])
    assert list(source.data["step"]) == [0, 1]


def test_optimizer_settings_go_into_the_config(task):
    f = finder(task, optimizer_kwargs={"momentum": 0.9, "dampening": 0.1}, grad_accum=2)
    f.lr = 0.05
    cfg = f.config()
    assert (cfg.lr, cfg.momentum, cfg.optimizer_kwargs, cfg.grad_accum) == (0.05, 0.9, {"dampening": 0.1}, 2)


def test_on_a_running_loop_the_plot_updates_between_awaits(task):
    f = finder(task, steps=60)
    counts = []

    async def main():
        assert f.run()
        assert f.session.draining_on_loop
        while not f.session.done:
            counts.append(len(f.figure.select_one({"name": CURVE}).data["lr"]))
            await asyncio.sleep(0.01)
        return f.result

    res = asyncio.run(main())
    assert f.status == "finished" and len(f.figure.select_one({"name": CURVE}).data["lr"]) == len(res)
    assert counts == sorted(counts)  # the curve only grows


@pytest.mark.parametrize("kwargs, error, words", [
    ({"task": "digits"}, TypeError, "task: expected a tunewidgets Task"),
    ({"optimizer": "adamm"}, ValueError, "did you mean 'adam'"),
    ({"mode": "log"}, ValueError, "mode: unknown ramp 'log'"),
    ({"start_lr": 0}, ValueError, "start_lr: must be a finite number > 0, got 0"),
    ({"start_lr": 1.0, "end_lr": 0.1}, ValueError, "start_lr: must be below end_lr (1.00e-1)"),
    ({"stop": threading.Event()}, TypeError, "unknown setting(s) ['stop']"),
    ({"epochs": 3}, TypeError, "unknown setting(s) ['epochs']"),
    ({"max_points": 1}, ValueError, "max_points: must be a whole number >= 2"),
])
def test_bad_arguments_fail_before_anything_is_built(task, kwargs, error, words):
    kwargs = {"task": task, **kwargs}
    with pytest.raises(error) as info:
        LRFinder(kwargs.pop("task"), **kwargs)
    assert words in str(info.value)


def test_the_buttons_run_and_stop(task):
    f = finder(task, steps=5000, end_lr=1e-2)
    f.run_bar.run_button.click()
    assert f.status == "running" and f.session.running
    f.run_bar.stop_button.click()  # on the UI thread: the UI says so at once
    assert f.status == "stopping" and f.run_bar.stop_button.disabled and "stopping" in f.status_line.value
    res = f.wait(timeout=60)
    assert f.status == "stopped" and res.stop_reason == "stopped" and len(res) < 5000


def test_the_steps_control_and_the_old_keyword_names(task):
    f = LRFinder(task, steps=30, device="cpu")
    assert f.steps.description == "steps" and f.test_settings()["steps"] == 30 and f.iterations is f.steps
    with pytest.warns(DeprecationWarning, match="num_iter= is now steps="):
        old = LRFinder(task, num_iter=25, device="cpu")
    assert old.steps.value == 25 and old.test_settings()["steps"] == 25
    with pytest.warns(DeprecationWarning, match="val_data= is now val="):
        old = LRFinder(task, val_data=True, device="cpu")
    assert old.test_kwargs == {"val": True, "device": "cpu"}
