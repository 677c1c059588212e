"""A Python child process to SIGKILL mid-work, as a crash or ``kill -9`` would end a run.

    with child(script, folder, "3000", timeout=120) as proc:
        line = ready_line(proc, "ready")   # blocks until the child says it got there
        kill9(proc)                        # asserts it was still running, kills, waits

The child runs with the repository (and ``extra_path``) on ``PYTHONPATH``; a watchdog kills it
after ``timeout`` seconds, so a hung child fails the test instead of hanging it. Its pipes are
closed and it is reaped on exit, whatever happened.
"""
from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


@contextlib.contextmanager
def child(script: Path, *args: object, timeout: float, extra_path: tuple[Path, ...] = ()) -> Iterator[subprocess.Popen]:
    if not hasattr(signal, "SIGKILL"):
        pytest.skip("needs SIGKILL")
    path = [str(REPO), *map(str, extra_path), os.environ.get("PYTHONPATH", "")]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(path)}
    proc = subprocess.Popen([sys.executable, str(script), *map(str, args)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env)
    watchdog = threading.Timer(timeout, proc.kill)
    watchdog.start()
    try:
        yield proc
    finally:
        watchdog.cancel()
        proc.kill()
        proc.wait(timeout=10)
        proc.stdout.close()
        proc.stderr.close()


def ready_line(proc: subprocess.Popen, prefix: str) -> str:
    """The child's first line; it must start with ``prefix`` (else its stderr is shown)."""
    line = proc.stdout.readline()
    assert line.startswith(prefix), f"child said {line!r}; stderr: {proc.stderr.read()}"
    return line


def kill9(proc: subprocess.Popen) -> None:
    """SIGKILL a child that must still be running, and wait for it."""
    assert proc.poll() is None, "the child ended before it was killed"
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=10)
    assert proc.returncode == -signal.SIGKILL
