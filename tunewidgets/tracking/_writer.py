"""The store's write side: one connection, a row buffer flushed in one transaction.

Rows wait in memory until the buffer holds ``batch_rows`` rows or the oldest has waited
``flush_interval`` seconds; then a background thread writes them, so the training thread
only appends to a list and never waits on the disk. An explicit flush writes at once, and a
buffer that outgrows ``BACKLOG`` batches is written by the caller (back-pressure). Each write
is one ``BEGIN IMMEDIATE ... COMMIT``, never one per step. Two locks: ``lock`` guards the
buffer (held for microseconds), ``db_lock`` the connection.
The thread and the finalizer hold this object, not the ``Store``, so a forgotten store is
still collected, flushed and closed.
"""
from __future__ import annotations

import os
import sqlite3
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

__all__ = ["Writer", "LIVE_TOKENS", "pid_alive"]

T = TypeVar("T")

# open tokens of stores not yet closed in this process: their running runs are not stale
LIVE_TOKENS: set[str] = set()

_INSERT = "INSERT INTO metrics (run, step, epoch, name, value) VALUES (?, ?, ?, ?, ?)"
BACKLOG = 8  # batches the buffer may hold before the caller writes them itself


class Writer:
    def __init__(self, conn: sqlite3.Connection, db: Path, token: str,
                 batch_rows: int, flush_interval: float) -> None:
        self.conn = conn
        self.db = db
        self.token = token
        self.batch_rows = batch_rows
        self.flush_interval = flush_interval
        self.lock = threading.RLock()
        self.db_lock = threading.RLock()
        self._wake = threading.Event()
        self.buffer: list[tuple[int, int, float | None, str, float]] = []
        self.first_buffered_at = 0.0
        self.transactions = 0
        self.rows_written = 0
        self.error: BaseException | None = None
        self.closed = False
        self._stop = threading.Event()
        LIVE_TOKENS.add(token)
        # started now, not on the first row, so that a training loop never pays for it
        self._thread: threading.Thread | None = threading.Thread(
            target=self._flush_loop, name="tunewidgets-store-flush", daemon=True)
        self._thread.start()

    def check_open(self) -> None:
        if self.closed:
            raise ValueError(f"store: {self.db} is closed; open it again with tw.Store(path)")

    def raise_background_error(self) -> None:
        err, self.error = self.error, None
        if err is not None:
            raise RuntimeError(
                f"store: writing buffered metrics to {self.db} failed in the background: {err}"
            ) from err

    def add(self, rows: list[tuple[int, int, float | None, str, float]]) -> None:
        with self.lock:
            self.check_open()
            self.raise_background_error()
            if not rows:
                return
            if not self.buffer:
                self.first_buffered_at = time.monotonic()
            self.buffer.extend(rows)
            size = len(self.buffer)
        if size >= BACKLOG * self.batch_rows:
            self.transact(None)
        elif size >= self.batch_rows:
            self._wake.set()

    def _due(self) -> bool:
        return bool(self.buffer) and (len(self.buffer) >= self.batch_rows
                                      or time.monotonic() - self.first_buffered_at >= self.flush_interval)

    def transact(self, work: Callable[[sqlite3.Connection], T] | None) -> T | None:
        """Write the buffered rows and run ``work(conn)`` in one transaction; return its result."""
        with self.db_lock:
            with self.lock:
                self.check_open()
                rows, self.buffer = self.buffer, []
            if not rows and work is None:
                return None
            conn = self.conn
            try:
                conn.execute("BEGIN IMMEDIATE")
                if rows:
                    conn.executemany(_INSERT, rows)
                result = work(conn) if work is not None else None
                conn.execute("COMMIT")
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                with self.lock:  # keep the rows, in order, for the next try
                    self.buffer[:0] = rows
                raise
            self.transactions += 1
            self.rows_written += len(rows)
            return result

    def read(self, work: Callable[[sqlite3.Connection], T]) -> T:
        with self.db_lock:
            self.check_open()
            return work(self.conn)

    def _flush_loop(self) -> None:
        tick = min(0.25, max(0.01, self.flush_interval / 4))
        while not self._stop.is_set():
            self._wake.wait(tick)
            self._wake.clear()
            with self.lock:
                if self.closed:
                    return
                due = self._due()
            if due:
                try:
                    self.transact(None)
                except Exception as exc:  # raised to the caller on its next store call
                    with self.lock:
                        self.error = exc
                        self.first_buffered_at = time.monotonic()  # retry after another interval

    def close(self) -> None:
        """Flush, then close the connection; safe to call twice."""
        with self.db_lock:
            if self.closed:
                return
            try:
                self.transact(None)
            finally:
                with self.lock:
                    self.closed = True
                self._stop.set()
                self._wake.set()
                LIVE_TOKENS.discard(self.token)
                self.conn.close()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout=2.0)


def pid_alive(pid: int | None) -> bool:
    """Whether process ``pid`` still runs on this machine (a zombie counts as gone)."""
    if pid is None or pid <= 0:
        return False
    if os.name == "nt":  # os.kill(pid, 0) would end the process on Windows
        return _pid_alive_windows(pid)
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # exists, owned by someone else
    except OSError:
        return False
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            state = fh.read().rsplit(b")", 1)[1].split()[0]
    except (OSError, IndexError):
        return True  # no /proc (macOS): os.kill said it exists
    return state not in (b"Z", b"X")


def _pid_alive_windows(pid: int) -> bool:  # pragma: no cover - exercised on Windows only
    import ctypes

    kernel32: Any = ctypes.windll.kernel32  # type: ignore[attr-defined]
    handle = kernel32.OpenProcess(0x1000, False, pid)  # PROCESS_QUERY_LIMITED_INFORMATION
    if not handle:
        return False
    try:
        code = ctypes.c_ulong()
        ok = kernel32.GetExitCodeProcess(handle, ctypes.byref(code))
        return bool(ok) and code.value == 259  # STILL_ACTIVE
    finally:
        kernel32.CloseHandle(handle)
