"""What a failed store write is: the warning, the error a search ends with, and the record of it.

A failed write never reaches the training that logs (``StoreWarning``, and a ``WriteFailure`` in
``Store.errors``); a caller that cannot go on without the store (a search's next trial) gets a
``StoreWriteError`` whose one line names the store's file, the cause and, for a full disk, the disk.

Example:
    >>> from pathlib import Path
    >>> from tunewidgets.tracking._write_errors import WriteFailure, write_failure_text
    >>> write_failure_text(Path("runs/runs.sqlite"), OSError("database is locked"))
    'the store runs/runs.sqlite could not be written (database is locked)'
    >>> str(WriteFailure("metrics", "disk I/O error", "runs.sqlite", run_id=3, count=2))
    'metrics (run 3) failed 2x on runs.sqlite: disk I/O error; not written'
"""
from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

__all__ = ["StoreWarning", "StoreWriteError", "WriteFailure", "write_failure_text"]


class StoreWarning(UserWarning):
    """A write to the run store failed; training goes on (see ``Store.errors``)."""


class StoreWriteError(RuntimeError):
    """The store could not be written where the caller cannot go on without it (a search's next
    trial): one line naming the store's file, the cause and, for a full disk, the disk."""


def write_failure_text(db: Path, exc: BaseException) -> str:
    """``the store <file> could not be written (<cause>; the disk holding <folder> is full: N kB free)``."""
    cause = str(exc) or type(exc).__name__
    text = f"the store {db} could not be written ({cause}"
    if "full" in cause.lower() or getattr(exc, "sqlite_errorname", None) == "SQLITE_FULL":
        try:
            free = f": {shutil.disk_usage(db.parent).free / 1024:.0f} kB free"
        except OSError:
            free = ""
        text += f"; the disk holding {db.parent} is full{free}"
    return text + ")"


@dataclass
class WriteFailure:
    """One kind of failed write: what (``op``: "metrics", "finish_run", "close", "open"), why,
    where, for which run, how often, and whether a later try wrote it after all (``resolved``).

    ``rows``: metric rows waiting when it last failed; ``dropped``: rows given up (the memory
    cap while failing, or still unwritten when the store closed).
    """

    op: str
    error: str
    path: str
    run_id: int | None = None
    count: int = 1
    rows: int = 0
    dropped: int = 0
    first_at: float = 0.0
    last_at: float = 0.0
    resolved: bool = False

    def __str__(self) -> str:
        run = f" (run {self.run_id})" if self.run_id is not None else ""
        state = "written on a later try" if self.resolved else "not written"
        return f"{self.op}{run} failed {self.count}x on {self.path}: {self.error}; {state}"
