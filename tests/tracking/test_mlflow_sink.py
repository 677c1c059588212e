"""MLflow logging read back with MlflowClient and compared with what the store holds."""
from __future__ import annotations

import sys

import numpy as np
import pytest
from sink_helpers import mlflow_db, mlflow_template, mlflow_uri, one_torch_thread  # noqa: F401

import tunewidgets as tw
from tunewidgets.tracking import Store, StudyLog
from tunewidgets.tracking._params import flat_params


@pytest.fixture
def client(mlflow_uri):
    from mlflow.tracking import MlflowClient

    return MlflowClient(tracking_uri=mlflow_uri)


def runs_of(client, **tags):
    from mlflow.entities import ViewType

    exp = client.get_experiment_by_name("tunewidgets")
    found = client.search_runs([exp.experiment_id], run_view_type=ViewType.ALL, max_results=1000)
    return [r for r in found if all(r.data.tags.get(k) == v for k, v in tags.items())]


def history(client, run_id, name):
    got = sorted(client.get_metric_history(run_id, name), key=lambda m: m.step)
    return [m.step for m in got], np.array([m.value for m in got])


def store_series(store, run_id, name):
    m = store.metrics(run_id, name)
    return m["step"].tolist(), m["value"].to_numpy()


def test_run_params_metrics_tags_equal_the_store(tmp_path, mlflow_db, client):
    runs = mlflow_db.parent
    cfg = tw.TrainConfig(optimizer="adam", lr=0.01, epochs=2, log_every=5, device="cpu", seed=3,
                         schedule=tw.schedules.OneCycle(max_lr=0.02))
    run = tw.train(tw.tasks.digits(), cfg, store=runs, mlflow=True)  # the default: <runs folder>/mlflow.db
    assert run.mlflow_uri == f"sqlite:///{mlflow_db.resolve()}"
    (got,) = runs_of(client, **{"tw.run_id": str(run.run_id)})
    assert got.info.run_name == f"train-{run.run_id}" and got.info.status == "FINISHED"
    assert got.data.tags["state"] == "finished" and got.data.tags["seed"] == "3"
    assert got.data.tags["tw.kind"] == "train" and "mlflow.parentRunId" not in got.data.tags
    with Store(runs) as store:
        row = store.run(run.run_id)
        assert got.data.params == {k: str(v) for k, v in flat_params(row["params"]).items()}
        assert got.data.params["schedule.type"] == "OneCycle"
        for name in ("train/loss", "lr", "train/epoch_loss", "val/loss", "val/accuracy"):
            steps, values = history(client, got.info.run_id, name)
            want_steps, want = store_series(store, run.run_id, name)
            assert steps == want_steps, name
            np.testing.assert_array_equal(values, want, err_msg=name)  # both keep float64: exactly equal
    assert history(client, got.info.run_id, "perf/samples_per_sec")[1][0] == row["perf"]["samples_per_sec"]


def test_study_is_a_parent_run_with_a_child_per_trial(tmp_path, mlflow_uri, client):
    def prune(record):
        raise tw.StopRun("pruned")

    log = StudyLog("lr-sweep", mlflow=mlflow_uri, params={"strategy": "grid", "n_trials": 3})
    log.start()
    (parent,) = runs_of(client, **{"tw.kind": "study"})
    assert parent.info.status == "RUNNING" and parent.data.params == {"strategy": "grid", "n_trials": "3"}
    for trial, lr in enumerate((0.003, 0.01, 0.03)):
        tw.engine.train(tw.tasks.spirals(), tw.TrainConfig(optimizer="adam", lr=lr, epochs=2, device="cpu", seed=trial),
                        callbacks=[*log.sinks(trial=trial), *([{"eval": prune}] if trial == 2 else [])], trial=trial)
    log.end("finished")
    children = sorted(runs_of(client, **{"mlflow.parentRunId": parent.info.run_id}), key=lambda r: r.info.run_name)
    assert [c.info.run_name for c in children] == ["trial-0000", "trial-0001", "trial-0002"]
    assert [c.data.tags["state"] for c in children] == ["finished", "finished", "pruned"]
    assert [c.info.status for c in children] == ["FINISHED", "FINISHED", "KILLED"]
    assert [c.data.tags["seed"] for c in children] == ["0", "1", "2"]
    assert [c.data.params["lr"] for c in children] == ["0.003", "0.01", "0.03"]
    assert all(c.data.tags["tw.study"] == "lr-sweep" and c.data.tags["tw.kind"] == "trial" for c in children)
    steps, _ = history(client, children[0].info.run_id, "val/accuracy")
    assert steps == [13, 26]
    assert client.get_run(parent.info.run_id).info.status == "FINISHED"
    # the study resumed: the same parent, running again
    again = StudyLog("lr-sweep", mlflow=mlflow_uri)
    again.start()
    assert again.mlflow_run_id == parent.info.run_id
    assert client.get_run(parent.info.run_id).info.status == "RUNNING"


