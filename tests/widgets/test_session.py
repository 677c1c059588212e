"""BackgroundSession: records in order, one call per tick, stop within a step, errors kept."""
from __future__ import annotations

import asyncio
import threading
import time

import pytest

from tunewidgets.widgets._session import BackgroundSession


class Sink:
    def __init__(self) -> None:
        self.calls: list[list[int]] = []
        self.done: list[str] = []
        self.threads: set[str] = set()

    def records(self, records: list[int]) -> None:
        self.threads.add(threading.current_thread().name)
        self.calls.append(list(records))

    def finish(self, session: BackgroundSession) -> None:
        self.done.append(session.status)

    @property
    def seen(self) -> list[int]:
        return [r for call in self.calls for r in call]


def counting_worker(n: int, pause: float = 0.0):
    def worker(emit, stop):
        for i in range(n):
            if stop.is_set():
                return i
            emit(i)
            if pause:
                time.sleep(pause)
        return n
    return worker


def test_records_reach_the_sink_in_order_one_call_per_tick():
    sink = Sink()
    first_call = threading.Event()
    records = sink.records

    def on_records(batch):
        records(batch)
        first_call.set()

    def worker(emit, stop):
        # half, then wait until a tick has drained some: at least two calls, however the threads are paced
        for i in range(300):
            if i == 150:
                first_call.wait(60)
            emit(i)
        return 300

    session = BackgroundSession(on_records=on_records, on_done=sink.finish, interval=0.01)
    session.start(worker)
    assert session.status == "running" and not session.draining_on_loop
    assert session.wait() == 300
    assert sink.seen == list(range(300))
    assert len(sink.calls) > 1 and all(sink.calls)  # several ticks, never an empty call
    assert sink.threads == {threading.current_thread().name}  # drained on the waiting thread
    assert sink.done == ["finished"] and session.status == "finished" and session.records_seen == 300
    assert session.wait() == 300 and sink.done == ["finished"]  # finishing happens once


def test_stop_from_another_thread_halts_the_worker_within_a_step():
    # the worker waits at step 20 until the other thread has pressed stop: no race with its pace
    reached, pressed = threading.Event(), threading.Event()

    def worker(emit, stop):
        i = 0
        while not stop.is_set():
            emit(i)
            i += 1
            if i == 20:
                reached.set()
                pressed.wait(60)
        return i

    session = BackgroundSession(interval=0.01)
    session.start(worker)

    def stopper():
        reached.wait(60)
        session.stop()
        pressed.set()

    t = threading.Thread(target=stopper)
    t.start()
    steps = session.wait(timeout=60)
    t.join()
    assert session.status == "stopped"
    assert steps == 20  # no step after the one in progress when stop was set


def test_worker_exception_is_kept_not_raised():
    sink = Sink()

    def worker(emit, stop):
        emit(1)
        raise RuntimeError("exploded at step 1")

    session = BackgroundSession(on_records=sink.records, on_done=sink.finish, interval=0.01)
    session.start(worker)
    assert session.wait() is None
    assert session.status == "failed" and sink.done == ["failed"]
    assert isinstance(session.error, RuntimeError) and "exploded at step 1" in str(session.error)
    assert "in worker" in session.error_traceback and "RuntimeError" in session.error_traceback
    assert sink.seen == [1]  # what came before the error still arrived


def test_an_error_in_the_sink_stops_the_worker_and_fails():
    def bad_sink(records):
        raise KeyError("plot column")

    session = BackgroundSession(on_records=bad_sink, interval=0.01)
    session.start(counting_worker(10_000, pause=0.001))
    steps = session.wait(timeout=10)
    assert session.status == "failed" and isinstance(session.error, KeyError)
    assert steps < 10_000


def test_on_a_running_loop_a_task_drains():
    sink = Sink()

    async def main():
        session = BackgroundSession(on_records=sink.records, on_done=sink.finish, interval=0.01)
        session.start(counting_worker(50, pause=0.001))
        assert session.draining_on_loop
        result = await session.wait_async()
        return session, result

    session, result = asyncio.run(main())
    assert result == 50 and sink.seen == list(range(50)) and sink.done == ["finished"]
    assert session.ticks >= 2


def test_misuse_is_refused():
    with pytest.raises(ValueError, match="interval: must be a number of seconds > 0, got 0"):
        BackgroundSession(interval=0)
    session = BackgroundSession(interval=0.01)
    with pytest.raises(TypeError, match="worker"):
        session.start("not callable")
    assert session.wait() is None and session.status == "idle"  # never started: nothing to wait for
    release = threading.Event()
    session.start(lambda emit, stop: release.wait(10))
    with pytest.raises(RuntimeError, match="still running"):
        session.start(counting_worker(1))
    with pytest.raises(TimeoutError, match="still running after"):
        session.wait(timeout=0)  # the worker waits for release: it cannot end first
    release.set()
    assert session.wait() is True and session.status == "finished"
    session.start(counting_worker(3))  # a finished session starts again, fresh
    assert session.wait() == 3 and session.records_seen == 3


# A whole hour between ticks: a tick that waited for the interval would end the test at its guard.
HOUR = 3600.0


def run_on_loop(session_coroutine):
    return asyncio.run(asyncio.wait_for(session_coroutine, timeout=60))


def test_on_a_loop_the_first_record_is_drained_at_once_not_after_an_interval():
    calls, drained = [], threading.Event()

    def on_records(batch):
        calls.append(list(batch))
        drained.set()

    def worker(emit, stop):
        emit("first")
        return drained.wait(60)  # True only if the loop drained it while the worker waited

    async def main():
        session = BackgroundSession(on_records=on_records, interval=HOUR)
        session.start(worker)
        return session, await session.wait_async()

    session, result = run_on_loop(main())
    assert result is True and calls == [["first"]] and session.status == "finished"
    assert session.ticks == 2  # the first record, then the worker's end (at once, too)


def test_on_a_loop_records_between_ticks_come_in_one_batch_and_wake_the_loop_once():
    calls, drained = [], threading.Event()

    def on_records(batch):
        calls.append(list(batch))
        drained.set()

    def worker(emit, stop):
        emit(0)
        drained.wait(60)
        for i in range(1, 50):  # within the interval after the first tick: they wait for the next
            emit(i)
        return "done"

    async def main():
        session = BackgroundSession(on_records=on_records, interval=HOUR)
        session.start(worker)
        return session, await session.wait_async()

    session, result = run_on_loop(main())
    assert result == "done" and calls == [[0], list(range(1, 50))]
    assert session.wakeups <= 2  # the first record (unless the task found it queued) and the end


def test_on_a_loop_a_stopped_worker_is_shown_stopped_without_waiting_for_a_tick():
    steps, done = [], []

    def worker(emit, stop):
        while not stop.is_set():
            emit(len(steps))
            steps.append(1)
            time.sleep(0.001)
        return len(steps)

    async def main():
        session = BackgroundSession(on_records=lambda batch: None, on_done=lambda s: done.append(s.status),
                                    interval=HOUR)
        session.start(worker)
        while session.records_seen == 0:  # the first tick came (at once)
            await asyncio.sleep(0.001)
        session.stop()
        assert session.status == "stopping"
        return session, await session.wait_async()

    session, result = run_on_loop(main())
    assert done == ["stopped"] and session.status == "stopped" and result == len(steps)
    assert session.ticks == 2  # the first record, then the end with the rest: no interval between
