"""The plain data of a search's plots: trials, axes, which curves to show, each figure's columns.

No Bokeh here: :mod:`tunewidgets.plots.search` renders these columns (and re-exports this module).
A search is a list of :class:`TrialData` and one :class:`Axis` per searched key.

Example:
    >>> from tunewidgets.plots._search_data import Axis, TrialData, table_columns
    >>> trials = [TrialData(0, "finished", {"lr": 0.01}, [1, 2], [0.5, 0.7]),
    ...           TrialData(1, "finished", {"lr": 0.1}, [1, 2], [0.6, 0.8])]
    >>> cols = table_columns(trials, [Axis("lr", "log", 1e-3, 1.0)], "maximize")
    >>> cols["trial"], cols["best"], cols["p_lr"]
    ([1, 0], ['\u2605', ''], [0.1, 0.01])
"""
from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from tunewidgets.plots._bounds import clamp_range, metric_bounds

__all__ = [
    "CURVES", "CURVE_ENDS", "HIGHLIGHT", "SLICE", "PARALLEL", "PARALLEL_AXES", "IMPORTANCE", "TABLE",
    "COLOR_MAPPER", "ENDED", "CURVE_COLUMNS", "END_COLUMNS", "MISSING", "TrialData", "Axis", "axes_of",
    "pick_trials", "value_range", "curve_row", "curve_columns", "end_row", "end_columns", "slice_row",
    "slice_columns", "parallel_row", "parallel_columns", "parallel_axis_columns", "importance_columns",
    "table_columns", "trials_of_study",
]

CURVES = "search_curves"
CURVE_ENDS = "search_curve_ends"
HIGHLIGHT = "search_highlight"
SLICE = "search_slice"
PARALLEL = "search_parallel"
PARALLEL_AXES = "search_parallel_axes"
IMPORTANCE = "search_importance"
TABLE = "search_table"
COLOR_MAPPER = "search_colors"

ENDED = ("finished", "pruned", "failed", "diverged", "stopped")
_FAILED = ("failed", "diverged")
CURVE_COLUMNS = ("trial", "xs", "ys", "value", "state", "dash", "alpha", "width")
END_COLUMNS = ("trial", "x", "y", "state", "marker")
_DASH = {"pruned": "dashed", "failed": "dotted", "diverged": "dotted", "stopped": "dotdash"}
_MARKER = {"pruned": "x", "failed": "triangle", "diverged": "triangle", "stopped": "square"}
MISSING = "n/a"  # a choice key that did not apply to a trial


@dataclass
class TrialData:
    """One trial as the plots see it.

    Attributes:
        trial: its number. state: running, finished, pruned, failed, diverged or stopped.
        params: its values by key (a key that did not apply is absent).
        epochs, values: its metric after each epoch (epochs counted from 1).
        value: its final metric (NaN: none yet); while it runs, the latest one.
        duration: seconds it trained (NaN while running). error: why it failed, or None.
    """

    trial: int
    state: str
    params: dict[str, Any] = field(default_factory=dict)
    epochs: list[int] = field(default_factory=list)
    values: list[float] = field(default_factory=list)
    value: float = math.nan
    duration: float = math.nan
    error: str | None = None

    def __post_init__(self) -> None:
        if not math.isfinite(self.value) and self.values and math.isfinite(self.values[-1]):
            self.value = float(self.values[-1])


