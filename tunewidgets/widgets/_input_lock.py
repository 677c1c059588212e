"""``InputLock``: the controls a run reads are disabled once its first point is on its way.

A Search's Launch disables about twenty controls, each a message the page applies (and lays
out) before the next one; sent at the click they reached the page ahead of the run's first
point and held it back by about 50 ms on two cores. So the lock waits for the first point, then
goes out right after that tick's patches, or ``after`` seconds past the Launch when no point
comes sooner (a slow first epoch). The run read its settings at the click: a value changed in
that moment is not used, as with a disabled control. Outside a running event loop (a script, a
test) it locks at once.

Example:
    >>> from tunewidgets.widgets._input_lock import InputLock
    >>> seen = []
    >>> lock = InputLock(seen.append)
    >>> lock.start(); seen           # no running loop: at once
    [True]
    >>> lock.finish(); lock.locked
    True
"""
from __future__ import annotations

import asyncio
from collections.abc import Callable

__all__ = ["InputLock"]


class InputLock:
    """Calls ``disable(True)`` once per run: after its first point, or ``after`` seconds."""

    def __init__(self, disable: Callable[[bool], None], after: float = 0.3) -> None:
        self.disable = disable
        self.after = after
        self.locked = True
        self._run = 0

    def start(self) -> None:
        """A run starts (its settings are read): lock soon."""
        self._run += 1
        self.locked = False
        loop = _running_loop()
        if loop is None:
            self._lock(self._run)
            return
        run = self._run
        loop.call_later(self.after, lambda: self._lock(run))

    def first_point(self) -> None:
        """A tick carries the run's first point: lock right after it (its patches go first)."""
        if self.locked:
            return
        loop = _running_loop()
        run = self._run
        if loop is None:
            self._lock(run)
        else:
            loop.call_soon(lambda: self._lock(run))

    def finish(self) -> None:
        """The run ended: a lock still to come is dropped (the widget enables its controls)."""
        self._run += 1
        self.locked = True

    def _lock(self, run: int) -> None:
        if run != self._run or self.locked:
            return
        self.locked = True
        self.disable(True)


def _running_loop() -> asyncio.AbstractEventLoop | None:
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return None
