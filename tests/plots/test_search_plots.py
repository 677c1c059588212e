"""Search plots from plain data: which curves are shown, the columns of each figure, a study's figures."""
from __future__ import annotations

import math

import pytest
import torch
from bokeh.embed import file_html
from bokeh.resources import INLINE

import tunewidgets as tw
from tunewidgets.plots.search import (
    CURVE_ENDS, CURVES, PARALLEL, SLICE, TABLE, TrialData, axes_of, curve_columns, end_columns,
    importance_columns, live_search_figures, parallel_axis_columns, parallel_columns, pick_trials, search_figures,
    search_parts, slice_columns, table_columns, value_range,
)


def trial(n, state, value, params=None, epochs=None):
    epochs = list(range(1, (epochs or 2) + 1))
    values = [value * e / len(epochs) for e in epochs]
    return TrialData(n, state, params or {}, epochs, values, value if state != "running" else math.nan)


def test_pick_keeps_running_trials_and_caps_the_rest_to_the_best_half_and_the_newest():
    trials = [trial(n, "finished", v) for n, v in enumerate([0.1, 0.9, 0.5, 0.8, 0.2, 0.3, 0.4, 0.6])]
    trials.append(trial(8, "running", 0.0))
    assert pick_trials(trials, "maximize") == list(range(9))
    # cap 5: the running one, the best two (1: 0.9, 3: 0.8) and the two newest (7, 6)
    assert pick_trials(trials, "maximize", max_curves=5) == [1, 3, 6, 7, 8]
    # minimising, the best two are 0 (0.1) and 4 (0.2)
    assert pick_trials(trials, "minimize", max_curves=5) == [0, 4, 6, 7, 8]
    assert pick_trials(trials, "maximize", top_k=2) == [1, 3, 8]


def test_pick_hides_pruned_trials_but_never_running_ones():
    trials = [trial(0, "finished", 0.5), trial(1, "pruned", 0.2), trial(2, "failed", math.nan),
              trial(3, "running", 0.0)]
    assert pick_trials(trials, "maximize") == [0, 1, 2, 3]
    assert pick_trials(trials, "maximize", hide_pruned=True) == [0, 2, 3]
    assert pick_trials(trials, "maximize", top_k=5) == [0, 1, 3]  # top-k ranks trials with a value


def test_curve_columns_style_each_state_and_ends_mark_the_last_finite_point():
    trials = [trial(0, "finished", 0.5), trial(1, "pruned", 0.2),
              TrialData(2, "diverged", {}, [1, 2, 3], [0.3, 0.35, math.inf]), trial(3, "running", 0.4, epochs=3)]
    cols = curve_columns(trials)
    assert cols["trial"] == [0, 1, 2, 3]
    assert cols["dash"] == ["solid", "dashed", "dotted", "solid"]
    assert cols["width"] == [1.5, 1.5, 1.5, 3.0]
    assert cols["xs"][3] == [1, 2, 3] and cols["ys"][0] == [0.25, 0.5]
    assert math.isnan(cols["ys"][2][2])  # not finite: a gap in the line
    assert cols["value"][3] == pytest.approx(0.4)  # a running trial is coloured by its latest value
    ends = end_columns(trials)
    assert ends["trial"] == [1, 2] and ends["marker"] == ["x", "triangle"]
    assert (ends["x"], ends["y"]) == ([2, 2], [0.2, 0.35])


def test_slice_columns_hold_ended_trials_with_their_values_by_axis():
    space = {"lr": tw.space.LogUniform(1e-4, 1e-1), "model.width": tw.space.Choice([16, 64]),
             "momentum": tw.space.Uniform(0.8, 0.99), "epochs": tw.space.Fixed(3)}
    axes = axes_of(space)
    assert [(a.key, a.kind, a.column) for a in axes] == [
        ("lr", "log", "p_lr"), ("model.width", "choice", "p_model_width"), ("momentum", "linear", "p_momentum")]
    assert axes[1].factors == ("16", "64")
    trials = [trial(0, "finished", 0.5, {"lr": 1e-3, "model.width": 64}),  # momentum did not apply
              trial(1, "pruned", 0.2, {"lr": 1e-2, "model.width": 16, "momentum": 0.9}),
              trial(2, "running", 0.1, {"lr": 1e-2})]
    cols = slice_columns(trials, axes)
    assert cols["trial"] == [0, 1] and cols["value"] == [0.5, 0.2]
    assert cols["p_lr"] == [1e-3, 1e-2] and cols["p_model_width"] == ["64", "16"]
    assert math.isnan(cols["p_momentum"][0]) and cols["p_momentum"][1] == 0.9
    assert slice_columns(trials, axes, hide_pruned=True)["trial"] == [0]


