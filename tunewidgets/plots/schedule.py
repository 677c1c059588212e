"""Bokeh figures of a learning-rate schedule: lr against step, momentum on a second axis.

Two steps, as elsewhere in ``tunewidgets.plots``: :func:`schedule_plot_data` turns a
``spec.preview(...)`` frame into plain numpy columns (long schedules decimated so that every
bucket keeps its exact minimum and maximum), and the figure builders only render them.
:func:`schedule_figure` has named parts that a widget updates in place: the :data:`SCHEDULE`
and :data:`PINNED` sources (columns ``step``, ``lr``, ``momentum``), the momentum axis and the
epoch axis along the top.

Example:
    >>> import tunewidgets as tw
    >>> from tunewidgets.plots.schedule import SCHEDULE, schedule_figure, schedule_plot_data
    >>> frame = tw.schedules.OneCycle(max_lr=0.1).preview(total_steps=100, steps_per_epoch=20)
    >>> data = schedule_plot_data(frame)
    >>> data.momentum, data.total, float(data.columns["lr"].max())
    ('momentum', 100, 0.1)
    >>> fig = schedule_figure(data, total_steps=100, steps_per_epoch=20)
    >>> len(fig.select_one({"name": SCHEDULE}).data["lr"])
    100
"""
from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from bokeh.core.properties import value
from bokeh.models import (
    ColumnDataSource, CustomJSTickFormatter, DataRange1d, FixedTicker, Grid, Legend, LegendItem, LinearAxis,
)

from tunewidgets.plots._common import PALETTE, add_hover, bound_range, metric_bounds, new_figure

__all__ = [
    "SCHEDULE", "PINNED", "MOMENTUM_AXIS", "EPOCH_AXIS", "EPOCH_GRID", "SCHEDULE_COLUMNS",
    "SchedulePlotData", "decimate", "schedule_plot_data", "schedule_figure", "schedule_parts",
    "show_schedule", "show_pinned", "epoch_ticks", "set_epoch_marks",
    "RunCurves", "run_curves", "schedule_comparison_figure",
]

SCHEDULE = "schedule_lr"
PINNED = "schedule_pinned"
MOMENTUM_AXIS = "schedule_momentum_axis"
EPOCH_AXIS = "schedule_epoch_axis"
EPOCH_GRID = "schedule_epoch_grid"
SCHEDULE_COLUMNS = ("step", "lr", "momentum")
_LR_LINE, _MOMENTUM_LINE = "schedule_lr_line", "schedule_momentum_line"
_PINNED_LR_LINE, _PINNED_MOMENTUM_LINE = "schedule_pinned_lr_line", "schedule_pinned_momentum_line"
_LEGEND = "schedule_legend"
_PARTS = (SCHEDULE, PINNED, MOMENTUM_AXIS, EPOCH_AXIS, EPOCH_GRID, _LR_LINE, _MOMENTUM_LINE,
          _PINNED_LR_LINE, _PINNED_MOMENTUM_LINE, _LEGEND)
LR_COLOR, MOMENTUM_COLOR, PINNED_COLOR = PALETTE[0], PALETTE[1], "#7f7f7f"
_MAX_EPOCH_LABELS = 20


@dataclass(frozen=True)
class SchedulePlotData:
    """Plain columns of a schedule plot.

    Attributes:
        columns: ``step`` (int64), ``lr`` and ``momentum`` (float64; NaN where nothing cycles
            momentum), all of one length (at most the ``max_points`` asked for).
        momentum: the preview's momentum column (``"momentum"`` or ``"beta1"``), or None.
        total: the number of steps before decimation.
    """

    columns: dict[str, np.ndarray]
    momentum: str | None
    total: int


