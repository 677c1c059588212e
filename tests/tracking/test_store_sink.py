"""StoreSink: engine events fired by hand on an EventBus land in a real SQLite store."""
from __future__ import annotations

import math
import sqlite3

import pytest

from tunewidgets.engine.events import EventBus, Events
from tunewidgets.tracking import Store, StoreSink, attach_store


@pytest.fixture
def store(tmp_path):
    with Store(tmp_path, batch_rows=10_000, flush_interval=3600) as s:
        yield s


def fire_run(bus, *, status="finished", params=None, env=None, losses=(2.0, 1.0), error=None):
    start = {"config": object(), "params": params if params is not None else {"lr": 0.1, "seed": 4},
             "run_id": None, "env": env if env is not None else {"device": "cpu"}}
    bus.fire(Events.START, start)
    bus.fire(Events.STEP, {"step": 1, "epoch": 0, "lr": 0.1, "loss": object()})  # never read
    bus.fire(Events.LOG, {"rows": [{"step": i + 1, "epoch": 0, "lr": 0.1 / (i + 1), "loss": v}
                                   for i, v in enumerate(losses)]})
    bus.fire(Events.EPOCH, {"epoch": 0, "step": len(losses), "train_loss": 1.5})
    bus.fire(Events.EVAL, {"epoch": 0, "step": len(losses), "train_loss": 1.5,
                           "val_loss": 1.25, "val_accuracy": 0.75})
    bus.fire(Events.END, {"status": status, "final": {"val_loss": 1.25, "steps": len(losses)},
                          "error": error, "perf": {"samples_per_sec": 512.0}, "run_id": start["run_id"]})
    return start


def test_events_become_a_run_with_named_metrics(store):
    bus = EventBus()
    sink = attach_store(bus, store, kind="trial", study="st", name="t0", params={"width": 8})
    start = fire_run(bus)
    run = start["run_id"]
    assert isinstance(run, int) and run == sink.run_id

    row = store.run(run)
    assert (row["kind"], row["study"], row["name"], row["status"]) == ("trial", "st", "t0", "finished")
    assert row["params"] == {"lr": 0.1, "seed": 4, "width": 8} and row["seed"] == 4
    assert row["env"]["device"] == "cpu" and "python" in row["env"]
    assert row["final"] == {"val_loss": 1.25, "steps": 2} and row["perf"] == {"samples_per_sec": 512.0}
    assert row["error"] is None

    m = store.metrics(run)
    by_name = {name: g[["step", "epoch", "value"]].values.tolist() for name, g in m.groupby("name")}
    assert by_name == {
        "train/loss": [[1, 0, 2.0], [2, 0, 1.0]],
        "lr": [[1, 0, 0.1], [2, 0, 0.05]],
        "train/epoch_loss": [[2, 0, 1.5]],
        "val/loss": [[2, 0, 1.25]],
        "val/accuracy": [[2, 0, 0.75]],
    }


def test_end_commits_everything_to_disk(store):
    bus = EventBus()
    attach_store(bus, store)
    run = fire_run(bus)["run_id"]
    conn = sqlite3.connect(store.path)  # a second reader sees it without any flush or close
    try:
        assert conn.execute("SELECT COUNT(*) FROM metrics WHERE run = ?", (run,)).fetchone()[0] == 7
        assert conn.execute("SELECT status FROM runs WHERE id = ?", (run,)).fetchone()[0] == "finished"
    finally:
        conn.close()


def test_failed_and_diverged_runs_keep_error_and_nan(store):
    bus = EventBus()
    attach_store(bus, store)
    failed = fire_run(bus, status="failed", error="Traceback ...\nValueError: bad batch")["run_id"]
    diverged = fire_run(bus, status="diverged", losses=(1.0, math.nan, math.inf))["run_id"]
    assert failed != diverged
    assert store.run(failed)["status"] == "failed" and "bad batch" in store.run(failed)["error"]
    assert store.run(diverged)["status"] == "diverged"
    values = store.metrics(diverged, name="train/loss")["value"].tolist()
    assert values[0] == 1.0 and math.isnan(values[1]) and values[2] == math.inf


def test_preset_run_id_is_filled_not_duplicated(store):
    run = store.start_run(kind="trial", study="s", params={"lr": 0.3})
    bus = EventBus()
    with attach_store(bus, store, run_id=run) as sink:
        start = fire_run(bus)
    assert start["run_id"] == run == sink.run_id
    assert store.runs()["id"].tolist() == [run]
    assert store.run(run)["params"] == {"lr": 0.3}  # the run as the search added it
    assert len(store.metrics(run)) == 7


def test_remove_detaches_every_handler(store):
    bus = EventBus()
    sink = attach_store(bus, store)
    assert len(sink.handles) == 5 and all(bus.has(e) for e in ("start", "log", "epoch", "eval", "end"))
    sink.remove()
    start = fire_run(bus)
    assert start["run_id"] is None and store.runs().empty
    assert not any(bus.has(e) for e in Events)


def test_events_without_a_start_write_nothing(store):
    bus = EventBus()
    attach_store(bus, store)
    bus.fire(Events.LOG, {"rows": [{"step": 1, "epoch": 0, "lr": 0.1, "loss": 1.0}]})
    bus.fire(Events.END, {"status": "finished", "final": {}})
    assert store.runs().empty and store.metrics(None).empty


def test_bad_sink_arguments(store, tmp_path):
    with pytest.raises(TypeError, match="store: expected a tunewidgets Store"):
        StoreSink(str(tmp_path))
    with pytest.raises(ValueError, match="run_id: no run 5"):
        StoreSink(store, 5)
    with pytest.raises(TypeError, match="Trainer or an EventBus"):
        StoreSink(store).attach(object())
    bus = EventBus()
    sink = attach_store(bus, store)
    start = {"params": {}, "run_id": None}
    bus.fire(Events.START, start)
    with pytest.warns(RuntimeWarning, match="status: must be one of"):  # a sink never raises into its run
        bus.fire(Events.END, {"status": "exploded", "final": {}})
    assert len(sink.errors) == 1 and "'exploded'" in sink.errors[0]
    assert store.run(start["run_id"])["status"] == "failed"  # marked: its record is not whole
