"""Reading the store's run rows: every value decoded on its own, so one bad value spoils nothing else.

Text columns are selected as bytes (``CAST(... AS BLOB)``) and decoded here: SQLite would
otherwise fail the whole query on one value that is not UTF-8. A JSON column that does not
parse (or nests too deeply) reads as None; plain text with bad bytes has them replaced. Each
such value is named by run and column (:class:`UnreadableValue`).

Example:
    >>> from tunewidgets.tracking._rows import RUN_COLUMNS, _run_record
    >>> row = dict.fromkeys(RUN_COLUMNS)
    >>> row.update(id=3, kind=b"train", params=b"{not json", status=b"finished")
    >>> record, problems = _run_record(tuple(row.values()))
    >>> record["kind"], record["params"], problems[0][0]
    ('train', None, 'params')
"""
from __future__ import annotations

import dataclasses
from typing import Any

from tunewidgets.tracking import _json

__all__ = ["RUN_COLUMNS", "UnreadableValue"]

RUN_COLUMNS = ("id", "study", "kind", "name", "params", "seed", "status", "started_at",
               "ended_at", "duration", "error", "final", "env", "perf")
_JSON_COLUMNS = ("params", "final", "env", "perf")


@dataclasses.dataclass(frozen=True)
class UnreadableValue:
    """A stored value that could not be read: which run, which column, why."""

    run_id: int
    column: str
    reason: str

    def __str__(self) -> str:
        return f"run {self.run_id}, column {self.column!r}: {self.reason}"


_TEXT_COLUMNS = ("study", "kind", "name", "params", "status", "error", "final", "env", "perf")
# text columns come back as bytes, decoded here: one bad value must not fail the whole query
_SELECT = ", ".join(f"CAST({c} AS BLOB)" if c in _TEXT_COLUMNS else c for c in RUN_COLUMNS)


def _run_record(row: tuple[Any, ...]) -> tuple[dict[str, Any], list[tuple[str, str]]]:
    """The run's record and the (column, reason) of each value that could not be read."""
    record = dict(zip(RUN_COLUMNS, row))
    problems: list[tuple[str, str]] = []
    for column in _TEXT_COLUMNS:
        value = record[column]
        if not isinstance(value, bytes):
            continue
        try:
            text = value.decode("utf-8")
        except UnicodeDecodeError as exc:
            problems.append((column, f"not UTF-8 text ({exc.reason} at byte {exc.start})"))
            record[column] = None if column in _JSON_COLUMNS else value.decode("utf-8", errors="replace")
            continue
        if column not in _JSON_COLUMNS:
            record[column] = text
            continue
        try:
            value = _json.loads(text)
        except (ValueError, RecursionError) as exc:
            what = "nested too deeply" if isinstance(exc, RecursionError) else str(exc)
            problems.append((column, f"not JSON ({what}); starts with {text[:40]!r}"))
            record[column] = None
            continue
        if value is not None and not isinstance(value, dict):  # every JSON column holds an object
            problems.append((column, f"JSON but not an object (a {type(value).__name__}); starts with "
                                     f"{text[:40]!r}"))
            value = None
        record[column] = value
    return record, problems
