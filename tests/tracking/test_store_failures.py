"""A store that cannot write (a full disk) never costs a training its results.

Two ways to fill it: SQLite's own limit, ``PRAGMA max_page_count`` on the store's connection,
which fails a write that needs a new page with SQLITE_FULL ("database or disk is full"), the
very error a full disk gives; it runs anywhere and lets a test lift the limit again. And a
real full disk: a 4 MiB tmpfs, mounted inside a private mount namespace (``unshare``) so that
the machine's mounts are never touched and the mount goes with the process; it needs root
and is skipped otherwise.
"""
from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
import sys
import warnings
from pathlib import Path

import pytest
import torch
from torch.utils.data import TensorDataset

import tunewidgets as tw
from tunewidgets.tracking import _writer
from tunewidgets.tracking.store import Store, StoreWarning

REPO = Path(__file__).resolve().parents[2]
FULL = "database or disk is full"


def peek(db: Path, sql: str, args: tuple = ()) -> list[tuple]:
    conn = sqlite3.connect(db)
    try:
        return conn.execute(sql, args).fetchall()
    finally:
        conn.close()


def set_limit(store: Store, pages: int | None) -> None:
    """Cap the database at its current size (None: lift the cap)."""
    with store._writer.db_lock:
        conn = store._writer.conn
        n = conn.execute("PRAGMA page_count").fetchone()[0] if pages is None or pages == 0 else pages
        conn.execute(f"PRAGMA max_page_count = {1073741823 if pages is None else n}")


def rows(run: int, start: int, n: int, name: str = "train/loss") -> list[tuple]:
    return [(s, 0, name, float(s)) for s in range(start, start + n)]


def task(batch_size: int = 32) -> tw.Task:
    g = torch.Generator().manual_seed(0)
    y = torch.randint(0, 3, (256,), generator=g)
    x = torch.tensor([[2.0, 0.0], [-2.0, 1.0], [0.0, -2.0]])[y] + 0.7 * torch.randn(256, 2, generator=g)
    return tw.Task(model=lambda: torch.nn.Sequential(torch.nn.Linear(2, 16), torch.nn.ReLU(), torch.nn.Linear(16, 3)),
                   train=TensorDataset(x, y), val=TensorDataset(x[:64], y[:64]), batch_size=batch_size)


def test_a_full_database_raises_nothing_and_the_run_is_marked_where_it_fits(tmp_path):
    store = Store(tmp_path, batch_rows=10_000, flush_interval=3600)
    run = store.start_run(params={"lr": 0.1})
    store.log_metrics(run, rows(run, 0, 100))
    store.flush()
    set_limit(store, 0)
    store.log_metrics(run, rows(run, 100, 5000))
    with pytest.warns(StoreWarning, match=rf"writing 5000 metric rows to .*runs.sqlite failed .*{FULL}"):
        store.flush()
    with pytest.warns(StoreWarning, match=rf"writing how run {run} ended .*{FULL}"):
        store.finish_run(run, "finished", final={"val/loss": 0.5}, perf={"train_time": 1.0})
    errors = store.errors
    assert [(e.op, e.run_id, e.resolved) for e in errors] == [("flush", None, False), ("finish_run", run, False)]
    assert all(FULL in e.error and e.path == str(store.path) for e in errors)
    assert errors[0].rows == 5000
    # the rows needed new pages; the run's row did not: it is marked although the rows wait
    row = peek(store.path, "SELECT status, final FROM runs WHERE id = ?", (run,))[0]
    assert row == ("finished", '{"val/loss": 0.5}')
    assert peek(store.path, "SELECT COUNT(*) FROM metrics")[0][0] == 100
    set_limit(store, None)  # space again: the next write takes everything that waited
    store.flush()
    assert [e.resolved for e in store.errors] == [True, True]
    assert store.metrics(run)["step"].tolist() == list(range(5100))
    store.close()


def test_the_smallest_end_is_written_when_the_whole_one_does_not_fit(tmp_path):
    store = Store(tmp_path, batch_rows=10_000, flush_interval=3600)
    run = store.start_run()
    set_limit(store, 0)
    huge = {"notes": "x" * 50_000}  # needs overflow pages: cannot fit
    with pytest.warns(StoreWarning):
        store.finish_run(run, "stopped", final=huge)
    status, ended, final = peek(store.path, "SELECT status, ended_at, final FROM runs WHERE id = ?", (run,))[0]
    assert status == "stopped" and ended is not None and final is None
    set_limit(store, None)
    store.close()  # the whole end is written when it can be
    assert json.loads(peek(store.path, "SELECT final FROM runs")[0][0]) == huge


