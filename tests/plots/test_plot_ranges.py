"""What the plots' axes, colour bars, labels and table headers say, read from the Bokeh models:
bounded metrics stay inside their bounds, one point gets a range around it, log axes keep 4
ticks on a narrow range, the importance labels fit, legends sit outside the data."""
from __future__ import annotations

import json
import math
import random
import shutil
import subprocess

import pytest
from bokeh.models import ColorBar, CustomJS, CustomJSTicker, DataTable

from tunewidgets.plots import lr as lr_plots
from tunewidgets.plots import schedule as schedule_plots
from tunewidgets.plots._common import (
    MIN_LOG_TICKS, _LOG_TICKS_JS, legend_outside, log_ticks, metric_bounds, new_figure, padded_range,
)
from tunewidgets.plots.search import (
    IMPORTANCE, IMPORTANCE_END, PARALLEL_AXES, Axis, TrialData, importance_columns, live_search_figures,
    parallel_axis_columns, search_parts, set_color_range, value_range,
)
from tunewidgets.reports import _figures as report_figs

AXES = [Axis("lr", "log", 1e-3, 1e-1)]


def test_an_accuracy_of_one_value_gets_a_colour_range_inside_its_bounds():
    trials = [TrialData(0, "finished", {"lr": 0.01}, [1], [0.98])]
    assert value_range(trials, metric_bounds("val_accuracy")) == pytest.approx((0.931, 1.0))
    figs = live_search_figures(AXES, "val_accuracy", "maximize")
    parts = search_parts(figs)
    set_color_range(parts, (0.931, 1.029))  # a range the widget widened past 1
    bar = next(r for r in figs.curves.right if isinstance(r, ColorBar))
    assert (bar.color_mapper.low, bar.color_mapper.high) == (0.931, 1.0)
    assert {(m.low, m.high) for m in parts["mappers"]} == {(0.931, 1.0)}
    labels = parallel_axis_columns(AXES, "val_accuracy", (0.931, 1.029))
    assert labels["high"][-1] == "1"
    loss = live_search_figures(AXES, "val_loss", "minimize")
    set_color_range(search_parts(loss), (0.2, 1.8))  # a loss above 1 is a loss: kept
    assert {(m.low, m.high) for m in search_parts(loss)["mappers"]} == {(0.2, 1.8)}


def _clamp_args(rng):
    (cb,) = {id(c): c for cbs in rng.js_property_callbacks.values() for c in cbs}.values()
    assert isinstance(cb, CustomJS)
    return cb.args


def test_live_metric_axes_are_clamped_to_the_metric_bounds_in_the_browser():
    figs = live_search_figures(AXES, "val_accuracy", "maximize")
    args = _clamp_args(figs.curves.y_range)
    assert (args["lo"], args["hi"]) == (0.0, 1.0) and args["r"] is figs.curves.y_range
    assert set(figs.curves.y_range.js_property_callbacks) == {"change:start", "change:end"}
    slice_fig = figs.slices.children[0][0]
    assert (_clamp_args(slice_fig.y_range)["lo"], _clamp_args(slice_fig.y_range)["hi"]) == (0.0, 1.0)
    loss = live_search_figures(AXES, "val_loss", "minimize")
    assert (_clamp_args(loss.curves.y_range)["lo"], _clamp_args(loss.curves.y_range)["hi"]) == (0.0, None)
    linear = live_search_figures([Axis("momentum", "linear", 0.5, 0.99)], "val_accuracy", "maximize")
    x_args = _clamp_args(linear.slices.children[0][0].x_range)  # one trial: around its momentum
    assert (x_args["lo"], x_args["hi"]) == (None, None)


@pytest.mark.skipif(shutil.which("node") is None, reason="needs node to run the browser's code")
def test_the_browser_clamp_gives_what_padded_range_gives():
    figs = live_search_figures(AXES, "val_accuracy", "maximize")
    rng = figs.curves.y_range
    (cb,) = {id(c): c for cbs in rng.js_property_callbacks.values() for c in cbs}.values()
    cases = [([0.5, 1.0], (0.0, 1.0)), ([0.8], (0.0, 1.0)), ([0.2, 1.6], (0.0, None)), ([3.0], (None, None))]
    js = ["function run(r, lo, hi, pad) {" + cb.code + "}", "const out = []"]
    for values, (lo, hi) in cases:
        a, b = min(values), max(values)
        # what DataRange1d computes before the callback: 10% padding, or its default span of 2
        s, e = (a - 0.05 * (b - a), b + 0.05 * (b - a)) if b > a else (a - 1, a + 1)
        js.append(f"{{ const r = {{start: {s}, end: {e}, default_span: 2, have_updated_interactively: false,"
                  " setv(o) { Object.assign(this, o) } };"
                  f" run(r, {json.dumps(lo)}, {json.dumps(hi)}, 0.1); out.push([r.start, r.end]) }}")
    js.append("console.log(JSON.stringify(out))")
    out = json.loads(subprocess.run(["node", "-e", "\n".join(js)], capture_output=True, text=True,
                                    check=True).stdout)
    assert out[0] == pytest.approx([0.475, 1.0])     # accuracy: the top padding clamped at 1
    assert out[1] == pytest.approx(list(padded_range([0.8], (0.0, 1.0))))   # one point: around it
    assert out[1] == pytest.approx([0.75, 0.85])     # (was -0.2 to 1.8)
    assert out[2] == pytest.approx([0.13, 1.67])     # a loss inside its bound: unchanged
    assert out[3] == pytest.approx([2.7, 3.3])


