"""The store's write side: one connection, a row buffer flushed in one transaction.

Rows wait in memory until the buffer holds ``batch_rows`` rows or the oldest has waited
``flush_interval`` seconds; then a background thread writes them, so the training thread
only appends to a list and never waits on the disk. An explicit flush writes at once, and a
buffer that outgrows ``BACKLOG`` batches is written by the caller (back-pressure). Each write
is one ``BEGIN IMMEDIATE ... COMMIT``, never one per step. Two locks: ``lock`` guards the
buffer (held for microseconds), ``db_lock`` the connection.

A failed write (a full disk, a locked or read-only file) never reaches the training that
logs the rows or ends the run: it is recorded in ``failures`` and warned about once
(``StoreWarning``, with the cause and the path). The rows stay in memory, up to
``MAX_HELD``, and how runs ended is kept too; the background thread tries again every
``flush_interval`` and ``close`` once more. A run's end that cannot be written whole is
written in its smallest form (status and end time), which often still fits.

A run's row never claims a whole record it does not have: a run that ended while some of its
metric rows were not written gets ``error`` starting ``incomplete record: N metric rows not
written (cause)``, with the end; the note is removed when a later try writes them, and says
``were lost`` when the store closes (or the memory cap drops rows) without them.
The thread and the finalizer hold this object, not the ``Store``, so a forgotten store is
still collected, flushed and closed.
"""
from __future__ import annotations

import sqlite3
import threading
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from tunewidgets.tracking._liveness import WriterId, WriterLock, pid_alive
from tunewidgets.tracking._write_errors import StoreWarning, StoreWriteError, WriteFailure, write_failure_text

__all__ = ["Writer", "WriteFailure", "StoreWarning", "StoreWriteError", "write_failure_text", "LIVE_TOKENS", "pid_alive", "MAX_HELD"]

T = TypeVar("T")
Work = Callable[[sqlite3.Connection], Any]

# open tokens of stores not yet closed in this process: their running runs are not stale
LIVE_TOKENS: set[str] = set()

_INSERT = "INSERT INTO metrics (run, step, epoch, name, value) VALUES (?, ?, ?, ?, ?)"
BACKLOG = 8  # batches the buffer may hold before the caller writes them itself
MAX_HELD = 100_000  # metric rows kept in memory while writes fail; later ones are dropped (and counted)


