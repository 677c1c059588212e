"""The Dashboard without a browser: hand-offs said and overridable, the task picker rebuilding and
stopping, axes that follow every run, saved state equal to the sources, no models left behind after
50 interactions, a re-run cell stopping the old workers, and an offline page."""
from __future__ import annotations

import gc
import html
import math
import re
import threading
import weakref

import numpy as np
import pytest
from ipywidgets.widgets.widget import _instances  # every live widget model (ipywidgets 8)

import tunewidgets as tw
import tunewidgets.widgets._base as base_module
import tunewidgets.widgets.dashboard as dashboard_module
from tunewidgets.plots._common import fmt_lr
from tunewidgets.plots.lr import CURVE
from tunewidgets.plots.search import CURVES
from tunewidgets.widgets import Dashboard
from tunewidgets.widgets._bokeh import figure_views, saved_columns
from tunewidgets.widgets._dashboard_handoffs import peak_of


@pytest.fixture(scope="module")
def spirals() -> tw.Task:
    return tw.tasks.spirals(n=300)


def make(task, tmp_path, **kw) -> Dashboard:
    kw = {"store": tmp_path / "runs", "steps": 40, "n_trials": 2, "epochs": 2, "device": "cpu", **kw}
    return Dashboard(task, **kw)


def text(widget) -> str:
    return html.unescape(re.sub(r"<[^>]+>", "", widget.value))


def ranges(d) -> dict[str, tuple[float, float]]:
    """Every plot's numeric x and y range (start, end) by model id, as the kernel holds them."""
    from bokeh.models import Plot

    plots = [p for view in figure_views(d) for p in view._model.select({"type": Plot})]
    def value(v: float) -> float | None:  # NaN (fitted in the page) as None, so that it compares equal
        return None if math.isnan(v) else float(v)
    return {r.id: (value(r.start), value(r.end)) for p in plots for r in (p.x_range, p.y_range)
            if hasattr(r, "start") and isinstance(r.start, (int, float))}


def worker_threads() -> int:
    return sum(t.name == "tunewidgets-worker" and t.is_alive() for t in threading.enumerate())


def test_the_range_tests_lr_reaches_the_schedule_and_the_search_and_each_line_says_so(spirals, tmp_path):
    d = make(spirals, tmp_path)
    assert [d.tabs.get_title(i) for i in range(3)] == ["1. LR range test", "2. Schedule", "3. Search"]
    peak, search = d.handoffs["schedule"], d.handoffs["search"]
    assert "no range test yet" in text(peak.line) and peak.follow_button.disabled
    assert "from the base config (no range test yet)" in text(search.line)
    d.finder.run()
    res = d.finder.wait(timeout=60)
    lr = d.finder.lr
    assert lr == res.suggested
    assert peak_of(d.preview) == ("max_lr", float(f"{lr:.3g}"))
    assert text(peak.line) == f"lr {fmt_lr(lr)} from the range test (the schedule's max_lr)"
    base = d.search.base_config()
    assert base.lr == lr and base.schedule == d.preview.spec and base.optimizer == d.finder.optimizer.value
    assert text(search.line) == f"lr {fmt_lr(lr)} from the range test; schedule {d.preview.code} from the preview"

    # a peak set by hand wins over later range tests, and the line says so
    d.preview.editor.fields["max_lr"].input.value = 0.05
    d.finder.lr = lr / 2
    assert peak_of(d.preview) == ("max_lr", 0.05) and peak.overridden
    assert text(peak.line) == f"max_lr 5.00e-2 set here; the range test's lr {fmt_lr(lr / 2)} is not used"
    assert not peak.follow_button.disabled
    assert d.search.base_config().schedule.max_lr == 0.05  # the search takes what the preview shows
    peak.follow_button.click()
    assert peak_of(d.preview) == ("max_lr", float(f"{lr / 2:.3g}")) and not peak.overridden
    # another shape starts from the handed-over lr (not an override)
    d.preview.editor.shape.value = "Cosine"
    assert peak_of(d.preview) == ("optimizer lr", float(f"{lr / 2:.3g}")) and not peak.overridden
    assert "(the optimizer's lr)" in text(peak.line)

    # the search's switches drop what was handed over
    search.use_schedule.value = False
    assert d.search.base_config().schedule is None
    assert f"no schedule (a constant lr) set here; the preview's {d.preview.code} is not used" in text(search.line)
    search.use_lr.value = False
    assert d.search.base_config().lr == spirals.recommended["lr"]
    assert text(search.line).startswith(f"lr {fmt_lr(spirals.recommended['lr'])} set here; the range test's")
    search.use_lr.value = search.use_schedule.value = True
    assert d.search.base_config().lr == lr / 2 and d.search.base_config().schedule == d.preview.spec


