"""The report's Bokeh figures, built from :mod:`tunewidgets.reports._load` data.

User strings (run names, parameter values) reach Bokeh only as data or as plain text of titles
and axes, never as HTML (no ``Div``, no HTML tooltips): BokehJS draws them as text.

Example:
    >>> from tunewidgets.reports._figures import parallel_figure
    >>> fig = parallel_figure(["lr", "val_loss"], [[0.1, 0.5], [0.01, 0.3]], [0.5, 0.3], "val_loss")
    >>> len(fig.select({"name": "parallel_lines"})[0].data["xs"])
    2
"""
from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from bokeh.models import ColumnDataSource, FixedTicker, HoverTool, Range1d, Span

from tunewidgets.plots._common import (
    PALETTE, finite_or_nan, fmt_num, legend_outside, method_color, metric_bounds, new_figure, padded_range,
)
from tunewidgets.reports._load import MAX_POINTS, RunData, downsample

__all__ = ["run_figures", "range_test_figure", "curves_figure", "parallel_figure", "importance_figure",
           "history_figure"]


def _line(fig: Any, xs: Sequence[float], ys: Sequence[float], name: str, label: str, color: str,
          **kwargs: Any) -> Any:
    xs, ys = downsample(list(xs), finite_or_nan(ys), MAX_POINTS)
    src = ColumnDataSource({"x": xs, "y": ys}, name=name)
    return fig.line("x", "y", source=src, color=color, legend_label=label, line_width=2, **kwargs)


def run_figures(run: RunData) -> list[Any]:
    """A training run: the train loss per step with the validation metrics per epoch, and its lr."""
    rid = int(run.row["id"])
    figs = []
    loss = new_figure("loss", x_label="step", y_label="loss", height=260)
    drew = False
    if "train/loss" in run.curves:
        _line(loss, *run.curves["train/loss"], f"run{rid}_train_loss", "train loss (step)", PALETTE[0], alpha=0.6)
        drew = True
    steps_per_epoch = _steps_per_epoch(run)
    for i, (name, (epochs, values)) in enumerate(sorted(run.epochs.items())):
        xs = [e * steps_per_epoch for e in epochs] if steps_per_epoch else epochs
        target = loss if name.endswith("loss") else None
        if target is None:
            continue
        _line(target, xs, values, f"run{rid}_{name.replace('/', '_')}", f"{name} (epoch)", PALETTE[1 + i % 6])
        drew = True
    if drew:
        legend_outside(loss)
        figs.append(loss)
    others = {n: c for n, c in run.epochs.items() if not n.endswith("loss")}
    if others:
        fig = new_figure("validation metrics", x_label="epoch", y_label="value", height=220)
        for i, (name, (epochs, values)) in enumerate(sorted(others.items())):
            _line(fig, epochs, values, f"run{rid}_{name.replace('/', '_')}", name, PALETTE[(2 + i) % 8])
        if all(metric_bounds(n) == (0.0, 1.0) for n in others):  # accuracy and the like: inside 0-1
            _fit_y(fig, [v for _, vs in others.values() for v in vs], "accuracy")
        legend_outside(fig)
        figs.append(fig)
    if "lr" in run.curves:
        fig = new_figure("learning rate (schedule)", x_label="step", y_label="lr", height=200)
        _line(fig, *run.curves["lr"], f"run{rid}_lr", "lr", PALETTE[2])
        fig.legend.visible = False
        figs.append(fig)
    return figs


def _steps_per_epoch(run: RunData) -> float:
    final = run.row.get("final") or {}
    steps, epochs = final.get("steps"), final.get("epochs")
    if isinstance(steps, (int, float)) and isinstance(epochs, (int, float)) and epochs:
        return float(steps) / float(epochs)
    return 0.0


def range_test_figure(run: RunData) -> Any:
    """An LR range test: loss (raw and smoothed) against lr on a log axis, a line at each suggestion."""
    rid = int(run.row["id"])
    fig = new_figure("LR range test", x_axis_type="log", x_label="learning rate", y_label="loss", height=300)
    lr_steps, lrs = run.curves.get("lr", ([], []))
    lr_at = dict(zip(lr_steps, lrs))
    for name, label, color, alpha in (("train/loss", "loss", "#9aa5b1", 0.8),
                                      ("train/smoothed", "smoothed loss", PALETTE[0], 1.0)):
        if name not in run.curves:
            continue
        pairs = [(lr_at[s], v) for s, v in zip(*run.curves[name]) if s in lr_at and lr_at[s] > 0]
        if pairs:
            _line(fig, [p[0] for p in pairs], [p[1] for p in pairs], f"run{rid}_{name.replace('/', '_')}", label,
                  color, alpha=alpha)
    final = run.row.get("final") or {}
    for i, (method, lr) in enumerate(sorted(suggestions(final).items())):
        fig.add_layout(Span(location=lr, dimension="height", line_color=method_color(method, i), line_dash="dashed",
                            line_width=2))
    if fig.renderers:
        legend_outside(fig)
    return fig


def suggestions(final: Mapping[str, Any]) -> dict[str, float]:
    """``{method: lr}`` from a range test's final record (``suggested/<method>``)."""
    out = {}
    for key, value in final.items():
        if key.startswith("suggested/") and isinstance(value, (int, float)) and math.isfinite(value) and value > 0:
            out[key.split("/", 1)[1]] = float(value)
    return out