class Writer:
    def __init__(self, conn: sqlite3.Connection, db: Path, writer: WriterId,
                 batch_rows: int, flush_interval: float, make_lock_dir: bool = True) -> None:
        self.conn = conn
        self.db = db
        self.id = writer
        self.token = writer.token
        self.batch_rows = batch_rows
        self.flush_interval = flush_interval
        self.lock = threading.RLock()
        self.db_lock = threading.RLock()
        self._wake = threading.Event()
        self.buffer: list[tuple[int, int, float | None, str, float]] = []
        self.first_buffered_at = 0.0
        self.transactions = 0
        self.rows_written = 0
        self.failures: list[WriteFailure] = []
        self.failing = False  # the last write failed: retry in the background only
        self._retry_at = 0.0
        self._ends: dict[int, tuple[Work, Work]] = {}  # run -> (whole end, smallest end) not yet written
        self._ended: set[int] = set()  # runs whose end is in the file (whole or smallest)
        self._lost_rows: dict[int, int] = {}  # run -> metric rows given up for good
        self._notes: dict[int, str] = {}  # run -> the "incomplete record" note its row holds now
        self.closed = False
        self._stop = threading.Event()
        self.writer_lock = WriterLock(db, writer, make_dir=make_lock_dir)
        LIVE_TOKENS.add(self.token)
        # started now, not on the first row, so that a training loop never pays for it
        self._thread: threading.Thread | None = threading.Thread(
            target=self._flush_loop, name="tunewidgets-store-flush", daemon=True)
        self._thread.start()

    def check_open(self) -> None:
        if self.closed:
            raise ValueError(f"store: {self.db} is closed; open it again with tw.Store(path)")

    # ---------------------------------------------------------------- buffering
    def add(self, rows: list[tuple[int, int, float | None, str, float]]) -> None:
        with self.lock:
            self.check_open()
            if not rows:
                return
            if self.failing and len(self.buffer) + len(rows) > MAX_HELD:
                self._drop(rows)
                return
            if not self.buffer:
                self.first_buffered_at = time.monotonic()
            self.buffer.extend(rows)
            size = len(self.buffer)
            failing = self.failing
        if size >= BACKLOG * self.batch_rows and not failing:
            self.write("metrics")
        elif size >= self.batch_rows:
            self._wake.set()

    def _drop(self, rows: list[Any]) -> None:
        room = max(0, MAX_HELD - len(self.buffer))
        self.buffer.extend(rows[:room])
        lost = len(rows) - room
        for row in rows[room:]:
            self._lost_rows[row[0]] = self._lost_rows.get(row[0], 0) + 1
        failure = next((f for f in reversed(self.failures) if not f.resolved), None)  # why writes fail
        if failure is not None:
            first = failure.dropped == 0
            failure.dropped += lost
            if first:
                warnings.warn(StoreWarning(
                    f"store: {MAX_HELD} metric rows wait in memory for {self.db} and writing still fails "
                    f"({failure.error}); newer rows are dropped until a write succeeds (counted in "
                    "store.errors)"), stacklevel=4)

    # ---------------------------------------------------------------- writing
    def transact(self, work: Callable[[sqlite3.Connection], T] | None) -> T | None:
        """Write the buffered rows and run ``work(conn)`` in one transaction; return its result (raises)."""
        results = self._commit([work] if work is not None else [], rows=True)
        return results[0] if work is not None else None

    def _commit(self, works: list[Work], rows: bool) -> list[Any]:
        with self.db_lock:
            with self.lock:
                self.check_open()
                taken, self.buffer = (self.buffer, []) if rows else ([], self.buffer)
            if not taken and not works:
                return []
            conn = self.conn
            try:
                conn.execute("BEGIN IMMEDIATE")
                if taken:
                    conn.executemany(_INSERT, taken)
                results = [work(conn) for work in works]
                conn.execute("COMMIT")
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                with self.lock:  # keep the rows, in order, for the next try
                    self.buffer[:0] = taken
                raise
            self.transactions += 1
            self.rows_written += len(taken)
            return results

    def insert_run(self, conn: sqlite3.Connection, kind: str, study: str | None, name: str | None,
                   params_json: str, seed: int | None, env_json: str) -> int:
        """Add a ``running`` run written by this writer (inside ``transact``); its id."""
        me = self.id
        cur = conn.execute(
            "INSERT INTO runs (study, kind, name, params, seed, status, started_at, env, writer_pid, "
            "writer_token, writer_host, writer_started, writer_lock) "
            "VALUES (?, ?, ?, ?, ?, 'running', ?, ?, ?, ?, ?, ?, ?)",
            (study, kind, name, params_json, seed, time.time(), env_json, me.pid, me.token, me.host,
             me.started, int(self.writer_lock.held)))
        return int(cur.lastrowid)

    def end_run(self, run_id: int, whole: Work, smallest: Work) -> None:
        """Record how a run ended, with the buffered rows; never raises for a failed write."""
        with self.lock:
            self.check_open()
            self._ends[run_id] = (whole, smallest)
        self.write("finish_run", run_id)

    def write(self, op: str, run_id: int | None = None) -> bool:
        """Write the buffered rows and the runs' ends not yet written; record a failure instead of
        raising it. True when everything is written."""
        with self.db_lock:
            with self.lock:
                if self.closed:
                    return False
                ends = dict(self._ends)
                # every buffered row goes in with this commit: the ended runs' notes say only what was lost
                ended = self._ended | set(ends)
                notes = {rid: self._note(self._lost_rows.get(rid, 0), lost=True)
                         for rid in (set(self._notes) | set(self._lost_rows)) & ended}
                notes = {rid: note for rid, note in notes.items() if self._notes.get(rid) != note}
            try:
                self._commit([whole for whole, _ in ends.values()]
                             + [self._note_work(rid, note) for rid, note in notes.items()], rows=True)
            except Exception as exc:  # noqa: BLE001 - recorded and warned, never raised into training
                self._failed(op, run_id, exc)
                if ends:
                    self._write_ends_alone(ends)
                return False
            with self.lock:
                for rid in ends:
                    self._ends.pop(rid, None)
                self._ended.update(ends)
                self._noted(notes)
                self.failing = False
                for failure in self.failures:
                    failure.resolved = True
            return True

    # ---------------------------------------------------------------- incomplete records
    def _cause(self) -> str:
        """Why the latest write failed (a later write that succeeded does not change why rows were lost)."""
        return self.failures[-1].error if self.failures else "a write failed"

    def _note(self, n: int, lost: bool) -> str | None:
        """The note of a run's row that misses ``n`` metric rows (None for none)."""
        if n <= 0:
            return None
        state = "were lost" if lost else "not written yet (kept in memory and tried again)"
        return f"incomplete record: {n:,} metric rows {state} ({self._cause()}, on {self.db})"

    def _note_work(self, rid: int, note: str | None) -> Work:
        """Put ``note`` (None: no note) first in run ``rid``'s error, in place of the note it holds."""
        old = self._notes.get(rid)

        def work(conn: sqlite3.Connection) -> None:
            row = conn.execute("SELECT error FROM runs WHERE id = ?", (rid,)).fetchone()
            if row is None:
                return
            rest = row[0] if isinstance(row[0], str) else ""
            if old and rest.startswith(old):
                rest = rest[len(old):]
            rest = rest.strip("\n")
            text = "\n".join(part for part in (note, rest) if part)
            conn.execute("UPDATE runs SET error = ? WHERE id = ?", (text or None, rid))

        return work

    def _noted(self, notes: dict[int, str | None]) -> None:
        for rid, note in notes.items():
            if note is None:
                self._notes.pop(rid, None)
            else:
                self._notes[rid] = note

    def _write_ends_alone(self, ends: dict[int, tuple[Work, Work]]) -> None:
        """The rows failed: write the runs' ends without them, whole or at least status and end time,
        each with a note of the rows its record is missing."""
        with self.lock:
            waiting: dict[int, int] = {}
            for row in self.buffer:
                waiting[row[0]] = waiting.get(row[0], 0) + 1
        for rid, (whole, smallest) in ends.items():
            missing = waiting.get(rid, 0) + self._lost_rows.get(rid, 0)
            note = self._note(missing, lost=not waiting.get(rid))
            for work, done in ((whole, True), (smallest, False)):
                try:
                    self._commit([work, self._note_work(rid, note)], rows=False)
                except Exception:  # noqa: BLE001 - the end stays pending; the failure is recorded
                    continue
                with self.lock:
                    self._ended.add(rid)
                    self._noted({rid: note})
                    if done:
                        self._ends.pop(rid, None)
                break

    def _failure(self, op: str, run_id: int | None) -> WriteFailure | None:
        for failure in reversed(self.failures):
            if failure.op == op and failure.run_id == run_id and not failure.resolved:
                return failure
        return None

    def _failed(self, op: str, run_id: int | None, exc: BaseException) -> None:
        now = time.time()
        message = f"{type(exc).__name__}: {exc}"
        with self.lock:
            self.failing = True
            self._retry_at = time.monotonic() + self.flush_interval
            failure = self._failure(op, run_id)
            new = failure is None or failure.error != message
            if new:
                failure = WriteFailure(op, message, str(self.db), run_id, first_at=now)
                self.failures.append(failure)
            else:
                failure.count += 1
            failure.rows, failure.last_at = len(self.buffer), now
            waiting = len(self.buffer)
            ends = sorted(self._ends)
        if new:
            what = f"how run {run_id} ended" if op == "finish_run" else f"{waiting} metric rows"
            warnings.warn(StoreWarning(
                f"store: writing {what} to {self.db} failed ({message}); the run goes on regardless: its "
                f"rows ({waiting}) and run ends ({ends or 'none'}) wait in memory and are tried again every "
                f"{self.flush_interval:g} s and when the store closes; free disk space or fix the file "
                "(see store.errors)"), stacklevel=4)

    def read(self, work: Callable[[sqlite3.Connection], T]) -> T:
        with self.db_lock:
            self.check_open()
            return work(self.conn)

    # ---------------------------------------------------------------- background
    def _due(self) -> bool:
        if self.failing:
            return (bool(self.buffer) or bool(self._ends)) and time.monotonic() >= self._retry_at
        return bool(self.buffer) and (len(self.buffer) >= self.batch_rows
                                      or time.monotonic() - self.first_buffered_at >= self.flush_interval)

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
                self.write("metrics")

    def close(self) -> None:
        """Write what waits (recording a failure), then close the connection; safe to call twice."""
        with self.db_lock:
            if self.closed:
                return
            try:
                self.write("close")
            finally:
                self._note_lost()
                with self.lock:
                    lost, ends = len(self.buffer), sorted(self._ends)
                    self.closed = True
                    self.buffer = []
                self._stop.set()
                self._wake.set()
                LIVE_TOKENS.discard(self.token)
                self.conn.close()
                self.writer_lock.release()
                if lost or ends:
                    self._lost(lost, ends)
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout=2.0)

    def _note_lost(self) -> None:
        """At close: the rows still waiting are lost; say so in the rows of the runs that ended."""
        with self.lock:
            for row in self.buffer:
                self._lost_rows[row[0]] = self._lost_rows.get(row[0], 0) + 1
            ended = self._ended
            notes = {rid: self._note(n, lost=True) for rid, n in self._lost_rows.items() if rid in ended}
            notes = {rid: note for rid, note in notes.items() if self._notes.get(rid) != note}
        if not notes:
            return
        try:
            self._commit([self._note_work(rid, note) for rid, note in notes.items()], rows=False)
        except Exception:  # noqa: BLE001 - the rows keep their earlier note ("not written yet")
            return
        with self.lock:
            self._noted(notes)

    def _lost(self, rows: int, ends: list[int]) -> None:
        failure = self._failure("close", None)
        if failure is not None:
            failure.dropped += rows
        runs = (f"; runs {ends} keep status 'running' in the file and are marked 'interrupted' when the store "
                "is opened next") if ends else ""
        warnings.warn(StoreWarning(f"store: closed {self.db} with {rows} metric rows that could not be "
                                   f"written{runs} (see store.errors)"), stacklevel=3)
