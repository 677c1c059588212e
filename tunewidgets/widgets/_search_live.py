"""The live side of the ``Search`` widget: slim records, the trials they build, the sources they fill.

In the search's thread a ``Relay`` (:mod:`tunewidgets.widgets._search_worker`) turns each trial
record into a small tuple and puts it on the widget's queue: ``("start", n, time)``, ``("eval",
n, epoch, value)`` and ``("end", n, status, value, error, time)``; LOG and EPOCH records are
dropped there. A trial's values are read once, when it starts, from its config
(``study.config(n)``, see :func:`params_from_config`), never from ``study.trials``, whose
DataFrame costs milliseconds per call at a few hundred trials. Once a tick the widget hands the tuples to :meth:`LiveTrials.ingest`, which keeps every
trial as a :class:`~tunewidgets.plots.search.TrialData`, then to :meth:`LiveSources.update`,
which makes at most one ``stream``, one ``patch`` or one ``data`` assignment per source: new
curves are streamed, curves that grew are patched in place, and a source is re-sent whole only
when the set of rows it shows changes otherwise (the curve cap, top-k, hide-pruned, a new
colour range for the parallel coordinates).

Example:
    >>> from tunewidgets.widgets._search_live import LiveTrials
    >>> trials = LiveTrials()
    >>> changes = trials.ingest([("start", 0, 10.0), ("eval", 0, 1, 0.5), ("eval", 0, 2, 0.7),
    ...                          ("end", 0, "finished", 0.7, None, 12.5)])
    >>> t = trials.by_number[0]
    >>> t.state, t.epochs, t.values, t.value, t.duration, sorted(changes.ended)
    ('finished', [1, 2], [0.5, 0.7], 0.7, 2.5, [0])
"""
from __future__ import annotations

import math
import time

import numpy as np
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from tunewidgets.plots.search import (
    CURVE_COLUMNS, CURVE_ENDS, CURVES, END_COLUMNS, ENDED, HIGHLIGHT, IMPORTANCE, PARALLEL, PARALLEL_AXES, SLICE,
    TABLE, Axis, TrialData, curve_row, end_row, importance_columns, parallel_axis_columns, parallel_row, pick_trials,
    set_color_range, slice_row, table_columns, value_range,
)
from tunewidgets.widgets._stream import same_values as _same, set_data

__all__ = ["LiveTrials", "Changes", "LiveSources", "RowSync", "params_from_config", "expand_range"]


def _number(v: Any) -> float:
    try:
        f = float(v)
    except (TypeError, ValueError):
        return math.nan
    return f


@dataclass
class Changes:
    """What one tick changed: trials that are new, that changed, that ended; a new importance."""

    new: set[int] = field(default_factory=set)
    dirty: set[int] = field(default_factory=set)
    ended: set[int] = field(default_factory=set)
    importance: Any = None

    def __bool__(self) -> bool:
        return bool(self.dirty or self.importance is not None)


class LiveTrials:
    """Every trial of the search the widget shows, by number (resumed ones included).

    ``params_of(n)`` (set by the widget) gives a new trial's values when its START arrives.
    """

    def __init__(self, params_of: Callable[[int], dict[str, Any]] | None = None) -> None:
        self.by_number: dict[int, TrialData] = {}
        self.params_of = params_of
        self._started: dict[int, float] = {}

    def clear(self) -> None:
        self.by_number.clear()
        self._started.clear()

    def load(self, trials: Iterable[TrialData]) -> None:
        """Trials that ended before this search started (read back from the store)."""
        for t in trials:
            if t.state != "running":
                self.by_number[t.trial] = t

    def sorted(self) -> list[TrialData]:
        return [self.by_number[n] for n in sorted(self.by_number)]

    def counts(self) -> dict[str, int]:
        out = dict.fromkeys(("running", *ENDED), 0)
        for t in self.by_number.values():
            out[t.state] = out.get(t.state, 0) + 1
        return out

    def _get(self, n: int, changes: Changes) -> TrialData:
        t = self.by_number.get(n)
        if t is None:
            t = self.by_number[n] = TrialData(n, "running")
            if self.params_of is not None:
                t.params = self.params_of(n)
            changes.new.add(n)
        return t

    def ingest(self, records: Iterable[Any]) -> Changes:
        changes = Changes()
        for rec in records:
            kind = rec[0]
            if kind == "importance":
                changes.importance = rec[1]
                continue
            n = rec[1]
            if kind == "start":  # a trial that starts again (resumed after a stop) starts afresh
                self.by_number.pop(n, None)
                t = self._get(n, changes)
                self._started[n] = rec[2]
            elif kind == "eval":
                t = self._get(n, changes)
                t.epochs.append(rec[2])
                t.values.append(rec[3])
                if math.isfinite(rec[3]):
                    t.value = rec[3]
            else:  # end
                t = self._get(n, changes)
                t.state = rec[2]
                if math.isfinite(rec[3]) or t.state in ("failed", "diverged"):
                    t.value = rec[3]
                t.error = rec[4]
                started = self._started.pop(n, None)
                t.duration = rec[5] - started if started is not None else 0.0
                changes.ended.add(n)
            changes.dirty.add(n)
        return changes