@dataclass(frozen=True)
class Axis:
    """How one searched key is drawn: ``kind`` is ``"log"``, ``"linear"`` or ``"choice"``.

    ``low``/``high`` bound a numeric key (the space's range), ``factors`` name a choice's values.
    ``column`` is the key's column in the sources (keys such as ``model.width`` hold dots).
    """

    key: str
    kind: str
    low: float = math.nan
    high: float = math.nan
    factors: tuple[str, ...] = ()
    column: str = ""

    def __post_init__(self) -> None:
        if not self.column:
            object.__setattr__(self, "column", "p_" + re.sub(r"\W", "_", self.key))

    def norm(self, value: Any) -> float:
        """``value`` placed in [0, 1] along this axis (NaN when absent or off the axis)."""
        if value is None:
            return math.nan
        if self.kind == "choice":
            label = _label(value)
            if label not in self.factors:
                return math.nan
            n = len(self.factors)
            return 0.5 if n == 1 else self.factors.index(label) / (n - 1)
        v = _float(value)
        lo, hi = self.low, self.high
        if self.kind == "log":
            if not (v > 0 and lo > 0):
                return math.nan
            v, lo, hi = math.log10(v), math.log10(lo), math.log10(hi)
        return 0.5 if hi == lo else (v - lo) / (hi - lo)

    def cell(self, value: Any) -> Any:
        """The value as its source column holds it: a float, or a choice's label."""
        if self.kind == "choice":
            return MISSING if value is None else _label(value)
        return math.nan if value is None else _float(value)


def axes_of(space: Mapping[str, Any]) -> list[Axis]:
    """One :class:`Axis` per searched key of a space (``Fixed`` keys are left out).

    Reads the dimensions by their attributes (``values``; ``low``, ``high``, ``is_log``), so it
    takes ``tw.space`` dimensions without importing them.
    """
    out = []
    for key, dim in space.items():
        if hasattr(dim, "values") and not callable(getattr(dim, "values")):
            out.append(Axis(key, "choice", factors=tuple(dict.fromkeys(_label(v) for v in dim.values))))
        elif hasattr(dim, "low") and hasattr(dim, "high"):
            kind = "log" if getattr(dim, "is_log", False) else "linear"
            out.append(Axis(key, kind, float(dim.low), float(dim.high)))
    return out


# ----------------------------------------------------------------------------- which trials
def _better(direction: str) -> Any:
    sign = -1.0 if direction == "maximize" else 1.0
    return lambda t: (0, sign * t.value, t.trial) if math.isfinite(t.value) else (1, 0.0, t.trial)


