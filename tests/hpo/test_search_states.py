"""How trials end: finished, failed (with traceback), diverged, stopped, CUDA out of memory; the search goes on."""
from __future__ import annotations

import gc
import math
import threading

import pytest

import tunewidgets as tw
from hpo_helpers import BASE, Net, blob_task, one_thread  # noqa: F401 (autouse)
from tunewidgets.hpo.space import Choice, LogUniform
from tunewidgets.tracking import studies


def test_a_failing_trial_keeps_its_traceback_and_the_search_goes_on(tmp_path):
    space = {"model.fail": Choice(["", "error"]), "lr": Choice([0.05, 0.1])}
    study = tw.search(blob_task(), space, base=BASE, strategy="grid", store=tmp_path, study="f", background=False)
    trials = study.trials.set_index("trial")
    failed = trials[trials["state"] == "failed"]
    assert len(failed) == 2 and (trials["state"] == "finished").sum() == 2
    for error in failed["error"]:
        assert "Traceback (most recent call last)" in error and "RuntimeError: boom: this width does not work" in error
    assert failed["val_accuracy"].isna().all()
    assert trials.loc[trials["state"] == "finished", "error"].isna().all()
    with tw.Store(tmp_path) as store:
        rows = {r["trial"]: r for r in studies.latest_trials(store, "f")}
        for number in failed.index:
            assert rows[number]["status"] == "failed" and "boom" in rows[number]["error"]
    assert study.status == "finished"


def test_cuda_out_of_memory_frees_the_trial_and_the_search_goes_on(tmp_path):
    gc.collect()
    before = {id(n) for n in Net.made}
    alive_at_start = []

    def on_record(event, record):
        if event == "start":  # the previous trial's model must be gone by now, without help
            alive_at_start.append(sum(1 for n in Net.made if id(n) not in before and n.fail == "oom"))

    space = {"model.fail": Choice(["oom", ""]), "model.width": Choice([4, 8])}
    study = tw.search(blob_task(), space, base=BASE, strategy="grid", store=tmp_path, background=False,
                      callbacks=[on_record])
    trials = study.trials
    oom = trials[trials["model.fail"] == "oom"]
    assert oom["state"].tolist() == ["failed", "failed"]
    assert all("OutOfMemoryError: CUDA out of memory" in e for e in oom["error"])
    assert (trials[trials["model.fail"] == ""]["state"] == "finished").all()
    # each trial starts with no earlier out-of-memory model left (only its own, if it is one),
    # and none is left when the search returns: no gc.collect() by the test
    order = trials.sort_values("trial")["model.fail"].tolist()
    assert alive_at_start == [1 if fail == "oom" else 0 for fail in order]
    assert sum(1 for n in Net.made if id(n) not in before and n.fail == "oom") == 0


def test_a_diverging_trial_is_marked_diverged(tmp_path):
    space = {"lr": Choice([0.05, 1e6])}
    study = tw.search(blob_task(), space, base=BASE.replace(momentum=0.9), strategy="grid", store=tmp_path,
                      background=False)
    states = dict(zip(study.trials["lr"], study.trials["state"]))
    assert states == {0.05: "finished", 1e6: "diverged"}
    assert study.best["params"]["lr"] == 0.05


def test_stop_halts_the_running_trial_and_starts_no_other(tmp_path):
    started = []
    holder: dict = {}

    def on_record(event, record):
        if event == "start":
            started.append(record["trial"])
        if event == "log" and record["trial"] == 1 and record["rows"][-1]["step"] >= 5:
            holder["study"].stop()

    task = blob_task()
    base = BASE.replace(epochs=30, log_every=1)
    study = tw.search(task, {"lr": LogUniform(0.01, 0.1)}, base=base, n_trials=10, store=tmp_path, study="s",
                      background=True, callbacks=[on_record])
    holder["study"] = study
    study.wait(timeout=120)
    trials = study.trials
    assert trials["state"].tolist() == ["finished", "stopped"]
    assert started == [0, 1] and study.status == "stopped"
    assert trials.loc[1, "epochs"] < 30
    with tw.Store(tmp_path) as store:
        assert [r["status"] for r in studies.latest_trials(store, "s")] == ["finished", "stopped"]
        assert studies.study_row(store, "s")["status"] == "stopped"


def test_background_returns_at_once_in_a_running_event_loop(tmp_path):
    import asyncio

    async def main():
        study = tw.search(blob_task(), {"lr": LogUniform(0.01, 0.1)}, base=BASE, n_trials=3, store=tmp_path)
        running = not study.done
        await study.wait_async()
        return study, running

    study, was_running = asyncio.run(main())
    assert was_running and study.done and len(study.trials) == 3
    assert threading.active_count() >= 1


def test_blocking_in_a_script_returns_a_finished_study(tmp_path):
    study = tw.search(blob_task(), {"lr": LogUniform(0.01, 0.1)}, base=BASE, n_trials=2, store=tmp_path)
    assert study.done and study.status == "finished"
    assert study.trials["state"].tolist() == ["finished", "finished"]
    assert study.wait() is study


def test_invalid_value_combination_fails_that_trial_only(tmp_path):
    # nesterov=True with momentum 0 is rejected by TrainConfig: that trial fails without training
    space = {"momentum": Choice([0.0, 0.9]), "nesterov": Choice([True, False])}
    study = tw.search(blob_task(), space, base=BASE.replace(epochs=1), strategy="grid", store=tmp_path,
                      background=False)
    trials = study.trials
    bad = trials[(trials["momentum"] == 0.0) & (trials["nesterov"] == True)]  # noqa: E712
    assert bad["state"].tolist() == ["failed"] and "nesterov: needs momentum > 0" in bad["error"].iloc[0]
    assert (trials["state"] == "finished").sum() == 3
    assert math.isnan(bad["val_accuracy"].iloc[0])
