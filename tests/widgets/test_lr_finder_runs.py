"""LRFinder headless, run after run: a curve too flat or short to trust moves no lr, a new run
hides the last one's choice until it has its own, the picker spans the tested range, the saved
plot follows each pick, and a re-run cell or an interrupt stops a test in the background."""
from __future__ import annotations

import json
import threading
import time

import numpy as np
import pytest
import torch
from torch import nn
from torch.utils.data import TensorDataset

import tunewidgets as tw
import tunewidgets.widgets._base as base
from tunewidgets.plots.lr import CHOSEN, CURVE, MARKERS
from tunewidgets.widgets import LRFinder, SchedulePreview
from tunewidgets.widgets._base import stop_all
from tunewidgets.widgets._bokeh import saved_columns


def blobs(n: int = 256) -> TensorDataset:
    g = torch.Generator().manual_seed(0)
    y = torch.randint(0, 3, (n,), generator=g)
    x = torch.tensor([[2.0, 0.0], [-2.0, 1.0], [0.0, -2.0]])[y] + 0.7 * torch.randn(n, 2, generator=g)
    return TensorDataset(x, y)


@pytest.fixture(scope="module")
def task() -> tw.Task:
    return tw.Task(model=lambda: nn.Sequential(nn.Linear(2, 16), nn.ReLU(), nn.Linear(16, 3)), train=blobs(),
                   loss="cross_entropy", batch_size=32)


def finder(task, **kw) -> LRFinder:
    kw.setdefault("steps", 40)
    kw.setdefault("device", "cpu")
    kw.setdefault("interval", 0.02)
    kw.setdefault("seed", 0)
    return LRFinder(task, **kw)


def saved_span(f: LRFinder) -> dict:
    """The chosen-lr line as the saved render holds it."""
    bundle = f.plot.get_state()["render_bundle"]
    stack = [json.loads(bundle) if isinstance(bundle, str) else bundle]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            if node.get("name") == "Span" and node.get("attributes", {}).get("name") == CHOSEN:
                return node["attributes"]
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)
    raise AssertionError("no chosen-lr line in the saved render")


def test_before_any_run_no_lr_is_shown():
    f = finder(tw.Task(model=lambda: nn.Linear(2, 3), train=blobs(64), loss="cross_entropy"))
    assert f.lr is None and f.value_box.value == "" and f.value_box.placeholder == "none yet"
    assert f.chosen.layout.visibility == "hidden"  # no handle sitting at some lr
    assert f.figure.select_one({"name": CHOSEN}).visible is False


def test_a_flat_curve_moves_no_lr_and_says_why(task):
    f = finder(task, start_lr=1e-7, end_lr=1e-5)  # far too small to teach the network anything
    preview = SchedulePreview(lr_finder=f, total_steps=200)
    f.run()
    res = f.wait(timeout=60)
    assert res.suggested is not None  # the rules found something in the noise...
    assert f.lr is None and preview.spec == tw.schedules.OneCycle()  # ...but nothing moved
    text = f.status_line.value
    assert "the curve is too flat to trust" in text and "no lr chosen" in text and "suggested lr" not in text
    assert "#8a6d00" in text  # amber, not the green of a good run
    assert f.pick.value == "custom" and len(f.pick.options) == 4  # the suggestions stay there to pick
    # an lr chosen before stays chosen
    f.lr = 3e-3
    f.run()
    f.wait(timeout=60)
    assert f.lr == 3e-3 and "lr stays 3.00e-3" in f.status_line.value
    assert preview.spec == tw.schedules.OneCycle(max_lr=3e-3)


def test_a_test_stopped_before_the_loss_fell_moves_no_lr(task):
    # the test holds at its first logged rows until Stop is pressed: no race with how fast it runs
    reached, released = threading.Event(), threading.Event()

    def hold(record):
        if not reached.is_set():
            reached.set()
            released.wait(60)

    f = finder(task, steps=400, start_lr=1e-7, end_lr=10.0, log_every=25, callbacks=[{"log": hold}])
    f.lr = 0.05
    f.run()
    assert reached.wait(60)
    f.stop()
    released.set()
    res = f.wait(timeout=60)
    assert res.stop_reason == "stopped" and len(res) < 100
    assert f.lr == 0.05 and "stopped at step" in f.status_line.value
    assert "of its range" in f.status_line.value and "suggests nothing" in f.status_line.value


def test_a_test_stopped_after_a_sliver_of_its_range_suggests_nothing_and_says_to_let_it_run(task):
    f = finder(task, steps=3000, start_lr=1e-2, end_lr=10.0)
    f.lr = 0.05
    f.run()
    while f.session.records_seen < 60 and not f.session.done:
        time.sleep(0.005)
        f.session.drain()
    f.stop()
    res = f.wait(timeout=60)
    assert res.stop_reason == "stopped" and len(res) < 1000 and res.lrs.max() < 0.1
    text = f.status_line.value
    assert f.lr == 0.05 and "lr stays 5.00e-2" in text
    assert "of its range (up to" in text and "suggests nothing" in text and "let it run to the end" in text
    assert "suggested lr" not in text and "end_lr" not in text
    assert len(f.figure.select_one({"name": MARKERS}).data["x"]) == 0  # no suggestion markers on the sliver


