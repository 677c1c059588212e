"""Stale runs are found by the writer's OS lock, not by its pid alone.

Real writers in child processes hold their stores open (or die by SIGKILL); the run rows are
then changed to what another container or a reused pid would leave behind: a pid that does
not exist here, pid 1 (alive in every container), another host.
"""
from __future__ import annotations

import os
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from tunewidgets.tracking import _liveness
from tunewidgets.tracking.store import Store

REPO = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.skipif(_liveness.fcntl is None, reason="needs fcntl locks")


def change(db: Path, sql: str, args: tuple = ()) -> None:
    conn = sqlite3.connect(db)
    try:
        conn.execute(sql, args)
        conn.commit()
    finally:
        conn.close()


def peek(db: Path, sql: str, args: tuple = ()) -> list[tuple]:
    conn = sqlite3.connect(db)
    try:
        return conn.execute(sql, args).fetchall()
    finally:
        conn.close()


def unused_pid() -> int:
    pid = 4_000_000
    while _liveness.pid_alive(pid):
        pid -= 1
    return pid


class Child:
    """A writer process: ``hold`` keeps its store open until ``stop()``; ``die`` is SIGKILLed at once."""

    def __init__(self, folder: Path, mode: str) -> None:
        env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
        self.proc = subprocess.Popen([sys.executable, str(Path(__file__).with_name("_writer_child.py")), str(folder),
                                      mode], stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                     text=True, env=env)
        self._watchdog = threading.Timer(60.0, self.proc.kill)
        self._watchdog.start()
        line = self.proc.stdout.readline()
        assert line.startswith("ready"), f"child said {line!r}: {self.proc.stderr.read()}"
        self.run = int(line.split()[1])
        self.pid = self.proc.pid
        if mode == "die":
            self.proc.wait(timeout=30)
            assert self.proc.returncode == -signal.SIGKILL

    def kill(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=30)
        self._close()

    def stop(self) -> None:
        self.proc.stdin.close()
        self.proc.wait(timeout=30)
        self._close()

    def _close(self) -> None:
        self._watchdog.cancel()
        for stream in (self.proc.stdin, self.proc.stdout, self.proc.stderr):
            if not stream.closed:
                stream.close()


def status(db: Path, run: int) -> str:
    return peek(db, "SELECT status FROM runs WHERE id = ?", (run,))[0][0]


def test_a_live_writer_of_another_container_is_not_interrupted(tmp_path):
    child = Child(tmp_path, "hold")
    db = tmp_path / "runs.sqlite"
    try:
        # as seen from another pid namespace and host: a pid that does not exist here
        change(db, "UPDATE runs SET writer_pid = ?, writer_host = 'other-container' WHERE id = ?",
               (unused_pid(), child.run))
        with Store(tmp_path) as store:
            assert store.interrupted == () and store.run(child.run)["status"] == "running"
    finally:
        child.kill()
    with Store(tmp_path) as store:  # its lock went with it
        assert store.interrupted == (child.run,)
        assert "other-container" in store.run(child.run)["error"]


def test_a_dead_writer_that_was_pid_1_is_interrupted(tmp_path):
    child = Child(tmp_path, "die")
    db = tmp_path / "runs.sqlite"
    assert _liveness.pid_alive(1)
    for host in (socket.gethostname(), "restarted-container"):
        change(db, "UPDATE runs SET status = 'running', writer_pid = 1, writer_host = ? WHERE id = ?",
               (host, child.run))
        lock = _liveness.lock_dir(db) / f"{peek(db, 'SELECT writer_token FROM runs')[0][0]}.lock"
        with Store(tmp_path) as store:
            assert store.interrupted == (child.run,), host
        assert status(db, child.run) == "interrupted" and not lock.exists()