def test_runs_filed_under_a_study_share_its_parent(tmp_path, mlflow_uri, client):
    for lr in (0.01, 0.02):
        tw.train(tw.tasks.spirals(), tw.TrainConfig(lr=lr, epochs=1, device="cpu"), study="demo", mlflow=mlflow_uri)
    (parent,) = runs_of(client, **{"tw.kind": "study", "tw.study": "demo"})
    children = runs_of(client, **{"mlflow.parentRunId": parent.info.run_id})
    assert sorted(c.data.params["lr"] for c in children) == ["0.01", "0.02"]


def test_range_test_is_a_plain_run(tmp_path, mlflow_uri, client):
    runs = tmp_path / "store"
    res = tw.lr_range_test(tw.tasks.digits(), steps=30, device="cpu", store=runs, mlflow=mlflow_uri)
    (got,) = runs_of(client, **{"tw.kind": "lr_range_test"})
    assert "mlflow.parentRunId" not in got.data.tags and got.info.run_name == f"lr_range_test-{res.run_id}"
    assert got.data.params["steps"] == "30" and got.data.tags["state"] == res.stop_reason
    with Store(runs) as store:
        for name in ("train/loss", "train/smoothed", "lr"):
            steps, values = history(client, got.info.run_id, name)
            want_steps, want = store_series(store, res.run_id, name)
            assert steps == want_steps and (values == want).all(), name
    np.testing.assert_array_equal(history(client, got.info.run_id, "train/loss")[1], res.losses)


def test_unwritable_tracking_store_does_not_stop_training(tmp_path, mlflow_uri, client, monkeypatch):
    from tunewidgets.tracking.mlflow_sink import MLflowSink

    def broken(self, *args, **kwargs):
        raise OSError("disk full")

    sink = MLflowSink(mlflow_uri)
    monkeypatch.setattr(type(sink.client), "log_batch", broken)
    with pytest.warns(RuntimeWarning, match="mlflow: writing"):
        run = tw.engine.train(tw.tasks.spirals(), tw.TrainConfig(epochs=2, device="cpu"), callbacks=[sink])
    assert run.status == "finished" and len(sink.errors) == 1 and "disk full" in sink.errors[0]


def test_missing_mlflow_names_the_extra(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "mlflow", None)
    with pytest.raises(ImportError, match=r"tunewidgets\[mlflow\]"):
        tw.train(tw.tasks.spirals(), tw.TrainConfig(epochs=1, device="cpu"), store=tmp_path, mlflow=True)
    with Store(tmp_path) as store:
        assert store.runs().empty


def test_bad_mlflow_value_fails_before_training(tmp_path):
    with pytest.raises(ValueError, match="mlflow: expected True, False or a tracking URI"):
        tw.lr_range_test(tw.tasks.spirals(), steps=10, device="cpu", store=tmp_path, mlflow="mlruns")
    with Store(tmp_path) as store:
        assert store.runs().empty