def params_from_config(config: Any, space: Any) -> dict[str, Any]:
    """A trial's values by space key, read from the config it trains with; a key that does not
    apply to it (``momentum`` with adam) is left out, as in ``study.trials``."""
    out: dict[str, Any] = {}
    for key in space.order:
        if space.active(key, out):
            out[key] = _value_at(config, key)
    return {k: out[k] for k in space if k in out}


def _value_at(config: Any, key: str) -> Any:
    if key.startswith("model."):
        return config.model_kwargs.get(key[len("model."):])
    if key.startswith("schedule."):
        node = config.schedule
        for part in key[len("schedule."):].split("."):
            node = getattr(node, part)
        return node
    return getattr(config, key)


def expand_range(shown: tuple[float, float] | None, data: tuple[float, float]) -> tuple[float, float]:
    """The colour range: ``data`` padded by a tenth of its span the first time, then grown only when
    a value falls outside it (so that colours and the parallel axes rarely need re-sending)."""
    lo, hi = data
    pad = (hi - lo) * 0.1
    if shown is None:
        return lo - pad, hi + pad
    if shown[0] <= lo and hi <= shown[1]:
        return shown
    return (min(shown[0], lo - pad), max(shown[1], hi + pad))


class RowSync:
    """Keeps a source's rows equal to ``build(trial)`` of a list of trials, with few sends.

    ``sync(desired, dirty)``: when the rows shown are a prefix of ``desired``, the dirty ones among
    them are patched (one ``patch``) and the rest are streamed (one ``stream``); otherwise the
    source is re-sent whole (one assignment). ``sends`` counts the messages.
    """

    def __init__(self, source: Any, columns: Sequence[str], build: Callable[[int], Mapping[str, Any]]) -> None:
        self.source, self.columns, self.build = source, tuple(columns), build
        self.shown: list[int] = []
        self.resends = self.sends = 0

    def reset(self) -> None:
        self.shown = []
        set_data(self.source, {c: [] for c in self.columns})

    def _cols(self, trials: Iterable[int]) -> dict[str, list[Any]]:
        cols: dict[str, list[Any]] = {c: [] for c in self.columns}
        for n in trials:
            row = self.build(n)
            for c in self.columns:
                cols[c].append(row[c])
        return cols

    def sync(self, desired: list[int], dirty: set[int], force: bool = False) -> None:
        k = len(self.shown)
        if force or desired[:k] != self.shown:
            set_data(self.source, self._cols(desired))
            self.shown = list(desired)
            self.resends += 1
            self.sends += 1
            return
        patches: dict[str, list[tuple[int, Any]]] = {}
        data = self.source.data
        for i, n in enumerate(self.shown):
            if n in dirty:
                row = self.build(n)
                for c in self.columns:  # only the cells that changed
                    if not _same(data[c][i], row[c]):
                        patches.setdefault(c, []).append((i, row[c]))
        if patches:
            self.source.patch(patches)
            self.sends += 1
        if len(desired) > k:
            self.source.stream(self._cols(desired[k:]))
            self.shown = list(desired)
            self.sends += 1