def dead_writer_run(folder: Path) -> tuple[int, str]:
    """A run left ``running`` by a writer that died: its lock file is there, and nobody holds it."""
    with Store(folder) as store:
        run, token = store.start_run(), store._writer.token
    lock = _liveness.lock_dir(folder / "runs.sqlite") / f"{token}.lock"
    lock.write_text("{}")  # what a SIGKILL leaves behind (see the pid-1 test for a real one)
    return run, token


@pytest.fixture()
def sleeper():
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    yield proc
    proc.kill()
    proc.wait()


def test_a_reused_pid_does_not_keep_a_dead_run_running(tmp_path, sleeper):
    run, _ = dead_writer_run(tmp_path)
    change(tmp_path / "runs.sqlite", "UPDATE runs SET writer_pid = ? WHERE id = ?", (sleeper.pid, run))  # live now
    with Store(tmp_path) as store:
        assert store.interrupted == (run,)


@pytest.mark.parametrize("host, started, stale", [
    ("here", "other", True),    # the pid runs, but it is a later process: pid reuse
    ("here", "same", False),    # the very process: alive
    ("elsewhere", "other", False),  # another host, and no lock to ask: leave it
])
def test_without_a_usable_lock_host_and_start_time_decide(tmp_path, monkeypatch, sleeper, host, started, stale):
    run, _ = dead_writer_run(tmp_path)
    real = _liveness.process_start_time(sleeper.pid)
    assert real is not None
    change(tmp_path / "runs.sqlite",
           "UPDATE runs SET writer_pid = ?, writer_host = ?, writer_started = ? WHERE id = ?",
           (sleeper.pid, socket.gethostname() if host == "here" else host,
            real if started == "same" else real - 3600.0, run))
    monkeypatch.setattr(_liveness, "lock_state", lambda db, token: _liveness.UNKNOWN)  # e.g. no locks on NFS
    with Store(tmp_path) as store:
        assert store.interrupted == ((run,) if stale else ())


def test_lock_files_live_and_go_with_their_writers(tmp_path):
    db = tmp_path / "runs.sqlite"
    with Store(tmp_path) as store:
        token = store._writer.token
        lock = _liveness.lock_dir(db) / f"{token}.lock"
        assert lock.exists() and _liveness.lock_state(db, token) == "held"
        run = store.start_run()
        assert peek(db, "SELECT writer_host, writer_lock FROM runs") == [(socket.gethostname(), 1)]
        started = peek(db, "SELECT writer_started FROM runs")[0][0]
        assert started == pytest.approx(_liveness.process_start_time(os.getpid()))
    assert not lock.exists()  # closed: the lock file went
    # a writer killed after its runs ended leaves a lock file; the next open sweeps it
    child = Child(tmp_path, "hold")
    change(db, "UPDATE runs SET status = 'finished' WHERE id = ?", (child.run,))
    child.kill()
    left = list(_liveness.lock_dir(db).glob("*.lock"))
    assert len(left) == 1 and _liveness.lock_state(db, left[0].stem) == "free"
    with Store(tmp_path) as store:
        assert store.interrupted == () and store.run(run)["status"] == "interrupted"  # closed unfinished above
        assert [p.stem for p in _liveness.lock_dir(db).glob("*.lock")] == [store._writer.token]


def test_rows_of_an_older_store_fall_back_to_the_pid(tmp_path):
    """A version 1 store has no host, start time or lock for its rows: the pid decides, as it did."""
    with Store(tmp_path) as store:
        run = store.start_run()
        other = store.start_run()
    db = tmp_path / "runs.sqlite"
    change(db, "UPDATE runs SET status = 'running', writer_host = NULL, writer_started = NULL, writer_lock = 0")
    change(db, "UPDATE runs SET writer_pid = ? WHERE id = ?", (unused_pid(), run))
    change(db, "UPDATE runs SET writer_pid = ?, writer_token = 'gone' WHERE id = ?", (os.getppid(), other))
    with Store(tmp_path) as store:
        assert store.interrupted == (run,)  # the parent pid runs: its row is left running
