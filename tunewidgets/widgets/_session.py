"""``BackgroundSession``: work in a worker thread, its records drained to the UI a few times a second.

The worker is a function ``worker(emit, stop) -> result``: it calls ``emit(record)`` for
each record (a cheap ``queue.put``) and returns soon after ``stop`` (a ``threading.Event``)
is set. Only the drain touches widgets: in a Jupyter kernel one asyncio task on the
kernel's loop calls :meth:`BackgroundSession.drain`, so the kernel stays free to handle button
clicks; with no running loop (a script, a test) :meth:`BackgroundSession.wait` drains on the
caller's thread until the worker is done.

On the loop, a tick comes as soon as there is something to show and no sooner than
``interval`` seconds after the tick before (counted from its start): the first record of a run
is drained at once, not an interval later; records that come faster wait for the next tick
(one batch each); the worker's end is drained at once, so a stopped run says so without
waiting for a tick. While nothing comes the task sleeps (no empty ticks): the worker wakes it
with at most one call into the loop per tick.

Example:
    >>> from tunewidgets.widgets._session import BackgroundSession
    >>> seen = []
    >>> def worker(emit, stop):
    ...     for i in range(5):
    ...         emit(i)
    ...     return "ok"
    >>> session = BackgroundSession(on_records=seen.extend, interval=0.01)
    >>> session.start(worker)
    >>> session.wait(), session.status, seen
    ('ok', 'finished', [0, 1, 2, 3, 4])
"""
from __future__ import annotations

import asyncio
import logging
import queue
import threading
import time
import traceback
from collections.abc import Callable
from typing import Any

from tunewidgets.engine.status import SESSION_STATUSES

__all__ = ["BackgroundSession", "Worker", "STATES"]

Worker = Callable[[Callable[[Any], None], threading.Event], Any]
STATES = SESSION_STATUSES

_log = logging.getLogger(__name__)


