"""``Store``: the embedded run store, one SQLite file (WAL) in a runs folder.

Tables: ``runs`` (one row per run: kind, study, params, seed, status, times, error,
final metrics, environment, performance), ``metrics`` (run, step, epoch, name, value)
and ``meta`` (schema version). JSON columns hold strict JSON, never pickle; metric
values are REAL, and a NaN metric comes back as NaN.

Metric rows are buffered and written in one transaction per batch (see ``batch_rows``
and ``flush_interval``); ``flush()``, ``finish_run()`` and ``close()`` write at once.
Many processes may write one store (SQLite serialises their transactions), and search
one study together: each trial is claimed in one transaction (``claim_trial``, see
``tracking._claims``), so no two train the same trial. When a store is opened, runs still marked
``running`` whose writing process has ended are marked ``interrupted``: each open store
holds an OS lock (a lock file next to the database) that ends with its process, so a live
writer in another container or on another machine is not taken for dead, nor a dead one
for alive because its pid (often 1 in a container) is in use again.

A failed write (a full disk, a read-only or locked file) never raises out of
``log_metrics``, ``flush``, ``finish_run`` or ``close``, so it cannot cost a finished
training its results: it is warned about (``StoreWarning``, naming the cause and the file)
and listed in ``store.errors``; rows and run ends wait in memory and are tried again (every
``flush_interval`` and at ``close``), and a run's end that does not fit whole is written as
its status and end time where that still fits. ``start_run`` and ``set_status`` do raise:
they are called before or outside a training, where the caller can act.

Example:
    >>> import tempfile
    >>> from tunewidgets.tracking import Store
    >>> with Store(tempfile.mkdtemp()) as store:
    ...     run = store.start_run(kind="train", params={"lr": 0.1}, seed=0)
    ...     store.log_metrics(run, [(1, 0, "train/loss", 2.5), (2, 0, "train/loss", 1.5)])
    ...     store.finish_run(run, "finished", final={"val/loss": 1.2})
    ...     store.metrics(run)["value"].tolist(), store.run(run)["status"]
    ([2.5, 1.5], 'finished')
"""
from __future__ import annotations

import dataclasses
import math
import os
import sqlite3
import time
import traceback
import uuid
import warnings
import weakref
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tunewidgets.engine.env import _version, collect_env
from tunewidgets.engine.status import FINAL_STATUSES, STATUSES
from tunewidgets.tracking import _claims, _json, _schema
from tunewidgets.tracking._params import check_name
from tunewidgets.tracking._rows import _SELECT, RUN_COLUMNS, UnreadableValue, _run_record
from tunewidgets.tracking._liveness import remove_lock, sweep_locks, this_writer, writer_gone
from tunewidgets.tracking._metric_rows import ROW_HELP, MetricRow, metric_row, whole
from tunewidgets.tracking._writer import LIVE_TOKENS, StoreWarning, StoreWriteError, WriteFailure, Writer

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["Store", "STATUSES", "FINAL_STATUSES", "StoreVersionError", "StoreWarning", "StoreWriteError",
           "WriteFailure", "UnreadableValue"]

StoreVersionError = _schema.StoreVersionError

METRIC_COLUMNS = ("run", "step", "epoch", "name", "value")


