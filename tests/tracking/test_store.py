"""The embedded run store: real SQLite files under tmp_path."""
from __future__ import annotations

import gc
import json
import math
import os
import shutil
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from tunewidgets.tracking import SCHEMA_VERSION, STATUSES, Store, StoreVersionError, _schema
from tunewidgets.engine.env import git_commit
from support.killing import child, kill9, ready_line



def peek(db: Path, sql: str, args: tuple = ()) -> list[tuple]:
    """Read with a second, independent connection: sees committed data only."""
    conn = sqlite3.connect(db)
    try:
        return conn.execute(sql, args).fetchall()
    finally:
        conn.close()


def count_metrics(db: Path) -> int:
    return peek(db, "SELECT COUNT(*) FROM metrics")[0][0]


# ------------------------------------------------------------------ round trip
def test_round_trip_runs_and_metrics(tmp_path):
    folder = tmp_path / "runs"
    with Store(folder) as store:
        assert store.path == folder / "runs.sqlite" and store.folder == folder
        a = store.start_run(kind="trial", study="s1", name="a", params={"lr": 0.1, "betas": (0.9, 0.99)},
                            seed=3, env={"device": "cpu"})
        b = store.start_run(kind="lr_range_test", study="s2")
        store.log_metrics(a, [(0, 0, "train/loss", 2.5), (1, 0, "train/loss", 1.25)])
        store.log_metrics(a, [{"step": 1, "epoch": 0, "name": "val/loss", "value": 1.5},
                              {"step": 2, "name": "lr", "value": 0.05}])
        store.log_metrics(b, [(0, None, "loss", 9.0)])
        store.finish_run(a, "finished", final={"val/loss": 1.5}, perf={"samples_per_sec": 1000.0})

        runs = store.runs()
        assert runs["id"].tolist() == [a, b]
        assert runs["status"].tolist() == ["finished", "running"]
        only = store.runs(study="s1")
        assert only["id"].tolist() == [a]
        assert store.runs(kind="lr_range_test")["id"].tolist() == [b]
        row = store.run(a)
        assert row["params"] == {"lr": 0.1, "betas": [0.9, 0.99]}
        assert row["final"] == {"val/loss": 1.5} and row["perf"] == {"samples_per_sec": 1000.0}
        assert (row["kind"], row["study"], row["name"], row["seed"]) == ("trial", "s1", "a", 3)
        assert row["env"]["device"] == "cpu" and row["env"]["python"] == sys.version.split()[0]
        assert {"torch", "tunewidgets", "git_commit"} <= set(row["env"])
        assert row["ended_at"] >= row["started_at"] and row["duration"] == pytest.approx(
            row["ended_at"] - row["started_at"])
        assert row["error"] is None

        m = store.metrics(a)
        assert list(m.columns) == ["run", "step", "epoch", "name", "value"]
        assert m["step"].tolist() == [0, 1, 1, 2]
        assert m["value"].tolist() == [2.5, 1.25, 1.5, 0.05]
        assert m["epoch"].tolist()[:3] == [0.0, 0.0, 0.0] and math.isnan(m["epoch"].iloc[3])
        assert store.metrics(a, name="train/loss")["value"].tolist() == [2.5, 1.25]
        assert store.metrics([a, b])["run"].tolist() == [a, a, a, a, b]
        assert len(store.metrics(None)) == 5
        assert store.metrics(a, name="nothing").empty

    with Store(folder) as again:  # reopened: same data, ids continue
        assert again.metrics(a)["value"].tolist() == [2.5, 1.25, 1.5, 0.05]
        assert again.start_run() == b + 1


def test_database_file_path_and_empty_db_file(tmp_path):
    with Store(tmp_path / "sub" / "mine.db") as store:
        assert store.path == tmp_path / "sub" / "mine.db"
        run = store.start_run()
    with Store(tmp_path / "sub" / "mine.db") as store:
        assert store.run(run)["status"] == "interrupted"  # closed without finishing
    (tmp_path / "empty.sqlite").touch()
    with Store(tmp_path / "empty.sqlite") as store:
        assert store.runs().empty and list(store.runs().columns)[:3] == ["id", "study", "kind"]


# ------------------------------------------------------------------ batching
def test_rows_wait_in_memory_until_batch_is_full_then_one_transaction(tmp_path):
    store = Store(tmp_path, batch_rows=100, flush_interval=3600)
    run = store.start_run()
    commits = []
    store._writer.conn.set_trace_callback(lambda sql: commits.append(sql) if sql == "COMMIT" else None)
    for step in range(99):
        store.log_metrics(run, [(step, 0, "train/loss", float(step))])
    assert count_metrics(store.path) == 0
    assert commits == []
    store.log_metrics(run, [(99, 0, "train/loss", 99.0)])  # a full batch: the writer thread takes it
    deadline = time.monotonic() + 60  # a guard against a hang
    while count_metrics(store.path) < 100 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert count_metrics(store.path) == 100
    assert len(commits) == 1
    store.log_metrics(run, [(100, 0, "train/loss", 1.0)] * 3)
    assert count_metrics(store.path) == 100
    store.flush()
    assert count_metrics(store.path) == 103 and len(commits) == 2
    store.flush()  # nothing buffered: no empty transaction
    assert len(commits) == 2
    store.close()