def test_search_then_train_best_from_the_dashboard(spirals, tmp_path):
    d = make(spirals, tmp_path)
    d.finder.run()
    d.finder.wait(timeout=60)
    assert d.search.launch(), d.search.error_area.message
    study = d.search.wait(timeout=120)
    assert study.base.schedule == d.preview.spec and study.base.lr == d.finder.lr
    assert d.train_best()
    run = d.search.wait(timeout=120)
    assert run.config == study.best_config and run.status == "finished"
    curves = d.search.best_panel.data
    assert curves["again"]["value"] == pytest.approx(curves["search"]["value"], rel=1e-6)


def test_picking_another_task_stops_what_runs_and_rebuilds_the_steps(spirals, tmp_path):
    d = make(spirals, tmp_path, steps=100_000)
    assert [o[1] for o in d.task_picker.options] == ["(given)", "digits", "spirals", "shapes", "sine"]
    old_finder, old_preview, old_search = d.steps
    d.finder.set_range(1e-5, 1e-3)
    assert d.finder.run()
    d.task_picker.value = "sine"
    assert old_finder.wait(timeout=60) is None or old_finder.status == "stopped"
    assert old_finder.status == "stopped" and worker_threads() == 0
    assert d.task.name == "sine" and d.finder.task is d.task and d.search.task is d.task
    assert all(w.comm is None for w in (old_finder, old_preview, old_search, old_finder.plot))
    assert d.tabs.children[0].children[1] is d.finder
    # the new steps are linked, the old links are gone
    old_finder.lr = 0.03
    assert d.finder.lr is None and "no range test yet" in text(d.handoffs["schedule"].line)
    d.finder.lr = 0.02
    assert peak_of(d.preview)[1] == 0.02 and d.search.base_config().lr == 0.02
    # the epochs of the search set the length of the previewed run
    spe = len(d.task.train_batches())
    d.search.settings.epochs.value = 5
    assert d.preview.total_steps == 5 * spe
    d.set_task(spirals)
    assert d.task is spirals and d.task_picker.value == "(given)"
    with pytest.raises(ValueError, match=r"task: 'mnist' is not one of the picker's tasks \('\(given\)', 'digits'"):
        d.set_task("mnist")


def test_axes_follow_the_data_on_every_run_and_the_saved_state_equals_the_sources(spirals, tmp_path):
    d = make(spirals, tmp_path)
    first_ranges = ranges(d)
    assert len(first_ranges) >= 7 * 2 and sum(v is None for r in first_ranges.values() for v in r) >= 8
    d.finder.set_range(1e-4, 1.0)
    d.finder.run()
    d.finder.wait(timeout=60)
    d.finder.plot._zoomed = True  # as after a user's zoom in the page
    d.finder.set_range(1e-6, 1e-2)
    d.finder.run()
    assert not d.finder.plot.zoomed  # a new run fits the data again
    res = d.finder.wait(timeout=60)
    np.testing.assert_allclose(saved_columns(d.finder.plot, CURVE)["lr"], res.lrs)
    for w in (d.search,):
        assert w.launch()
        w.wait(timeout=120)
    assert d.train_best()
    d.search.wait(timeout=120)
    # the kernel never fixes a range: each stays as first made (fitted to the data in the page)
    assert ranges(d) == first_ranges
    # every plot's saved state holds what its sources hold now
    assert saved_columns(d.search.views[0], CURVES)["trial"] == d.search.data[CURVES]["trial"]
    for view in figure_views(d):
        from bokeh.models import ColumnDataSource
        for source in view._model.select({"type": ColumnDataSource}):
            if source.name:
                saved = saved_columns(view, source.name)
                for column, values in source.data.items():
                    assert len(saved[column]) == len(values), (source.name, column)
    # and the hand-off lines as shown
    state = d.handoffs["schedule"].line.get_state()
    assert state["value"] == d.handoffs["schedule"].line.value and "from the range test" in state["value"]


