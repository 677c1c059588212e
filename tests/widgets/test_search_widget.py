"""The Search widget without a browser: controls -> tw.search settings, sources vs the study,
Launch and Stop through the widget's methods, views (hide pruned, top k, selection), bounds."""
from __future__ import annotations

import asyncio
import base64
import dataclasses
import html
import gzip
import threading
import time

import numpy as np
import pytest
import torch

import tunewidgets as tw
import tunewidgets.widgets._base as base_module
from tunewidgets.plots.search import CURVE_ENDS, CURVES, HIGHLIGHT, IMPORTANCE, PARALLEL, SLICE, TABLE
from tunewidgets.widgets import Search
from tunewidgets.widgets._bokeh import saved_columns
from tunewidgets.widgets._search_live import LiveSources
from tunewidgets.plots.search import axes_of, live_search_figures, search_parts


@pytest.fixture(scope="module")
def task() -> tw.Task:
    return tw.tasks.spirals(n=300)


def base(**kw) -> tw.TrainConfig:
    return tw.TrainConfig(**{"optimizer": "adam", "epochs": 2, "device": "cpu", **kw})


def make(task, space, tmp_path, **kw) -> Search:
    kw.setdefault("interval", 0.02)
    kw.setdefault("store", tmp_path / "runs")
    return Search(task, space, **kw)


def decode(column):
    if isinstance(column, dict) and column.get("type") == "ndarray":
        raw = base64.b64decode(column["array"]["data"])
        raw = gzip.decompress(raw) if raw[:2] == b"\x1f\x8b" else raw
        return np.frombuffer(raw, dtype=column["dtype"]).tolist()
    return column


def in_docs(docs, name: str) -> dict | None:
    """Source ``name`` in serialized Bokeh documents."""
    def find(node):
        if isinstance(node, dict):
            if node.get("name") == "ColumnDataSource" and node.get("attributes", {}).get("name") == name:
                return {k: decode(v) for k, v in node["attributes"]["data"]["entries"]}
            for v in node.values():
                if (hit := find(v)) is not None:
                    return hit
        elif isinstance(node, list):
            for v in node:
                if (hit := find(v)) is not None:
                    return hit
        return None
    return find(docs)


def curves_of(study) -> dict[int, list[float]]:
    long = study.curves()
    long = long[long["name"] == study.metric]
    return {int(n): g.sort_values("epoch")["value"].tolist() for n, g in long.groupby("trial")}


