"""InputLock on a running loop (as in a kernel): after the first point's tick, or ``after`` seconds,
once per run; a run that ended first never locks."""
from __future__ import annotations

import asyncio

from tunewidgets.widgets._input_lock import InputLock


def test_on_a_loop_the_lock_comes_right_after_the_tick_with_the_first_point():
    async def main():
        seen = []
        lock = InputLock(seen.append, after=3600)
        lock.start()
        assert seen == [] and not lock.locked  # the click: nothing yet
        lock.first_point()
        assert seen == []  # the tick's own messages go first
        await asyncio.sleep(0)
        assert seen == [True] and lock.locked
        lock.first_point()  # later points: once per run
        await asyncio.sleep(0)
        return seen
    assert asyncio.run(main()) == [True]


def test_on_a_loop_without_a_point_the_lock_comes_after_its_delay():
    async def main():
        seen = []
        lock = InputLock(seen.append, after=0)
        lock.start()
        assert seen == []
        for _ in range(100):  # a wait on the state, not on the clock
            if seen:
                break
            await asyncio.sleep(0.01)
        return seen
    assert asyncio.run(main()) == [True]


def test_a_run_that_ended_before_its_lock_never_locks_and_the_next_run_locks_once():
    async def main():
        seen = []
        lock = InputLock(seen.append, after=0)
        lock.start()
        lock.first_point()
        lock.finish()  # ended before the loop ran again: the controls are enabled by the widget
        await asyncio.sleep(0.05)
        assert seen == []
        lock.start()
        lock.first_point()
        await asyncio.sleep(0.05)  # the point's lock and the delayed one: only one locks
        return seen
    assert asyncio.run(main()) == [True]
