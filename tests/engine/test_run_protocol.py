"""The run protocol: sinks through callbacks=, run ids and trial numbers on every record, run
control (pruned, StopRun, chained stops), the emit forwarder, failures recorded."""
from __future__ import annotations

import threading

import pytest
import torch

import tunewidgets as tw
from engine_helpers import blob_task
from tunewidgets.engine.control import RunStop, StopRun, run_slot, run_slot_busy
from tunewidgets.engine.events import EventBus, Events, emit
from tunewidgets.tracking import Store, StoreSink

CPU = dict(device="cpu")


def _record_all(trainer_or_test):
    seen = []
    for event in Events:
        trainer_or_test.bus.on(event, lambda rec, _e=event.value: seen.append((_e, rec)))
    return seen


def test_store_sink_through_callbacks_records_the_run(tmp_path):
    with Store(tmp_path) as store:
        sink = StoreSink(store, study="demo", name="cb")
        run = tw.train(blob_task(), tw.TrainConfig(epochs=2, lr=0.05, log_every=4, **CPU), callbacks=[sink])
        assert run.status == "finished" and run.run_id == sink.run_id is not None
        row = store.run(run.run_id)
        assert (row["status"], row["study"], row["name"], row["kind"]) == ("finished", "demo", "cb", "train")
        assert row["params"]["lr"] == 0.05 and row["seed"] == 0
        metrics = store.metrics(run.run_id)
        steps = run.steps()
        stored = metrics[metrics["name"] == "train/loss"]
        assert stored["step"].tolist() == steps["step"].tolist()
        assert stored["value"].tolist() == pytest.approx(steps["loss"].tolist())
        val = metrics[metrics["name"] == "val/accuracy"]["value"].tolist()
        assert val == pytest.approx(run.evals()["val_accuracy"].tolist())


def test_engine_train_and_facade_agree_and_facade_takes_a_folder(tmp_path):
    cfg = tw.TrainConfig(epochs=1, lr=0.05, **CPU)
    plain = tw.engine.train(blob_task(), cfg)
    stored = tw.train(blob_task(), cfg, store=tmp_path / "runs")
    assert plain.run_id is None and stored.run_id == 1
    assert plain.steps()["loss"].tolist() == stored.steps()["loss"].tolist()
    with Store(tmp_path / "runs") as store:
        assert store.run(1)["status"] == "finished"


def test_every_record_carries_run_id_and_trial(tmp_path):
    with Store(tmp_path) as store:
        trainer = tw.Trainer(blob_task(), tw.TrainConfig(epochs=2, log_every=3, **CPU),
                             callbacks=[StoreSink(store, kind="trial")], trial=7)
        seen = _record_all(trainer)
        run = trainer.fit()
    events = [e for e, _ in seen]
    assert events[0] == "start" and events[-1] == "end" and {"step", "log", "epoch", "eval"} <= set(events)
    assert all(rec["run_id"] == run.run_id == 1 and rec["trial"] == 7 for _, rec in seen)
    assert run.trial == 7


def test_a_handler_raising_stoprun_ends_the_run_pruned(tmp_path):
    with Store(tmp_path) as store:
        trainer = tw.Trainer(blob_task(), tw.TrainConfig(epochs=10, **CPU), callbacks=[StoreSink(store)])
        ends = []

        def prune(rec):
            if rec["epoch"] == 2:
                raise StopRun("pruned", reason="below the median at epoch 2")
        trainer.on("eval", prune)
        trainer.on("end", ends.append)
        run = trainer.fit()
        assert run.status == "pruned" and run.reason == "below the median at epoch 2"
        assert ends[0]["status"] == "pruned" and ends[0]["reason"] == run.reason
        assert run.evals()["epoch"].tolist() == [0, 1, 2] and run.final["epochs"] == 2
        assert store.run(run.run_id)["status"] == "pruned"


def test_trainer_stop_with_pruned_status_halts_within_one_step():
    trainer = tw.Trainer(blob_task(), tw.TrainConfig(epochs=10, **CPU))
    trainer.on("step", lambda rec: rec["step"] == 5 and trainer.stop("pruned"))
    run = trainer.fit()
    assert run.status == "pruned" and run.final["steps"] == 5


@pytest.mark.parametrize("parent_kind", ["event", "runstop"])
def test_a_parent_stop_halts_the_run_within_one_step(parent_kind):
    parent = threading.Event() if parent_kind == "event" else RunStop()
    trainer = tw.Trainer(blob_task(), tw.TrainConfig(epochs=10, **CPU), stop=parent)
    trainer.on("step", lambda rec: rec["step"] == 13 and parent.set())
    run = trainer.fit()
    assert run.status == "stopped" and run.final["steps"] == 13
    # the chain: a grandparent's stop reaches the run too, with its status
    search = RunStop()
    trial = tw.Trainer(blob_task(), tw.TrainConfig(epochs=10, **CPU), stop=RunStop(parent=search))
    trial.on("step", lambda rec: rec["step"] == 4 and search.set("pruned", "search over"))
    run = trial.fit()
    assert (run.status, run.final["steps"], run.reason) == ("pruned", 4, "search over")