class WriterClock:
    """The store writer's clock, moved by the test (``time.time`` stays real)."""

    def __init__(self):
        self.now = 1000.0

    def monotonic(self):
        return self.now

    time = staticmethod(time.time)


def test_rows_are_written_after_the_flush_interval_without_further_calls(tmp_path, monkeypatch):
    from tunewidgets.tracking import _writer

    clock = WriterClock()
    monkeypatch.setattr(_writer, "time", clock)
    store = Store(tmp_path, batch_rows=10_000, flush_interval=0.2)
    run = store.start_run()
    store.log_metrics(run, [(s, 0, "train/loss", 1.0) for s in range(5)])
    store._writer._wake.set()  # the thread looks now: the interval has not passed on its clock
    clock.now += 0.1
    assert count_metrics(store.path) == 0  # however long this thread was away: the clock did not move
    clock.now += 0.2  # past the interval: the thread writes them at its next look, with no call from here
    deadline = time.monotonic() + 60  # a guard against a hang, not a speed limit
    while count_metrics(store.path) == 0 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert count_metrics(store.path) == 5
    store.close()


def test_finish_run_commits_before_returning(tmp_path):
    store = Store(tmp_path, batch_rows=10_000, flush_interval=3600)
    run = store.start_run()
    assert peek(store.path, "SELECT status FROM runs") == [("running",)]  # start is written at once
    store.log_metrics(run, [(s, 0, "train/loss", 0.5) for s in range(10)])
    assert count_metrics(store.path) == 0
    store.finish_run(run, "failed", error=RuntimeError("boom"))
    assert count_metrics(store.path) == 10
    status, error = peek(store.path, "SELECT status, error FROM runs")[0]
    assert status == "failed" and "RuntimeError: boom" in error
    store.close()


def test_close_and_garbage_collection_flush(tmp_path):
    store = Store(tmp_path / "a", batch_rows=10_000, flush_interval=3600)
    store.log_metrics(store.start_run(), [(0, 0, "x", 1.0)])
    db = store.path
    del store
    gc.collect()
    assert count_metrics(db) == 1

    store = Store(tmp_path / "b", batch_rows=10_000, flush_interval=3600)
    run = store.start_run()
    store.log_metrics(run, [(0, 0, "x", 1.0)])
    store.close()
    store.close()
    assert count_metrics(store.path) == 1 and store.closed
    with pytest.raises(ValueError, match="closed"):
        store.log_metrics(run, [(1, 0, "x", 1.0)])


def test_threads_write_concurrently(tmp_path):
    store = Store(tmp_path, batch_rows=64, flush_interval=0.05)
    runs = [store.start_run(name=f"t{i}") for i in range(4)]

    def work(run):
        for step in range(300):
            store.log_metrics(run, [(step, 0, "train/loss", float(step))])

    threads = [threading.Thread(target=work, args=(r,)) for r in runs]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for run in runs:
        assert store.metrics(run)["step"].tolist() == list(range(300))
    store.close()


# ------------------------------------------------------------------ values
def test_nan_and_inf_survive_in_metrics_and_json(tmp_path):
    weird = {"nan": math.nan, "inf": math.inf, "ninf": -math.inf, "nested": [1.0, math.nan]}
    with Store(tmp_path) as store:
        run = store.start_run(params={"lr": math.inf})
        store.log_metrics(run, [(0, 0, "loss", math.nan), (1, 0, "loss", math.inf), (2, 0, "loss", -math.inf)])
        store.finish_run(run, "diverged", final=weird, perf={"samples_per_sec": math.nan})
    with Store(tmp_path) as store:
        values = store.metrics(run)["value"].tolist()
        assert math.isnan(values[0]) and values[1:] == [math.inf, -math.inf]
        row = store.run(run)
        assert row["params"] == {"lr": math.inf}
        assert math.isnan(row["final"]["nan"]) and math.isnan(row["final"]["nested"][1])
        assert (row["final"]["inf"], row["final"]["ninf"]) == (math.inf, -math.inf)
        assert math.isnan(row["perf"]["samples_per_sec"])
    for column in ("params", "final", "perf"):  # strict JSON any reader can parse
        text = peek(store.path, f"SELECT {column} FROM runs")[0][0]
        json.loads(text, parse_constant=lambda c: pytest.fail(f"{column} has non-standard {c}"))