class LiveSources:
    """The search figures' sources kept in step with :class:`LiveTrials` (see the module docstring)."""

    def __init__(self, parts: Mapping[str, Any], axes: Sequence[Axis], metric: str, direction: str, *,
                 max_curves: int, max_rows: int) -> None:
        self.parts, self.axes, self.metric, self.direction = parts, list(axes), metric, direction
        self.max_curves, self.max_rows = max_curves, max_rows
        self.hide_pruned = False
        self.top_k = 0
        self.selected: int | None = None
        self.trials = LiveTrials()
        self.vrange: tuple[float, float] | None = None
        by = self.trials.by_number
        self.curves = RowSync(parts[CURVES], CURVE_COLUMNS, lambda n: curve_row(by[n]))
        self.slice = RowSync(parts[SLICE], tuple(parts[SLICE].data), lambda n: slice_row(by[n], self.axes))
        self.parallel = RowSync(parts[PARALLEL], tuple(parts[PARALLEL].data),
                                lambda n: parallel_row(by[n], self.axes, self.vrange or (0.0, 1.0)))
        self.ends = RowSync(parts[CURVE_ENDS], END_COLUMNS, lambda n: end_row(by[n]))
        self._table_order: list[int] = []
        self.table_every = 1.0  # seconds between two rebuilds of the table
        self._table_at = -math.inf
        self._table_stale = False
        self._numeric = {"value", "duration", *(a.column for a in self.axes if a.kind != "choice")}

    def reset(self) -> None:
        self.trials.clear()
        for sync in (self.curves, self.slice, self.parallel, self.ends):
            sync.reset()
        # a Launch on empty plots (the first) sends nothing here: the page has nothing to redraw
        set_data(self.parts[HIGHLIGHT], {"xs": [], "ys": [], "trial": []})
        set_data(self.parts[IMPORTANCE], importance_columns(None))
        set_data(self.parts[TABLE], table_columns([], self.axes, self.direction))
        self._table_order = []
        self._table_at, self._table_stale = -math.inf, False
        self.vrange: tuple[float, float] | None = None
        set_data(self.parts[PARALLEL_AXES], parallel_axis_columns(self.axes, self.metric, (0.0, 1.0)))
        self.selected = None

    # -- what is shown ----------------------------------------------------------------------
    def shown_curves(self) -> list[int]:
        """The trials whose curves to show: :func:`pick_trials`, trimmed to ``max_curves`` only when
        the rows shown pass it by a quarter, so that new curves are streamed, not re-sent whole."""
        trials = self.trials.by_number.values()
        wanted = pick_trials(trials, self.direction, hide_pruned=self.hide_pruned, top_k=self.top_k or None)
        if len(wanted) <= self.max_curves:
            return wanted
        shown, allowed = self.curves.shown, set(wanted)
        last = shown[-1] if shown else -1
        grown = shown + [n for n in wanted if n > last]
        if all(n in allowed for n in shown) and len(grown) <= self.max_curves + max(1, self.max_curves // 4):
            return grown
        return pick_trials(trials, self.direction, hide_pruned=self.hide_pruned, top_k=self.top_k or None,
                           max_curves=self.max_curves)

    def update(self, changes: Changes, force: bool = False) -> None:
        """Apply one tick's changes to every source (``force``: re-send them all)."""
        by = self.trials.by_number
        if changes.importance is not None and isinstance(changes.importance, Mapping):
            self.parts[IMPORTANCE].data = importance_columns(changes.importance)
        if not (changes.dirty or force):
            return
        ordered = self.trials.sorted()
        values = [t for t in ordered if t.state in ENDED and math.isfinite(t.value)]
        vrange = expand_range(self.vrange, value_range(values)) if values else (0.0, 1.0)
        new_range = vrange != (self.vrange or (0.0, 1.0))
        if new_range:
            self.vrange = vrange
            set_color_range(self.parts, vrange)
            self.parts[PARALLEL_AXES].data = parallel_axis_columns(self.axes, self.metric, vrange)
        dirty = changes.dirty
        shown = self.shown_curves()
        self.curves.sync(shown, dirty, force)
        self.ends.sync([n for n in shown if end_row(by[n]) is not None], dirty, force)
        in_slices = [t.trial for t in ordered if t.state in ENDED and math.isfinite(t.value)
                     and not (self.hide_pruned and t.state == "pruned")]
        self.slice.sync(in_slices, dirty, force)
        lines = [n for n in shown if by[n].state in ENDED and math.isfinite(by[n].value)]
        self.parallel.sync(lines, dirty, force or new_range)
        self._update_table(ordered, changes, force)
        if self.selected is not None and (self.selected in dirty or force):
            self._show_highlight()

    def _update_table(self, ordered: list[TrialData], changes: Changes, force: bool) -> None:
        """Rebuild the table at most every ``table_every`` seconds (sorting every trial is the
        drain's largest cost in a long search); in between, patch the rows it shows that changed."""
        now = time.monotonic()
        if not force and now - self._table_at < self.table_every:
            self._table_stale = True
            rows = {n: i for i, n in enumerate(self._table_order)}
            shown = [n for n in changes.dirty if n in rows]
            if shown:
                by = self.trials.by_number
                self._patch_table({i: table_columns([by[n]], self.axes, self.direction) for n, i in
                                   ((n, rows[n]) for n in shown)})
            return
        self._table_at, self._table_stale = now, False
        cols = table_columns(ordered, self.axes, self.direction, max_rows=self.max_rows)
        source = self.parts[TABLE]
        if force or len(cols["trial"]) != len(self._table_order):
            self._send_table(cols)
            return
        # the same number of rows: patch the cells that differ, unless most of them do
        changed = {}
        for name, values in cols.items():
            shown_values = source.data[name]
            cells = [(i, b) for i, (a, b) in enumerate(zip(shown_values, values)) if not _same(a, b)]
            if cells:
                changed[name] = cells
        if sum(map(len, changed.values())) * 3 > len(cols["trial"]) * len(cols):
            self._send_table(cols)
        elif changed:
            source.patch(changed)
            if "trial" in changed:
                self._table_order = list(cols["trial"])
                self._reselect()

    def flush_table(self) -> None:
        """Rebuild the table now if a rebuild was put off (at the end of a search)."""
        if self._table_stale:
            self._table_at = -math.inf
            self._update_table(self.trials.sorted(), Changes(), False)

    def _send_table(self, cols: dict[str, list[Any]]) -> None:
        self._table_order = list(cols["trial"])
        # numbers as arrays: sent to the page as bytes, not value by value
        self.parts[TABLE].data = {k: np.asarray(v, dtype=float) if k in self._numeric else v for k, v in cols.items()}
        self._reselect()

    def _patch_table(self, rows: Mapping[int, dict[str, list[Any]]]) -> None:
        data = self.parts[TABLE].data
        patches: dict[str, list[tuple[int, Any]]] = {}
        for i, one in rows.items():
            for name, (value,) in one.items():
                if name != "best" and not _same(data[name][i], value):
                    patches.setdefault(name, []).append((i, value))
        if patches:
            self.parts[TABLE].patch(patches)

    # -- selection --------------------------------------------------------------------------
    def select(self, trial: int | None) -> None:
        """Draw ``trial``'s curve on top (None: no highlight) and select its row in the table."""
        self.selected = trial
        self._show_highlight()
        self._reselect()

    def _reselect(self) -> None:
        selected = self.parts[TABLE].selected
        want = [self._table_order.index(self.selected)] if self.selected in self._table_order else []
        if list(selected.indices) != want:
            selected.indices = want

    def _show_highlight(self) -> None:
        t = self.trials.by_number.get(self.selected) if self.selected is not None else None
        if t is None:
            set_data(self.parts[HIGHLIGHT], {"xs": [], "ys": [], "trial": []})
        else:
            self.parts[HIGHLIGHT].data = {"xs": [list(t.epochs)], "ys": [list(t.values)], "trial": [t.trial]}

    def table_trial(self, index: int) -> int | None:
        """The trial shown in row ``index`` of the table."""
        return self._table_order[index] if 0 <= index < len(self._table_order) else None