def drain_until(w: Search, condition, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out waiting for the search"
        assert w.session.running, (w.status, w.error)
        time.sleep(0.02)
        w.session.drain()


# ------------------------------------------------------------------------------- controls
def test_controls_give_the_search_settings(task, tmp_path):
    space = {"lr": tw.space.LogUniform(1e-4, 1e-1), "momentum": tw.space.Uniform(0.8, 0.99),
             "model.depth": tw.space.Int(1, 3), "model.width": tw.space.Choice([8, 16, 32])}
    w = make(task, space, tmp_path, base=base(optimizer="sgd"), n_trials=7, pruner="median", study="s1")
    assert [(r.key, r.kind, r.on) for r in w.rows] == [("lr", "log", True), ("momentum", "linear", True),
                                                       ("model.depth", "int", True), ("model.width", "choice", True)]
    s = w.search_settings()
    assert {k: repr(v) for k, v in s["space"].items()} == {k: repr(v) for k, v in space.items()}
    assert (s["strategy"], s["n_trials"], s["pruner"], s["metric"], s["study"], s["seed"]) == (
        "random", 7, "median", "val_accuracy", "s1", 0)
    assert s["base"] == base(optimizer="sgd")
    # the log slider works in log10 units; its label shows the values
    lr, momentum, depth, width = w.rows
    lr.slider.value = (-3.0, -2.0)
    assert lr.label.get_state()["value"] == "1.00e-3 &rarr; 1.00e-2"
    # the page snapping a value set from Python to the slider's step keeps the exact one
    momentum.slider.value = (round(0.8 / momentum.slider.step) * momentum.slider.step, 0.99)
    depth.slider.value = (2, 3)
    width.slider.value = (0, 2)
    assert width.label.value == "8, 32"
    w.settings.epochs.value = 3
    w.settings.pruner.value = "none"
    s = w.search_settings()
    assert {k: repr(v) for k, v in s["space"].items()} == {
        "lr": "LogUniform(0.001, 0.01)", "momentum": "Uniform(0.8, 0.99)", "model.depth": "Int(2, 3)",
        "model.width": "Choice([8, 32])"}
    assert s["base"].epochs == 3 and s["pruner"] is None
    momentum.switch.value = False
    assert momentum.slider.disabled and "momentum" not in w.search_space()[0]


def _room(w) -> list:
    """What sets the space rows' and settings panel's widths: each shown part's layout width."""
    rows = [[(c.layout.width, c.layout.min_width, c.layout.display) for c in row.children] for row in w.rows]
    return [rows, w.settings.layout.width, w.settings.grid_info.layout.width]


def test_switching_to_grid_keeps_the_settings_where_they_were(task, tmp_path):
    # the grid's points fields keep their room while hidden, and the grid's size text has a
    # fixed room: the rows and the panel keep their widths, so the settings do not wrap below
    space = {"lr": tw.space.LogUniform(1e-3, 1e-1), "model.width": tw.space.Choice([8, 16]),
             "model.depth": tw.space.Int(1, 3)}
    w = make(task, space, tmp_path, base=base())
    before = _room(w)
    assert before[1] == "380px" and before[2] == "200px"
    w.settings.strategy.value = "grid"
    assert w.settings.grid_info.value and _room(w) == before
    w.settings.strategy.value = "random"
    assert _room(w) == before


def test_grid_shows_its_size_and_sets_the_trial_count(task, tmp_path):
    space = {"lr": tw.space.LogUniform(1e-3, 1e-1), "model.width": tw.space.Choice([8, 16]),
             "model.depth": tw.space.Int(1, 3)}
    w = make(task, space, tmp_path, base=base())
    assert w.rows[0].points.layout.visibility == "hidden"
    w.settings.strategy.value = "grid"
    assert w.rows[0].points.layout.visibility == "visible" and w.settings.n_trials.disabled
    assert w.settings.n_trials.value == 3 * 2 * 3
    assert "grid: lr 3 x model.width 2 x model.depth 3 = 18 points" in w.settings.grid_info.value
    w.rows[0].points.value = 4
    w.rows[2].points.value = 2
    assert w.settings.n_trials.value == 16 and "= 16 points" in w.settings.grid_info.value
    s = w.search_settings()
    assert s["n_trials"] is None and repr(s["space"]["lr"]) == "LogUniform(0.001, 0.1, grid=4)"
    assert repr(s["space"]["model.depth"]) == "Int(1, 3, grid=2)"
    w.settings.strategy.value = "random"
    assert not w.settings.n_trials.disabled and w.settings.grid_info.value == ""


def test_bad_settings_show_inline_and_start_nothing(task, tmp_path):
    w = make(task, {"lr": tw.space.LogUniform(1e-3, 1e-1), "model.width": tw.space.Choice([8, 16])}, tmp_path,
             base=base())
    w.rows[1].slider.value = ()
    assert w.launch() is False
    assert w.status == "invalid" and w.study is None and w.session.status == "idle"
    assert "model.width: no value is selected" in w.error_area.message
    w.rows[1].switch.value = False
    w.rows[0].switch.value = False
    assert w.launch() is False and "space: is empty" in w.error_area.message
    with pytest.raises(ValueError, match="best_config: no search has run yet"):
        w.best_config


@pytest.mark.parametrize("kwargs, error, words", [
    ({"task": "spirals"}, TypeError, "task: expected a tunewidgets Task"),
    ({"strategy": "grdi"}, ValueError, "strategy: must be one of grid, random, bayes"),
    ({"pruner": "mediann"}, ValueError, "pruner: must be None or one of median"),
    ({"n_trials": 0}, ValueError, "n_trials: must be a whole number >= 1, got 0"),
    ({"metric": "f1"}, ValueError, "metric: the task reports no 'f1'"),
    ({"lr_finder": 3e-3}, TypeError, "lr_finder: expected an LRFinder widget"),
    ({"schedule": "OneCycle"}, TypeError, "schedule: expected a SchedulePreview widget"),
    ({"space": {"lr": tw.space.LogUniform(0, 1)}}, ValueError, "lr: LogUniform needs low > 0"),
    ({"base": "adamm"}, ValueError, "preset: unknown name 'adamm'"),
])
def test_bad_arguments_fail_before_anything_is_built(task, kwargs, error, words):
    kwargs = {"task": task, "space": {"lr": tw.space.LogUniform(1e-3, 1e-1)}, **kwargs}
    with pytest.raises(error) as info:
        Search(kwargs.pop("task"), kwargs.pop("space"), **kwargs)
    assert words in str(info.value)


def test_lr_finder_and_schedule_preview_give_the_base_and_the_lr_range(task, tmp_path):
    finder = tw.widgets.LRFinder(task, steps=20, device="cpu", optimizer="sgd")
    preview = tw.widgets.SchedulePreview(tw.schedules.OneCycle(max_lr=0.05))
    w = make(task, None, tmp_path, base=base(optimizer="adam"), lr_finder=finder, schedule=preview)
    # the default space: lr a decade each side of the schedule's peak until the finder has an lr
    assert [(r.key, r.on) for r in w.rows] == [
        ("lr", True), ("momentum", False), ("weight_decay", False), ("batch_size", False), ("optimizer", False),
        ("model.width", False), ("model.dropout", False)]
    assert (w.rows[0].low, w.rows[0].high) == (0.005, 0.5)
    finder.lr = 3e-3
    assert (w.rows[0].low, w.rows[0].high) == (3e-4, 3e-2)
    s = w.search_settings()
    # OneCycle sets the lr itself, so the lr row searches its max_lr; the finder's optimizer is used
    assert list(s["space"]) == ["schedule.max_lr"] and repr(s["space"]["schedule.max_lr"]) == "LogUniform(0.0003, 0.03)"
    assert s["base"].schedule == preview.spec and (s["base"].lr, s["base"].optimizer) == (3e-3, "sgd")
    assert "searched as schedule.max_lr" in w.rows[0].note.value
    w.rows[1].switch.value = True  # OneCycle cycles momentum: the row is left out, and says why
    assert "momentum" not in w.search_space()[0] and "cycles momentum" in w.rows[1].note.value
    preview.spec = tw.schedules.Cosine()
    assert list(w.search_space()[0]) == ["lr", "momentum"] and w.rows[0].note.value == ""
    w.rows[1].switch.value = False
    w.settings.n_trials.value = 2
    w.settings.epochs.value = 1
    assert w.launch(), w.error_area.message
    study = w.wait(60)
    assert [c.lr for c in map(study.config, study.trials["trial"])] == pytest.approx(study.trials["lr"].tolist())
    assert all(3e-4 <= lr <= 3e-2 for lr in study.trials["lr"]) and study.base.schedule == tw.schedules.Cosine()


# ------------------------------------------------------------------------------- a search
class FailsInTraining(torch.nn.Sequential):
    """Builds and passes the first-batch check, then raises: a trial that fails while it trains."""

    def __init__(self) -> None:
        super().__init__(torch.nn.Linear(2, 3))
        self.calls = 0

    def forward(self, x):
        self.calls += 1
        if self.calls > 3:
            raise RuntimeError("boom: this width does not train")
        return super().forward(x)


def failing_width(model):
    def factory(width: int = 64):
        return FailsInTraining() if width == -1 else model(width=width)

    return factory


@pytest.fixture(scope="module")
def searched(task, tmp_path_factory):
    """A finished search with finished, pruned and failed trials (width -1 fails in training: a width
    that does not build is refused before the search starts)."""
    space = {"lr": tw.space.LogUniform(1e-3, 1e-1), "model.width": tw.space.Choice([8, 32, 64, -1])}
    w = Search(dataclasses.replace(task, model=failing_width(task.model)), space, base=base(epochs=3), n_trials=12, pruner="median", seed=1, interval=0.02,
               store=tmp_path_factory.mktemp("runs"))
    assert w.launch(), w.error_area.message
    assert w.status == "running" and w.run_bar.run_button.disabled and w.rows[0].slider.disabled
    study = w.wait(timeout=120)
    counts = study.counts()
    assert counts["pruned"] > 0 and counts["failed"] > 0 and counts["finished"] >= 5, counts
    return w


def test_a_search_fills_every_source_as_the_study_says(searched):
    w, study = searched, searched.study
    frame = study.trials.set_index("trial")
    assert w.status == "finished" and not w.run_bar.run_button.disabled and not w.rows[0].slider.disabled
    data = w.data
    curves = data[CURVES]
    assert curves["trial"] == sorted(frame.index) == list(range(12))
    assert curves["state"] == frame["state"].tolist()
    expected = curves_of(study)
    for n, xs, ys in zip(curves["trial"], curves["xs"], curves["ys"]):
        assert ys == pytest.approx(expected.get(n, [])) and xs == list(range(1, len(ys) + 1)), n
    assert [d for d, s in zip(curves["dash"], curves["state"]) if s == "pruned"] == ["dashed"] * frame[
        "state"].eq("pruned").sum()
    pruned = frame.index[frame["state"] == "pruned"].tolist()
    assert data[CURVE_ENDS]["trial"] == pruned  # failed trials have no point to mark
    ended = frame[frame["state"].isin(["finished", "pruned"])]
    assert data[SLICE]["trial"] == ended.index.tolist()
    assert data[SLICE]["p_lr"] == pytest.approx(ended["lr"].tolist())
    assert data[SLICE]["p_model_width"] == [str(v) for v in ended["model.width"]]
    assert data[SLICE]["value"] == pytest.approx(ended["val_accuracy"].tolist())
    assert data[PARALLEL]["trial"] == ended.index.tolist()
    table = data[TABLE]
    assert sorted(table["trial"]) == list(range(12)) and table["trial"][0] == study.best["trial"]
    assert table["best"][0] == "\u2605" and table["best"].count("\u2605") == 1
    assert table["state"] == [frame.loc[n, "state"] for n in table["trial"]]
    finished = frame[frame["state"] == "finished"]["val_accuracy"]
    assert list(table["value"][:len(finished)]) == sorted(finished, reverse=True)  # numbers go as arrays
    assert w.best == {"trial": study.best["trial"], "value": study.best["val_accuracy"],
                      "params": study.best["params"]}
    assert w.best_config == study.best_config
    c = study.counts()
    assert w.progress_line.get_state()["value"] == (
        f"finished {c['finished']} · running 0 · pruned {c['pruned']} · failed {c['failed']} · left 0")
    assert (w.run_bar.progress.value, w.run_bar.progress.max) == (12, 12)
    assert f"best val_accuracy {study.best['val_accuracy']:.4g} (trial {study.best['trial']})" in w.status_line.value
    # importance once enough trials finished: the study's own
    imp = data[IMPORTANCE]
    assert dict(zip(imp["key"], imp["importance"])) == pytest.approx(study.importance())
    # the views were re-rendered from their figures: a saved notebook shows the final plots
    assert saved_columns(w.views[0], CURVES)["trial"] == curves["trial"]
    assert saved_columns(w.views[4], TABLE)["trial"] == table["trial"]


def test_to_html_writes_the_widget_and_its_plots_as_one_offline_page(searched, tmp_path):
    from tunewidgets.export import external_references
    from tunewidgets.widgets._embed import widget_page_state

    page = searched.to_html(tmp_path / "search.html").read_text()
    assert external_references(page) == [] and "application/vnd.jupyter.widget-state+json" in page
    _, _, docs = widget_page_state(searched)
    assert len(docs) == 6  # curves, slices, parallel coordinates, importance, table; the best-config panel
    assert in_docs(docs, TABLE)["trial"] == searched.data[TABLE]["trial"]
    assert in_docs(docs, CURVES)["state"] == searched.data[CURVES]["state"]


def test_hide_pruned_and_top_k_change_what_is_shown(searched):
    w, frame = searched, searched.study.trials.set_index("trial")
    w.settings.hide_pruned.value = True
    assert "pruned" not in w.data[CURVES]["state"] and "pruned" not in w.data[SLICE]["state"]
    assert w.data[CURVE_ENDS]["trial"] == [] and len(w.data[CURVES]["trial"]) == (frame["state"] != "pruned").sum()
    assert len(w.data[TABLE]["trial"]) == 12  # the table keeps every trial
    w.settings.hide_pruned.value = False
    w.settings.top_k.value = 2
    best2 = frame[frame["state"] != "failed"]["val_accuracy"].sort_values(ascending=False).index[:2]
    assert w.data[CURVES]["trial"] == sorted(best2)
    w.settings.top_k.value = 0
    assert w.data[CURVES]["trial"] == list(range(12))


def test_selecting_a_row_of_the_table_highlights_its_curve(searched):
    w = searched
    table = w.parts[TABLE]
    table.selected.indices = [2]  # as a click in the page does
    trial = w.data[TABLE]["trial"][2]
    expected = curves_of(w.study)[trial]
    assert w.data[HIGHLIGHT]["trial"] == [trial] and w.data[HIGHLIGHT]["ys"][0] == pytest.approx(expected)
    w.select_trial(w.data[TABLE]["trial"][0])
    assert list(table.selected.indices) == [0] and w.data[HIGHLIGHT]["trial"] == [w.data[TABLE]["trial"][0]]
    w.select_trial(None)
    assert list(table.selected.indices) == [] and w.data[HIGHLIGHT]["trial"] == []


# ------------------------------------------------------------------------------- stop, resume
def test_stop_halts_within_a_step_keeps_what_ended_and_launch_resumes(task, tmp_path):
    w = make(task, {"lr": tw.space.LogUniform(1e-3, 1e-2)}, tmp_path, base=base(epochs=60), n_trials=20)
    assert w.launch()
    drain_until(w, lambda: w.live.trials.counts()["finished"] >= 1 and any(
        t.state == "running" and len(t.epochs) >= 2 for t in w.live.trials.by_number.values()))
    running = [r for r, s in zip(w.data[CURVES]["trial"], w.data[CURVES]["state"]) if s == "running"]
    assert len(running) == 1 and "running 1" in w.progress_line.value and "left" in w.progress_line.value
    w.stop()
    assert w.status == "stopping"
    study = w.wait(timeout=30)
    assert w.status == "stopped"
    frame = study.trials
    assert frame["state"].tolist()[-1] == "stopped" and set(frame["state"][:-1]) == {"finished"}
    # halted within a step, counted in epochs, not seconds: the stopped trial is far from its 60
    assert frame["epochs"].tolist()[-1] < 60
    assert frame["epochs"].iloc[-1] < 60 and (frame["epochs"].iloc[:-1] == 60).all()
    assert sorted(w.data[TABLE]["state"]) == sorted(frame["state"]) and "running" not in w.data[CURVES]["state"]
    assert f"resume with study name '{study.name}'" in html.unescape(w.status_line.value)
    # the same study name resumes it: the stopped trial runs again, the finished ones come from the store
    finished = frame[frame["state"] == "finished"]
    w.settings.study.value = study.name
    w.settings.n_trials.value = len(finished) + 1
    assert w.launch(), w.error_area.message
    again = w.wait(timeout=60)
    assert again is not study and again.name == study.name
    assert again.trials["state"].tolist() == ["finished"] * (len(finished) + 1)
    assert again.trials["lr"].iloc[: len(finished)].tolist() == finished["lr"].tolist()
    assert w.data[CURVES]["trial"] == list(range(len(finished) + 1))
    assert sorted(w.data[TABLE]["trial"]) == list(range(len(finished) + 1))


def test_running_the_cell_again_stops_the_search_of_the_earlier_widget(task, tmp_path, monkeypatch):
    monkeypatch.setattr(base_module, "current_cell_id", lambda: "cell-7")  # the base class replaces
    space = {"lr": tw.space.LogUniform(1e-3, 1e-2)}
    first = make(task, space, tmp_path, base=base(epochs=200), n_trials=5, study="a")
    assert first.launch()
    drain_until(first, lambda: any(len(t.epochs) >= 1 for t in first.live.trials.by_number.values()))
    second = make(task, space, tmp_path, base=base(epochs=200), n_trials=5, study="b")
    study = first.wait(timeout=30)
    assert first.status == "stopped" and study.trials["state"].tolist() == ["stopped"]
    assert second.status == "idle"


def test_on_a_running_loop_curves_grow_between_awaits(task, tmp_path):
    # Each trial's model holds its worker before each evaluation until the loop below has seen
    # the curve grow (or a new trial start) since the last one: a gate, not a race against the
    # machine's speed, so the loop sees the curve's lengths while it awaits.
    gate = threading.Semaphore(1)

    class Gated(torch.nn.Module):
        def __init__(self, **kwargs) -> None:
            super().__init__()
            self.inner = task.build_model(**kwargs)
            self.trained = False  # trained since the last evaluation

        def forward(self, x):
            if self.training:
                self.trained = True
            elif self.trained:
                self.trained = False
                assert gate.acquire(timeout=60), "the test's loop never let this epoch's evaluation start"
            return self.inner(x)

    gated = dataclasses.replace(task, model=Gated)
    w = make(gated, {"lr": tw.space.LogUniform(1e-3, 1e-2)}, tmp_path, base=base(epochs=15), n_trials=2)
    lengths: list[int] = []

    async def main():
        assert w.launch() and w.session.draining_on_loop
        seen: set[tuple[int, int]] = set()
        while not w.session.done:
            curves = w.data[CURVES]
            running = [(n, len(xs)) for n, xs, s in zip(curves["trial"], curves["xs"], curves["state"])
                       if s == "running"]
            for key in running[:1]:
                lengths.append(key[1])
                if key not in seen and (key[1] > 0 or (key[0], -1) not in seen):
                    seen.update({key, (key[0], -1)})  # -1: this trial was seen running
                    gate.release()  # a new trial or a longer curve: the next evaluation may start
            await asyncio.sleep(0.01)
        return w.study

    study = asyncio.run(main())
    assert w.status == "finished" and study.trials["state"].tolist() == ["finished", "finished"]
    grown = sorted(set(lengths))
    assert len(grown) >= 3 and max(grown) <= 15, lengths  # the running trial's curve grew while awaited


# ------------------------------------------------------------------------------- bounds
def test_many_trials_keep_the_sources_bounded_with_one_send_per_source_a_tick():
    axes = axes_of({"lr": tw.space.LogUniform(1e-4, 1e-1)})
    parts = search_parts(live_search_figures(axes, "val_accuracy", "maximize"))
    live = LiveSources(parts, axes, "val_accuracy", "maximize", max_curves=20, max_rows=15)
    rng = np.random.default_rng(0)
    ticks = 0
    for n in range(300):
        quality = float(rng.uniform(0.3, 0.9))
        for e in range(1, 6):
            records = ([("start", n, float(n))] if e == 1 else []) + [("eval", n, e, quality * e / 5)]
            if e == 5:
                records.append(("end", n, "pruned" if n % 4 == 0 else "finished", quality, None, n + 0.5))
            before = {name: s.sends for name, s in (("c", live.curves), ("s", live.slice), ("p", live.parallel))}
            live.update(live.trials.ingest(records))
            ticks += 1
            for name, sync in (("c", live.curves), ("s", live.slice), ("p", live.parallel)):
                assert sync.sends - before[name] <= 2  # at most one patch and one stream
            assert len(parts[CURVES].data["trial"]) <= 25 and len(parts[TABLE].data["trial"]) <= 15
            assert n in parts[CURVES].data["trial"]  # the running (newest) trial is always shown
    shown = parts[CURVES].data["trial"]
    best = sorted((t for t in live.trials.by_number.values()), key=lambda t: -t.value)[:9]
    assert {t.trial for t in best} <= set(shown)  # the best half of the cap (kept over each trim)
    assert live.curves.resends < ticks / 10  # re-sent whole only when the cap drops old curves
    assert len(parts[SLICE].data["trial"]) == 300  # one point per ended trial
    values = [t.value for t in live.trials.by_number.values()]
    mapper = parts["mappers"][0]  # the colours span every value (the range only grows, with a margin)
    assert mapper.low <= min(values) and mapper.high >= max(values)
    assert mapper.high - mapper.low <= 1.5 * (max(values) - min(values))


def test_the_table_is_rebuilt_at_most_once_a_period_and_flushed_at_the_end():
    axes = axes_of({"lr": tw.space.LogUniform(1e-4, 1e-1)})
    parts = search_parts(live_search_figures(axes, "val_accuracy", "maximize"))
    live = LiveSources(parts, axes, "val_accuracy", "maximize", max_curves=20, max_rows=15)
    live.table_every = 3600.0
    live.update(live.trials.ingest([("start", 0, 0.0), ("eval", 0, 1, 0.5)]))
    assert parts[TABLE].data["trial"] == [0] and list(parts[TABLE].data["value"]) == [0.5]  # the first rebuild
    live.update(live.trials.ingest([("eval", 0, 2, 0.6), ("end", 0, "finished", 0.6, None, 1.0),
                                    ("start", 1, 1.0), ("eval", 1, 1, 0.9)]))
    # within the period the rows shown are patched in place; trial 1 waits for the next rebuild
    assert parts[TABLE].data["trial"] == [0] and list(parts[TABLE].data["value"]) == [0.6]
    assert parts[TABLE].data["state"] == ["finished"] and parts[TABLE].data["epochs"] == [2]
    live.flush_table()
    assert parts[TABLE].data["trial"] == [1, 0] and parts[TABLE].data["state"] == ["running", "finished"]
    assert parts[TABLE].data["best"] == ["", "\u2605"]


def test_stop_pressed_after_the_search_ended_says_finished(task, tmp_path):
    w = make(task, {"lr": tw.space.Choice([0.01, 0.02])}, tmp_path, base=base(epochs=1), strategy="grid",
             interval=5.0)  # no drain before the stop below
    assert w.launch()
    study = w.study.wait(timeout=60)  # every trial ended; the widget has not seen the end yet
    assert study.status == "finished" and w.session.running
    w.stop()
    w.wait(timeout=30)
    assert w.status == "finished" and w.session.status == "finished"
    line = html.unescape(w.status_line.value)
    assert "finished after" in line and "2 finished" in line and "stopped" not in line and "resume" not in line


def test_a_search_widget_with_a_study_name_resumes_it_and_without_one_starts_afresh(task, tmp_path, monkeypatch):
    from tunewidgets.widgets import search as search_module

    reads = []  # the start reads the store for the trials ended before only when it resumes
    read = search_module.trials_of_study
    monkeypatch.setattr(search_module, "trials_of_study", lambda study: reads.append(study.name) or read(study))
    space = {"lr": tw.space.Choice([0.01, 0.02, 0.05])}
    w = make(task, space, tmp_path, base=base(epochs=1), n_trials=2, study="named")
    assert w.launch()
    first = w.wait(timeout=60)
    w.settings.n_trials.value = 3
    assert w.launch(), w.error_area.message
    again = w.wait(timeout=60)
    assert again.name == first.name == "named" and len(again.trials) == 3
    assert again.trials["run_id"].tolist()[:2] == first.trials["run_id"].tolist()  # the same two trials
    assert w.data[CURVES]["trial"] == [0, 1, 2]
    assert "named" in reads  # the resumed launch read the two trials it ended before
    read_before = len(reads)
    w.settings.study.value = ""
    assert w.launch(), w.error_area.message
    fresh = w.wait(timeout=60)
    assert fresh.name != "named" and len(fresh.trials) == 3
    assert w.data[CURVES]["trial"] == [0, 1, 2] and sorted(w.data[TABLE]["trial"]) == [0, 1, 2]
    assert len(reads) == read_before  # a new study: nothing from before to read


def test_the_seed_control_seeds_each_launch_and_the_status_line_names_it(task, tmp_path):
    space = {"lr": tw.space.LogUniform(1e-3, 1e-1)}
    w = make(task, space, tmp_path, base=base(epochs=1), n_trials=2, seed=3)
    assert w.settings.seed.value == 3 and w.search_settings()["seed"] == 3
    assert w.launch()
    first = w.wait(timeout=60)
    assert "; seed 3" in html.unescape(w.status_line.value)
    w.settings.seed.value = 4
    assert w.launch()
    second = w.wait(timeout=60)
    assert "; seed 4" in html.unescape(w.status_line.value)
    assert first.trials["lr"].tolist() != second.trials["lr"].tolist()  # other points, not a replay
    again = tw.search(task, space, base=base(epochs=1), n_trials=2, seed=4, store=tmp_path / "other",
                      background=False)
    assert again.trials["lr"].tolist() == second.trials["lr"].tolist()


def test_the_end_status_goes_out_before_the_plots_final_renders(task, tmp_path, monkeypatch):
    import tunewidgets.widgets._bokeh as bokeh_module

    monkeypatch.setattr(bokeh_module, "in_kernel", lambda: True)  # views render when told, as in a kernel
    w = make(task, {"lr": tw.space.LogUniform(1e-3, 1e-1)}, tmp_path, base=base(), n_trials=2)
    seen = []

    def on_status(change):
        seen.append((change["new"], sum(v.renders for v in w.views), w.settings.strategy.disabled))

    w.observe(on_status, names="status")
    renders_at_launch = [v.renders for v in w.views]
    assert w.launch()
    w.wait(timeout=120)
    (first, at_launch, _), (last, at_end, inputs_disabled) = seen[0], seen[-1]
    assert (first, last) == ("running", "finished")
    # the status goes out first: no plot re-rendered, no control enabled yet (each a message before it)
    assert at_end == at_launch and inputs_disabled
    assert not w.settings.strategy.disabled
    # after it, each plot that changed re-renders once (the saved state); one that did not (the
    # importance of two trials: none) has nothing new to save
    grew = [v.renders - before for v, before in zip(w.views, renders_at_launch)]
    assert sum(grew) == sum(v.renders for v in w.views) - at_launch and set(grew) <= {0, 1}
    assert grew[0] == 1 and not any(v._stale for v in w.views)
    assert len(saved_columns(w.views[0], CURVES)["trial"]) == 2