def test_runstop_rejects_bad_status_and_bad_parent():
    with pytest.raises(ValueError, match="status: a run can be ended early as 'stopped' or 'pruned'"):
        RunStop().set("finished")
    with pytest.raises(ValueError, match="'stopped' or 'pruned'"):
        StopRun("done")
    with pytest.raises(TypeError, match="stop: expected a threading.Event or a RunStop"):
        RunStop(parent="yes")
    with pytest.raises(TypeError, match="stop: expected a threading.Event or a RunStop"):
        tw.Trainer(blob_task(), tw.TrainConfig(**CPU), stop=True)


def test_emit_forwards_host_records_only_and_start_without_objects():
    trainer = tw.Trainer(blob_task(), tw.TrainConfig(epochs=2, log_every=4, **CPU), trial=2)
    got = []
    emit(trainer, lambda event, rec: got.append((event, rec)))
    run = trainer.fit()
    events = [e for e, _ in got]
    assert "step" not in events and events[0] == "start" and events[-1] == "end"
    start = got[0][1]
    assert "trainer" not in start and "config" not in start and start["params"]["epochs"] == 2
    assert start["trial"] == 2 and start["total_steps"] == 16
    logged = [r["step"] for e, rec in got if e == "log" for r in rec["rows"]]
    assert logged == run.steps()["step"].tolist()
    for _, rec in got:  # nothing on the device crosses
        for value in rec.values():
            assert not isinstance(value, torch.Tensor)
    with pytest.raises(TypeError, match="emit: expected a Trainer or an EventBus"):
        emit(object(), print)


def test_a_failure_before_the_first_step_fires_end_and_is_recorded(tmp_path):
    task = blob_task(model=lambda: torch.nn.Linear(5, 3))  # inputs have 2 features
    ends = []
    with Store(tmp_path) as store:
        with pytest.raises(Exception):
            tw.train(task, tw.TrainConfig(**CPU), store=store, callbacks=[{"end": ends.append}])
        runs = store.runs()
        assert runs["status"].tolist() == ["failed"]
        assert runs["error"].iloc[0]
    assert ends and ends[0]["status"] == "failed" and ends[0]["error"]


def test_a_handler_error_mid_run_fails_the_run_and_records_it(tmp_path):
    def boom(rec):
        if rec["step"] == 3:
            raise RuntimeError("handler broke")
    with Store(tmp_path) as store:
        with pytest.raises(RuntimeError, match="handler broke"):
            tw.train(blob_task(), tw.TrainConfig(epochs=2, **CPU), store=store, callbacks=[{"step": boom}])
        run = store.runs().iloc[0]
        assert run["status"] == "failed" and "handler broke" in run["error"]


def test_run_slot_is_reentrant_and_a_stop_ends_the_wait():
    held, release = threading.Event(), threading.Event()

    def hold():
        with run_slot():
            held.set()
            release.wait(10)
    thread = threading.Thread(target=hold)
    thread.start()
    try:
        assert held.wait(10)
        assert run_slot_busy()
        waited = []
        stop = RunStop()
        trainer = tw.Trainer(blob_task(), tw.TrainConfig(epochs=1, **CPU), stop=stop)
        trainer.on("start", lambda rec: waited.append("started"))
        timer = threading.Timer(0.2, stop.set)
        timer.start()
        run = trainer.fit()  # waits for the slot, then the stop ends the wait
        assert run.status == "stopped" and run.final["steps"] == 0 and waited == []
        assert run.reason == "stopped before it started"
    finally:
        release.set()
        thread.join(10)
    assert not run_slot_busy()
    with run_slot() as first, run_slot() as second:  # the same thread does not wait for itself
        assert first and second


def test_bare_bus_sink_adds_a_run_at_start(tmp_path):
    with Store(tmp_path) as store:
        bus = EventBus()
        sink = StoreSink(store, kind="custom")
        handles = sink.attach(bus)
        assert len(handles) == 5 and sink.run_id is None
        start = {"params": {"a": 1}, "run_id": None}
        bus.fire(Events.START, start)
        bus.fire(Events.LOG, {"rows": [{"step": 0, "lr": 0.1, "loss": 2.0, "smoothed": 2.0}]})
        bus.fire(Events.END, {"status": "pruned", "final": {}})
        assert start["run_id"] == sink.run_id == 1
        assert store.run(1)["status"] == "pruned"
        assert sorted(store.metrics(1)["name"]) == ["lr", "train/loss", "train/smoothed"]
