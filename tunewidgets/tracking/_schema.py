"""Where the store's file lives, its tables, and the schema version with its migrations.

Version history:
    1: tables ``meta``, ``runs`` and ``metrics`` (this file's ``_SCHEMA_V1``).
    2: ``runs.writer_host``, ``writer_started`` (the writing process's start time) and
       ``writer_lock`` (1 if the writer holds a lock file), to tell live writers from dead
       ones by more than a pid (see ``_liveness``). A new store is made as version 1 and
       migrated, so every store takes the same path.
    3: one step numbering for every run: the metric row with ``step=k`` is the k-th optimizer
       step (k = 1..n), as training runs always wrote it. LR range tests (kind
       ``lr_range_test``) wrote theirs from 0 before; the migration adds 1 to their steps.

To change the schema, bump ``SCHEMA_VERSION`` and add ``MIGRATIONS[old] = fn``: ``fn(conn)``
upgrades a store from ``old`` to ``old + 1`` inside the open transaction.
"""
from __future__ import annotations

import os
import sqlite3
import time
from collections.abc import Callable
from pathlib import Path

__all__ = [
    "SCHEMA_VERSION", "MIGRATIONS", "DB_NAME", "DB_SUFFIXES", "StoreVersionError",
    "resolve_db_path", "connect", "prepare",
]

SCHEMA_VERSION = 3
DB_NAME = "runs.sqlite"
DB_SUFFIXES = (".sqlite", ".sqlite3", ".db")
_SQLITE_HEADER = b"SQLite format 3\x00"
_HINT = (f"pass a folder (e.g. 'tunewidgets-runs'; {DB_NAME} is created inside) "
         f"or an SQLite file ending in {', '.join(DB_SUFFIXES)}")

_SCHEMA_V1 = """
CREATE TABLE meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
CREATE TABLE runs (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    study        TEXT,
    kind         TEXT NOT NULL,
    name         TEXT,
    params       TEXT NOT NULL DEFAULT '{}',
    seed         INTEGER,
    status       TEXT NOT NULL,
    started_at   REAL NOT NULL,
    ended_at     REAL,
    duration     REAL,
    error        TEXT,
    final        TEXT,
    env          TEXT,
    perf         TEXT,
    writer_pid   INTEGER,
    writer_token TEXT
);
CREATE INDEX runs_study ON runs (study);
CREATE INDEX runs_status ON runs (status);
CREATE TABLE metrics (
    run   INTEGER NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
    step  INTEGER NOT NULL,
    epoch REAL,
    name  TEXT NOT NULL,
    value REAL
);
CREATE INDEX metrics_run_name_step ON metrics (run, name, step);
"""


def _v1_to_v2(conn: sqlite3.Connection) -> None:
    conn.execute("ALTER TABLE runs ADD COLUMN writer_host TEXT")
    conn.execute("ALTER TABLE runs ADD COLUMN writer_started REAL")
    conn.execute("ALTER TABLE runs ADD COLUMN writer_lock INTEGER NOT NULL DEFAULT 0")


def _v2_to_v3(conn: sqlite3.Connection) -> None:
    conn.execute("UPDATE metrics SET step = step + 1 WHERE run IN (SELECT id FROM runs WHERE kind = 'lr_range_test')")


MIGRATIONS: dict[int, Callable[[sqlite3.Connection], None]] = {1: _v1_to_v2, 2: _v2_to_v3}


class StoreVersionError(RuntimeError):
    """The store was written by a newer tunewidgets whose schema this one cannot read."""


def resolve_db_path(path: str | os.PathLike[str], create: bool = True) -> Path:
    """The database file for ``path``: a folder (created if missing) holds ``runs.sqlite``;
    an existing file must be an SQLite database; a missing ``*.sqlite``/``*.db`` is created.

    With ``create=False`` (reading) nothing is created: a missing folder, file or database
    raises ValueError naming the path.
    """
    if isinstance(path, bytes) or not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"store path: expected a folder or .sqlite file path as str or Path, got {path!r}")
    p = Path(os.fspath(path)).expanduser()
    if not str(path).strip():
        raise ValueError(f"store path: must not be empty; {_HINT}")
    if p.is_dir():
        db = p / DB_NAME
        if db.exists() and not db.is_file():
            raise ValueError(f"store path: {db} exists but is not a file; move it away or pick another folder")
        if not create and not db.exists():
            raise ValueError(f"store path: the folder {p} holds no run store (no {DB_NAME} in it), so there is "
                             "nothing to read; give the folder the runs were recorded in")
        return db
    if p.exists():
        if not p.is_file():
            raise ValueError(f"store path: {p} is neither a folder nor a file; {_HINT}")
        _check_sqlite_file(p)
        if not create and p.stat().st_size == 0:
            raise ValueError(f"store path: {p} is an empty file, not a run store, so there is nothing to read; "
                             "give the folder or file the runs were recorded in")
        return p
    if not create:
        raise ValueError(f"store path: there is no run store at {p} (no such folder or file), so there is "
                         "nothing to read; give the folder the runs were recorded in (nothing was created)")
    _check_no_file_above(p)
    try:
        if p.suffix.lower() in DB_SUFFIXES:
            p.parent.mkdir(parents=True, exist_ok=True)
            return p
        p.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ValueError(f"store path: cannot create {p}: {exc.strerror or exc}; {_HINT}") from None
    return p / DB_NAME


