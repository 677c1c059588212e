"""Run control: how a run is told to end early, and the process-wide slot every run trains in.

- ``RunStop``: a stop flag with an optional parent (a search's or a widget's stop); a run halts
  within one step of its own flag or any parent's, with the status the flag was set with
  ("stopped" or "pruned").
- ``StopRun``: an exception an event handler raises to end the run at once with a status
  (a pruner raises ``StopRun("pruned")`` from an EVAL handler).
- ``run_slot``: every run (training, range test, trial) holds this re-entrant process-wide lock
  while it trains. PyTorch's default generator (dropout, ``randperm``, initialisation) is global
  to the process, so two runs interleaving on two threads would draw from each other's stream;
  holding the slot makes the same seed and config give the same run whatever else runs.

Example:
    >>> from tunewidgets.engine.control import RunStop
    >>> search = RunStop()
    >>> trial = RunStop(parent=search)
    >>> trial.is_set(), search.set("stopped"), trial.is_set(), trial.status
    (False, None, True, 'stopped')
"""
from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterator
from typing import Any

from tunewidgets.engine.status import EARLY_STATUSES

__all__ = ["StopRun", "RunStop", "EARLY_STATUSES", "run_slot", "run_slot_busy"]



def _check_status(status: Any) -> str:
    if status not in EARLY_STATUSES:
        raise ValueError(f"status: a run can be ended early as 'stopped' or 'pruned', got {status!r}")
    return status


class StopRun(Exception):
    """Raise from any event handler (STEP, LOG, EPOCH, EVAL) to end the run now.

    The run ends with ``status`` ("stopped" or "pruned"); END still fires, ``run.status`` and
    ``run.reason`` say so. Nothing after the handler runs for that step.
    """

    def __init__(self, status: str = "stopped", reason: str | None = None) -> None:
        self.status = _check_status(status)
        self.reason = reason
        super().__init__(f"{status}" + (f": {reason}" if reason else ""))


class RunStop:
    """A stop flag; ``is_set()`` is true once it or any parent is set.

    Args:
        parent: another ``RunStop``, a ``threading.Event`` (anything with ``is_set()``), or None.

    ``set(status)`` may be called from any thread; ``status`` is the status of the flag that
    was set first along the chain ("stopped" for a plain ``threading.Event``).
    """

    __slots__ = ("_event", "_status", "_reason", "parent")

    def __init__(self, parent: Any = None) -> None:
        if parent is not None and not callable(getattr(parent, "is_set", None)):
            raise TypeError(f"stop: expected a threading.Event or a RunStop (anything with is_set()), "
                            f"got {parent!r}")
        self._event = threading.Event()
        self._status = "stopped"
        self._reason: str | None = None
        self.parent = parent

    def set(self, status: str = "stopped", reason: str | None = None) -> None:
        status = _check_status(status)
        if not self._event.is_set():
            self._status, self._reason = status, reason
        self._event.set()

    def clear(self) -> None:
        """Clear this flag (not its parents)."""
        self._event.clear()
        self._status, self._reason = "stopped", None

    def is_set(self) -> bool:
        if self._event.is_set():
            return True
        parent = self.parent
        return parent is not None and parent.is_set()

    def _source(self) -> Any:
        if self._event.is_set():
            return self
        parent = self.parent
        if isinstance(parent, RunStop):
            return parent._source()
        return parent if parent is not None and parent.is_set() else None

    @property
    def status(self) -> str:
        """The status of the flag that is set ("stopped" when none is, or a plain Event is)."""
        src = self._source()
        return src._status if isinstance(src, RunStop) else "stopped"

    @property
    def reason(self) -> str | None:
        src = self._source()
        return src._reason if isinstance(src, RunStop) else None

    def wait(self, timeout: float | None = None) -> bool:
        """Wait until this flag (not a parent) is set, at most ``timeout`` seconds."""
        return self._event.wait(timeout)

    def __repr__(self) -> str:
        return f"RunStop(set={self.is_set()}, status={self.status!r})"


_SLOT = threading.RLock()
_holder: list[int | None] = [None]


def run_slot_busy() -> bool:
    """True when another thread holds the run slot (a run is training there)."""
    holder = _holder[0]
    return holder is not None and holder != threading.get_ident()


@contextlib.contextmanager
def run_slot(stop: Any = None, on_wait: Callable[[], Any] | None = None,
             poll: float = 0.05) -> Iterator[bool]:
    """Hold the process-wide run slot; yields True, or False when ``stop`` was set while waiting.

    Re-entrant: a run that starts another on the same thread (a search running trials) does
    not wait for itself. ``on_wait()`` is called once when another thread holds the slot.
    """
    got = _SLOT.acquire(blocking=False)
    if not got:
        if on_wait is not None:
            on_wait()
        while not got:
            if stop is not None and stop.is_set():
                yield False
                return
            got = _SLOT.acquire(timeout=poll)
    previous = _holder[0]
    _holder[0] = threading.get_ident()
    try:
        yield True
    finally:
        _holder[0] = previous
        _SLOT.release()