def test_the_background_writer_records_a_failure_and_the_caller_goes_on(tmp_path):
    store = Store(tmp_path, batch_rows=50, flush_interval=0.05)
    run = store.start_run()
    set_limit(store, 0)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for start in range(0, 2000, 50):  # full batches: the background thread writes them
            store.log_metrics(run, rows(run, start, 50))
        _wait(lambda: store.errors and store.errors[0].count >= 2)
    failure = store.errors[0]
    assert failure.op == "metrics" and FULL in failure.error and not failure.resolved
    assert sum(issubclass(w.category, StoreWarning) for w in caught) == 1  # one warning, not one per try
    set_limit(store, None)
    _wait(lambda: store.errors[0].resolved)
    assert len(store.metrics(run)) == 2000
    store.close()


def test_while_writes_fail_memory_is_bounded_and_dropped_rows_are_counted(tmp_path, monkeypatch):
    monkeypatch.setattr(_writer, "MAX_HELD", 3000)
    store = Store(tmp_path, batch_rows=10_000, flush_interval=3600)
    run = store.start_run()
    set_limit(store, 0)
    store.log_metrics(run, rows(run, 0, 2000))
    with pytest.warns(StoreWarning):
        store.flush()
    with pytest.warns(StoreWarning, match="3000 metric rows wait in memory .* newer rows are dropped"):
        store.log_metrics(run, rows(run, 2000, 1500))
    store.log_metrics(run, rows(run, 3500, 500))
    assert len(store._writer.buffer) == 3000 and store.errors[0].dropped == 1000
    set_limit(store, None)
    store.flush()
    assert store.metrics(run)["step"].tolist() == list(range(3000))
    store.close()


def test_closing_a_store_that_cannot_write_warns_and_the_run_is_interrupted_next_time(tmp_path):
    store = Store(tmp_path, batch_rows=10_000, flush_interval=3600)
    run = store.start_run()
    set_limit(store, 0)
    store.log_metrics(run, rows(run, 0, 3000))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        store.close()  # raises nothing
    texts = [str(w.message) for w in caught if issubclass(w.category, StoreWarning)]
    assert any("closed" in t and "3000 metric rows that could not be written" in t for t in texts)
    assert [e.op for e in store.errors][-1] == "close" and store.errors[-1].dropped == 3000
    with Store(tmp_path) as again:
        assert again.interrupted == (run,)


def test_train_returns_its_run_and_model_when_the_store_fills_mid_run(tmp_path):
    store = Store(tmp_path, batch_rows=20, flush_interval=0.05)

    def fill_after_first_epoch(record):
        if record["epoch"] == 0:
            store.flush()
            set_limit(store, 0)

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        # 32 steps an epoch: the rows of the later epochs need new pages
        run = tw.train(task(batch_size=8), tw.TrainConfig(lr=0.1, epochs=4, log_every=2, device="cpu"),
                       store=store, callbacks=[{"epoch": fill_after_first_epoch}])
    assert run.status == "finished" and run.final["steps"] == 128 and isinstance(run.model, torch.nn.Module)
    assert any(issubclass(w.category, StoreWarning) and str(store.path) in str(w.message) for w in caught)
    assert store.errors and all(FULL in e.error for e in store.errors)
    # the Run says what was not recorded while it trained
    assert run.sink_errors and all(e.startswith("store: ") and FULL in e for e in run.sink_errors)
    assert peek(store.path, "SELECT status FROM runs WHERE id = ?", (run.run_id,)) == [("finished",)]
    set_limit(store, None)
    store.close()
    losses = peek(store.path, "SELECT COUNT(*) FROM metrics WHERE run = ? AND name = 'train/loss'", (run.run_id,))
    assert losses == [(128,)]


