"""Trial claims: which trial of a study a process trains next, decided in one transaction.

Many processes may search one study in one store (two notebooks, a notebook and a terminal, a
restarted kernel while the old one still runs), as Optuna's workers share one RDB study. Each
trial is *claimed* before it trains: one ``BEGIN IMMEDIATE`` transaction (SQLite lets one
writer in at a time) reads the newest row of every trial number of the study, decides, and adds
the claimed trial's ``running`` row, so no two processes ever get the same number:

- a trial whose newest row is ``interrupted`` or ``stopped`` is claimed first (lowest number
  first), to run again with its own values; so is a ``running`` one whose writing process has
  ended (a SIGKILL, a crash: see ``_liveness``), which the claim marks ``interrupted`` first;
- else the next number (one more than the highest), unless the study's numbers reach ``limit``
  (a grid's size);
- nothing when the trials that ended (``ended`` statuses) and those live processes are
  training reach ``n_trials``; ``others`` then says how many of those another process
  trains: one of them may still die and need its trial run again.

A ``running`` row of a live process (this one included) is never claimed. The values of a new
trial are chosen by ``fill(number, search)`` inside the transaction (``search``: the stored
values of a trial run again, else None), which returns the row's params, seed and environment.

Example:
    >>> import tempfile
    >>> from tunewidgets.tracking import Store
    >>> store = Store(tempfile.mkdtemp())
    >>> fill = lambda number, search: ({"search": search or {"lr": 0.1 * (number + 1)}}, 0, None)
    >>> first = store.claim_trial("demo", fill, n_trials=2)
    >>> second = store.claim_trial("demo", fill, n_trials=2)
    >>> first.number, second.number, store.claim_trial("demo", fill, n_trials=2).number
    (0, 1, None)
    >>> store.finish_run(second.run_id, "stopped")              # a stopped trial runs again
    >>> again = store.claim_trial("demo", fill, n_trials=2)
    >>> again.number, again.search
    (1, {'lr': 0.2})
    >>> store.close()
"""
from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tunewidgets.tracking import _json
from tunewidgets.tracking._liveness import WriterId, remove_lock, writer_gone

__all__ = ["TrialRow", "TrialIndex", "Claim", "claim", "claim_in", "open_study", "trial_rows", "trial_name", "ENDED", "RERUN", "STUDY_KIND"]

STUDY_KIND = "study"  # the kind of a study's own row (``tracking.studies``)
ENDED = ("finished", "pruned", "failed", "diverged")  # statuses that count towards n_trials
RERUN = ("interrupted", "stopped")  # statuses of a trial that runs again with its values

# fill(number, search or None) -> (params, seed, env) of the claimed trial's row
Fill = Callable[[int, "dict[str, Any] | None"], "tuple[dict[str, Any], int | None, dict[str, Any] | None]"]
Insert = Callable[[sqlite3.Connection, str, dict[str, Any], "int | None", "dict[str, Any] | None"], int]


@dataclass(frozen=True)
class TrialRow:
    """The newest row of one trial number: its run id, number and status."""

    id: int
    number: int
    status: str


@dataclass
class Claim:
    """What a claim got: ``number`` and ``run_id`` of the trial to train (None: nothing to claim now),
    ``search`` (the stored values of a trial run again, else None), ``changed`` (the newest rows of
    trials that changed since this store's previous claim of the study: new, ended, interrupted)
    and ``others`` (trials other live processes train)."""

    number: int | None
    run_id: int | None = None
    search: dict[str, Any] | None = None
    changed: list[TrialRow] = field(default_factory=list)
    others: int = 0
    marked: list[int] = field(default_factory=list)  # runs found dead and marked interrupted


def open_study(conn: sqlite3.Connection, name: str, insert: Callable[[], int]) -> tuple[int, dict[str, Any] | None]:
    """``(id, stored settings)`` of study ``name``'s row, or ``(insert(), None)`` when it has none yet."""
    row = conn.execute("SELECT id, params FROM runs WHERE study = ? AND kind = ? ORDER BY id LIMIT 1",
                       (name, STUDY_KIND)).fetchone()
    if row is not None:
        return int(row[0]), _params(row[1])
    return insert(), None


def trial_name(number: int) -> str:
    """The ``name`` column of trial ``number``'s rows."""
    return f"trial {int(number)}"


def trial_rows(conn: sqlite3.Connection, study: str) -> list[tuple[int, int, str, tuple[Any, ...]]]:
    """``(id, number, status, writer)`` of the newest row of each trial number, by number (rows not
    named ``trial <n>``, not written by a search, are no trials of the numbering)."""
    rows = conn.execute(
        "SELECT id, CAST(substr(name, 7) AS INTEGER), status, writer_pid, writer_token, writer_host, "
        "writer_started, writer_lock FROM runs WHERE study = ? AND kind = 'trial' AND name GLOB 'trial [0-9]*' "
        "ORDER BY id", (study,)).fetchall()
    latest = {row[1]: row for row in rows}  # oldest first: the newest row of a number wins
    return [(rid, number, status, tuple(writer)) for rid, number, status, *writer in
            (latest[n] for n in sorted(latest))]


