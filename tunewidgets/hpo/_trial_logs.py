"""A trial's TensorBoard and MLflow sinks in a search: made from the study's ``StudyLog``, fed the
records the driver gets, closed when the trial ends. Logging never ends a trial: a sink that
raises keeps the error in its ``errors`` and the trial goes on (the store is the record).

Example:
    >>> import tempfile
    >>> from tunewidgets.tracking import StudyLog
    >>> log = StudyLog("demo", tensorboard=tempfile.mkdtemp())
    >>> sinks = trial_sinks(log, 0, {"lr": 0.1})
    >>> [type(s).__name__ for s in sinks], trial_sinks(None, 0, {})
    (['TensorBoardSink'], [])
    >>> close_sinks(sinks); sinks
    []
"""
from __future__ import annotations

from typing import Any

from tunewidgets.tracking.study_log import StudyLog

__all__ = ["trial_sinks", "feed_sinks", "close_sinks"]


def trial_sinks(log: StudyLog | None, number: int, params: dict[str, Any]) -> list[Any]:
    """The sinks of trial ``number`` (``<logdir>/<study>/trial-<n>``, an MLflow child run); [] without a log."""
    if log is None:
        return []
    return log.sinks(trial=number, kind="trial", name=f"trial-{number:04d}", params=params)


def feed_sinks(sinks: list[Any], event: str, record: dict[str, Any]) -> None:
    """Hand one record to each sink; an error is kept in the sink's ``errors``, never raised."""
    for sink in sinks:
        try:
            sink.handle(event, record)
        except Exception as exc:  # noqa: BLE001 - logging must not end a trial
            errors = getattr(sink, "errors", None)
            if isinstance(errors, list):
                errors.append(f"{type(sink).__name__}: {type(exc).__name__}: {exc}")


def close_sinks(sinks: list[Any]) -> None:
    """Close and forget every sink of the list (emptied in place, so a second call does nothing)."""
    while sinks:
        sink = sinks.pop()
        try:
            sink.close()
        except Exception:  # noqa: BLE001 - the trial's record in the store is what counts
            pass
