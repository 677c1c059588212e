"""Bokeh figures of an LR range test: loss against learning rate on a log axis.

Two steps, as in a report: :func:`lr_plot_data` turns a result (or a DataFrame of ``lr``,
``loss``, ``smoothed``) into plain columns, and the figure builders only render them.
:func:`live_lr_figure` starts empty with named data sources (:data:`CURVE`, :data:`MARKERS`,
:data:`BAND`) that a widget streams into while the test runs; :func:`lr_range_figure` is the
same figure filled from a finished result.

Example:
    >>> import pandas as pd
    >>> from tunewidgets.plots.lr import lr_plot_data, lr_range_figure, CURVE
    >>> frame = pd.DataFrame({"lr": [1e-4, 1e-3, 1e-2], "loss": [2.3, 1.9, 2.8]})
    >>> data = lr_plot_data(frame, suggestions={"minimum": 1e-3, "steepest": None})
    >>> data.markers["method"], data.markers["x"], data.markers["y"]
    (['minimum'], [0.001], [1.9])
    >>> fig = lr_range_figure(frame, suggestions={"minimum": 1e-3}, band=(3e-4, 2e-3))
    >>> fig.select_one({"name": CURVE}).data["loss"]
    [2.3, 1.9, 2.8]
"""
from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from bokeh.models import ColumnDataSource, DataRange1d, LabelSet, Span

from tunewidgets.plots._common import (
    CHOSEN_COLOR, RAW_COLOR, SMOOTH_COLOR, add_hover, finite_or_nan, fmt_lr, method_color, new_figure,
)

__all__ = [
    "CURVE", "MARKERS", "BAND", "CHOSEN", "CURVE_COLUMNS", "LRPlotData",
    "lr_plot_data", "marker_columns", "band_columns", "live_lr_figure", "lr_parts", "show_lr_data",
    "set_chosen_lr", "lr_range_figure",
]

CURVE = "lr_curve"
MARKERS = "lr_markers"
BAND = "lr_band"
CHOSEN = "lr_chosen"
CURVE_COLUMNS = ("step", "lr", "loss", "smoothed")
_MARKER_COLUMNS = ("method", "x", "y", "label", "color", "dy")


@dataclass(frozen=True)
class LRPlotData:
    """Plain columns of an LR range plot.

    Attributes:
        curve: ``step``, ``lr``, ``loss``, ``smoothed`` (lists of equal length; NaN where not finite;
            ``step`` counts from 1, as every run numbers its steps).
        markers: one row per suggestion with a value: ``method``, ``x`` (the lr), ``y`` (the
            smoothed loss there), ``label`` (``"valley 3.16e-3"``), ``color``, ``dy`` (label offset, px).
        band: ``x0``, ``x1``: one row for the agreement band, or none.
    """

    curve: dict[str, list[Any]] = field(default_factory=lambda: {c: [] for c in CURVE_COLUMNS})
    markers: dict[str, list[Any]] = field(default_factory=lambda: {c: [] for c in _MARKER_COLUMNS})
    band: dict[str, list[float]] = field(default_factory=lambda: {"x0": [], "x1": []})


def lr_plot_data(result_or_frame: Any, suggestions: Mapping[str, float | None] | None = None,
                 band: Sequence[float] | None = None) -> LRPlotData:
    """Columns for :func:`lr_range_figure` from a result, a DataFrame or a dict of lists.

    ``suggestions`` and ``band`` default to the result's own; pass them to override
    (or to add them to a bare frame). Suggestions whose value is None are left out.
    """
    frame, own_suggestions, own_band = _as_frame(result_or_frame)
    suggestions = own_suggestions if suggestions is None else suggestions
    band = own_band if band is None else band
    n = len(frame)
    steps = next((frame[c] for c in ("step", "iteration") if c in frame), None)
    if steps is None:
        steps = frame.index if frame.index.name in ("step", "iteration") else range(1, n + 1)  # steps from 1
    lrs = finite_or_nan(frame["lr"])
    losses = finite_or_nan(frame["loss"])
    smoothed = finite_or_nan(frame["smoothed"]) if "smoothed" in frame else list(losses)
    curve = {"step": [int(i) for i in steps], "lr": lrs, "loss": losses, "smoothed": smoothed}
    return LRPlotData(curve=curve, markers=marker_columns(suggestions or {}, lrs, smoothed),
                      band=band_columns(band))


