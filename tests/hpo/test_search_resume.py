"""Resuming a study from its store: after a SIGKILL, after a stop, with more trials; mismatches refused."""
from __future__ import annotations

from pathlib import Path

import pytest

import tunewidgets as tw
from hpo_helpers import BASE, Net, blob_task, one_thread  # noqa: F401 (autouse)
from tunewidgets.hpo.driver import StudyExistsError, StudyMismatchError
from tunewidgets.hpo.space import Choice, Int, LogUniform, Uniform
from tunewidgets.tracking import studies
from support.killing import child, kill9

HERE = Path(__file__).resolve().parent
CHILD_SPACE = {"lr": LogUniform(1e-3, 0.3), "momentum": Uniform(0.5, 0.95), "model.width": Int(4, 16)}
COLUMNS = ["trial", "state", "lr", "momentum", "model.width", "val_accuracy", "best_val_accuracy", "epochs"]


def _child(folder: Path, strategy: str, n_trials: int, slow: int, timeout: float = 120.0):
    return child(HERE / "_search_child.py", folder, strategy, n_trials, slow, timeout=timeout, extra_path=(HERE,))


@pytest.mark.slow
def test_sigkill_and_restart_keeps_finished_trials_and_reruns_the_interrupted_one(tmp_path):
    n_trials, killed_at = 14, 11  # TPE: 10 random start-up trials, then the model of the history
    with _child(tmp_path / "runs", "bayes", n_trials, killed_at) as proc:
        lines = []
        for line in proc.stdout:
            lines.append(line.strip())
            if line.strip() == f"training {killed_at}":
                break
        assert lines and lines[-1] == f"training {killed_at}", f"child said {lines}; {proc.stderr.read()}"
        kill9(proc)
    assert [x for x in lines if x.startswith("end")] == [f"end {n} finished" for n in range(killed_at)]

    with tw.Store(tmp_path / "runs") as store:
        before = {r["trial"]: r for r in studies.latest_trials(store, "killed")}
    assert sorted(before) == list(range(killed_at + 1))
    assert before[killed_at]["status"] == "interrupted"

    # restart: same store, same study name, to the end
    with _child(tmp_path / "runs", "bayes", n_trials, -1) as proc:
        out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err[-3000:]
    starts = [int(x.split()[1]) for x in out.splitlines() if x.startswith("start")]
    assert starts == list(range(killed_at, n_trials))  # the interrupted trial first, then new ones
    assert out.splitlines()[-1] == f"done finished {n_trials}"

    with tw.Store(tmp_path / "runs") as store:
        rows = studies.trial_runs(store, "killed")
        after = {r["trial"]: r for r in studies.latest_trials(store, "killed")}
    assert sorted(after) == list(range(n_trials))  # no duplicate trial numbers, n_trials reached
    assert all(r["status"] == "finished" for r in after.values())
    for n in range(killed_at):  # finished trials kept as they were, not run again
        assert after[n]["id"] == before[n]["id"]
    attempts = [r for r in rows if r["trial"] == killed_at]
    assert [r["status"] for r in attempts] == ["interrupted", "finished"]
    assert attempts[0]["search"] == attempts[1]["search"]  # re-run with the same values
    points = [tuple(sorted(r["search"].items())) for r in after.values()]
    assert len(set(points)) == n_trials  # the seeded sampler did not replay a point

    # the same search without a kill: the same trials, values and results
    whole = tw.search(blob_task(), CHILD_SPACE, base=BASE.replace(epochs=2, log_every=2), strategy="bayes",
                      n_trials=n_trials, store=tmp_path / "whole", study="killed", seed=7, background=False)
    resumed = tw.search(blob_task(), CHILD_SPACE, base=BASE.replace(epochs=2, log_every=2), strategy="bayes",
                        n_trials=n_trials, store=tmp_path / "runs", study="killed", seed=7, background=False,
                        resume=True)
    assert resumed.trials[COLUMNS].equals(whole.trials[COLUMNS])


def test_more_trials_continue_the_same_sequence(tmp_path):
    space = {"lr": LogUniform(1e-3, 0.3), "model.width": Choice([4, 8, 16])}
    kw = dict(base=BASE.replace(epochs=1), strategy="random", seed=5, background=False)
    first = tw.search(blob_task(), space, n_trials=4, store=tmp_path / "a", study="grow", **kw)
    ids = first.trials["run_id"].tolist()
    more = tw.search(blob_task(), space, n_trials=7, store=tmp_path / "a", study="grow", resume=True, **kw)
    whole = tw.search(blob_task(), space, n_trials=7, store=tmp_path / "b", study="grow", **kw)
    assert more.trials["run_id"].tolist()[:4] == ids
    cols = ["trial", "lr", "model.width", "val_accuracy"]
    assert more.trials[cols].equals(whole.trials[cols])
    again = tw.search(blob_task(), space, n_trials=7, store=tmp_path / "a", study="grow", resume=True, **kw)
    assert again.trials["run_id"].tolist() == more.trials["run_id"].tolist()  # nothing left to do