def _check_no_file_above(p: Path) -> None:
    for parent in p.parents:
        if parent.exists():
            if not parent.is_dir():
                raise ValueError(
                    f"store path: {p} lies inside {parent}, which is a file, not a folder; "
                    f"pick a path in a folder, e.g. {parent.parent / 'tunewidgets-runs'}")
            return


def _check_sqlite_file(p: Path) -> None:
    with open(p, "rb") as fh:
        head = fh.read(len(_SQLITE_HEADER))
    if head == _SQLITE_HEADER:
        return
    if not head and p.suffix.lower() in DB_SUFFIXES:
        return  # an empty file: SQLite starts a new database in it
    shown = "it is empty" if not head else f"it starts with {head[:8]!r}"
    raise ValueError(f"store path: {p} is a file but not an SQLite database ({shown}); {_HINT}")


def connect(db: Path) -> sqlite3.Connection:
    """A connection in autocommit mode (transactions are explicit), WAL journal, usable from threads."""
    try:
        conn = sqlite3.connect(db, timeout=30.0, isolation_level=None, check_same_thread=False)
    except sqlite3.Error as exc:
        raise ValueError(f"store path: cannot open {db} as an SQLite database ({exc}); {_HINT}") from None
    try:
        mode = conn.execute("PRAGMA journal_mode=WAL").fetchone()[0]
        conn.execute("PRAGMA synchronous=NORMAL")  # in WAL: commits survive a killed process
        conn.execute("PRAGMA foreign_keys=ON")
        # 512 KiB of page cache, not SQLite's 2 MB: the store mostly appends, the OS caches the file
        # for reads, and a long search in a notebook keeps its memory flat (bench/search_overhead.py)
        conn.execute("PRAGMA cache_size=-512")
    except sqlite3.DatabaseError as exc:
        conn.close()
        raise ValueError(f"store path: {db} is not a usable SQLite database ({exc}); {_HINT}") from None
    if str(mode).lower() != "wal":
        conn.close()
        raise ValueError(f"store path: {db} could not be switched to WAL mode (got {mode!r}); "
                         "use a folder on a local disk")
    return conn


def _tables(conn: sqlite3.Connection) -> set[str]:
    rows = conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'").fetchall()
    return {r[0] for r in rows if not r[0].startswith("sqlite_")}


def _read_version(conn: sqlite3.Connection, db: Path) -> int | None:
    tables = _tables(conn)
    if not tables:
        return None
    row = None
    if "meta" in tables:
        row = conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
    if row is None:
        raise ValueError(
            f"store path: {db} is an SQLite database but not a tunewidgets run store "
            f"(tables: {', '.join(sorted(tables))}); {_HINT} that tunewidgets owns")
    try:
        return int(row[0])
    except ValueError:
        raise ValueError(f"store path: {db} has an unreadable schema_version {row[0]!r}") from None


def prepare(conn: sqlite3.Connection, db: Path, tunewidgets_version: str | None) -> int:
    """Create the tables of a new store, migrate an older one; return the schema version.

    Raises StoreVersionError for a store written by a newer tunewidgets.
    """
    try:
        conn.execute("BEGIN IMMEDIATE")
        version = _read_version(conn, db)
        if version is None:
            for statement in _SCHEMA_V1.split(";"):
                if statement.strip():
                    conn.execute(statement)
            conn.executemany(
                "INSERT INTO meta (key, value) VALUES (?, ?)",
                [("schema_version", "1"), ("created_at", repr(time.time())),
                 ("created_with", f"tunewidgets {tunewidgets_version or 'unknown'}")])
            version = 1
        if version > SCHEMA_VERSION:
            raise StoreVersionError(
                f"{db} has store schema version {version}, but this tunewidgets "
                f"({tunewidgets_version or 'unknown version'}) reads schema versions up to "
                f"{SCHEMA_VERSION}; upgrade tunewidgets (pip install -U tunewidgets) to open it")
        while version < SCHEMA_VERSION:
            migrate = MIGRATIONS.get(version)
            if migrate is None:
                raise StoreVersionError(
                    f"{db} has store schema version {version} and no migration to "
                    f"{version + 1} is known; this is a tunewidgets bug, please report it")
            migrate(conn)
            version += 1
            conn.execute("UPDATE meta SET value = ? WHERE key = 'schema_version'", (str(version),))
        conn.execute("COMMIT")
    except BaseException as exc:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        if isinstance(exc, sqlite3.DatabaseError) and not isinstance(exc, sqlite3.OperationalError):
            raise ValueError(f"store path: {db} is not a usable SQLite database ({exc}); {_HINT}") from None
        raise
    return version