def test_a_new_run_hides_the_last_choice_until_it_has_its_own(task):
    f = finder(task, optimizer="adam", start_lr=1e-4, end_lr=1.0)
    f.run()
    first = f.wait(timeout=60)
    span = f.figure.select_one({"name": CHOSEN})
    assert f.lr == first.suggested and span.visible and span.location == first.suggested
    f.set_range(1e-3, 10.0)
    f.run()
    # while it fills: no line, no suggestions, no markers from the last run
    assert not span.visible and f.pick.options == (("(running...)", "custom"),) and f.picker.disabled
    assert len(f.figure.select_one({"name": MARKERS}).data["x"]) == 0
    f.lr = 0.5  # even a pick from code shows only once the run is over; set during it, the run keeps it
    assert not span.visible
    second = f.wait(timeout=60)
    assert second.suggested != 0.5
    assert span.visible and f.lr == 0.5 and span.location == 0.5
    # the slider spans the tested range
    assert (f.chosen.min, f.chosen.max) == (pytest.approx(-3.0), pytest.approx(1.0))
    assert f.chosen.layout.width == "460px" and f.value_box.value == tw.plots._common.fmt_lr(0.5)
    f.run()  # a run with no pick during it: its suggestion
    third = f.wait(timeout=60)
    assert span.visible and f.lr == third.suggested and span.location == third.suggested


def test_the_value_box_and_the_saved_plot_follow_each_pick(task):
    f = finder(task, optimizer="adam", start_lr=1e-4, end_lr=1.0)
    f.run()
    res = f.wait(timeout=60)
    assert saved_span(f)["location"] == res.suggested
    f.value_box.value = "2e-2"
    assert f.lr == 0.02 and f.value_box.value == "2.00e-2" and f.pick.value == "custom"
    assert saved_span(f)["location"] == 0.02  # the saved notebook shows the new line
    f.value_box.value = "fast"
    assert f.lr == 0.02 and f.value_box.value == "2.00e-2"
    assert "chosen lr: expected a number &gt; 0, got &#x27;fast&#x27;" in f.picker.message.value
    f.chosen.value = 10 ** -1.234567  # a drag: rounded to what the box shows
    assert f.lr == 0.0583
    markers = saved_columns(f.plot, MARKERS)
    assert markers["x"] == [v for v in res.suggestions.values() if v is not None]


def test_every_run_renders_a_fitted_plot(task):
    f = finder(task, optimizer="adam", start_lr=1e-4, end_lr=1.0)
    f.run()
    f.wait(timeout=60)
    f.plot._zoomed = True  # as after a user's zoom in the page
    renders = f.plot.renders
    f.set_range(1e-6, 1e-2)
    f.run()
    assert not f.plot.zoomed and f.plot.renders == renders + 1  # the start: fitted, empty
    assert len(saved_columns(f.plot, CURVE)["lr"]) == 0
    res = f.wait(timeout=60)
    np.testing.assert_allclose(saved_columns(f.plot, CURVE)["lr"], res.lrs)
    assert np.isnan(f.figure.x_range.start) and np.isnan(f.figure.y_range.end)  # never fixed here


def test_a_run_on_a_plot_the_user_did_not_zoom_starts_with_patches_not_a_full_render(task):
    f = finder(task, optimizer="adam", start_lr=1e-4, end_lr=1.0)
    f.run()
    f.wait(timeout=60)
    renders = f.plot.renders
    f.run()
    assert f.plot.renders == renders  # the page gets the emptied sources as patches: the first point is not held up
    res = f.wait(timeout=60)
    np.testing.assert_allclose(saved_columns(f.plot, CURVE)["lr"], res.lrs)
    assert f.plot.renders == renders + 1  # one render at the end (here: when the state is read)


def test_a_finder_made_again_by_the_same_cell_stops_the_old_test(task, monkeypatch):
    monkeypatch.setattr(base, "current_cell_id", lambda: "cell-7")
    old = finder(task, steps=100_000, end_lr=1e-3)
    old.run()
    new = finder(task, steps=100_000, end_lr=1e-3)  # the cell was run again
    old.wait(timeout=60)
    assert old.status == "stopped" and "(the cell was run again)" in old.status_line.value
    monkeypatch.setattr(base, "current_cell_id", lambda: "cell-8")
    other = finder(task, steps=20)  # another cell: leaves the new one alone
    new.run()
    assert new.session.running
    assert stop_all() == 1  # what Kernel > Interrupt does
    new.wait(timeout=60)
    assert new.status == "stopped" and "(Kernel &gt; Interrupt)" in new.status_line.value
    assert other.status == "idle"
    assert not any(t.name == "tunewidgets-worker" and t.is_alive() for t in threading.enumerate())


def test_interrupting_a_cell_that_waits_for_the_test_stops_it(task):
    import asyncio

    f = finder(task, steps=100_000, end_lr=1e-3)

    async def main():
        f.run()
        waiting = asyncio.ensure_future(f.wait_async())
        while f.session.records_seen < 3:
            await asyncio.sleep(0.01)
        waiting.cancel()  # what Kernel > Interrupt does to a cell that awaits (ipykernel cancels it)
        with pytest.raises(asyncio.CancelledError):
            await waiting
        while f.session.running:
            await asyncio.sleep(0.01)

    asyncio.run(main())
    assert f.status == "stopped" and "(Kernel &gt; Interrupt)" in f.status_line.value