def test_numpy_values_and_odd_params_are_stored(tmp_path):
    np = pytest.importorskip("numpy")
    with Store(tmp_path) as store:
        run = store.start_run(params={"bs": np.int64(32), "lr": np.float32(0.5), "p": tmp_path,
                                      "obj": object.__new__(type("Thing", (), {}))}, seed=np.int64(2))
        store.log_metrics(run, [(np.int64(3), 0, "loss", np.float64(0.25))])
        row = store.run(run)
        assert row["params"]["bs"] == 32 and row["params"]["lr"] == 0.5 and row["seed"] == 2
        assert row["params"]["p"] == str(tmp_path) and "Thing" in row["params"]["obj"]
        assert store.metrics(run)[["step", "value"]].values.tolist() == [[3, 0.25]]


# ------------------------------------------------------------------ schema
def test_newer_schema_raises_naming_both_versions(tmp_path):
    Store(tmp_path).close()
    conn = sqlite3.connect(tmp_path / "runs.sqlite")
    conn.execute("UPDATE meta SET value = '7' WHERE key = 'schema_version'")
    conn.commit()
    conn.close()
    with pytest.raises(StoreVersionError, match=rf"version 7.*up to {SCHEMA_VERSION}.*upgrade tunewidgets"):
        Store(tmp_path)


def test_older_schema_is_migrated(tmp_path, monkeypatch):
    Store(tmp_path).close()
    seen = []
    old, new = SCHEMA_VERSION, SCHEMA_VERSION + 1

    def to_next(conn):
        seen.append(conn.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()[0])
        conn.execute("ALTER TABLE runs ADD COLUMN notes TEXT")

    monkeypatch.setattr(_schema, "SCHEMA_VERSION", new)
    monkeypatch.setitem(_schema.MIGRATIONS, old, to_next)
    with Store(tmp_path) as store:
        assert store.schema_version == new
    assert seen == [str(old)]
    assert peek(tmp_path / "runs.sqlite", "SELECT value FROM meta WHERE key='schema_version'") == [(str(new),)]
    assert "notes" in [r[1] for r in peek(tmp_path / "runs.sqlite", "PRAGMA table_info(runs)")]


def test_store_uses_wal_and_records_meta(tmp_path):
    Store(tmp_path).close()
    assert peek(tmp_path / "runs.sqlite", "PRAGMA journal_mode") == [("wal",)]
    meta = dict(peek(tmp_path / "runs.sqlite", "SELECT key, value FROM meta"))
    assert meta["schema_version"] == str(SCHEMA_VERSION) and meta["created_with"].startswith("tunewidgets")
    indexes = [r[1] for r in peek(tmp_path / "runs.sqlite", "PRAGMA index_list(metrics)")]
    assert "metrics_run_name_step" in indexes


# ------------------------------------------------------------------ bad input
def test_bad_paths_raise_clear_errors(tmp_path):
    text = tmp_path / "notes.txt"
    text.write_text("hello")
    with pytest.raises(ValueError, match=r"notes\.txt is a file but not an SQLite database.*folder"):
        Store(text)
    png = tmp_path / "plot.png"
    png.write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(64))
    with pytest.raises(ValueError, match=r"plot\.png is a file but not an SQLite database"):
        Store(png)
    fake = tmp_path / "fake.sqlite"
    fake.write_bytes(b"SQLite format 3\x00" + b"garbage" * 100)
    with pytest.raises(ValueError, match=r"fake\.sqlite"):
        Store(fake)
    with pytest.raises(ValueError, match=r"inside .*notes\.txt, which is a file"):
        Store(text / "runs")
    with pytest.raises(TypeError, match="store path"):
        Store(123)
    foreign = tmp_path / "other.db"
    conn = sqlite3.connect(foreign)
    conn.execute("CREATE TABLE experiments (x)")
    conn.commit()
    conn.close()
    with pytest.raises(ValueError, match="not a tunewidgets run store.*experiments"):
        Store(foreign)
    assert text.read_text() == "hello" and not (tmp_path / "runs.sqlite").exists()