class TrialIndex:
    """The newest row of each trial number of one study, as this store's last claim saw it.

    A claim reads only what may have changed since: rows added after the newest it saw, and the
    status of rows that had not ended (an ended trial's row never changes, and its number is
    never claimed again), so a claim costs the same in a study of ten trials or ten thousand.
    """

    _COLUMNS = ("SELECT id, CAST(substr(name, 7) AS INTEGER), status, writer_pid, writer_token, writer_host, "
                "writer_started, writer_lock FROM runs ")

    def __init__(self, study: str, ended: tuple[str, ...]) -> None:
        self.study, self.ended = study, ended
        self.latest: dict[int, list[Any]] = {}  # number -> [id, number, status, writer]
        self.max_id = 0

    def refresh(self, conn: sqlite3.Connection) -> list[TrialRow]:
        """Bring the index up to date inside the claim's transaction; the rows that changed."""
        changed: dict[int, list[Any]] = {}
        for rid, number, status, *writer in conn.execute(
                self._COLUMNS + "WHERE study = ? AND kind = 'trial' AND id > ? AND name GLOB 'trial [0-9]*' "
                "ORDER BY id", (self.study, self.max_id)):
            entry = [rid, number, status, tuple(writer)]
            self.latest[number] = changed[number] = entry
            self.max_id = max(self.max_id, rid)
        open_rows = {e[0]: e for n, e in self.latest.items() if e[2] not in self.ended and n not in changed}
        ids = list(open_rows)
        for i in range(0, len(ids), 500):
            chunk = ids[i:i + 500]
            for rid, _, status, *writer in conn.execute(
                    self._COLUMNS + f"WHERE id IN ({', '.join('?' * len(chunk))})", chunk):
                entry = open_rows[rid]
                if status != entry[2]:
                    changed[entry[1]] = entry
                entry[2], entry[3] = status, tuple(writer)
        return [TrialRow(e[0], e[1], e[2]) for e in changed.values()]

    def add(self, rid: int, number: int, status: str, writer: tuple[Any, ...]) -> None:
        self.latest[number] = [rid, number, status, writer]
        self.max_id = max(self.max_id, rid)


def claim(conn: sqlite3.Connection, db: Path, me: WriterId, live_tokens: Iterable[str], index: TrialIndex,
          fill: Fill, insert: Insert, *, n_trials: int | None = None, limit: int | None = None) -> Claim:
    """Claim a trial of ``index.study``; run inside the caller's open ``BEGIN IMMEDIATE`` transaction
    (on an error the caller drops ``index``: it may hold what the transaction did not commit)."""
    live = set(live_tokens)
    changed = index.refresh(conn)
    done = mine = others = 0
    rerun: list[int] = []
    marked: list[tuple[int, str | None]] = []
    gone: dict[str, bool] = {}
    for entry in index.latest.values():
        rid, number, status, writer = entry
        if status == "running":
            pid, token, host, started, locked = writer
            if token == me.token:
                mine += 1
            else:
                key = token or f"pid:{pid}"
                if key not in gone:
                    gone[key] = writer_gone(db, writer, me, live)
                if gone[key]:
                    entry[2] = "interrupted"
                    marked.append((rid, token))
                    rerun.append(number)
                    changed.append(TrialRow(rid, number, "interrupted"))
                else:
                    others += 1
        elif status in RERUN:
            rerun.append(number)
        elif status in index.ended:
            done += 1
    conn.executemany(
        "UPDATE runs SET status = 'interrupted', error = COALESCE(error, ?) WHERE id = ?",
        [("interrupted: the process training this trial ended without finishing it; found by a process "
          "claiming a trial of the same study", rid) for rid, _ in marked])
    out = Claim(None, changed=changed, others=others, marked=[rid for rid, _ in marked])
    if n_trials is not None and done + mine + others >= n_trials:
        return out
    search: dict[str, Any] | None = None
    if rerun:
        number = min(rerun)
        (text,) = conn.execute("SELECT params FROM runs WHERE id = ?", (index.latest[number][0],)).fetchone()
        stored = _params(text).get("search")
        search = dict(stored) if isinstance(stored, dict) and stored else None  # none: sampled afresh
    else:
        number = max(index.latest) + 1 if index.latest else 0
        if limit is not None and number >= limit:
            return out
    params, seed, env = fill(number, search)
    out.number, out.search = number, search
    out.run_id = insert(conn, trial_name(number), {**params, "trial": number}, seed, env)
    index.add(out.run_id, number, "running", (me.pid, me.token, me.host, me.started, None))
    for _, token in marked:
        if token:
            remove_lock(db, token)
    return out


def claim_in(writer: Any, db: Path, indexes: dict[str, TrialIndex], study: str, fill: Fill, *,
             n_trials: int | None, limit: int | None, ended: tuple[str, ...], env: Callable[[], dict[str, Any]],
             live_tokens: Iterable[str]) -> Claim:
    """``claim`` in one transaction of a store's ``writer``, with the store's ``indexes`` (by study)."""

    def insert(conn: sqlite3.Connection, name: str, params: Any, seed: int | None, extra: Any) -> int:
        env_json = _json.dumps({**env(), **(extra or {})})
        return writer.insert_run(conn, "trial", study, name, _json.dumps(dict(params)), seed, env_json)

    index = indexes.get(study)
    if index is None or index.ended != ended:
        index = indexes[study] = TrialIndex(study, ended)
    try:
        got = writer.transact(lambda conn: claim(conn, db, writer.id, live_tokens, index, fill, insert,
                                                 n_trials=n_trials, limit=limit))
    except BaseException:
        indexes.pop(study, None)  # it may hold what was not committed: read afresh next time
        raise
    assert got is not None
    return got


def _params(text: Any) -> dict[str, Any]:
    try:
        value = _json.loads(text) if isinstance(text, str) else {}
    except ValueError:  # a damaged row: its trial is sampled afresh
        return {}
    return value if isinstance(value, dict) else {}
