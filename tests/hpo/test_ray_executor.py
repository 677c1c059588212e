"""The Ray executor on a local Ray (2 CPUs, 2 workers): the same trials and records as a local search,
workers killed mid-trial, stop and interrupt, pruning across workers, resume after the driver was killed.

The module starts its Ray once (``ray_helpers.start_local_ray``) and shuts it down at the end. No
test sleeps to synchronise: kills land while a trial's worker waits for the verdict on its EVAL
record, which the driver gives only after the search's callbacks ran.
"""
from __future__ import annotations

import sys
import threading

import optuna
import pytest

import tunewidgets as tw
from hpo_helpers import BASE, blob_task, blobs, one_thread  # noqa: F401 (autouse)
from ray_helpers import HERE, SPACE, start_local_ray
from support.killing import child, kill9
from tunewidgets.hpo.executors import make_executor
from tunewidgets.hpo.ray_executor import TaskNotSendable
from tunewidgets.tracking import studies

ray = pytest.importorskip("ray", reason="the Ray executor needs ray: pip install tunewidgets[ray]")
psutil = pytest.importorskip("psutil")

#: one local Ray on the machine at a time: with pytest-xdist, one worker runs these tests
pytestmark = pytest.mark.xdist_group("ray")

COLUMNS = ["trial", "state", "lr", "momentum", "model.width", "val_accuracy", "best_val_accuracy", "epochs"]


@pytest.fixture(scope="module", autouse=True)
def local_ray():
    shutdown = start_local_ray(ray)
    yield
    tw.hpo.RayExecutor.release()
    shutdown()


def _kept(**kw):
    """An executor that keeps its workers for the next test's search (their start-up is what costs)."""
    return tw.hpo.RayExecutor(keep_workers=True, **kw)


def _search(folder, executor="local", n_trials=4, epochs=2, **kw):
    kw.setdefault("strategy", "random")
    kw.setdefault("background", False)
    return tw.search(blob_task(), SPACE, base=BASE.replace(epochs=epochs), n_trials=n_trials, store=folder,
                     study="s", seed=3, executor=executor, **kw)


def _metrics(folder, study):
    """Each trial's metric rows from the store: {trial: [(name, step, epoch, value), ...]}."""
    with tw.Store(folder) as store:
        runs = {r["trial"]: r["id"] for r in studies.latest_trials(store, "s")}
        rows = store.metrics(list(runs.values()))
    by_run = {run: [] for run in runs.values()}
    for r in rows.itertuples():
        by_run[r.run].append((r.name, int(r.step), float(r.epoch), round(float(r.value), 6)))
    return {trial: sorted(by_run[run]) for trial, run in runs.items()}


def _pids_on_start(executor, seen):
    def on_record(event, record):
        if event == "start":
            seen.setdefault(record["trial"], executor.worker_pid(record["trial"]))
    return on_record


def test_a_search_on_two_workers_gives_the_local_search_trials_and_records(tmp_path):
    local = _search(tmp_path / "local")
    ex, pids = _kept(), {}
    remote = _search(tmp_path / "ray", ex, callbacks=[_pids_on_start(ex, pids)])
    assert ex.slots == 2 and len(set(pids.values())) == 2  # two workers, each reused for two trials
    assert remote.status == "finished"
    assert remote.trials[COLUMNS].equals(local.trials[COLUMNS])
    assert _metrics(tmp_path / "ray", remote) == _metrics(tmp_path / "local", local)  # the same rows
    assert ex.in_flight() == 0
    again, pids_again = _kept(), {}
    _search(tmp_path / "again", again, n_trials=2, callbacks=[_pids_on_start(again, pids_again)])
    assert set(pids_again.values()) == set(pids.values())  # the kept workers trained the next search
    pids_third: dict = {}
    third = _search(tmp_path / "third", ex, n_trials=2, callbacks=[_pids_on_start(ex, pids_third)])
    assert third.status == "finished" and set(pids_third.values()) == set(pids.values())  # one executor, twice


