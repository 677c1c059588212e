"""LR range plots: the data step (columns, markers, band) and the figures built from it."""
from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from bokeh.embed import file_html
from bokeh.models import ColumnDataSource, LabelSet, Legend, Span
from bokeh.resources import INLINE

import tunewidgets as tw
from tunewidgets.lr import LRRangeTestResult
from tunewidgets.plots.lr import (
    BAND, CHOSEN, CURVE, CURVE_COLUMNS, MARKERS, band_columns, live_lr_figure, lr_plot_data,
    lr_range_figure, marker_columns, set_chosen_lr, show_lr_data,
)


def fake_result(n: int = 50) -> LRRangeTestResult:
    lrs = np.logspace(-6, 0, n)
    smoothed = 2.0 - 1.0 / (1.0 + np.exp(-3 * (np.log10(lrs) + 3)))
    losses = smoothed + 0.01 * np.sin(np.arange(n))
    return LRRangeTestResult(lrs=lrs, losses=losses, smoothed=smoothed,
                             suggestions={"valley": float(lrs[20]), "steepest": float(lrs[25]), "minimum": None},
                             suggested=float(lrs[20]), band=(float(lrs[20]), float(lrs[25])))


def test_data_from_result_has_equal_columns_and_markers_at_suggestions():
    res = fake_result()
    data = lr_plot_data(res)
    assert tuple(data.curve) == CURVE_COLUMNS
    assert {len(v) for v in data.curve.values()} == {50}
    assert data.curve["step"] == list(range(1, 51))  # steps count from 1
    np.testing.assert_allclose(data.curve["lr"], res.lrs)
    np.testing.assert_allclose(data.curve["loss"], res.losses)
    np.testing.assert_allclose(data.curve["smoothed"], res.smoothed)
    # None ("minimum") is left out; each marker sits on the smoothed curve at its lr
    assert data.markers["method"] == ["valley", "steepest"]
    assert data.markers["x"] == [res.suggestions["valley"], res.suggestions["steepest"]]
    assert data.markers["y"] == pytest.approx([res.smoothed[20], res.smoothed[25]])
    assert data.markers["label"] == ["valley 2.81e-4", "steepest 1.15e-3"]  # as slider readouts show lrs
    assert len(set(data.markers["dy"])) == 2  # labels stacked, not on top of each other
    assert data.band == {"x0": [res.band[0]], "x1": [res.band[1]]}


def test_overrides_and_plain_frames():
    frame = pd.DataFrame({"lr": [1e-4, 1e-3, 1e-2, 1e-1], "loss": [2.0, 1.0, 3.0, math.inf]})
    data = lr_plot_data(frame, suggestions={"mine": 1e-3}, band=(1e-4, 1e-2))
    assert data.curve["smoothed"][:3] == [2.0, 1.0, 3.0]  # no smoothed column: the loss stands in
    assert math.isnan(data.curve["loss"][3])  # infinite -> NaN, a gap in the line
    assert data.markers["x"] == [1e-3] and data.markers["y"] == [1.0]
    # the y of a marker between two points is interpolated in log lr
    assert marker_columns({"m": 10 ** -3.5}, [1e-4, 1e-3], [2.0, 1.0])["y"] == pytest.approx([1.5])
    res = fake_result()
    assert lr_plot_data(res, suggestions={}).markers["x"] == []
    assert lr_plot_data({"lr": [1e-3], "loss": [1.0]}).curve["lr"] == [1e-3]


@pytest.mark.parametrize("bad, error, words", [
    (object(), TypeError, "result_or_frame"),
    (pd.DataFrame({"lr": [1.0]}), ValueError, "missing column(s) ['loss']"),
])
def test_bad_input_names_the_problem(bad, error, words):
    with pytest.raises(error) as info:
        lr_plot_data(bad)
    assert words in str(info.value)


@pytest.mark.parametrize("band", [(1e-2, 1e-3), (0, 1e-3), (1e-3,), "ab"])
def test_bad_band(band):
    with pytest.raises(ValueError, match="band: expected"):
        band_columns(band)


def test_live_figure_starts_empty_with_named_sources():
    fig = live_lr_figure()
    names = {s.name: s for s in fig.select({"type": ColumnDataSource})}
    assert set(names) == {CURVE, MARKERS, BAND}
    assert tuple(names[CURVE].data) == CURVE_COLUMNS
    assert all(len(v) == 0 for s in names.values() for v in s.data.values())
    assert fig.x_scale.__class__.__name__ == "LogScale"
    assert fig.select_one({"type": LabelSet}).source is names[MARKERS]
    span = fig.select_one({"name": CHOSEN})
    assert isinstance(span, Span) and span.visible is False
    set_chosen_lr(fig, 3e-3)
    assert span.visible and span.location == 3e-3
    set_chosen_lr(fig, None)
    assert span.visible is False
    # the y axis follows the smoothed line only, so a diverging raw loss does not squash the plot;
    # the x axis follows the curve, not markers that may fall outside the sweep
    assert [r.glyph.y for r in fig.y_range.renderers] == ["smoothed"]
    assert [r.glyph.y for r in fig.x_range.renderers] == ["loss", "smoothed"]


def test_show_data_fills_the_live_figure_and_can_keep_its_curve():
    fig = live_lr_figure()
    data = lr_plot_data(fake_result())
    show_lr_data(fig, data)
    assert fig.select_one({"name": CURVE}).data["lr"] == data.curve["lr"]
    fig.select_one({"name": CURVE}).data = {c: [1.0] for c in CURVE_COLUMNS}
    show_lr_data(fig, data, curve=False)
    assert fig.select_one({"name": CURVE}).data["lr"] == [1.0]
    assert fig.select_one({"name": MARKERS}).data["x"] == data.markers["x"]


def test_result_plot_and_static_html_work_offline():
    res = fake_result()
    fig = res.plot()
    assert fig.select_one({"name": MARKERS}).data["x"] == [s for s in res.suggestions.values() if s]
    assert fig.select_one({"name": BAND}).data["x0"] == [res.band[0]]
    page = file_html(lr_range_figure(res, chosen=1e-3), INLINE, "lr test")
    assert "cdn.bokeh.org" not in page and "Bokeh.embed" in page and "lr_curve" in page
    assert tw.plots.lr_range_figure is lr_range_figure


def test_the_legend_sits_outside_the_data_below_the_plot():
    fig = live_lr_figure()
    (legend,) = fig.select({"type": Legend})
    assert legend in fig.below and legend not in fig.center  # never over the flat start or the markers
    assert legend.orientation == "horizontal" and legend.click_policy == "hide"
    assert [item.label.value for item in legend.items] == ["agreement band", "loss", "smoothed"]