def test_log_axes_keep_four_ticks_on_a_narrow_range():
    assert log_ticks(5e-4, 8e-2) == [1e-3, 3e-3, 1e-2, 3e-2]  # Bokeh's own: 1e-3 and 1e-2 only
    assert log_ticks(1e-7, 1.0) == [10.0 ** e for e in range(-7, 1)]
    random.seed(0)
    for _ in range(300):
        lo = 10 ** random.uniform(-9, 0)
        assert len(log_ticks(lo, lo * 10 ** random.uniform(0.001, 8))) >= MIN_LOG_TICKS
    grid = schedule_plots.schedule_comparison_figure({"a": _history()})
    for fig in (lr_plots.live_lr_figure(), new_figure("t", x_axis_type="log"), grid.children[1][0],
                report_figs.range_test_figure(_range_run())):
        log_axes = [a for a in (*fig.xaxis, *fig.yaxis) if type(a).__name__ == "LogAxis"]
        assert log_axes and all(isinstance(a.ticker, CustomJSTicker) for a in log_axes)


@pytest.mark.skipif(shutil.which("node") is None, reason="needs node to run the browser's code")
def test_the_browser_ticker_gives_what_log_ticks_gives():
    random.seed(1)
    ranges = [(5e-4, 8e-2), (3e-4, 4e-4), (3.16e-6, 1e-2)]
    ranges += [(lo, lo * 10 ** random.uniform(0.001, 8)) for lo in (10 ** random.uniform(-9, 0) for _ in range(200))]
    code = _LOG_TICKS_JS.replace("MIN", str(MIN_LOG_TICKS))
    js = (f"function f(cb_data) {{{code}}}\nconst rs = {json.dumps(ranges)};\n"
          "console.log(JSON.stringify(rs.map(([a, b]) => f({start: a, end: b, range: {start: a, end: b}}))))")
    out = json.loads(subprocess.run(["node", "-e", js], capture_output=True, text=True, check=True).stdout)
    assert out == [log_ticks(*r) for r in ranges]


def test_the_importance_label_of_a_full_bar_fits_and_the_duration_is_named():
    figs = live_search_figures(AXES, "val_accuracy", "maximize")
    assert figs.importance.x_range.end == IMPORTANCE_END >= 1.15
    assert importance_columns({"lr": 1.0})["label"] == ["100%"]
    assert max(figs.importance.xaxis[0].ticker.ticks) == 1.0
    (table,) = [figs.table] if isinstance(figs.table, DataTable) else []
    titles = {c.field: c.title for c in table.columns}
    assert titles["duration"] == "duration (s)"


def test_report_figures_of_accuracy_stay_inside_0_and_1():
    fig = report_figs.curves_figure({0: ([1, 2, 3], [0.6, 0.9, 1.0]), 1: ([1], [0.97])}, "val_accuracy", "best")
    assert (fig.y_range.start, fig.y_range.end) == pytest.approx((0.56, 1.0))
    hist = report_figs.history_figure([0], [0.97], ["finished"], "val_accuracy")
    assert (hist.y_range.start, hist.y_range.end) == pytest.approx((0.92, 1.0))


def test_legends_sit_outside_the_plot_and_hide_on_click():
    fig = new_figure("t")
    fig.line([1, 2], [1, 2], legend_label="a")
    fig.legend.visible = False
    legend = legend_outside(fig)
    assert legend in fig.right and legend not in fig.center and legend.click_policy == "hide" and legend.visible
    curves = report_figs.curves_figure({0: ([1, 2], [0.5, 0.6])}, "val_accuracy", "best")
    assert curves.legend[0] in curves.right


def _history():
    import pandas as pd

    return pd.DataFrame({"kind": ["step", "eval"], "step": [1, 1], "lr": [0.1, None], "loss": [2.0, None],
                         "val_accuracy": [None, 0.5]})


def _range_run():
    from tunewidgets.reports._load import RunData

    return RunData({"id": 1, "final": {"suggested/valley": 1e-3}},
                   curves={"lr": ([1, 2, 3], [1e-4, 1e-3, 1e-2]), "train/loss": ([1, 2, 3], [2.0, 1.5, 3.0])})


@pytest.mark.parametrize("name", ["03_grid_vs_random.ipynb", "04_bayesian_and_pruning.ipynb"])
def test_the_notebooks_put_their_legends_outside_the_data(name):
    # each cell that draws a legend moves it out of the plot area (its notebook test runs the cells)
    from pathlib import Path

    cells = json.loads((Path(__file__).parents[2] / "notebooks" / name).read_text())["cells"]
    drawn = ["".join(c["source"]) for c in cells if c["cell_type"] == "code" and "legend_label" in "".join(c["source"])]
    assert drawn
    for src in drawn:
        assert "tw.plots.legend_outside(" in src and "legend.location" not in src, src
