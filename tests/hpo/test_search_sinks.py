"""``tw.search(..., tensorboard=, mlflow=)``: every trial once in TensorBoard's HParams dashboard and
as an MLflow child run under the study's parent run, with the params and state the store holds."""
from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tracking"))
from sink_helpers import (hparam_value, hparams_plugin_data, hparams_tags,  # noqa: E402,F401
                          mlflow_db, mlflow_template, one_torch_thread, read_events, scalars, session_groups)

import tunewidgets as tw  # noqa: E402
from tunewidgets.tracking import Store, studies  # noqa: E402

# lr=1e9 makes a trial diverge: the search keeps going and logs it with its state
SPACE = {"lr": tw.space.Choice([0.05, 1e9]), "model.width": tw.space.Choice([8, 16])}


@pytest.fixture
def searched(tmp_path, mlflow_db):
    runs = mlflow_db.parent  # the migrated database sits where mlflow=True looks
    base = tw.TrainConfig(optimizer="sgd", epochs=1, device="cpu")
    study = tw.search(tw.tasks.spirals(), SPACE, base=base, n_trials=3, store=runs, study="sinks", seed=0,
                      background=False, tensorboard=True, mlflow=True)
    with Store(runs) as store:
        rows = {int(r["trial"]): r for r in studies.latest_trials(store, "sinks")}
    return study, rows


def test_trials_reach_tensorboard_and_mlflow_as_the_store_holds_them(searched):
    study, rows = searched
    assert sorted(rows) == [0, 1, 2]
    states = {n: r["status"] for n, r in rows.items()}
    assert "diverged" in states.values() and "finished" in states.values()
    assert study.trials.set_index("trial")["state"].to_dict() == states

    # TensorBoard: <logdir>/<study>/trial-<n>, each trial one session of the HParams dashboard
    folder = Path(study.tensorboard_dir)
    assert folder.name == "sinks" and folder.parent.name == "tensorboard"
    assert sorted(p.name for p in folder.iterdir() if p.is_dir()) == ["trial-0000", "trial-0001", "trial-0002"]
    experiment, groups = session_groups(folder)
    assert sorted(g.name for g in groups) == ["trial-0000", "trial-0001", "trial-0002"]
    assert all(len(g.sessions) == 1 for g in groups)
    assert {"lr", "model.width", "state"} <= {h.name for h in experiment.hparam_infos}
    for group in groups:
        n = int(group.name.split("-")[1])
        hp = {k: hparam_value(v) for k, v in group.hparams.items()}
        assert hp["state"] == states[n]
        assert hp["lr"] == pytest.approx(rows[n]["search"]["lr"])
        assert hp["model.width"] == rows[n]["search"]["model.width"]
        assert group.sessions[0].status == (2 if states[n] in ("failed", "diverged") else 1)
        acc = read_events(folder / group.name)
        start = hparams_plugin_data(acc, "_hparams_/session_start_info")
        assert hparam_value(start.hparams["state"]) == states[n]
        if states[n] == "finished":
            steps, values = scalars(acc, "val/loss")
            assert values[-1] == pytest.approx(rows[n]["final"]["val_loss"], rel=1e-5)

    # MLflow: one parent run for the study, one child per trial with its params and state
    from mlflow.tracking import MlflowClient

    assert study.mlflow_uri.startswith("sqlite:///") and study.mlflow_uri.endswith("mlflow.db")
    client = MlflowClient(tracking_uri=study.mlflow_uri)
    found = client.search_runs([e.experiment_id for e in client.search_experiments()])
    parents = [r for r in found if "mlflow.parentRunId" not in r.data.tags]
    children = [r for r in found if "mlflow.parentRunId" in r.data.tags]
    assert len(parents) == 1 and parents[0].info.status == "FINISHED"
    assert len(children) == 3
    assert {r.data.tags["mlflow.parentRunId"] for r in children} == {parents[0].info.run_id}
    by_name = {r.info.run_name: r for r in children}
    assert sorted(by_name) == ["trial-0000", "trial-0001", "trial-0002"]
    for n, row in rows.items():
        child = by_name[f"trial-{n:04d}"]
        assert float(child.data.params["lr"]) == pytest.approx(row["search"]["lr"])
        assert int(child.data.params["model.width"]) == row["search"]["model.width"]
        assert child.data.tags.get("state") == row["status"]


def test_no_logging_asked_leaves_no_folders(tmp_path):
    study = tw.search(tw.tasks.spirals(), {"lr": tw.space.Choice([0.05])}, base=tw.TrainConfig(epochs=1, device="cpu"),
                      n_trials=1, store=tmp_path, study="plain", background=False)
    assert study.tensorboard_dir is None and study.mlflow_uri is None
    assert not (tmp_path / "tensorboard").exists() and not (tmp_path / "mlflow.db").exists()


def _fail_trial_one(event, record):
    if event == "epoch" and record.get("trial") == 1:
        raise RuntimeError("a bug in a callback")


def test_a_failed_trial_ends_as_a_failure_and_a_stopped_search_ends_its_parent_run(tmp_path, mlflow_db):
    from mlflow.tracking import MlflowClient

    runs = mlflow_db.parent
    base = tw.TrainConfig(optimizer="sgd", epochs=1, device="cpu")
    space = {"lr": tw.space.Choice([0.05, 0.1])}
    study = tw.search(tw.tasks.spirals(), space, base=base, strategy="grid", store=runs, study="f",
                      background=False, tensorboard=True, mlflow=True, callbacks=[_fail_trial_one])
    assert study.trials["state"].tolist() == ["finished", "failed"]
    experiment, groups = session_groups(study.tensorboard_dir)
    by_name = {g.name: g for g in groups}
    assert sorted(by_name) == ["trial-0000", "trial-0001"]
    assert hparam_value(by_name["trial-0001"].hparams["state"]) == "failed"
    assert by_name["trial-0001"].sessions[0].status == 2  # FAILURE
    assert by_name["trial-0000"].sessions[0].status == 1  # SUCCESS

    client = MlflowClient(tracking_uri=study.mlflow_uri)
    found = client.search_runs([e.experiment_id for e in client.search_experiments()])
    children = {r.info.run_name: r for r in found if "mlflow.parentRunId" in r.data.tags}
    assert children["trial-0001"].info.status == "FAILED" and children["trial-0000"].info.status == "FINISHED"

    # a search stopped before its first trial still ends its parent run (KILLED), never left RUNNING
    stopped = tw.search(tw.tasks.spirals(), space, base=base, strategy="grid", store=runs, study="g",
                        background=True, tensorboard=True, mlflow=True)
    stopped.stop()
    stopped.wait(120)
    found = client.search_runs([e.experiment_id for e in client.search_experiments()])
    parents = {r.info.run_name: r for r in found if "mlflow.parentRunId" not in r.data.tags}
    assert parents["f"].info.status == "FINISHED"
    assert parents["g"].info.status == ("KILLED" if stopped.status == "stopped" else "FINISHED")
    assert all(r.info.status != "RUNNING" for r in found)