class Store:
    """Runs and their metrics in ``<folder>/runs.sqlite`` (or an existing ``.sqlite``/``.db`` file).

    Args:
        path: a folder (created if missing) or an SQLite file.
        batch_rows: buffered metric rows that trigger a write (>= 1).
        flush_interval: seconds the oldest buffered row may wait before a write (> 0).
        create: False to open an existing store only (to read it): a missing folder, file or
            database raises ValueError and nothing is created (not even the writers' lock folder;
            runs this store adds then carry no lock, and their liveness is judged by pid).

    ``path`` is the database file, ``folder`` the folder holding it; ``interrupted``
    lists the runs this open found stale and marked ``interrupted``; ``errors`` the writes
    that failed; ``unreadable`` the stored values that could not be read (see :meth:`runs`).
    Times are unix seconds (UTC). Usable from several threads of the writing
    process.
    """

    def __init__(self, path: str | os.PathLike[str], *, batch_rows: int = 1000,
                 flush_interval: float = 1.0, create: bool = True) -> None:
        if isinstance(batch_rows, bool) or not isinstance(batch_rows, int) or batch_rows < 1:
            raise ValueError(f"batch_rows: must be a whole number >= 1, got {batch_rows!r}; e.g. 1000")
        if (isinstance(flush_interval, bool) or not isinstance(flush_interval, (int, float))
                or not math.isfinite(flush_interval) or flush_interval <= 0):
            raise ValueError(f"flush_interval: must be a number of seconds > 0, got {flush_interval!r}; e.g. 1.0")
        if not isinstance(create, bool):
            raise TypeError(f"create: expected True or False, got {create!r}")
        db = _schema.resolve_db_path(path, create=create)
        conn = _schema.connect(db)
        try:
            self.schema_version = _schema.prepare(conn, db, _version("tunewidgets"))
        except BaseException:
            conn.close()
            raise
        self.path: Path = db
        self.folder: Path = db.parent
        self._known: set[int] = set()
        self.unreadable: list[UnreadableValue] = []
        self._claim_index: dict[str, _claims.TrialIndex] = {}  # study -> its trials as the last claim saw them
        self._writer = Writer(conn, db, this_writer(uuid.uuid4().hex), batch_rows, float(flush_interval),
                              make_lock_dir=create)
        self._finalizer = weakref.finalize(self, self._writer.close)
        try:
            self.interrupted: tuple[int, ...] = self._mark_interrupted()
        except BaseException:
            self.close()
            raise

    # ---------------------------------------------------------------- lifecycle
    def close(self) -> None:
        """Write buffered rows and close the file; closing twice is fine."""
        self._finalizer.detach()
        self._writer.close()

    @property
    def closed(self) -> bool:
        return self._writer.closed

    def __enter__(self) -> "Store":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Store({str(self.path)!r}{', closed' if self.closed else ''})"

    @property
    def errors(self) -> list[WriteFailure]:
        """The writes that failed, oldest first (copies): op, error, path, run_id, count, rows,
        dropped, resolved (a later try wrote it). Empty while all is well."""
        with self._writer.lock:
            return [dataclasses.replace(f) for f in self._writer.failures]

    def _mark_interrupted(self) -> tuple[int, ...]:
        writer, db = self._writer, self.path
        me = writer.id

        def work(conn: sqlite3.Connection) -> list[tuple[int, int, str, str | None]]:
            rows = conn.execute(
                "SELECT id, writer_pid, writer_token, writer_host, writer_started, writer_lock FROM runs "
                "WHERE status = 'running'").fetchall()
            gone: dict[str, bool] = {}
            stale = []
            for rid, pid, token, host, started, locked in rows:
                key = token or f"pid:{pid}"
                if key not in gone:
                    gone[key] = writer_gone(db, (pid, token, host, started, locked), me, LIVE_TOKENS)
                if gone[key]:
                    stale.append((rid, pid, token, host))
            conn.executemany(
                "UPDATE runs SET status = 'interrupted', error = COALESCE(error, ?) WHERE id = ?",
                [(f"interrupted: the process that wrote this run (pid {pid}"
                  f"{f' on {host}' if host else ''}) ended or closed the store without finishing it; "
                  "found when the store was opened again", rid)
                 for rid, pid, _, host in stale])
            return stale

        try:
            stale = writer.transact(work) or []
        except sqlite3.Error as exc:  # e.g. a full disk: the store still opens, to read
            writer._failed("open", None, exc)
            return ()
        for token in {t for _, _, t, _ in stale}:
            remove_lock(db, token)
        sweep_locks(db)
        return tuple(rid for rid, _, _, _ in stale)

    # ---------------------------------------------------------------- writing
    def start_run(self, *, kind: str = "train", study: str | None = None, name: str | None = None,
                  params: Mapping[str, Any] | None = None, seed: int | None = None,
                  env: Mapping[str, Any] | None = None) -> int:
        """Add a ``running`` run and return its id (written at once).

        ``env`` is merged over :func:`collect_env` (python, torch, tunewidgets, git commit).
        """
        if not isinstance(kind, str) or not kind.strip():
            raise ValueError(f"kind: must be a non-empty string such as 'train' or 'trial', got {kind!r}")
        for field, value in (("study", study), ("name", name)):
            if value is not None and not isinstance(value, str):
                raise TypeError(f"{field}: expected a string or None, got {value!r}")
            check_name(field, value)
        for field, value in (("params", params), ("env", env)):
            if value is not None and not isinstance(value, Mapping):
                raise TypeError(f"{field}: expected a dict or None, got {type(value).__name__} {value!r}")
        if seed is not None:
            seed = whole("seed", seed)
        env_json = _json.dumps({**collect_env(), **(env or {})})
        params_json = _json.dumps(params or {})
        writer = self._writer
        run_id = writer.transact(lambda conn: writer.insert_run(conn, kind, study, name, params_json, seed,
                                                                env_json))
        assert run_id is not None
        self._known.add(run_id)
        return run_id

    def claim_trial(self, study: str, fill: Any, *, n_trials: int | None = None, limit: int | None = None,
                    ended: tuple[str, ...] = _claims.ENDED) -> _claims.Claim:
        """Claim the next trial of ``study`` for this process in one transaction; a ``Claim`` (its
        ``number`` None when there is nothing to claim now). See ``tracking._claims``; raises like
        ``start_run`` when the store cannot be written."""
        got = _claims.claim_in(self._writer, self.path, self._claim_index, study, fill, n_trials=n_trials,
                               limit=limit, ended=ended, env=collect_env, live_tokens=LIVE_TOKENS)
        if got.run_id is not None:
            self._known.add(got.run_id)
        return got

    def open_study(self, name: str, settings: Mapping[str, Any]) -> tuple[int, dict[str, Any] | None]:
        """Study ``name``'s row, added with ``settings`` when the store has none, in one transaction
        (two processes starting one study make one row): ``(run id, its stored settings or None if new)``."""
        writer, params_json, env_json = self._writer, _json.dumps(dict(settings)), _json.dumps(collect_env())
        got = writer.transact(lambda conn: _claims.open_study(conn, name, lambda: writer.insert_run(
            conn, _claims.STUDY_KIND, name, name, params_json, None, env_json)))
        assert got is not None
        self._known.add(got[0])
        return got

    def trial_rows(self, study: str) -> list[_claims.TrialRow]:
        """The newest row of each trial number of ``study`` (run id, number, status), by number."""
        rows = self._writer.read(lambda conn: _claims.trial_rows(conn, study))
        return [_claims.TrialRow(rid, number, status) for rid, number, status, _ in rows]

    def log_metrics(self, run_id: int, rows: Iterable[Any]) -> None:
        """Buffer metric rows of a run; written with the next batch (see the class docs).

        Example: ``store.log_metrics(run, [(10, 0, "train/loss", 0.7), {"step": 10, "epoch": 0,
        "name": "lr", "value": 0.1}])``.
        """
        run_id = self._require_run(run_id)
        if isinstance(rows, (Mapping, str, bytes)) or not isinstance(rows, Iterable):
            raise TypeError(f"rows: expected a list of rows ({ROW_HELP}); wrap a single row in a list, got {rows!r}")
        clean = [metric_row(run_id, row, i) for i, row in enumerate(rows)]
        self._writer.add(clean)

    def log_checked(self, run_id: int, rows: list[MetricRow]) -> None:
        """Buffer rows already in stored form ``(run_id, step, epoch, name, value)``, without per-value checks.

        For a writer that builds its rows from values it has checked itself (the ``StoreSink``'s
        fast path for the engine's own step rows: int steps >= 0, float values): each row's
        ``run_id`` must be ``run_id``; use :meth:`log_metrics` for anything else.

        Example: ``store.log_checked(run, [(run, 10, 0, "train/loss", 0.7), (run, 10, 0, "lr", 0.1)])``.
        """
        if run_id not in self._known:
            run_id = self._require_run(run_id)
        self._writer.add(rows)

    def flush(self) -> None:
        """Write buffered metric rows now, in one transaction (a failure is warned and kept in ``errors``)."""
        self._writer.write("flush")

    def finish_run(self, run_id: int, status: str, *, final: Mapping[str, Any] | None = None,
                   error: str | BaseException | None = None,
                   perf: Mapping[str, Any] | None = None) -> None:
        """Record how a run ended; its buffered metrics and this row are committed before returning.

        ``error`` may be an exception: its traceback is stored as text. A write that fails
        does not raise (the training it ends is done): it is warned about and kept in
        ``errors``, the end is tried again later, and where the whole row does not fit its
        status and end time are written alone.
        """
        run_id = self._require_run(run_id)
        _check_status(status, FINAL_STATUSES)
        for field, value in (("final", final), ("perf", perf)):
            if value is not None and not isinstance(value, Mapping):
                raise TypeError(f"{field}: expected a dict or None, got {type(value).__name__} {value!r}")
        if isinstance(error, BaseException):
            error = "".join(traceback.format_exception(error))
        elif error is not None and not isinstance(error, str):
            raise TypeError(f"error: expected a string, an exception or None, got {error!r}")
        final_json = None if final is None else _json.dumps(final)
        perf_json = None if perf is None else _json.dumps(perf)
        ended = time.time()

        def whole(conn: sqlite3.Connection) -> None:
            conn.execute(
                "UPDATE runs SET status = ?, ended_at = ?, duration = ? - started_at, error = ?, "
                "final = ?, perf = ? WHERE id = ?",
                (status, ended, ended, error, final_json, perf_json, run_id))

        def smallest(conn: sqlite3.Connection) -> None:
            conn.execute("UPDATE runs SET status = ?, ended_at = ?, duration = ? - started_at WHERE id = ?",
                         (status, ended, ended, run_id))

        self._writer.end_run(run_id, whole, smallest)

    def set_status(self, run_id: int, status: str) -> None:
        """Change a run's status only (use ``finish_run`` to end a run with its results)."""
        run_id = self._require_run(run_id)
        _check_status(status, STATUSES)
        self._writer.transact(
            lambda conn: conn.execute("UPDATE runs SET status = ? WHERE id = ?", (status, run_id)))

    # ---------------------------------------------------------------- reading
    def runs(self, study: str | None = None, *, kind: str | None = None) -> "pd.DataFrame":
        """One row per run (oldest first); ``params``, ``final``, ``env``, ``perf`` as dicts.

        A stored value that cannot be read (a JSON column holding other bytes, text that is not
        UTF-8) does not stop the others: it reads as None (text with its bad bytes replaced),
        is warned about once (``StoreWarning``, naming the run and the column) and is listed
        in ``store.unreadable``. A run whose ``error`` starts with ``incomplete record:`` lost
        metric rows while it was recorded (a full disk); the text says how many.
        """
        import pandas as pd

        where, args = _where(("study", study), ("kind", kind))
        rows = self._writer.read(lambda conn: conn.execute(
            f"SELECT {_SELECT} FROM runs{where} ORDER BY id", args).fetchall())
        records = [self._record(r) for r in rows]
        return pd.DataFrame.from_records(records, columns=list(RUN_COLUMNS))

    def run(self, run_id: int) -> dict[str, Any]:
        """One run as a dict (JSON columns parsed; an unreadable value reads as None, see :meth:`runs`)."""
        run_id = self._require_run(run_id)
        row = self._writer.read(lambda conn: conn.execute(
            f"SELECT {_SELECT} FROM runs WHERE id = ?", (run_id,)).fetchone())
        return self._record(row)

    def unreadable_columns(self, run_id: int) -> list[str]:
        """The columns of run ``run_id`` that could not be read (empty when all could)."""
        return [u.column for u in self.unreadable if u.run_id == run_id]

    def _record(self, row: tuple[Any, ...]) -> dict[str, Any]:
        record, problems = _run_record(row)
        for column, reason in problems:
            found = UnreadableValue(int(record["id"]), column, reason)
            if found in self.unreadable:
                continue
            self.unreadable.append(found)
            warnings.warn(StoreWarning(f"store: {found} in {self.path}; the other columns and runs read as "
                                       "usual"), stacklevel=3)
        return record

    def metrics(self, run_id: int | Iterable[int] | None, name: str | None = None) -> "pd.DataFrame":
        """Metric rows (``run, step, epoch, name, value``) of one run, several, or all (None).

        Buffered rows are written first, so what was logged is what is read.
        """
        import pandas as pd

        if run_id is None:
            ids: list[int] = []
        elif isinstance(run_id, Iterable) and not isinstance(run_id, (str, bytes)):
            ids = [self._require_run(r) for r in run_id]
        else:
            ids = [self._require_run(run_id)]
        if name is not None and not isinstance(name, str):
            raise TypeError(f"name: expected a metric name such as 'train/loss' or None, got {name!r}")
        clauses, args = [], []
        if run_id is not None:
            clauses.append(f"run IN ({', '.join('?' * len(ids))})")
            args.extend(ids)
        if name is not None:
            clauses.append("name = ?")
            args.append(name)
        where = f" WHERE {' AND '.join(clauses)}" if clauses else ""
        self.flush()
        rows = self._writer.read(lambda conn: conn.execute(
            f"SELECT {', '.join(METRIC_COLUMNS)} FROM metrics{where} ORDER BY run, step, rowid",
            args).fetchall())
        df = pd.DataFrame.from_records(rows, columns=list(METRIC_COLUMNS))
        return df.astype({"run": "int64", "step": "int64", "epoch": "float64",
                          "name": "object", "value": "float64"})

    # ---------------------------------------------------------------- helpers
    def _require_run(self, run_id: Any) -> int:
        rid = whole("run_id", run_id)
        if rid in self._known:
            return rid
        found = self._writer.read(
            lambda conn: conn.execute("SELECT 1 FROM runs WHERE id = ?", (rid,)).fetchone())
        if found is None:
            raise ValueError(f"run_id: no run {rid} in {self.path}; start one with store.start_run()")
        self._known.add(rid)
        return rid


def _check_status(status: Any, allowed: tuple[str, ...]) -> None:
    if status not in allowed:
        hint = "; a run that is still going is 'running' (use set_status)" if status == "running" else ""
        raise ValueError(f"status: must be one of {', '.join(allowed)}, got {status!r}{hint}")


def _where(*pairs: tuple[str, Any]) -> tuple[str, list[Any]]:
    clauses, args = [], []
    for column, value in pairs:
        if value is not None:
            if not isinstance(value, str):
                raise TypeError(f"{column}: expected a string or None, got {value!r}")
            clauses.append(f"{column} = ?")
            args.append(value)
    return (f" WHERE {' AND '.join(clauses)}" if clauses else ""), args