def decimate(columns: Mapping[str, Any], keys: Sequence[str], max_points: int) -> dict[str, np.ndarray]:
    """Keep at most ``max_points`` rows, exact values only: the first and last row, and in each of
    equal buckets the rows where each of ``keys`` is smallest and largest.

    Every kept value is an original one, so peaks, floors and steps stay where they are.

    >>> import numpy as np
    >>> out = decimate({"x": np.arange(10), "y": np.array([0, 5, 1, 1, 9, 1, 1, 1, -3, 2])}, ["y"], 6)
    >>> out["x"].tolist(), out["y"].tolist()
    ([0, 4, 8, 9], [0, 9, -3, 2])
    """
    least = 2 + 2 * len(keys)
    if not isinstance(max_points, int) or isinstance(max_points, bool) or max_points < least:
        raise ValueError(f"max_points: must be a whole number >= {least} (first, last, and a min and max per "
                         f"key), got {max_points!r}; e.g. 2000")
    arrays = {name: np.asarray(values) for name, values in columns.items()}
    lengths = {len(a) for a in arrays.values()}
    if len(lengths) != 1:
        raise ValueError(f"columns: must all have one length, got lengths {sorted(lengths)}")
    n = lengths.pop()
    if n <= max_points:
        return arrays
    keys = [k for k in keys if k in arrays and not np.isnan(arrays[k].astype(float)).all()]
    buckets = (max_points - 2) // (2 * max(len(keys), 1))
    size = math.ceil(n / buckets)
    buckets = math.ceil(n / size)
    starts = np.arange(buckets) * size
    keep = [np.array([0, n - 1])]
    for key in keys:
        values = arrays[key].astype(float)
        pad = buckets * size - n
        low = np.concatenate([np.where(np.isnan(values), np.inf, values), np.full(pad, np.inf)])
        high = np.concatenate([np.where(np.isnan(values), -np.inf, values), np.full(pad, -np.inf)])
        keep.append(low.reshape(buckets, size).argmin(axis=1) + starts)
        keep.append(high.reshape(buckets, size).argmax(axis=1) + starts)
    index = np.unique(np.concatenate(keep))
    return {name: a[index] for name, a in arrays.items()}


def schedule_plot_data(frame: pd.DataFrame, max_points: int = 2000) -> SchedulePlotData:
    """Columns for :func:`schedule_figure` from ``spec.preview(...)`` (``step``, ``lr`` and
    ``momentum`` or ``beta1``), decimated to at most ``max_points`` rows by :func:`decimate`."""
    if not isinstance(frame, pd.DataFrame) or not {"step", "lr"} <= set(frame.columns):
        got = list(frame.columns) if isinstance(frame, pd.DataFrame) else type(frame).__name__
        raise TypeError(f"frame: expected a DataFrame from spec.preview() with 'step' and 'lr', got {got}")
    momentum = next((c for c in ("momentum", "beta1") if c in frame.columns), None)
    steps = frame["step"].to_numpy(dtype=np.int64)
    columns = {
        "step": steps,
        "lr": frame["lr"].to_numpy(dtype=float),
        "momentum": frame[momentum].to_numpy(dtype=float) if momentum else np.full(len(steps), np.nan),
    }
    return SchedulePlotData(decimate(columns, ("lr", "momentum"), max_points), momentum, len(steps))


def _empty() -> dict[str, np.ndarray]:
    return {"step": np.zeros(0, dtype=np.int64), "lr": np.zeros(0), "momentum": np.zeros(0)}