def test_parallel_lines_scale_each_axis_to_its_range_log_for_log_keys():
    axes = axes_of({"lr": tw.space.LogUniform(1e-4, 1e-0), "opt": tw.space.Choice(["sgd", "adam", "adamw"])})
    trials = [trial(0, "finished", 0.5, {"lr": 1e-2, "opt": "adamw"}), trial(1, "finished", 0.7, {"lr": 1e-4})]
    cols = parallel_columns(trials, axes, value_range(trials))
    assert cols["xs"] == [[0, 1, 2], [0, 1, 2]]
    assert cols["ys"][0] == pytest.approx([0.5, 1.0, 0.0])
    assert cols["ys"][1][0] == 0.0 and math.isnan(cols["ys"][1][1]) and cols["ys"][1][2] == 1.0
    labels = parallel_axis_columns(axes, "val_accuracy", (0.5, 0.7))
    assert labels["name"] == ["lr", "opt", "val_accuracy"]
    assert (labels["low"], labels["high"]) == (["1.0e-04", "sgd", "0.5"], ["1", "adamw", "0.7"])


def test_value_range_and_importance_columns():
    assert value_range([]) == (0.0, 1.0)
    assert value_range([trial(0, "finished", 0.5)]) == pytest.approx((0.475, 0.525))
    assert value_range([trial(0, "finished", 0.5), trial(1, "failed", math.nan), trial(2, "pruned", 0.1)]) == (
        0.1, 0.5)
    cols = importance_columns({"lr": 0.25, "model.width": 0.75})
    assert cols == {"key": ["model.width", "lr"], "importance": [0.75, 0.25], "label": ["75%", "25%"]}


def test_table_puts_running_trials_first_then_best_first_and_stars_the_best():
    axes = axes_of({"lr": tw.space.LogUniform(1e-4, 1e-1)})
    trials = [trial(0, "finished", 0.5, {"lr": 1e-3}), trial(1, "pruned", 0.9, {"lr": 1e-2}),
              trial(2, "finished", 0.7, {"lr": 3e-3}), trial(3, "running", 0.0, {"lr": 1e-4}),
              trial(4, "failed", math.nan)]
    cols = table_columns(trials, axes, "maximize")
    assert cols["trial"] == [3, 2, 0, 1, 4]
    assert cols["best"] == ["", "\u2605", "", "", ""]  # the best finished trial, not the pruned 0.9
    assert cols["state"] == ["running", "finished", "finished", "pruned", "failed"]
    assert cols["p_lr"][:3] == [1e-4, 3e-3, 1e-3] and math.isnan(cols["p_lr"][4])
    assert table_columns(trials, axes, "minimize", max_rows=3)["trial"] == [3, 0, 2]


def test_live_figures_have_every_named_source_and_a_log_slice_for_log_keys():
    axes = axes_of({"lr": tw.space.LogUniform(1e-4, 1e-1), "model.width": tw.space.Choice([16, 64])})
    figs = live_search_figures(axes, "val_accuracy", "maximize")
    parts = search_parts(figs)
    assert len(parts["mappers"]) == 3
    lr_fig, width_fig = figs.slices.children[0][0], figs.slices.children[1][0]
    assert lr_fig.x_scale.__class__.__name__ == "LogScale"
    assert list(width_fig.x_range.factors) == ["16", "64"]
    assert set(parts[SLICE].data) >= {"p_lr", "p_model_width", "value", "trial"}
    assert [c.field for c in figs.table.columns][:4] == ["best", "trial", "state", "value"]


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    torch.set_num_threads(1)
    space = {"lr": tw.space.LogUniform(1e-3, 1e-1, grid=2), "model.width": tw.space.Choice([8, 32])}
    return tw.search(tw.tasks.spirals(n=300), space, base=tw.TrainConfig(optimizer="adam", epochs=2, device="cpu"),
                     strategy="grid", store=tmp_path_factory.mktemp("runs"), background=False)


def test_figures_of_a_study_show_its_trials_and_render_offline(study):
    figs = search_figures(study)
    parts = search_parts(figs)
    frame, curves = study.trials, study.curves()
    assert parts[CURVES].data["trial"] == frame["trial"].tolist() == [0, 1, 2, 3]
    for n, ys in zip(parts[CURVES].data["trial"], parts[CURVES].data["ys"]):
        expected = curves[(curves["trial"] == n) & (curves["name"] == "val_accuracy")]["value"].tolist()
        assert ys == pytest.approx(expected)
    assert parts[SLICE].data["p_lr"] == pytest.approx(frame["lr"].tolist())
    assert parts[SLICE].data["p_model_width"] == [str(w) for w in frame["model.width"]]
    assert len(parts[PARALLEL].data["trial"]) == 4 and parts[CURVE_ENDS].data["trial"] == []
    assert parts[TABLE].data["trial"][0] == study.best["trial"] and parts[TABLE].data["best"][0] == "\u2605"
    lo, hi = value_range(TrialData(0, "finished", value=v) for v in frame["val_accuracy"])
    assert (parts["mappers"][0].low, parts["mappers"][0].high) == (lo, hi)
    page = file_html(figs.curves, INLINE, "search")
    assert "cdn.bokeh.org" not in page and "search_curves" in page
