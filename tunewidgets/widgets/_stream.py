"""``CappedStream``: grow a Bokeh ``ColumnDataSource`` with one update per tick, at most N points.

Long curves are thinned on the host before they are sent: rows are kept every
``stride``-th one, and when the source would pass ``max_points`` the stride doubles and the
source is re-sent thinned (a handful of times in a whole run). Between those, each tick is
a single ``source.stream(rows)`` of the new rows. :meth:`CappedStream.finish` adds the last
row if thinning skipped it, so the curve always ends where the run ended.

Example:
    >>> from bokeh.models import ColumnDataSource
    >>> from tunewidgets.widgets._stream import CappedStream
    >>> src = ColumnDataSource({"x": [], "y": []})
    >>> cap = CappedStream(src, max_points=4)
    >>> for i in range(10):
    ...     cap.push({"x": [i], "y": [i * i]})
    >>> cap.finish()
    >>> src.data["x"].tolist(), cap.stride
    ([0, 4, 8, 9], 4)
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

__all__ = ["CappedStream", "columns_of", "same_values", "set_data"]

_COMPARED_ROWS = 64  # sources this small are compared before they are sent again


def columns_of(records: Sequence[Mapping[str, Any]], names: Sequence[str]) -> dict[str, list[Any]]:
    """Records (dicts) as columns ``{name: [values...]}``; a missing key reads as None."""
    return {name: [r.get(name) for r in records] for name in names}


def set_data(source: Any, data: Mapping[str, Sequence[Any]]) -> bool:
    """``source.data = data`` unless the source holds that already; True when it was sent.

    Only small sources are compared (at most a few dozen rows: an empty plot reset again at a
    Launch, a highlight cleared twice); a bigger one is always sent. Each assignment is a patch
    the page applies and a plot it draws again.
    """
    current = source.data
    if set(current) == set(data) and all(
            len(data[k]) == len(current[k]) <= _COMPARED_ROWS and same_values(current[k], data[k]) for k in data):
        return False
    source.data = dict(data)
    return True


def same_values(a: Any, b: Any) -> bool:
    """Equal, NaN equal to NaN (also inside lists, tuples and arrays)."""
    a = a.tolist() if isinstance(a, np.ndarray) else a
    b = b.tolist() if isinstance(b, np.ndarray) else b
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return len(a) == len(b) and all(same_values(x, y) for x, y in zip(a, b))
    return bool(a == b or (a != a and b != b))


class CappedStream:
    """Streams rows into ``source``, thinning by decimation to keep at most ``max_points`` rows."""

    def __init__(self, source: Any, max_points: int = 2000) -> None:
        if isinstance(max_points, bool) or not isinstance(max_points, int) or max_points < 2:
            raise ValueError(f"max_points: must be a whole number >= 2, got {max_points!r}; e.g. 2000")
        self.source = source
        self.max_points = max_points
        self.names = tuple(source.data.keys())
        self.reset()

    def reset(self) -> None:
        """Forget everything and empty the source (before a new run)."""
        self.stride = 1
        self.seen = 0
        self.sends = 0
        self._index: list[int] = []
        self._shown: dict[str, list[Any]] = {n: [] for n in self.names}
        self._last: tuple[int, dict[str, Any]] | None = None
        self.source.data = {n: [] for n in self.names}

    def __len__(self) -> int:
        return len(self._index)

    def push(self, rows: Mapping[str, Sequence[Any]]) -> None:
        """Add new rows (columns of equal length); makes at most one update of the source."""
        missing = [n for n in self.names if n not in rows]
        if missing:
            raise ValueError(f"rows: missing column(s) {missing}; the source has {list(self.names)}")
        n = len(rows[self.names[0]]) if self.names else 0
        if n == 0:
            return
        keep = [i for i in range(n) if (self.seen + i) % self.stride == 0]
        last = n - 1
        self._last = (self.seen + last, {name: rows[name][last] for name in self.names})
        new = {name: [rows[name][i] for i in keep] for name in self.names}
        self._index.extend(self.seen + i for i in keep)
        self.seen += n
        for name in self.names:
            self._shown[name].extend(new[name])
        if len(self._index) > self.max_points:
            self._thin()
            self._send_all()
        elif len(self._index) == len(keep):  # the first rows: send them whole, with their dtypes
            self._send_all()
        elif keep:
            self.source.stream(_arrays(new))
            self.sends += 1

    def finish(self) -> None:
        """Show the very last row if thinning skipped it."""
        if self._last is None or (self._index and self._index[-1] == self._last[0]):
            return
        index, row = self._last
        self._index.append(index)
        for name in self.names:
            self._shown[name].append(row[name])
        if len(self._index) > self.max_points:
            # drop the last kept row before it rather than exceed the cap
            del self._index[-2]
            for name in self.names:
                del self._shown[name][-2]
            self._send_all()
        else:
            self.source.stream(_arrays({name: [row[name]] for name in self.names}))
            self.sends += 1

    def _thin(self) -> None:
        while len(self._index) > self.max_points:
            self.stride *= 2
            keep = [k for k, g in enumerate(self._index) if g % self.stride == 0]
            self._index = [self._index[k] for k in keep]
            self._shown = {name: [col[k] for k in keep] for name, col in self._shown.items()}

    def _send_all(self) -> None:
        self.source.data = _arrays(self._shown)
        self.sends += 1


def _arrays(columns: Mapping[str, Sequence[Any]]) -> dict[str, Any]:
    """Numeric columns as numpy arrays (sent as binary), others as lists."""
    out: dict[str, Any] = {}
    for name, values in columns.items():
        arr = np.asarray(values)
        out[name] = arr if arr.dtype.kind in "biuf" else list(values)
    return out