def schedule_figure(data: SchedulePlotData | None = None, *, total_steps: int | None = None,
                    steps_per_epoch: int | None = None, title: str | None = "Learning-rate schedule",
                    height: int = 320, width: int = 640) -> Any:
    """Lr against optimizer step; momentum (or beta1) on a right-hand axis where it cycles; epoch
    boundaries along the top; a faded :data:`PINNED` copy for comparison (empty until pinned).

    ``total_steps`` and ``steps_per_epoch`` place the epoch marks (none without them).
    """
    fig = new_figure(title or "", x_label="optimizer step", y_label="learning rate", height=height, width=width)
    fig.title.visible = bool(title)
    current = ColumnDataSource(_empty(), name=SCHEDULE)
    pinned = ColumnDataSource(_empty(), name=PINNED)
    pinned_lr = fig.line("step", "lr", source=pinned, color=PINNED_COLOR, line_width=2, alpha=0.45,
                         line_dash="dashed", name=_PINNED_LR_LINE)
    lr = fig.line("step", "lr", source=current, color=LR_COLOR, line_width=2.5, name=_LR_LINE)
    fig.y_range = DataRange1d(renderers=[lr, pinned_lr], start=0, range_padding=0.08)

    fig.extra_y_ranges = {"momentum": DataRange1d(range_padding=0.15)}
    pinned_momentum = fig.line("step", "momentum", source=pinned, y_range_name="momentum", color=PINNED_COLOR,
                               line_width=1.5, alpha=0.35, line_dash="dotted", name=_PINNED_MOMENTUM_LINE,
                               visible=False)
    momentum = fig.line("step", "momentum", source=current, y_range_name="momentum", color=MOMENTUM_COLOR,
                        line_width=1.5, line_dash="dashed", name=_MOMENTUM_LINE, visible=False)
    fig.extra_y_ranges["momentum"].renderers = [momentum, pinned_momentum]
    axis = LinearAxis(y_range_name="momentum", axis_label="momentum", name=MOMENTUM_AXIS, visible=False,
                      axis_label_text_color=MOMENTUM_COLOR)
    fig.add_layout(axis, "right")

    ticker = FixedTicker(ticks=[])
    epoch_axis = LinearAxis(ticker=ticker, axis_label="epoch", name=EPOCH_AXIS, visible=False,
                            formatter=CustomJSTickFormatter(args={"spe": 1},
                                                            code="return String(Math.round((tick - 0.5) / spe))"))
    fig.add_layout(epoch_axis, "above")
    fig.add_layout(Grid(dimension=0, ticker=ticker, grid_line_dash="dotted", grid_line_alpha=0.5,
                        name=EPOCH_GRID, visible=False))

    legend = Legend(items=[LegendItem(label="lr", renderers=[lr]),
                           LegendItem(label="momentum", renderers=[momentum], visible=False),
                           LegendItem(label="pinned", renderers=[pinned_lr, pinned_momentum], visible=False)],
                    name=_LEGEND, orientation="horizontal", location="center", click_policy="hide",
                    border_line_color=None, padding=2, margin=2)
    fig.add_layout(legend, "below")  # outside the plot: schedules are high on either side
    add_hover(fig, [lr], [("step", "@step"), ("lr", "@lr{%0.3e}"), ("momentum", "@momentum{0.000}")],
              formatters={"@lr": "printf"})
    parts = schedule_parts(fig)
    if data is not None:
        show_schedule(parts, data)
    if total_steps is not None:
        set_epoch_marks(parts, total_steps, steps_per_epoch)
    return fig


def schedule_parts(fig: Any) -> dict[str, Any]:
    """The named parts of a figure from :func:`schedule_figure` (look them up once, update often)."""
    parts = {m.name: m for m in fig.references() if m.name in _PARTS}
    missing = sorted(set(_PARTS) - set(parts))
    if missing:
        raise KeyError(f"not a figure from schedule_figure(): it has no part(s) named {missing}")
    return parts


def _set(model: Any, **values: Any) -> None:
    """Set only what changed: every change is a message to the browser."""
    for name, value in values.items():
        if getattr(model, name) != value:
            setattr(model, name, value)


def show_schedule(parts: Any, data: SchedulePlotData) -> None:
    """Show ``data`` as the current schedule: ONE assignment of the source's ``.data`` (plus the
    momentum axis shown, hidden or renamed when that changes)."""
    parts = parts if isinstance(parts, Mapping) else schedule_parts(parts)
    parts[SCHEDULE].data = data.columns
    cycles = data.momentum is not None
    _set(parts[_MOMENTUM_LINE], visible=cycles, tags=[data.momentum] if cycles else [])
    item = parts[_LEGEND].items[1]
    _set(item, visible=cycles)
    if cycles and getattr(item.label, "value", None) != data.momentum:
        item.label = value(data.momentum)  # a text, not the name of a column ("beta1" is none)
    _show_momentum_axis(parts)