def curves_figure(curves: Mapping[int, tuple[list[float], list[float]]], metric: str, title: str) -> Any:
    """Per-epoch metric of the given trials (``trial -> (epochs, values)``), one line each."""
    fig = new_figure(title, x_label="epoch", y_label=metric, height=300)
    for i, (trial, (xs, ys)) in enumerate(curves.items()):
        _line(fig, xs, ys, f"curve_trial_{trial}", f"trial {trial}", PALETTE[i % len(PALETTE)])
    _fit_y(fig, [v for _, ys in curves.values() for v in ys], metric)
    if fig.renderers:
        legend_outside(fig)  # beside the curves, never over them
    return fig


def _fit_y(fig: Any, values: Sequence[Any], metric: str) -> None:
    """A y range around ``values`` whose padding stays inside the metric's bounds (accuracy: 0-1)."""
    fig.y_range = Range1d(*padded_range(finite_or_nan(values), metric_bounds(metric)))


def history_figure(trials: Sequence[int], values: Sequence[float], states: Sequence[str], metric: str) -> Any:
    """The final metric of every trial by trial number, coloured by state."""
    fig = new_figure("trials", x_label="trial", y_label=metric, height=260)
    colors = {"finished": PALETTE[0], "pruned": PALETTE[4], "failed": PALETTE[1], "diverged": PALETTE[3]}
    src = ColumnDataSource({"trial": list(trials), "value": finite_or_nan(values), "state": list(states),
                            "color": [colors.get(s, "#777777") for s in states]}, name="trial_history")
    r = fig.scatter("trial", "value", source=src, color="color", size=6)
    _fit_y(fig, values, metric)
    fig.add_tools(HoverTool(renderers=[r], tooltips=[("trial", "@trial"), ("state", "@state"), (metric, "@value")]))
    return fig


def parallel_figure(axes: Sequence[str], rows: Sequence[Sequence[Any]], values: Sequence[float], metric: str) -> Any:
    """Parallel coordinates: one line per trial across ``axes`` (each scaled to 0-1; a log scale for
    a key whose values span more than a factor of 20), coloured by the metric."""
    n = len(axes)
    scaled_cols, labels = [], []
    for j, key in enumerate(axes):
        col = [r[j] for r in rows]
        scaled, label = _scale(col)
        scaled_cols.append(scaled)
        labels.append(f"{key} {label}")
    fin = [v for v in values if isinstance(v, (int, float)) and math.isfinite(v)]
    lo, hi = (min(fin), max(fin)) if fin else (0.0, 1.0)
    ramp = ("#440154", "#3b528b", "#21918c", "#5ec962", "#fde725")

    def color(v: Any) -> str:
        if not isinstance(v, (int, float)) or not math.isfinite(v):
            return "#bbbbbb"
        t = 0.0 if hi == lo else (v - lo) / (hi - lo)
        return ramp[min(len(ramp) - 1, int(t * len(ramp)))]

    fig = new_figure(f"parallel coordinates (colour: {metric})", x_label="", y_label="scaled value", height=320)
    src = ColumnDataSource({"xs": [list(range(n)) for _ in rows],
                            "ys": [[scaled_cols[j][i] for j in range(n)] for i in range(len(rows))],
                            "color": [color(v) for v in values], "value": finite_or_nan(values)},
                           name="parallel_lines")
    r = fig.multi_line("xs", "ys", source=src, line_color="color", line_alpha=0.6, line_width=1.5)
    fig.add_tools(HoverTool(renderers=[r], tooltips=[(metric, "@value")]))
    fig.xaxis.ticker = FixedTicker(ticks=list(range(n)))
    fig.xaxis.major_label_overrides = {j: labels[j] for j in range(n)}
    fig.y_range.start, fig.y_range.end = -0.05, 1.05
    return fig


def _scale(col: Sequence[Any]) -> tuple[list[float], str]:
    """A column scaled to 0-1 and its axis label: ``(0.423-0.61)`` for numbers (3 significant
    digits), ``(a | b)`` for categories. A missing or non-finite value (a failed trial's NaN
    metric) is a gap on the axis, never one of its bounds or categories."""
    col = [None if _is_number(v) and not math.isfinite(float(v)) else v for v in col]
    present = [v for v in col if v is not None]
    if present and all(_is_number(v) for v in present):
        nums = [float(v) for v in present]
        lo, hi = min(nums), max(nums)
        log = lo > 0 and hi / lo > 20
        f = math.log10 if log else (lambda x: x)
        a, b = f(lo), f(hi)
        out = [math.nan if v is None else (0.5 if a == b else (f(float(v)) - a) / (b - a)) for v in col]
        return out, f"({'log ' if log else ''}{_g3(lo)}-{_g3(hi)})"
    cats = sorted({_g3(v) if _is_number(v) else str(v) for v in present})
    pos = {c: (0.5 if len(cats) == 1 else i / (len(cats) - 1)) for i, c in enumerate(cats)}
    return [math.nan if v is None else pos[_g3(v) if _is_number(v) else str(v)] for v in col], \
        "(" + " | ".join(cats[:6]) + (" | ..." if len(cats) > 6 else "") + ")"


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _g3(v: Any) -> str:
    """A number as 3 significant digits, exponents unpadded (``0.423``, ``1e-05``: ``1e-5``)."""
    return fmt_num(float(v), 3)


def importance_figure(importance: Mapping[str, float]) -> Any:
    """Horizontal bars: how much each searched key explains the metric."""
    keys = list(importance)[::-1]
    fig = new_figure("parameter importance", x_label="importance", y_range=keys, height=60 + 28 * len(keys))
    src = ColumnDataSource({"key": keys, "value": [float(importance[k]) for k in keys]}, name="importance")
    fig.hbar(y="key", right="value", height=0.6, source=src, color=PALETTE[0])
    fig.x_range.start = 0
    return fig