def marker_columns(suggestions: Mapping[str, float | None], lrs: Sequence[float] = (),
                   smoothed: Sequence[float] = ()) -> dict[str, list[Any]]:
    """One marker row per suggestion with a finite lr > 0; ``y`` is the smoothed curve there."""
    if not isinstance(suggestions, Mapping):
        raise TypeError(f"suggestions: expected a dict of method -> lr, got {type(suggestions).__name__}")
    cols: dict[str, list[Any]] = {c: [] for c in _MARKER_COLUMNS}
    for index, (method, lr) in enumerate(suggestions.items()):
        if lr is None or not _is_positive(lr):
            continue
        lr = float(lr)
        cols["method"].append(str(method))
        cols["x"].append(lr)
        cols["y"].append(_loss_at(lr, lrs, smoothed))
        cols["label"].append(f"{method} {fmt_lr(lr)}")
        cols["color"].append(method_color(str(method), index))
        cols["dy"].append(6 + 14 * (len(cols["dy"])))
    return cols


def band_columns(band: Sequence[float] | None) -> dict[str, list[float]]:
    """The agreement band as one ``x0``/``x1`` row, or no rows for None."""
    if band is None:
        return {"x0": [], "x1": []}
    if (not isinstance(band, Sequence) or isinstance(band, str) or len(band) != 2
            or not all(_is_positive(b) for b in band) or float(band[0]) > float(band[1])):
        raise ValueError(f"band: expected (low, high) with 0 < low <= high, got {band!r}; or None for no band")
    return {"x0": [float(band[0])], "x1": [float(band[1])]}


def live_lr_figure(title: str | None = "LR range test", *, height: int = 320, width: int = 640) -> Any:
    """An empty loss-vs-lr figure whose named sources a widget fills while the test runs.

    Sources: :data:`CURVE` (columns :data:`CURVE_COLUMNS`), :data:`MARKERS` (one vertical
    line, dot and label per suggestion), :data:`BAND` (the shaded agreement band); and a
    hidden :class:`~bokeh.models.Span` called :data:`CHOSEN` for the chosen lr.
    """
    fig = new_figure(title, x_axis_type="log", x_label="learning rate (log scale)", y_label="loss",
                     height=height, width=width)
    curve = ColumnDataSource({c: [] for c in CURVE_COLUMNS}, name=CURVE)
    markers = ColumnDataSource({c: [] for c in _MARKER_COLUMNS}, name=MARKERS)
    band = ColumnDataSource({"x0": [], "x1": []}, name=BAND)

    fig.vstrip(x0="x0", x1="x1", source=band, fill_color="#56B4E9", fill_alpha=0.18,
               line_color=None, legend_label="agreement band")
    raw = fig.line("lr", "loss", source=curve, color=RAW_COLOR, line_width=1, alpha=0.8, legend_label="loss")
    smooth = fig.line("lr", "smoothed", source=curve, color=SMOOTH_COLOR, line_width=2.5,
                      legend_label="smoothed")
    fig.vspan(x="x", source=markers, line_color="color", line_dash="dashed", line_width=2)
    fig.scatter("x", "y", source=markers, color="color", size=8)
    fig.add_layout(LabelSet(x="x", y="y", text="label", source=markers, x_offset=5, y_offset="dy",
                            text_color="color", text_font_size="11px", text_font_style="bold"))
    chosen = Span(location=1.0, dimension="height", line_color=CHOSEN_COLOR, line_width=1.5,
                  line_dash="dotted", visible=False, name=CHOSEN)
    fig.add_layout(chosen)
    # the raw loss jumps far up when the test diverges: scale the y axis to the smoothed curve;
    # the x axis spans the sweep (a "minimum" marker can sit a decade below a flat curve's start)
    fig.y_range = DataRange1d(renderers=[smooth], range_padding=0.1)
    fig.x_range.renderers = [raw, smooth]
    add_hover(fig, [smooth, raw], [("step", "@step"), ("lr", "@lr{%0.2e}"),
                                   ("loss", "@loss{0.0000}"), ("smoothed", "@smoothed{0.0000}")],
              formatters={"@lr": "printf"})
    # outside the data: an LR curve is flat and high on the left, markers sit anywhere
    legend = fig.legend[0]
    fig.center.remove(legend)
    legend.update(orientation="horizontal", location="center", click_policy="hide", border_line_color=None,
                  padding=2, margin=2, label_text_font_size="11px", glyph_height=12, glyph_width=16)
    fig.add_layout(legend, "below")
    return fig