def pick_trials(trials: Iterable[TrialData], direction: str, *, hide_pruned: bool = False,
                top_k: int | None = None, max_curves: int | None = None) -> list[int]:
    """The trial numbers whose curves to show, ascending.

    Running trials always; ended ones without the pruned (``hide_pruned``), only the ``top_k``
    best by value (``top_k``; None or 0: all), and at most ``max_curves`` in all: the running
    ones, the best half of the rest, then the newest.
    """
    running, ended = [], []
    for t in trials:
        if t.state == "running":
            running.append(t)
        elif not (hide_pruned and t.state == "pruned"):
            ended.append(t)
    if top_k:
        ended = sorted((t for t in ended if math.isfinite(t.value)), key=_better(direction))[:top_k]
    keep = [t.trial for t in running]
    if max_curves is not None and len(running) + len(ended) > max_curves:
        room = max(0, max_curves - len(running))
        best = sorted(ended, key=_better(direction))[: room // 2]
        chosen = {t.trial for t in best}
        newest = [t for t in sorted(ended, key=lambda t: -t.trial) if t.trial not in chosen][: room - len(best)]
        keep += [t.trial for t in best] + [t.trial for t in newest]
    else:
        keep += [t.trial for t in ended]
    return sorted(keep)


def value_range(trials: Iterable[TrialData], bounds: tuple[float | None, float | None] = (None, None)
                ) -> tuple[float, float]:
    """The lowest and highest finite value of the trials (a small span around one value, kept
    inside ``bounds``: an accuracy of 0.98 spans 0.93-1, not 0.93-1.03; (0, 1) for none)."""
    values = [t.value for t in trials if math.isfinite(t.value)]
    if not values:
        return 0.0, 1.0
    lo, hi = min(values), max(values)
    if lo == hi:
        pad = abs(lo) * 0.05 or 0.05
        return clamp_range((lo - pad, hi + pad), bounds, (lo, hi))
    return lo, hi



# ----------------------------------------------------------------------------- columns
def curve_row(t: TrialData) -> dict[str, Any]:
    """One row of :data:`CURVES`: the trial's points and how its line is drawn."""
    running = t.state == "running"
    return {"trial": t.trial, "xs": list(t.epochs), "ys": [_finite(v) for v in t.values],
            "value": _finite(t.value), "state": t.state, "dash": _DASH.get(t.state, "solid"),
            "alpha": 1.0 if running else (0.45 if t.state in ("pruned", "stopped") else 0.85),
            "width": 3.0 if running else 1.5}


def curve_columns(trials: Iterable[TrialData]) -> dict[str, list[Any]]:
    """The columns of :data:`CURVES` for these trials (one row each, in the order given)."""
    return _columns((curve_row(t) for t in trials), CURVE_COLUMNS)


def end_row(t: TrialData) -> dict[str, Any] | None:
    """The marker of a pruned, failed, diverged or stopped trial at its last finite point (None: no marker)."""
    if t.state not in _MARKER:
        return None
    for x, y in zip(reversed(t.epochs), reversed(t.values)):
        if math.isfinite(y):
            return {"trial": t.trial, "x": x, "y": y, "state": t.state, "marker": _MARKER[t.state]}
    return None


def end_columns(trials: Iterable[TrialData]) -> dict[str, list[Any]]:
    """The last point of each pruned, failed, diverged or stopped trial, marked by state."""
    return _columns((r for r in map(end_row, trials) if r is not None), END_COLUMNS)


def _in_slices(t: TrialData, hide_pruned: bool) -> bool:
    return t.state in ENDED and math.isfinite(t.value) and not (hide_pruned and t.state == "pruned")


def slice_row(t: TrialData, axes: Sequence[Axis]) -> dict[str, Any]:
    row = {"trial": t.trial, "value": float(t.value), "state": t.state, "marker": _MARKER.get(t.state, "circle"),
           "alpha": 0.45 if t.state == "pruned" else 0.9}
    for a in axes:
        row[a.column] = a.cell(t.params.get(a.key))
    return row


def slice_columns(trials: Iterable[TrialData], axes: Sequence[Axis], *, hide_pruned: bool = False
                  ) -> dict[str, list[Any]]:
    """One row per ended trial with a value: ``trial``, ``value``, ``state``, ``marker``, ``alpha``
    and each key's value in its axis' column (``p_lr``, ``p_model_width``...)."""
    names = ("trial", "value", "state", "marker", "alpha", *(a.column for a in axes))
    return _columns((slice_row(t, axes) for t in trials if _in_slices(t, hide_pruned)), names)


def parallel_row(t: TrialData, axes: Sequence[Axis], vrange: tuple[float, float]) -> dict[str, Any]:
    metric = Axis("metric", "linear", vrange[0], vrange[1])
    ys = [a.norm(t.params.get(a.key)) for a in axes] + [metric.norm(t.value)]
    return {"trial": t.trial, "xs": list(range(len(ys))), "ys": [_finite(y) for y in ys], "value": float(t.value),
            "state": t.state, "dash": _DASH.get(t.state, "solid"), "alpha": 0.35 if t.state == "pruned" else 0.75}


def parallel_columns(trials: Iterable[TrialData], axes: Sequence[Axis], vrange: tuple[float, float]
                     ) -> dict[str, list[Any]]:
    """One polyline per trial: x = 0..len(axes) (the keys, then the metric), y in [0, 1]."""
    names = ("trial", "xs", "ys", "value", "state", "dash", "alpha")
    return _columns((parallel_row(t, axes, vrange) for t in trials), names)


def parallel_axis_columns(axes: Sequence[Axis], metric: str, vrange: tuple[float, float]) -> dict[str, list[Any]]:
    """Each parallel axis' position, name and the labels of its two ends."""
    xs, names, lows, highs = [], [], [], []
    for i, a in enumerate(axes):
        xs.append(i)
        names.append(a.key)
        if a.kind == "choice":
            lows.append(a.factors[0] if a.factors else "")
            highs.append(a.factors[-1] if len(a.factors) > 1 else "")
        else:
            lows.append(_short(a.low))
            highs.append(_short(a.high))
    xs.append(len(axes))
    names.append(metric)
    vrange = clamp_range(vrange, metric_bounds(metric))
    lows.append(_short(vrange[0]))
    highs.append(_short(vrange[1]))
    return {"x": xs, "name": names, "low": lows, "high": highs, "y0": [0.0] * len(xs), "y1": [1.0] * len(xs)}


def importance_columns(importance: Mapping[str, float] | None) -> dict[str, list[Any]]:
    """One bar per key, most important first: ``key``, ``importance``, ``label`` (a percentage)."""
    items = sorted((importance or {}).items(), key=lambda kv: -kv[1])
    return {"key": [k for k, _ in items], "importance": [float(v) for _, v in items],
            "label": [f"{100 * v:.0f}%" for _, v in items]}


def table_columns(trials: Iterable[TrialData], axes: Sequence[Axis], direction: str, *,
                  max_rows: int | None = None) -> dict[str, list[Any]]:
    """The results table: running trials first, then the rest best first; the best finished
    one starred (``best``). At most ``max_rows`` rows."""
    trials = list(trials)
    key = _better(direction)
    finished = [t for t in trials if t.state == "finished" and math.isfinite(t.value)]
    best = min(finished, key=key).trial if finished else None
    order = sorted(trials, key=lambda t: (t.state != "running", t.state != "finished", key(t)))
    if max_rows is not None:
        order = order[:max_rows]
    cols: dict[str, list[Any]] = {c: [] for c in ("trial", "best", "state", "value", "epochs", "duration",
                                                  *(a.column for a in axes))}
    for t in order:
        cols["trial"].append(t.trial)
        cols["best"].append("\u2605" if t.trial == best else "")
        cols["state"].append(t.state)
        cols["value"].append(_finite(t.value))
        cols["epochs"].append(len(t.epochs))
        cols["duration"].append(_finite(t.duration))
        for a in axes:
            cols[a.column].append(a.cell(t.params.get(a.key)))
    return cols


def trials_of_study(study: Any) -> list[TrialData]:
    """The trials of a ``Study`` (``study.trials`` and ``study.curves()``) as :class:`TrialData`."""
    frame = study.trials
    metric = study.metric
    curves: dict[int, tuple[list[int], list[float]]] = {}
    long = study.curves()
    long = long[long["name"] == metric]
    for row in long.itertuples(index=False):
        xs, ys = curves.setdefault(int(row.trial), ([], []))
        xs.append(int(row.epoch) + 1)
        ys.append(float(row.value))
    keys = list(study.space)
    out = []
    for row in frame.to_dict("records"):
        n = int(row["trial"])
        params = {k: row[k] for k in keys if not _is_missing(row.get(k))}
        xs, ys = curves.get(n, ([], []))
        out.append(TrialData(n, str(row["state"]), params, xs, ys, _float(row.get(metric)),
                             _float(row.get("duration")), row.get("error")))
    return out


# ----------------------------------------------------------------------------- helpers
def _columns(rows: Iterable[Mapping[str, Any]], names: Sequence[str]) -> dict[str, list[Any]]:
    cols: dict[str, list[Any]] = {n: [] for n in names}
    for row in rows:
        for n in names:
            cols[n].append(row[n])
    return cols


def _float(v: Any) -> float:
    try:
        return float(v)
    except (TypeError, ValueError):
        return math.nan


def _finite(v: Any) -> float:
    f = _float(v)
    return f if math.isfinite(f) else math.nan


def _is_missing(v: Any) -> bool:
    return v is None or (isinstance(v, float) and math.isnan(v))


def _label(v: Any) -> str:
    return v if isinstance(v, str) else (repr(v) if not isinstance(v, (int, float, bool)) else str(v))


def _short(v: float) -> str:
    if not math.isfinite(v):
        return ""
    return f"{v:.3g}" if 1e-3 <= abs(v) < 1e4 or v == 0 else f"{v:.1e}"