def test_a_stopped_grid_resumes_with_every_point_once(tmp_path):
    space = {"lr": LogUniform(0.01, 0.1, grid=3), "model.width": Choice([4, 8])}
    holder: dict = {}

    def stop_in_trial_2(event, record):
        if event == "epoch" and record["trial"] == 2:
            holder["study"].stop()

    kw = dict(base=BASE.replace(epochs=3), strategy="grid", store=tmp_path, study="g")
    first = tw.search(blob_task(), space, background=True, callbacks=[stop_in_trial_2], **kw)
    holder["study"] = first
    first.wait(timeout=120)
    assert first.trials["state"].tolist() == ["finished", "finished", "stopped"]
    stopped_point = first.trials.loc[2, ["lr", "model.width"]].tolist()
    rest = tw.search(blob_task(), space, background=False, resume=True, **kw)
    trials = rest.trials
    assert trials["state"].tolist() == ["finished"] * 6
    assert trials.loc[2, ["lr", "model.width"]].tolist() == stopped_point
    assert len({tuple(p) for p in trials[["lr", "model.width"]].values.tolist()}) == 6
    assert trials["run_id"].tolist()[:2] == first.trials["run_id"].tolist()[:2]


def test_other_settings_under_the_same_name_are_refused(tmp_path):
    space = {"lr": LogUniform(1e-3, 0.3)}
    tw.search(blob_task(), space, base=BASE.replace(epochs=1), n_trials=1, store=tmp_path, study="s",
              background=False)
    with pytest.raises(StudyExistsError, match=r"study: 's' already exists in .* \(1 trials ended\); pass "
                                               r"resume=True to continue it, or another study= name"):
        tw.search(blob_task(), space, base=BASE.replace(epochs=1), n_trials=2, store=tmp_path, study="s",
                  background=False)  # the very same settings: still not resumed unless asked
    with pytest.raises(StudyMismatchError, match=r"study: 's' in .* was made with a different space \(keys that "
                                                 r"differ: lr, model.width\); .* pass a new study= name"):
        tw.search(blob_task(), {"lr": LogUniform(1e-3, 0.1), "model.width": Choice([4])},
                  base=BASE.replace(epochs=1), n_trials=2, store=tmp_path, study="s", background=False, resume=True)
    with pytest.raises(StudyMismatchError, match=r"was made with strategy='random' \(now 'bayes'\)"):
        tw.search(blob_task(), space, base=BASE.replace(epochs=1), strategy="bayes", n_trials=2, store=tmp_path,
                  study="s", background=False, resume=True)
    with pytest.raises(StudyMismatchError, match=r"a different base config \(fields that differ: epochs\)"):
        tw.search(blob_task(), space, base=BASE.replace(epochs=2), n_trials=2, store=tmp_path, study="s",
                  background=False, resume=True)
    with tw.Store(tmp_path) as store:  # nothing was added by the refused calls
        assert len(studies.trial_runs(store, "s")) == 1


class OtherNet(Net):
    """The same network by another factory (another source): a different model."""

    def __init__(self, width: int = 8, dropout: float = 0.0, fail: str = "") -> None:
        super().__init__(width=width, dropout=dropout, fail=fail)


def test_the_same_task_name_with_other_data_or_model_is_refused(tmp_path):
    space, base = {"lr": Choice([0.05, 0.1])}, tw.TrainConfig(optimizer="adam", epochs=1, device="cpu")
    kw = dict(base=base, strategy="grid", store=tmp_path, study="d", background=False)
    first = tw.search(tw.tasks.spirals(n=200), space, **kw)
    kw["resume"] = True
    with pytest.raises(StudyMismatchError, match=r"^study: 'd' in .* was made with other data: the training data "
                                                 r"of task 'spirals' changed \(160 samples then, 240 now\); the "
                                                 r"validation data .* pass a new study= name"):
        tw.search(tw.tasks.spirals(n=300, noise=0.3), space, **kw)
    with pytest.raises(StudyMismatchError, match=r"the training data of task 'spirals' changed \(same size, other "
                                                 r"values\)"):
        tw.search(tw.tasks.spirals(n=200, noise=0.3), space, **kw)
    again = tw.search(tw.tasks.spirals(n=200), space, **kw)  # the same data: resumed, nothing left to do
    assert again.trials["run_id"].tolist() == first.trials["run_id"].tolist()

    kw = dict(base=BASE.replace(epochs=1), n_trials=1, store=tmp_path, study="m", background=False)
    tw.search(blob_task(), {"lr": LogUniform(1e-3, 0.3)}, **kw)
    with pytest.raises(StudyMismatchError, match=r"other data: the model factory changed: hpo_helpers.Net then, test_search_resume.OtherNet now"):
        tw.search(blob_task(model=OtherNet), {"lr": LogUniform(1e-3, 0.3)}, **{**kw, "n_trials": 2, "resume": True})
    with tw.Store(tmp_path) as store:  # nothing was added by the refused calls
        assert len(studies.trial_runs(store, "d")) == 2 and len(studies.trial_runs(store, "m")) == 1
