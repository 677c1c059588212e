"""Schedule plots: data step (decimation keeps exact extremes), figure parts, pin, epochs, run comparison."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from bokeh.embed import file_html
from bokeh.resources import INLINE
from hypothesis import given, settings
from hypothesis import strategies as st

import tunewidgets as tw
from tunewidgets.plots.schedule import (
    EPOCH_AXIS, EPOCH_GRID, MOMENTUM_AXIS, PINNED, SCHEDULE, decimate, epoch_ticks, run_curves,
    schedule_comparison_figure, schedule_figure, schedule_parts, schedule_plot_data, set_epoch_marks,
    show_pinned, show_schedule,
)
from tunewidgets.schedules import Cosine, Cyclic, OneCycle


# -- decimation ------------------------------------------------------------------------------
@settings(max_examples=60, deadline=None)
@given(n=st.integers(1, 5000), max_points=st.integers(6, 700), seed=st.integers(0, 2**16))
def test_decimate_keeps_exact_rows_first_last_and_extremes(n, max_points, seed):
    rng = np.random.default_rng(seed)
    y = rng.normal(size=n).cumsum()
    z = rng.normal(size=n)
    out = decimate({"i": np.arange(n), "y": y, "z": z}, ["y", "z"], max_points)
    idx = out["i"]
    assert len(idx) == n if n <= max_points else len(idx) <= max_points
    assert np.all(np.diff(idx) > 0)  # in order, no repeats
    np.testing.assert_array_equal(out["y"], y[idx])  # exact values, rows kept together
    np.testing.assert_array_equal(out["z"], z[idx])
    assert idx[0] == 0 and idx[-1] == n - 1
    assert out["y"].max() == y.max() and out["y"].min() == y.min()
    assert out["z"].max() == z.max() and out["z"].min() == z.min()


def test_decimate_ignores_all_nan_keys_and_rejects_bad_input():
    n = 10_000
    out = decimate({"x": np.arange(n), "m": np.full(n, np.nan)}, ["x", "m"], 100)
    assert len(out["x"]) <= 100 and out["x"][0] == 0 and out["x"][-1] == n - 1
    with pytest.raises(ValueError, match=r"max_points: must be a whole number >= 4 \(first, last.*got 2"):
        decimate({"x": [1, 2, 3]}, ["x"], 2)
    with pytest.raises(ValueError, match=r"columns: must all have one length, got lengths \[2, 3\]"):
        decimate({"x": [1, 2, 3], "y": [1, 2]}, ["x"], 10)


def test_plot_data_of_a_preview():
    frame = OneCycle(max_lr=0.1).preview(3000, steps_per_epoch=100)
    data = schedule_plot_data(frame, max_points=500)
    assert data.momentum == "momentum" and data.total == 3000
    assert len(data.columns["step"]) <= 500
    assert data.columns["lr"].max() == frame["lr"].max() and data.columns["lr"].min() == frame["lr"].min()
    assert data.columns["momentum"].min() == frame["momentum"].min()
    adam = schedule_plot_data(OneCycle().preview(100, optimizer="adam"))
    assert adam.momentum == "beta1"
    plain = schedule_plot_data(Cosine().preview(100, base_lr=0.1))
    assert plain.momentum is None and np.isnan(plain.columns["momentum"]).all()
    with pytest.raises(TypeError, match="frame: expected a DataFrame from spec.preview"):
        schedule_plot_data({"lr": [1.0]})


# -- figure ----------------------------------------------------------------------------------
def test_figure_parts_momentum_axis_and_pin():
    fig = schedule_figure(schedule_plot_data(Cosine().preview(200, base_lr=0.1)), total_steps=200)
    parts = schedule_parts(fig)
    assert not parts[MOMENTUM_AXIS].visible and list(parts[SCHEDULE].data["lr"][:1]) == [0.1]
    cyc = schedule_plot_data(Cyclic().preview(200))
    show_schedule(parts, cyc)
    assert parts[MOMENTUM_AXIS].visible and parts[MOMENTUM_AXIS].axis_label == "momentum"
    show_schedule(parts, schedule_plot_data(Cyclic().preview(200, optimizer="adam")))
    assert parts[MOMENTUM_AXIS].axis_label == "beta1"
    assert len(parts[PINNED].data["lr"]) == 0
    show_pinned(parts, cyc)
    np.testing.assert_array_equal(parts[PINNED].data["lr"], cyc.columns["lr"])
    show_pinned(parts, None)
    assert len(parts[PINNED].data["lr"]) == 0
    with pytest.raises(KeyError, match="not a figure from schedule_figure"):
        schedule_parts(tw.plots.lr_range_figure({"lr": [1e-3, 1e-2], "loss": [1.0, 2.0]}))


def test_epoch_marks():
    assert epoch_ticks(100, None) == []
    assert epoch_ticks(95, 10) == [k * 10 + 0.5 for k in range(11)]
    ticks = epoch_ticks(10_000, 10)  # 1000 epochs: about 20 labelled
    assert len(ticks) <= 21 and ticks[0] == 0.5 and ticks[1] == 500.5
    fig = schedule_figure(total_steps=100, steps_per_epoch=25)
    parts = schedule_parts(fig)
    assert parts[EPOCH_AXIS].visible and parts[EPOCH_GRID].visible
    assert parts[EPOCH_AXIS].formatter.args == {"spe": 25}
    set_epoch_marks(parts, 100, None)
    assert not parts[EPOCH_AXIS].visible and not parts[EPOCH_GRID].visible


def test_figure_renders_offline():
    fig = schedule_figure(schedule_plot_data(OneCycle().preview(100, steps_per_epoch=10)),
                          total_steps=100, steps_per_epoch=10)
    page = file_html(fig, INLINE, "schedule")
    assert "cdn.bokeh.org" not in page and "schedule_lr" in page


# -- comparing runs --------------------------------------------------------------------------
def history(lr_scale: float) -> pd.DataFrame:
    rows = [{"kind": "step", "step": s, "lr": 0.1 * lr_scale, "loss": 2.0 / s} for s in range(1, 7)]
    rows += [{"kind": "eval", "step": s, "val_accuracy": s / 10, "val_loss": 1.0 / s} for s in (3, 6)]
    return pd.DataFrame(rows)


def test_run_curves_smooth_the_loss_and_take_the_evaluations():
    c = run_curves(history(1.0), smoothing=0.5)
    assert c.steps["step"].tolist() == [1, 2, 3, 4, 5, 6]
    # bias-corrected EMA: first value is the raw one, then a weighted average
    assert c.steps["loss"][0] == 2.0
    assert c.steps["loss"][1] == pytest.approx((0.5 * 0.5 * 2.0 + 0.5 * 1.0) / 0.75)
    assert c.evals["step"].tolist() == [3, 6] and c.evals["val_accuracy"].tolist() == [0.3, 0.6]
    assert run_curves(history(1.0), smoothing=0.0).steps["loss"].tolist() == pytest.approx(
        [2.0 / s for s in range(1, 7)])
    with pytest.raises(ValueError, match=r"metric: 'val_f1' is not in the run's history"):
        run_curves(history(1.0), metric="val_f1")
    with pytest.raises(ValueError, match=r"smoothing: must be in \[0, 1\), got 1"):
        run_curves(history(1.0), smoothing=1)
    with pytest.raises(TypeError, match="run: expected a tw.Run or its history"):
        run_curves([1, 2, 3])


def test_comparison_figure_has_one_line_per_run_in_each_panel():
    grid = schedule_comparison_figure({"constant": history(1.0), "one-cycle": history(2.0)})
    figs = [child[0] for child in grid.children]
    assert [f.title.text for f in figs] == ["learning rate", "train loss (smoothed, log scale)", "val_accuracy"]
    assert type(figs[1].y_scale).__name__ == "LogScale"
    assert figs[1].x_range is figs[0].x_range and figs[2].x_range is figs[0].x_range
    lr_sources = [r.data_source for r in figs[0].renderers]
    assert [s.data["lr"][0] for s in lr_sources] == [0.1, 0.2]
    assert [item.label["value"] for item in figs[1].legend[0].items] == ["constant", "one-cycle"]
    page = file_html(grid, INLINE, "compare")
    assert "cdn.bokeh.org" not in page
    with pytest.raises(TypeError, match="runs: expected a dict of name -> tw.Run"):
        schedule_comparison_figure({})


def test_comparison_figure_from_real_runs():
    task = tw.tasks.spirals()
    runs = {name: tw.train(task, tw.TrainConfig(optimizer="sgd", lr=0.1, momentum=0.9, epochs=2, device="cpu",
                                                schedule=spec))
            for name, spec in {"constant": None, "one-cycle": OneCycle(max_lr=0.2)}.items()}
    grid = schedule_comparison_figure(runs)
    lr_lines = [r.data_source.data["lr"] for r in grid.children[0][0].renderers]
    assert len(set(lr_lines[0])) == 1  # constant
    assert max(lr_lines[1]) == pytest.approx(0.2, rel=0.05) and lr_lines[1][0] < 0.02  # one-cycle rises
