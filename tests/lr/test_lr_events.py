"""The range test is a run like any other: START, LOG rows while it runs, END on its own bus;
sinks attach as to a Trainer; its points reach the store while it runs (SIGKILL keeps them)."""
from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import pytest

import tunewidgets as tw
from tunewidgets.engine.control import StopRun
from tunewidgets.engine.events import emit
from tunewidgets.lr import lr_range_test as core_range_test
from tunewidgets.tracking import Store, StoreSink
from support.killing import child, kill9, ready_line



def _task():
    return tw.tasks.spirals()


def test_events_and_rows_match_the_result():
    got = []
    res = core_range_test(_task(), steps=60, diverge=np.inf, device="cpu", log_every=25, trial=4,
                          callbacks=[{e: (lambda rec, _e=e: got.append((_e, rec))) for e in ("start", "log", "end")}])
    events = [e for e, _ in got]
    assert events == ["start", "log", "log", "log", "end"]  # 25 + 25 + the last 10
    start, end = got[0][1], got[-1][1]
    assert start["kind"] == "lr_range_test" and start["total_steps"] == 60 and start["params"]["steps"] == 60
    rows = [r for e, rec in got if e == "log" for r in rec["rows"]]
    assert [r["step"] for r in rows] == list(range(1, 61))  # steps count from 1
    assert [r["loss"] for r in rows] == res.losses.tolist()
    assert [r["smoothed"] for r in rows] == res.smoothed.tolist()
    assert [r["lr"] for r in rows] == res.lrs.tolist()
    assert end["status"] == "finished" and end["final"]["suggested"] == res.suggested
    assert all(rec["trial"] == 4 and rec["run_id"] is None for _, rec in got)


def test_a_store_sink_attaches_through_callbacks_and_gets_rows_while_it_runs(tmp_path):
    with Store(tmp_path, flush_interval=0.05) as store:
        sink = StoreSink(store, kind="lr_range_test", name="spirals")
        seen_in_store = []

        def look(rec):
            if rec["step"] == 151:  # 150 steps done (steps count from 1); store.metrics writes what waits first
                seen_in_store.append(len(store.metrics(sink.run_id, "train/loss")))
        res = core_range_test(_task(), steps=200, diverge=np.inf, device="cpu", callbacks=[sink], on_step=look)
        assert res.run_id == sink.run_id == 1
        assert seen_in_store[0] >= 150  # written while the test ran, not only at its end
        m = store.metrics(1)
        assert m[m["name"] == "train/loss"]["value"].tolist() == res.losses.tolist()
        assert m[m["name"] == "lr"]["step"].tolist() == list(range(1, 201))
        assert store.run(1)["status"] == "finished"
        assert store.run(1)["final"]["suggested"] == res.suggested


def test_emit_follows_a_range_test_like_a_training_run():
    seen = []

    class Forward:  # what a widget's forwarder does: attach(run) -> emit to a queue
        def attach(self, run):
            emit(run, lambda event, rec: seen.append(event))
    core_range_test(_task(), steps=30, diverge=np.inf, device="cpu", log_every=10, callbacks=[Forward()])
    assert seen == ["start", "log", "log", "log", "end"]


def test_a_handler_stoprun_and_a_parent_stop_end_the_test():
    def halt(rec):
        for row in rec["rows"]:
            if row["step"] >= 21:
                raise StopRun("stopped", reason="enough")
    ends = []
    res = core_range_test(_task(), steps=100, diverge=np.inf, device="cpu", log_every=10,
                          callbacks=[{"log": halt, "end": ends.append}])
    assert res.stop_reason == "stopped" and len(res) == 30 and ends[0]["status"] == "stopped"
    parent = threading.Event()
    res = core_range_test(_task(), steps=100, diverge=np.inf, device="cpu", stop=parent,
                          on_step=lambda rec: rec["step"] == 10 and parent.set())
    assert res.stop_reason == "stopped" and len(res) == 10


def test_old_keyword_names_still_work_with_a_deprecation_warning():
    with pytest.warns(DeprecationWarning, match="accum_steps= is now grad_accum="):
        old = tw.lr_range_test(_task(), steps=10, device="cpu", accum_steps=2)
    new = tw.lr_range_test(_task(), steps=10, device="cpu", grad_accum=2)
    assert old.losses.tolist() == new.losses.tolist()
    with pytest.warns(DeprecationWarning, match="val_every= is now eval_every_steps="):
        tw.lr_range_test(_task(), steps=5, device="cpu", val=True, val_every=2)
    with pytest.raises(TypeError, match="unknown argument"):
        tw.lr_range_test(_task(), steps=5, device="cpu", iterations=3)


def test_non_finite_loss_ends_diverged_with_the_flag_and_the_store_says_diverged(tmp_path):
    res = tw.lr_range_test(_task(), start_lr=1e3, end_lr=1e9, steps=50, device="cpu", store=tmp_path)
    assert res.stop_reason == "diverged"
    with Store(tmp_path) as store:
        assert store.run(res.run_id)["status"] == "diverged"


@pytest.mark.slow
def test_sigkill_mid_test_keeps_the_points_already_logged(tmp_path):
    ready_step = 3000
    with child(Path(__file__).with_name("_range_killer.py"), tmp_path, ready_step, timeout=120.0) as proc:
        run = int(ready_line(proc, "ready").split()[1])  # printed once everything before it is written
        kill9(proc)
    with Store(tmp_path) as store:
        assert store.run(run)["status"] == "interrupted" and store.run(run)["kind"] == "lr_range_test"
        steps = store.metrics(run, "train/loss")["step"].tolist()
        smoothed = store.metrics(run, "train/smoothed")["step"].tolist()
    assert len(steps) >= ready_step and steps == list(range(1, len(steps) + 1))
    assert smoothed == steps