def test_bad_arguments_raise_before_writing(tmp_path):
    with pytest.raises(ValueError, match="batch_rows"):
        Store(tmp_path, batch_rows=0)
    with pytest.raises(ValueError, match="flush_interval"):
        Store(tmp_path, flush_interval=-1)
    with Store(tmp_path) as store:
        run = store.start_run()
        with pytest.raises(ValueError, match=r"status: must be one of .*'done'"):
            store.finish_run(run, "done")
        with pytest.raises(ValueError, match="running"):
            store.finish_run(run, "running")
        with pytest.raises(ValueError, match="status"):
            store.set_status(run, "sleeping")
        with pytest.raises(ValueError, match="run_id: no run 99"):
            store.log_metrics(99, [(0, 0, "x", 1.0)])
        with pytest.raises(TypeError, match="wrap a single row"):
            store.log_metrics(run, {"step": 0, "epoch": 0, "name": "x", "value": 1.0})
        with pytest.raises(TypeError, match=r"rows\[1\]\.value"):
            store.log_metrics(run, [(0, 0, "x", 1.0), (1, 0, "x", "high")])
        with pytest.raises(TypeError, match=r"rows\[0\]\.step"):
            store.log_metrics(run, [(0.5, 0, "x", 1.0)])
        with pytest.raises(ValueError, match=r"rows\[0\]: missing name"):
            store.log_metrics(run, [{"step": 0, "value": 1.0}])
        with pytest.raises(TypeError, match="params"):
            store.start_run(params=[("lr", 0.1)])
        with pytest.raises(ValueError, match="kind"):
            store.start_run(kind="")
        assert store.metrics(run).empty and len(store.runs()) == 1
        store.set_status(run, "pruned")
        assert store.run(run)["status"] == "pruned"
    assert set(STATUSES) == {"running", "finished", "failed", "stopped", "pruned", "diverged", "interrupted"}


# ------------------------------------------------------------------ crash safety
def test_runs_of_a_live_store_in_this_process_are_not_interrupted(tmp_path):
    first = Store(tmp_path)
    run = first.start_run()
    with Store(tmp_path) as second:
        assert second.interrupted == () and second.run(run)["status"] == "running"
    first.close()  # closed without finishing: the run cannot go on
    with Store(tmp_path) as third:
        assert third.interrupted == (run,)
        row = third.run(run)
        assert row["status"] == "interrupted" and f"pid {os.getpid()}" in row["error"]


def test_sigkill_mid_write_leaves_a_store_that_opens(tmp_path):
    per_flush, ready_after = 200, 3
    with child(Path(__file__).with_name("_killer.py"), tmp_path, per_flush, ready_after, timeout=60.0) as proc:
        run = int(ready_line(proc, "ready").split()[1])
        # kill it mid-loop, once it has committed two more flushes (2 rows a step), not after a fixed time
        target = 2 * per_flush * (ready_after + 2)
        db = tmp_path / "runs.sqlite"
        deadline = time.monotonic() + 60  # a guard against a hang
        while count_metrics(db) < target and time.monotonic() < deadline:
            time.sleep(0.01)
        kill9(proc)

    with Store(tmp_path) as store:
        assert store.interrupted == (run,)
        assert store.run(run)["status"] == "interrupted"
        loss = store.metrics(run, name="train/loss")["step"].tolist()
        lr = store.metrics(run, name="lr")["step"].tolist()
    # every flush is all-or-nothing: the steps are 0..n-1 for a whole number of flushes
    n = len(loss)
    assert n >= per_flush * ready_after and n % per_flush == 0
    assert loss == list(range(n)) and lr == loss
    assert peek(tmp_path / "runs.sqlite", "PRAGMA integrity_check") == [("ok",)]


# ------------------------------------------------------------------ environment
def test_git_commit_is_found_in_a_repository_and_none_elsewhere(tmp_path):
    plain = tmp_path / "plain"
    plain.mkdir()
    if shutil.which("git") is None:
        pytest.skip("git is not installed")
    if subprocess.run(["git", "rev-parse", "HEAD"], cwd=plain, capture_output=True).returncode == 0:
        pytest.skip("tmp_path lies inside a git repository")
    assert git_commit(plain) is None
    repo = tmp_path / "repo"
    repo.mkdir()
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@example.org", "-c", "commit.gpgsign=false"]
    subprocess.run([*git, "init", "-q"], cwd=repo, check=True)
    subprocess.run([*git, "commit", "-q", "--allow-empty", "-m", "x"], cwd=repo, check=True)
    head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=repo, capture_output=True, text=True).stdout.strip()
    assert git_commit(repo) == head and len(head) == 40


def test_full_batches_are_written_off_the_callers_thread_unless_backlogged(tmp_path):
    import threading

    store = Store(tmp_path, batch_rows=50, flush_interval=3600)
    run = store.start_run()
    writers = []
    store._writer.conn.set_trace_callback(
        lambda sql: writers.append(threading.current_thread()) if sql == "COMMIT" else None)
    store.log_metrics(run, [(s, 0, "train/loss", 1.0) for s in range(50)])
    deadline = time.monotonic() + 60  # a guard against a hang
    while count_metrics(store.path) < 50 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert count_metrics(store.path) == 50
    assert writers and threading.current_thread() not in writers
    # a backlog of 8 batches at once is written by the caller: memory stays bounded
    writers.clear()
    store.log_metrics(run, [(s, 0, "lr", 0.1) for s in range(400)])
    assert count_metrics(store.path) == 450
    assert writers == [threading.current_thread()]
    store.close()
