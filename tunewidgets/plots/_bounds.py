"""The bounds of a metric and ranges that keep to them (no Bokeh here: the plots' data half uses it).

Accuracy cannot leave [0, 1] and a loss cannot go below 0, so an axis or colour bar padded past
those bounds (accuracy up to 1.05) shows values that cannot occur: the padding is clamped, the
data never is.

Example:
    >>> from tunewidgets.plots._bounds import clamp_range, metric_bounds, padded_range
    >>> metric_bounds("val_accuracy"), metric_bounds("val loss"), metric_bounds("my_score")
    ((0.0, 1.0), (0.0, None), (None, None))
    >>> padded_range([0.5, 1.0], metric_bounds("val_accuracy")), padded_range([0.8])
    ((0.45, 1.0), (0.72, 0.88))
    >>> clamp_range((0.93, 1.03), (0.0, 1.0)), clamp_range((0.9, 1.2), (0.0, 1.0), data=(0.95, 1.1))
    ((0.93, 1.0), (0.9, 1.2))
"""
from __future__ import annotations

import math
import re
from collections.abc import Iterable
from typing import Any

__all__ = ["metric_bounds", "padded_range", "clamp_range"]

# metrics that cannot leave [0, 1], and those that cannot go below 0 (by their name after val_...)
_UNIT_METRICS = ("accuracy", "dice", "iou")
_POSITIVE_METRICS = ("loss", "mae", "mse")
_PAD = 0.1  # share of the data's span added to each side of a range


def metric_bounds(name: str) -> tuple[float | None, float | None]:
    """The bounds of a metric's values by its name (``val_accuracy``, ``val/accuracy``, ``val
    accuracy``): ``(0, 1)`` for accuracy, dice and IoU, ``(0, None)`` for losses and errors,
    ``(None, None)`` for anything else."""
    base = re.split(r"[_/ ]", str(name).strip().lower())[-1]
    if base in _UNIT_METRICS:
        return 0.0, 1.0
    if base in _POSITIVE_METRICS or base.endswith("loss"):
        return 0.0, None
    return None, None


def padded_range(values: Iterable[Any], bounds: tuple[float | None, float | None] = (None, None),
                 pad: float = _PAD) -> tuple[float, float]:
    """A range around ``values``, padded by ``pad`` of their span (one value: 10% of it, or 0.05
    around 0), its padding clamped to ``bounds`` (the data itself is never cut)."""
    finite = [float(v) for v in values if v is not None and math.isfinite(float(v))]
    lo_b, hi_b = bounds
    if not finite:
        return (lo_b if lo_b is not None else 0.0), (hi_b if hi_b is not None else 1.0)
    lo, hi = min(finite), max(finite)
    half = (hi - lo) * pad if hi > lo else (abs(lo) * pad or 0.05)
    if hi == lo and lo_b is not None and hi_b is not None:
        half = min(half, (hi_b - lo_b) * 0.05)
    start, end = lo - half, hi + half
    if lo_b is not None and lo >= lo_b:
        start = max(start, lo_b)
    if hi_b is not None and hi <= hi_b:
        end = min(end, hi_b)
    return round(start, 12), round(end, 12)


def clamp_range(vrange: tuple[float, float], bounds: tuple[float | None, float | None],
                data: tuple[float, float] | None = None) -> tuple[float, float]:
    """``vrange`` with its ends pulled inside ``bounds``; given the ``data`` (its lowest and
    highest value) only where the data lies inside them: padding never runs past a bound, and
    data outside one is never cut."""
    lo, hi = vrange
    d_lo, d_hi = data if data is not None else (math.inf, -math.inf)
    lo_b, hi_b = bounds
    if lo_b is not None and d_lo >= lo_b:
        lo = max(lo, lo_b)
    if hi_b is not None and d_hi <= hi_b:
        hi = min(hi, hi_b)
    return (lo, hi) if hi > lo else vrange