def test_a_worker_killed_mid_trial_is_replaced_and_its_trial_retried_once_then_failed(tmp_path):
    local = _search(tmp_path / "local", n_trials=3)
    ex = _kept(max_retries=1)
    killed: list[tuple[int, int]] = []

    def kill_on_eval(event, record):
        n = record["trial"]
        if event == "eval" and (n == 1 or (n == 2 and record["epoch"] == 0)):
            pid = ex.worker_pid(n)
            psutil.Process(pid).kill()  # SIGKILL while the worker waits for this record's verdict
            killed.append((n, pid))

    remote = _search(tmp_path / "ray", ex, n_trials=3, callbacks=[kill_on_eval])
    assert sorted(n for n, _ in killed) == [1, 1, 2]  # trial 1: in its first and in its retried attempt
    assert len({pid for _, pid in killed}) == 3
    trials = remote.trials
    assert trials["state"].tolist() == ["finished", "failed", "finished"]
    assert "Ray worker" in trials.loc[1, "error"] and "died" in trials.loc[1, "error"]
    assert "max_retries=1" in trials.loc[1, "error"]
    # trial 2, retried from its start on a new worker: as if never killed (no record sent twice)
    assert trials.loc[[0, 2], COLUMNS].equals(local.trials.loc[[0, 2], COLUMNS])
    got, want = _metrics(tmp_path / "ray", remote), _metrics(tmp_path / "local", local)
    assert got[0] == want[0] and got[2] == want[2]
    assert 0 < len(got[1]) <= len(want[1])  # what trial 1 sent before it failed


def test_stop_ends_the_running_trials_and_starts_no_new_one(tmp_path):
    holder: dict = {}
    ready = threading.Event()

    def stop_on_first_eval(event, record):
        if event == "eval" and record["trial"] == 0:
            ready.wait()
            holder["study"].stop()
            holder["at_stop"] = len(holder["study"].trials)  # the trials handed to the workers so far

    study = _search(tmp_path, _kept(), n_trials=6, epochs=3, background=True, callbacks=[stop_on_first_eval])
    holder["study"] = study
    ready.set()
    study.wait(timeout=300)
    trials = study.trials
    assert study.status == "stopped"
    assert trials.loc[0, "state"] == "stopped" and trials.loc[0, "epochs"] == 1  # its next step saw the stop
    assert len(trials) == holder["at_stop"]  # none started after the stop
    assert set(trials["state"]) <= {"stopped", "finished"}
    resumed = _search(tmp_path, _kept(), n_trials=6, epochs=3, resume=True)  # goes on to the end
    assert resumed.trials["state"].tolist() == ["finished"] * 6


def test_the_pruner_prunes_remote_trials_at_the_epoch_it_decides(tmp_path):
    pruner = optuna.pruners.ThresholdPruner(lower=0.6)  # decides on each trial's own curve only
    local = _search(tmp_path / "local", n_trials=6, epochs=3, pruner=pruner)
    states = local.trials["state"].tolist()
    assert "pruned" in states and "finished" in states  # the case is a real one
    remote = _search(tmp_path / "ray", _kept(), n_trials=6, epochs=3, pruner=pruner)
    assert remote.trials[COLUMNS].equals(local.trials[COLUMNS])  # pruned where, and when, the local one was
    assert _metrics(tmp_path / "ray", remote) == _metrics(tmp_path / "local", local)


class _Locked(type(blobs(8))):
    """A dataset that holds a lock: it cannot be pickled."""

    def __init__(self, *tensors):
        super().__init__(*tensors)
        self.lock = threading.Lock()


def test_a_task_that_cannot_be_sent_is_refused_before_any_trial(tmp_path):
    data = blobs(64)
    task = blob_task(train=_Locked(*data.tensors))
    with pytest.raises(TaskNotSendable,
                       match=r"task: its 'train' \(_Locked\) cannot be sent to the Ray workers: TypeError: "
                             r"cannot pickle '_thread.lock' object"):
        tw.search(task, SPACE, base=BASE.replace(epochs=1), n_trials=2, store=tmp_path, study="s",
                  executor=tw.hpo.RayExecutor(), background=False)
    with tw.Store(tmp_path) as store:
        assert studies.latest_trials(store, "s") == []


def test_a_task_whose_module_the_workers_cannot_import_is_refused_before_any_trial(tmp_path, monkeypatch):
    (tmp_path / "mine_only.py").write_text(
        "import torch\n\nclass Net(torch.nn.Sequential):\n"
        "    def __init__(self, width=8):\n"
        "        super().__init__(torch.nn.Linear(2, width), torch.nn.ReLU(), torch.nn.Linear(width, 3))\n")
    monkeypatch.syspath_prepend(str(tmp_path))  # this process only: not the workers
    import mine_only

    with pytest.raises(TaskNotSendable,
                       match=r"the Ray workers could not load 'blobs': .*No module named 'mine_only'.*"
                             r"register_pickle_by_value\(mine_only\)"):
        tw.search(blob_task(model=mine_only.Net), {"lr": SPACE["lr"]}, base=BASE.replace(epochs=1), n_trials=2,
                  store=tmp_path / "runs", study="s", executor=_kept(), background=False)
    with tw.Store(tmp_path / "runs") as store:
        assert studies.latest_trials(store, "s") == []