def test_fifty_interactions_leave_no_models_or_workers_behind(spirals, tmp_path):
    d = make(spirals, tmp_path)
    tasks = ["sine", "(given)"]
    d.task_picker.value = "sine"
    d.task_picker.value = "(given)"
    gc.collect()
    before = len(_instances)
    gone = weakref.ref(d.finder), weakref.ref(d.search), weakref.ref(d.preview)
    shapes = ["Cyclic", "Cosine", "OneCycle"]
    for i in range(50):
        kind = i % 5
        if kind == 0:
            d.task_picker.value = tasks[(i // 5) % 2]
        elif kind == 1:
            d.finder.lr = 10 ** (-3 + (i % 3) * 0.5)
        elif kind == 2:
            d.preview.editor.shape.value = shapes[(i // 5) % 3]
        elif kind == 3:
            d.handoffs["search"].use_schedule.value = not d.handoffs["search"].use_schedule.value
        else:
            d.tabs.selected_index = (i // 5) % 3
    d.task_picker.value = "(given)"
    d.preview.editor.shape.value = "OneCycle"
    d.handoffs["search"].use_schedule.value = True
    gc.collect()
    assert len(_instances) == before
    assert all(ref() is None for ref in gone)  # the widgets of a replaced task are freed
    assert worker_threads() == 0


def test_running_the_cell_again_stops_the_old_dashboards_workers(spirals, tmp_path, monkeypatch):
    for module in (base_module, dashboard_module):
        monkeypatch.setattr(module, "current_cell_id", lambda: "cell-3")
    old = make(spirals, tmp_path, steps=100_000)
    old.task_picker.value = "spirals"  # rebuilt by a click: its widgets are still the cell's
    old.finder.set_range(1e-5, 1e-3)
    assert old.finder.run() and old.running
    new = make(spirals, tmp_path)
    old.finder.wait(timeout=60)
    assert old.finder.status == "stopped" and "(the cell was run again)" in old.finder.status_line.value
    assert not old.running and new.finder.status == "idle" and worker_threads() == 0


def test_to_html_writes_the_dashboard_as_one_offline_page(spirals, tmp_path):
    from tunewidgets.export import external_references
    from tunewidgets.widgets._embed import widget_page_state

    d = make(spirals, tmp_path)
    d.finder.run()
    res = d.finder.wait(timeout=60)
    page = d.to_html(tmp_path / "dashboard.html").read_text()
    assert external_references(page) == [] and "application/vnd.jupyter.widget-state+json" in page
    state, _, docs = widget_page_state(d)
    assert len(docs) == len(list(figure_views(d)))  # every plot of the three steps
    titles = [list(e["state"].get("titles")) for e in state["state"].values() if e["model_name"] == "TabModel"]
    assert titles == [["1. LR range test", "2. Schedule", "3. Search"]]
    assert fmt_lr(res.suggested) in page


def test_bad_arguments_are_refused_before_anything_is_made(spirals):
    with pytest.raises(TypeError, match="task: expected a tunewidgets Task or None, got str"):
        Dashboard("digits")
    with pytest.raises(ValueError, match="steps: must be a whole number >= 2, got 1"):
        Dashboard(spirals, steps=1)
    with pytest.raises(ValueError, match="n_trials: must be a whole number >= 1, got 0"):
        Dashboard(spirals, n_trials=0)