class BackgroundSession:
    """Runs one worker at a time in a thread and feeds its records, in order, to ``on_records``.

    Args:
        on_records: called on the draining thread with the list of records emitted since
            the last tick (one call per tick, never with an empty list).
        on_done: called once on the draining thread after the last records, with the session
            (read ``status``, ``result``, ``error``, ``error_traceback``).
        interval: the least number of seconds between two ticks (0.25 by default).

    ``status`` goes ``idle -> running (-> stopping) -> finished | stopped | failed``.
    An exception in the worker, or in ``on_records``, ends the session as ``failed`` with
    ``error`` and ``error_traceback`` set; it is never raised into the kernel's loop.
    """

    def __init__(self, on_records: Callable[[list[Any]], None] | None = None,
                 on_done: Callable[["BackgroundSession"], None] | None = None,
                 interval: float = 0.25) -> None:
        if not isinstance(interval, (int, float)) or isinstance(interval, bool) or not interval > 0:
            raise ValueError(f"interval: must be a number of seconds > 0, got {interval!r}; e.g. 0.25")
        self.on_records = on_records
        self.on_done = on_done
        self.interval = float(interval)
        self.status = "idle"
        self.result: Any = None
        self.error: BaseException | None = None
        self.error_traceback = ""
        self.records_seen = 0
        self.ticks = 0
        self.drain_seconds = 0.0
        self.finished_on_loop = False
        self.started_at: float | None = None
        self.elapsed = 0.0
        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._stop = threading.Event()
        self._worker_done = threading.Event()
        self._finished = threading.Event()
        self._closing = False
        self._loop_tick = False
        self._thread: threading.Thread | None = None
        self._task: asyncio.Task[None] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._wakeup: asyncio.Event | None = None
        self._armed = False  # the loop task waits for records: the next emit wakes it
        self.wakeups = 0  # calls the worker made into the loop (at most one per tick)
        self._lock = threading.RLock()

    # -- state ----------------------------------------------------------------------------
    @property
    def running(self) -> bool:
        """True from :meth:`start` until the last records are drained."""
        return self.status in ("running", "stopping")

    @property
    def done(self) -> bool:
        """True once the worker ended and everything it emitted was drained."""
        return self._finished.is_set()

    @property
    def stop_event(self) -> threading.Event:
        return self._stop

    @property
    def draining_on_loop(self) -> bool:
        """True when an asyncio task drains this session (inside a Jupyter kernel)."""
        return self._task is not None and not self._task.done()

    # -- control --------------------------------------------------------------------------
    def start(self, worker: Worker) -> None:
        """Start ``worker(emit, stop)`` in a thread; drain on the running asyncio loop if there is one."""
        if not callable(worker):
            raise TypeError(f"worker: expected a callable worker(emit, stop), got {worker!r}")
        with self._lock:
            if self.running:
                raise RuntimeError("the session is still running; call stop() and wait() before starting again")
            self.status = "running"
            self.result, self.error, self.error_traceback = None, None, ""
            self.records_seen = self.ticks = 0
            self.drain_seconds = 0.0
            self.finished_on_loop = False
            self._queue = queue.SimpleQueue()
            self._stop = threading.Event()
            self._worker_done = threading.Event()
            self._finished = threading.Event()
            self._closing = False
            self._armed = False
            self.wakeups = 0
            self.started_at, self.elapsed = time.perf_counter(), 0.0
            try:
                loop: asyncio.AbstractEventLoop | None = asyncio.get_running_loop()
            except RuntimeError:
                loop = None  # no loop: the caller drains with wait()
            self._loop, self._wakeup = loop, (asyncio.Event() if loop is not None else None)
            self._task = loop.create_task(self._drain_on_loop()) if loop is not None else None
            self._thread = threading.Thread(target=self._run_worker, args=(worker,),
                                            name="tunewidgets-worker", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        """Ask the worker to stop (it checks the event every step); safe from any thread."""
        self._stop.set()
        with self._lock:
            if self.status == "running":
                self.status = "stopping"

    def wait(self, timeout: float | None = None) -> Any:
        """Drain on this thread until the worker is done; return its result (None if it failed).

        Raises TimeoutError if ``timeout`` seconds pass first (the worker keeps running).
        """
        deadline = None if timeout is None else time.perf_counter() + timeout
        while not self.done:
            if self.status == "idle":
                return None
            self._worker_done.wait(self.interval)
            self.drain()
            if deadline is not None and time.perf_counter() > deadline and not self.done:
                raise TimeoutError(f"the worker is still running after {timeout} s; call stop() to end it")
        return self.result

    async def wait_async(self) -> Any:
        """Like :meth:`wait`, without blocking the loop (``await session.wait_async()`` in a cell)."""
        while not self.done and self.status != "idle":
            await asyncio.sleep(min(self.interval / 2, 0.02))
            if self._task is None:
                self.drain()
        return self.result

    # -- draining -------------------------------------------------------------------------
    def drain(self) -> int:
        """One tick: hand all queued records to ``on_records``; finish if the worker is done.

        Returns the number of records handed over. Call it from the thread that owns the UI.
        The time spent here adds up in ``drain_seconds`` (the UI's share of a run).
        """
        with self._lock:
            if self._closing or self.status == "idle":
                return 0
            t0 = time.perf_counter()
            try:
                return self._drain()
            finally:
                self.drain_seconds += time.perf_counter() - t0

    def _drain(self) -> int:
        worker_done = self._worker_done.is_set()  # read before emptying the queue
        records = []
        while True:
            try:
                records.append(self._queue.get_nowait())
            except queue.Empty:
                break
        self.ticks += 1
        if records:
            self.records_seen += len(records)
            if self.on_records is not None:
                try:
                    self.on_records(records)
                except Exception as exc:  # a UI bug must not be lost in a loop task
                    self._fail(exc)
                    self._stop.set()
        if worker_done:
            self._finish()
        return len(records)

    async def _drain_on_loop(self) -> None:
        loop = asyncio.get_running_loop()
        next_at = loop.time()  # the first tick: as soon as the first record comes
        while not self.done:
            rest = next_at - loop.time()
            if rest > 0:  # the least time between ticks; the worker's end cuts it short
                await self._sleep(rest)
            if self._queue.empty() and not self._worker_done.is_set():
                self._wakeup.clear()
                self._armed = True
                if self._queue.empty() and not self._worker_done.is_set():  # nothing came meanwhile
                    await self._sleep(max(self.interval, 1.0))  # a guard: a lost wake-up costs a second
                self._armed = False
            next_at = loop.time() + self.interval
            self._loop_tick = True
            try:
                self.drain()
            except Exception:  # pragma: no cover - drain itself catches callback errors
                _log.exception("tunewidgets: draining the worker's records failed")
                return
            finally:
                self._loop_tick = False

    async def _sleep(self, seconds: float) -> None:
        """Sleep up to ``seconds``, or until the worker wakes the loop (a record while armed, its end)."""
        wakeup = self._wakeup
        if wakeup is None or self._worker_done.is_set():
            return
        wakeup.clear()
        if self._worker_done.is_set() or (self._armed and not self._queue.empty()):
            return
        try:
            await asyncio.wait_for(wakeup.wait(), seconds)
        except asyncio.TimeoutError:
            pass

    # -- worker side ----------------------------------------------------------------------
    def _emit(self, record: Any) -> None:
        self._queue.put(record)
        if self._armed:  # the loop task sleeps until something comes: wake it, once
            self._armed = False
            self._wake()

    def _wake(self) -> None:
        loop, wakeup = self._loop, self._wakeup
        if loop is None or wakeup is None:
            return
        self.wakeups += 1
        try:
            loop.call_soon_threadsafe(wakeup.set)
        except RuntimeError:  # the loop was closed (the kernel is shutting down)
            pass

    def _run_worker(self, worker: Worker) -> None:
        try:
            self.result = worker(self._emit, self._stop)
        except BaseException as exc:  # noqa: BLE001 - shown in the UI, not raised in a thread
            self._fail(exc)
        finally:
            self._worker_done.set()
            self._wake()  # its end is shown at once, not at the next tick

    def _fail(self, exc: BaseException) -> None:
        if self.error is None:
            self.error = exc
            self.error_traceback = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))

    def _finish(self) -> None:
        if self.error is not None:
            self.status = "failed"
        elif self._stop.is_set():
            self.status = "stopped"
        else:
            self.status = "finished"
        self.elapsed = time.perf_counter() - (self.started_at or time.perf_counter())
        self.finished_on_loop = self._loop_tick
        self._closing = True
        try:
            if self.on_done is not None:
                self.on_done(self)
        except Exception as exc:
            self._fail(exc)
            self.status = "failed"
            _log.exception("tunewidgets: finishing the widget after the run failed")
        finally:
            self._finished.set()