def test_a_real_full_disk(tmp_path):
    if os.name != "posix" or os.geteuid() != 0 or shutil.which("unshare") is None:
        pytest.skip("needs root and unshare to mount a private tmpfs")
    mount = tmp_path / "small-disk"
    mount.mkdir()
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
    done = subprocess.run(["unshare", "--mount", "--propagation", "private", sys.executable,
                           str(Path(__file__).with_name("_full_disk.py")), str(mount)],
                          capture_output=True, text=True, env=env, timeout=300)
    if done.returncode != 0 and "unshare" in done.stderr:
        pytest.skip(f"no private mount namespace here: {done.stderr.strip()}")
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout.strip().splitlines()[-1])
    if "skip" in out:
        pytest.skip(out["skip"])
    assert out["status"] == "finished" and out["has_model"] and out["steps"] == 32
    assert out["ballast"][0] > 0
    assert out["errors"] and all(FULL in e for e in out["errors"])
    assert any(str(mount) in w and FULL in w for w in out["warnings"])
    assert out["row_while_full"] in ("running", "finished")
    assert out["row_after"] == ["finished", 1] and out["loss_rows_after"] == 32 and all(out["resolved"])
    assert not any(mount.iterdir())  # the tmpfs was private to the child: nothing written here


def _wait(condition, timeout: float = 60.0) -> None:  # a guard against a hang, not a speed limit
    import time

    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


# ------------------------------------------------------------------ a row never claims a record it lacks
def _train_filling(store, fill: bool):
    def fill_after_first_epoch(record):
        if fill and record["epoch"] == 0:
            store.flush()
            set_limit(store, 0)

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", StoreWarning)
        return tw.train(task(batch_size=8), tw.TrainConfig(lr=0.1, epochs=4, log_every=2, device="cpu"),
                        store=store, callbacks=[{"epoch": fill_after_first_epoch}])


def test_a_run_that_ended_without_its_metric_rows_says_its_record_is_incomplete(tmp_path):
    with Store(tmp_path / "clean") as clean:
        whole = len(clean.metrics(_train_filling(clean, fill=False).run_id))
    store = Store(tmp_path / "full", batch_rows=20, flush_interval=3600)
    run = _train_filling(store, fill=True)
    assert run.status == "finished"
    written = peek(store.path, "SELECT COUNT(*) FROM metrics WHERE run = ?", (run.run_id,))[0][0]
    assert 0 < written < whole
    status, error = peek(store.path, "SELECT status, error FROM runs WHERE id = ?", (run.run_id,))[0]
    assert status == "finished"
    assert error.startswith(f"incomplete record: {whole - written:,} metric rows not written yet (kept in memory")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", StoreWarning)
        store.close()  # still full: the waiting rows are lost, and the row says so
    with Store(tmp_path / "full") as again:
        row = again.runs().iloc[0]
        assert again.metrics(run.run_id).shape[0] == written
    assert row["status"] == "finished"
    assert row["error"] == (f"incomplete record: {whole - written:,} metric rows were lost (OperationalError: "
                            f"{FULL}, on {store.path})")
    page = tw.report(tmp_path / "full", tmp_path / "report.html").read_text()
    assert f"incomplete record: {whole - written:,} metric rows were lost" in page


def test_the_incomplete_note_goes_when_the_rows_are_written_after_all(tmp_path):
    store = Store(tmp_path, batch_rows=10_000, flush_interval=3600)
    run = store.start_run()
    store.log_metrics(run, rows(run, 0, 10))
    store.flush()
    set_limit(store, 0)
    store.log_metrics(run, rows(run, 10, 3000))
    with pytest.warns(StoreWarning):
        store.finish_run(run, "failed", error="ValueError: boom")
    error = peek(store.path, "SELECT error FROM runs WHERE id = ?", (run,))[0][0]
    assert error.startswith("incomplete record: 3,000 metric rows not written yet") and error.endswith(
        "\nValueError: boom")
    set_limit(store, None)
    store.flush()
    assert peek(store.path, "SELECT status, error FROM runs WHERE id = ?", (run,)) == [("failed", "ValueError: boom")]
    assert len(store.metrics(run)) == 3010
    store.close()


def test_rows_dropped_by_the_memory_cap_are_counted_in_the_row(tmp_path, monkeypatch):
    monkeypatch.setattr(_writer, "MAX_HELD", 3000)
    store = Store(tmp_path, batch_rows=10_000, flush_interval=3600)
    run = store.start_run()
    set_limit(store, 0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", StoreWarning)
        store.log_metrics(run, rows(run, 0, 2000))
        store.flush()
        store.log_metrics(run, rows(run, 2000, 1500))  # 500 over the cap: dropped
        store.finish_run(run, "finished")
    set_limit(store, None)
    store.flush()
    assert len(store.metrics(run)) == 3000
    assert store.run(run)["error"] == (f"incomplete record: 500 metric rows were lost (OperationalError: {FULL}, "
                                       f"on {store.path})")
    store.close()