def lr_parts(fig: Any) -> dict[str, Any]:
    """The named parts of a figure from :func:`live_lr_figure`: its three sources and the chosen-lr span.

    Finding models walks the whole figure; a widget that updates often looks them up once.
    """
    parts = {m.name: m for m in fig.references() if m.name in (CURVE, MARKERS, BAND, CHOSEN)}
    missing = sorted({CURVE, MARKERS, BAND, CHOSEN} - set(parts))
    if missing:
        raise KeyError(f"not a figure from live_lr_figure(): it has no part(s) named {missing}")
    return parts


def show_lr_data(fig: Any, data: LRPlotData, *, curve: bool = True) -> None:
    """Put ``data`` into a figure from :func:`live_lr_figure` (or its :func:`lr_parts`);
    ``curve=False`` keeps the curve it has."""
    parts = fig if isinstance(fig, Mapping) else lr_parts(fig)
    if curve:
        parts[CURVE].data = dict(data.curve)
    parts[MARKERS].data = dict(data.markers)
    parts[BAND].data = dict(data.band)


def set_chosen_lr(fig: Any, lr: float | None) -> None:
    """Draw the chosen lr as a dotted vertical line, or hide it for None (``fig``: a figure or its parts)."""
    span = (fig if isinstance(fig, Mapping) else lr_parts(fig))[CHOSEN]
    if lr is None or not _is_positive(lr):
        span.visible = False
        return
    span.location = float(lr)
    span.visible = True


def lr_range_figure(result_or_frame: Any, suggestions: Mapping[str, float | None] | None = None,
                    band: Sequence[float] | None = None, *, chosen: float | None = None,
                    title: str | None = "LR range test", height: int = 320, width: int = 640) -> Any:
    """Loss against lr (log x axis), raw and smoothed, a marker per suggestion and the band shaded.

    ``result_or_frame``: an ``LRRangeTestResult``, a DataFrame with ``lr`` and ``loss``
    (``smoothed`` and ``step`` optional), or a dict of such lists. Renders offline in a
    static page with ``bokeh.embed.file_html(fig, bokeh.resources.INLINE)``.
    """
    data = lr_plot_data(result_or_frame, suggestions, band)
    fig = live_lr_figure(title, height=height, width=width)
    show_lr_data(fig, data)
    set_chosen_lr(fig, chosen)
    return fig


def _as_frame(obj: Any) -> tuple[pd.DataFrame, Mapping[str, Any] | None, Any]:
    if hasattr(obj, "to_frame") and hasattr(obj, "lrs"):
        return obj.to_frame(), getattr(obj, "suggestions", None), getattr(obj, "band", None)
    if isinstance(obj, pd.DataFrame):
        frame = obj
    elif isinstance(obj, Mapping):
        frame = pd.DataFrame(dict(obj))
    else:
        raise TypeError(
            f"result_or_frame: expected an LRRangeTestResult, a DataFrame or a dict with 'lr' and "
            f"'loss', got {type(obj).__name__}"
        )
    missing = [c for c in ("lr", "loss") if c not in frame]
    if missing:
        raise ValueError(f"result_or_frame: missing column(s) {missing}; it has {list(frame.columns)}")
    return frame, None, None


def _is_positive(v: Any) -> bool:
    try:
        f = float(v)
    except (TypeError, ValueError):
        return False
    return math.isfinite(f) and f > 0


def _loss_at(lr: float, lrs: Sequence[float], losses: Sequence[float]) -> float:
    """The curve's value at ``lr``, interpolated in log10(lr) over its finite points."""
    x = np.asarray(lrs, dtype=float)
    y = np.asarray(losses, dtype=float)
    ok = np.isfinite(x) & np.isfinite(y) & (x > 0)
    if not ok.any():
        return math.nan
    x, y = np.log10(x[ok]), y[ok]
    order = np.argsort(x, kind="stable")
    return float(np.interp(math.log10(lr), x[order], y[order]))