def show_pinned(parts: Any, data: SchedulePlotData | None) -> None:
    """Overlay ``data`` as the faded reference (None removes it)."""
    parts = parts if isinstance(parts, Mapping) else schedule_parts(parts)
    parts[PINNED].data = _empty() if data is None else dict(data.columns)
    _set(parts[_LEGEND].items[2], visible=data is not None)
    pinned_cycles = data is not None and data.momentum is not None
    _set(parts[_PINNED_MOMENTUM_LINE], visible=pinned_cycles,
         tags=[data.momentum] if pinned_cycles else [])
    _show_momentum_axis(parts)


def _show_momentum_axis(parts: Mapping[str, Any]) -> None:
    """The right-hand axis is there whenever a momentum curve is drawn, named after it: the
    current one's, else the pinned one's (then marked so)."""
    current, pinned = parts[_MOMENTUM_LINE], parts[_PINNED_MOMENTUM_LINE]
    if current.visible:
        label = current.tags[0] if current.tags else "momentum"
    elif pinned.visible:
        label = f"{pinned.tags[0] if pinned.tags else 'momentum'} (pinned)"
    else:
        label = parts[MOMENTUM_AXIS].axis_label
    _set(parts[MOMENTUM_AXIS], visible=bool(current.visible or pinned.visible), axis_label=label)


def epoch_ticks(total_steps: int, steps_per_epoch: int | None) -> list[float]:
    """Where epochs start on the step axis (between two steps), at most ~20 of them labelled.

    >>> epoch_ticks(100, 25)
    [0.5, 25.5, 50.5, 75.5, 100.5]
    """
    if steps_per_epoch is None:
        return []
    epochs = math.ceil(total_steps / steps_per_epoch)
    every = max(1, math.ceil(epochs / _MAX_EPOCH_LABELS))
    return [k * steps_per_epoch + 0.5 for k in range(0, epochs + 1, every)]


def set_epoch_marks(parts: Any, total_steps: int, steps_per_epoch: int | None) -> None:
    """Mark epoch boundaries: an ``epoch`` axis along the top and faint lines (hidden without
    ``steps_per_epoch``)."""
    parts = parts if isinstance(parts, Mapping) else schedule_parts(parts)
    ticks = epoch_ticks(total_steps, steps_per_epoch)
    axis, grid = parts[EPOCH_AXIS], parts[EPOCH_GRID]
    _set(axis.ticker, ticks=ticks)
    if steps_per_epoch is not None and axis.formatter.args.get("spe") != steps_per_epoch:
        axis.formatter.args = {"spe": int(steps_per_epoch)}
    _set(axis, visible=bool(ticks))
    _set(grid, visible=bool(ticks))


# -- comparing training runs that differ by schedule ----------------------------------------------
@dataclass(frozen=True)
class RunCurves:
    """Plain columns of one run for :func:`schedule_comparison_figure`.

    Attributes:
        steps: ``step``, ``lr`` and ``loss`` (the training loss, exponentially smoothed) per step.
        evals: ``step`` and the metric after each evaluation.
        metric: the metric's name, e.g. ``"val_accuracy"``.
    """

    steps: dict[str, np.ndarray]
    evals: dict[str, np.ndarray]
    metric: str


def _smooth(values: np.ndarray, smoothing: float) -> np.ndarray:
    """Bias-corrected exponential moving average (as TensorBoard's smoothing slider)."""
    out = np.empty(len(values))
    avg, weight = 0.0, 0.0
    for i, v in enumerate(values):
        avg = smoothing * avg + (1 - smoothing) * v
        weight = smoothing * weight + (1 - smoothing)
        out[i] = avg / weight
    return out


