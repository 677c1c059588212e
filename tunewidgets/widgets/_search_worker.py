"""The ``Search`` widget's side of the search thread: what runs off the kernel's thread.

- :class:`Relay`: one of ``tw.search``'s ``callbacks``; in the search's thread it turns each
  trial record into a small tuple on the widget's queue (``("start", n, time)``, ``("eval", n,
  epoch, value)``, ``("end", n, status, value, error, time)``) and drops the LOG and EPOCH ones.
- :func:`search_worker`: the widget session's worker. It hands the relay the queue, waits for
  the search to end (stopping it when the session is stopped: Stop, a re-run cell, an
  interrupt) and, meanwhile, sends ``("importance", {key: share})`` now and then.

Example:
    >>> from tunewidgets.widgets._search_worker import Relay
    >>> seen = []
    >>> relay = Relay("val_accuracy")
    >>> relay("eval", {"trial": 0, "epoch": 0, "val_accuracy": 0.5, "run_id": 3})   # before connect: kept
    >>> relay("log", {"trial": 0, "rows": []})                                       # dropped
    >>> relay.connect(seen.append)
    >>> relay("end", {"trial": 0, "status": "pruned", "final": {"val_accuracy": 0.5}})
    >>> [r[:4] for r in seen]
    [('eval', 0, 1, 0.5), ('end', 0, 'pruned', 0.5)]
"""
from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any

__all__ = ["Relay", "search_worker", "IMPORTANCE_FROM"]

IMPORTANCE_FROM = 5  # finished trials before the first importance


def _number(v: Any) -> float:
    try:
        return float(v)
    except (TypeError, ValueError):
        return math.nan


class Relay:
    """``fn(event, record)`` for ``tw.search(callbacks=[...])``: slim tuples, in order, to ``emit``.

    Records that come before :meth:`connect` (the search starts before the widget's worker) wait
    in a buffer. ``finished`` counts finished trials (read by the worker to pace importance).
    """

    def __init__(self, metric: str) -> None:
        self.metric = metric
        self.finished = 0
        self._lock = threading.Lock()
        self._buffer: list[tuple[Any, ...]] = []
        self._emit: Callable[[Any], None] | None = None

    def __call__(self, event: str, record: Mapping[str, Any]) -> None:
        trial = record.get("trial")
        if trial is None:
            return
        if event == "eval":
            item: tuple[Any, ...] = ("eval", trial, int(record.get("epoch", 0)) + 1, _number(record.get(self.metric)))
        elif event == "start":
            item = ("start", trial, time.perf_counter())
        elif event == "end":
            status = record.get("status") or "failed"
            final = record.get("final") or {}
            error = record.get("error") or record.get("reason") if status in ("failed", "diverged") else None
            item = ("end", trial, status, _number(final.get(self.metric)), error, time.perf_counter())
            if status == "finished":
                self.finished += 1
        else:
            return
        self.put(item)

    def put(self, item: Any) -> None:
        emit = self._emit
        if emit is None:
            with self._lock:
                if self._emit is None:
                    self._buffer.append(item)
                    return
                emit = self._emit
        emit(item)

    def connect(self, emit: Callable[[Any], None]) -> None:
        """Send what waited, then every later record, to ``emit``."""
        with self._lock:
            for item in self._buffer:
                emit(item)
            self._buffer.clear()
            self._emit = emit


class _Importance:
    """Sends ``study.importance()`` from the widget's worker thread (never the drain): first after
    a few finished trials, then when their number grew by a fifth, and no more often than ten
    times its own cost (it holds the GIL the training and the kernel also need), and at the end."""

    def __init__(self, study: Any, emit: Any) -> None:
        self.study, self.emit = study, emit
        self.shown = 0
        self.next_at = 0.0
        self.keys = len(study.space.searched())

    def __call__(self, finished: int, final: bool = False) -> None:
        if self.keys < 1 or finished < IMPORTANCE_FROM or finished == self.shown:
            return
        if not final and (finished < self.shown * 1.2 or time.monotonic() < self.next_at):
            return
        t0 = time.monotonic()
        try:
            self.emit(("importance", self.study.importance()))
        except Exception as exc:  # noqa: BLE001 - e.g. too few distinct values; the search goes on
            self.emit(("importance", f"{type(exc).__name__}: {exc}"))
        self.shown = finished
        self.next_at = time.monotonic() + 10 * (time.monotonic() - t0)



def search_worker(study: Any, relay: Relay, interval: float) -> Callable[[Any, threading.Event], Any]:
    """The session worker of a search started with ``callbacks=[relay]``: returns the study when it ends."""

    def worker(emit: Any, stop: threading.Event) -> Any:
        relay.connect(emit)
        importance = _Importance(study, emit)
        while True:
            if stop.is_set():
                study.stop()
            try:
                study.wait(timeout=interval)
                break
            except TimeoutError:
                pass
            importance(relay.finished)
        importance(relay.finished, final=True)
        return study

    return worker