def test_settings_are_checked_when_the_executor_is_made():
    with pytest.raises(ValueError, match=r"cpus_per_trial: must be a number > 0, got -1"):
        tw.hpo.RayExecutor(cpus_per_trial=-1)
    with pytest.raises(ValueError, match=r"gpus_per_trial: must be a number >= 0, got 'one'"):
        tw.hpo.RayExecutor(gpus_per_trial="one")
    with pytest.raises(ValueError, match=r"max_retries: must be a whole number >= 0, got 1.5; e.g. max_retries=1"):
        tw.hpo.RayExecutor(max_retries=1.5)
    with pytest.raises(ValueError, match=r"address: expected None \(a local Ray\), 'auto' or 'ray://host:port'"):
        tw.hpo.RayExecutor(address="")
    with pytest.raises(ValueError, match=r"not enough for one trial of cpus_per_trial=64"):
        ex = tw.hpo.RayExecutor(cpus_per_trial=64)
        ex.open(tw.tasks.spirals(), lambda *a: None)
    assert isinstance(make_executor("ray"), tw.hpo.RayExecutor)


def test_without_ray_the_executor_says_what_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)
    with pytest.raises(ImportError, match=r"pip install tunewidgets\[ray\]"):
        tw.hpo.RayExecutor()


def test_import_tunewidgets_does_not_import_ray():
    import subprocess

    code = "import sys, tunewidgets as tw; tw.hpo.RayExecutor; print('ray' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.stdout.strip() == "False", out.stderr[-2000:]


def test_an_interrupted_search_stops_and_kills_its_workers(tmp_path):
    ex, pids = _kept(), {}  # workers in flight are killed, kept or not
    on_start = _pids_on_start(ex, pids)

    def interrupt(event, record):
        on_start(event, record)
        if event == "eval" and record["trial"] == 0:
            raise KeyboardInterrupt  # as "interrupt the kernel" does to the search's thread

    study = _search(tmp_path, ex, n_trials=6, epochs=3, background=True, callbacks=[interrupt])
    with pytest.raises(KeyboardInterrupt):
        study.wait(timeout=300)
    assert study.status == "stopped"
    assert study.trials.loc[0, "state"] == "stopped"
    assert ex.in_flight() == 0
    gone, alive = psutil.wait_procs([psutil.Process(p) for p in set(pids.values())], timeout=60)
    assert alive == []  # the workers were ended with the search


@pytest.mark.slow
def test_a_search_resumed_after_its_driver_was_killed_goes_on_as_a_local_one(tmp_path):
    address = ray.get_runtime_context().gcs_address
    tw.hpo.RayExecutor.release()  # the child's workers need the CPUs
    n_trials, slow = 5, 2
    with child(HERE / "_ray_search_child.py", tmp_path / "runs", address, n_trials, slow, timeout=240,
               extra_path=(HERE,)) as proc:
        lines = []
        for line in proc.stdout:
            lines.append(line.strip())
            if line.strip() == f"training {slow}":
                break
        assert lines and lines[-1] == f"training {slow}", f"child said {lines}; {proc.stderr.read()[-3000:]}"
        kill9(proc)
    with tw.Store(tmp_path / "runs") as store:
        before = {r["trial"]: r for r in studies.latest_trials(store, "killed")}
    assert before[slow]["status"] == "interrupted"
    finished = sorted(n for n, r in before.items() if r["status"] == "finished")
    assert finished and slow not in finished

    resumed = tw.search(blob_task(), SPACE, base=BASE.replace(epochs=2), strategy="random", n_trials=n_trials,
                        store=tmp_path / "runs", study="killed", seed=3, background=False,
                        executor=_kept(), resume=True)
    whole = tw.search(blob_task(), SPACE, base=BASE.replace(epochs=2), strategy="random", n_trials=n_trials,
                      store=tmp_path / "whole", study="killed", seed=3, background=False)
    assert resumed.trials[COLUMNS].equals(whole.trials[COLUMNS])
    with tw.Store(tmp_path / "runs") as store:
        after = {r["trial"]: r for r in studies.latest_trials(store, "killed")}
    for n in finished:  # kept as they were, not trained again
        assert after[n]["id"] == before[n]["id"]
