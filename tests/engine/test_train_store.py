"""tw.train with a store: the run, its metrics and its end state land in a real SQLite file."""
from __future__ import annotations

import sqlite3
import threading

import numpy as np
import pytest
import torch
from engine_helpers import blob_task, blobs

import tunewidgets as tw


def test_finished_run_is_committed_with_params_env_perf_and_metrics(tmp_path):
    cfg = tw.TrainConfig(optimizer="adam", lr=0.01, epochs=3, log_every=4, device="cpu")
    run = tw.train(blob_task(), cfg, store=tmp_path / "runs")
    # read with a separate plain sqlite3 connection: the data is on disk when train returns
    db = tmp_path / "runs" / "runs.sqlite"
    with sqlite3.connect(db) as con:
        status, = con.execute("select status from runs where id = ?", (run.run_id,)).fetchone()
    assert status == "finished"

    store = tw.Store(tmp_path / "runs")
    runs = store.runs()
    assert len(runs) == 1
    row = runs.iloc[0]
    assert row["kind"] == "train" and row["seed"] == 0
    assert row["params"]["lr"] == 0.01 and row["params"]["optimizer"] == "adam"
    assert row["env"]["torch"] == torch.__version__ and row["env"]["device"] == "cpu"
    assert row["perf"]["n_params"] == run.perf["n_params"]
    assert row["final"]["val_accuracy"] == pytest.approx(run.final["val_accuracy"])

    m = store.metrics(run.run_id)
    train_loss = m[m["name"] == "train/loss"].sort_values("step")
    np.testing.assert_allclose(train_loss["value"], run.steps()["loss"], rtol=1e-6)
    assert list(train_loss["step"]) == list(run.steps()["step"])
    val_acc = m[m["name"] == "val/accuracy"]
    assert list(val_acc["epoch"]) == [0, 1, 2]
    store.close()


def test_stopped_and_failed_runs_are_recorded(tmp_path):
    store = tw.Store(tmp_path / "runs")
    stop = threading.Event()
    run = tw.train(blob_task(train=blobs(2048)), tw.TrainConfig(epochs=5, device="cpu"), store=store,
                   stop=stop, callbacks=[{"step": lambda r: r["step"] == 7 and stop.set()}])
    assert run.status == "stopped"

    task = blob_task()
    real, calls = task.loss_fn, {"n": 0}

    class Flaky:
        """The real loss, raising on its third call (a failure mid-run)."""

        name = "flaky"

        def check(self, out, y):
            real.check(out, y)

        def __call__(self, out, y):
            calls["n"] += 1
            if calls["n"] == 3:
                raise RuntimeError("loss exploded on purpose")
            return real(out, y)

    task.loss_fn = Flaky()
    with pytest.raises(RuntimeError, match="on purpose"):
        tw.train(task, tw.TrainConfig(epochs=1, device="cpu"), store=store)
    runs = store.runs().sort_values("id")
    assert list(runs["status"]) == ["stopped", "failed"]
    assert "loss exploded on purpose" in runs.iloc[1]["error"]
    assert "Traceback" in runs.iloc[1]["error"]
    stopped_losses = store.metrics(int(runs.iloc[0]["id"]), name="train/loss")
    assert stopped_losses["step"].max() == 7
    store.close()