def run_curves(run: Any, metric: str = "val_accuracy", smoothing: float = 0.8) -> RunCurves:
    """The lr, smoothed training loss and ``metric`` of ``run`` (a ``tw.Run`` or its ``history``).

    >>> import pandas as pd
    >>> history = pd.DataFrame({"kind": ["step", "step", "eval"], "step": [1, 2, 2],
    ...                         "lr": [0.1, 0.05, None], "loss": [2.0, 1.0, None],
    ...                         "val_accuracy": [None, None, 0.5]})
    >>> c = run_curves(history, smoothing=0.0)
    >>> c.steps["loss"].tolist(), c.evals["step"].tolist(), c.evals["val_accuracy"].tolist()
    ([2.0, 1.0], [2], [0.5])
    """
    history = getattr(run, "history", run)
    if not isinstance(history, pd.DataFrame) or not {"kind", "step"} <= set(history.columns):
        raise TypeError(f"run: expected a tw.Run or its history DataFrame, got {type(run).__name__}")
    if not (isinstance(smoothing, (int, float)) and 0 <= smoothing < 1):
        raise ValueError(f"smoothing: must be in [0, 1), got {smoothing!r}; e.g. 0.8, or 0 for none")
    if metric not in history.columns:
        known = [c for c in history.columns if c not in ("kind", "step", "epoch")]
        raise ValueError(f"metric: {metric!r} is not in the run's history; it has {known}")
    steps = history[history["kind"] == "step"]
    evals = history[(history["kind"] == "eval") & history[metric].notna()]
    loss = steps["loss"].to_numpy(dtype=float)
    return RunCurves(
        steps={"step": steps["step"].to_numpy(dtype=np.int64), "lr": steps["lr"].to_numpy(dtype=float),
               "loss": _smooth(loss, smoothing) if len(loss) else loss},
        evals={"step": evals["step"].to_numpy(dtype=np.int64), metric: evals[metric].to_numpy(dtype=float)},
        metric=metric)


def schedule_comparison_figure(runs: Mapping[str, Any], *, metric: str = "val_accuracy", smoothing: float = 0.8,
                               height: int = 240, width: int = 320) -> Any:
    """Three panels side by side, one line per run: the lr it used, its training loss (smoothed,
    log scale) and ``metric`` after each evaluation, all against optimizer step (x ranges shared;
    one legend, in the loss panel).

    ``runs``: name -> ``tw.Run`` (or its history), e.g. ``{"constant": run1, "one-cycle": run2}``.
    Renders offline in a page with ``bokeh.embed.file_html(fig, bokeh.resources.INLINE)``.

    >>> import pandas as pd
    >>> h = pd.DataFrame({"kind": ["step", "eval"], "step": [1, 1], "lr": [0.1, None],
    ...                   "loss": [2.0, None], "val_accuracy": [None, 0.5]})
    >>> grid = schedule_comparison_figure({"a": h, "b": h})
    >>> [c[0].title.text for c in grid.children]
    ['learning rate', 'train loss (smoothed, log scale)', 'val_accuracy']
    """
    from bokeh.layouts import gridplot

    if not isinstance(runs, Mapping) or not runs:
        raise TypeError(f"runs: expected a dict of name -> tw.Run with at least one run, got {runs!r}")
    curves = {str(name): run_curves(run, metric, smoothing) for name, run in runs.items()}
    figs = [new_figure("learning rate", x_label="optimizer step", height=height, width=width),
            new_figure("train loss (smoothed, log scale)", x_label="optimizer step", y_axis_type="log",
                       height=height, width=width),
            new_figure(metric, x_label="optimizer step", height=height, width=width)]
    for fig in figs[1:]:
        fig.x_range = figs[0].x_range
    bound_range(figs[2].y_range, metric_bounds(metric))  # accuracy: the axis stays inside 0-1
    for index, (name, c) in enumerate(curves.items()):
        color = PALETTE[index % len(PALETTE)]
        steps = ColumnDataSource(c.steps, name=f"compare_steps_{index}")
        evals = ColumnDataSource(c.evals, name=f"compare_evals_{index}")
        figs[0].line("step", "lr", source=steps, color=color, line_width=2)
        figs[1].line("step", "loss", source=steps, color=color, line_width=2, legend_label=name)
        figs[2].line("step", metric, source=evals, color=color, line_width=2)
        figs[2].scatter("step", metric, source=evals, color=color, size=6)
    # one legend, where the loss is low (top right); the colours are the same in every panel
    figs[1].legend.location = "top_right"
    figs[1].legend.click_policy = "hide"
    figs[1].legend.background_fill_alpha = 0.6
    return gridplot([figs], toolbar_location="above", sizing_mode="stretch_width")
