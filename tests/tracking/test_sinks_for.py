"""The facade's sink contract: tensorboard=/mlflow= resolution, sinks_for, study_log."""
from __future__ import annotations

from pathlib import Path

import pytest
from sink_helpers import mlflow_db, mlflow_template, mlflow_uri, one_torch_thread, read_events  # noqa: F401

import tunewidgets as tw
from tunewidgets import api
from tunewidgets.tracking import Store, StoreSink, StudyLog, TensorBoardSink
from tunewidgets.tracking.mlflow_sink import MLflowSink


def test_true_means_the_runs_folder(tmp_path):
    assert api.tensorboard_dir(True, tmp_path / "runs") == tmp_path / "runs" / "tensorboard"
    assert api.tensorboard_dir(True, tmp_path / "runs" / "mine.sqlite") == tmp_path / "runs" / "tensorboard"
    assert api.tensorboard_dir(True) == Path("tunewidgets-runs") / "tensorboard"
    assert api.tensorboard_dir(tmp_path / "tb") == tmp_path / "tb"
    assert api.tensorboard_dir(None) is None and api.tensorboard_dir(False) is None
    with Store(tmp_path / "s") as store:
        assert api.tensorboard_dir(True, store) == tmp_path / "s" / "tensorboard"
        assert api.mlflow_uri(True, store) == f"sqlite:///{(tmp_path / 's' / 'mlflow.db').resolve()}"
    assert api.mlflow_uri("http://localhost:5000") == "http://localhost:5000"
    assert api.mlflow_uri(False) is None


def test_sinks_for_one_run_store_first(tmp_path, mlflow_uri):
    with Store(tmp_path / "runs") as store:
        sinks = api.sinks_for(store=store, tensorboard=tmp_path / "tb", mlflow=mlflow_uri, kind="trial",
                              study="s", trial=7, params={"width": 16})
        assert [type(s) for s in sinks] == [StoreSink, TensorBoardSink, MLflowSink]
        run = tw.engine.train(tw.tasks.spirals(), tw.TrainConfig(epochs=1, device="cpu"), callbacks=sinks, trial=7)
        for s in sinks:
            s.close()
        row = store.run(run.run_id)
    assert (row["kind"], row["study"], row["params"]["width"]) == ("trial", "s", 16)
    assert sinks[1].run_dir == tmp_path / "tb" / "s" / "trial-0007"
    assert sinks[2].client.get_run(sinks[2].mlflow_run_id).info.run_name == "trial-0007"
    assert api.sinks_for() == []
    with pytest.raises(TypeError, match="sinks_for takes an open tw.Store"):
        api.sinks_for(store=str(tmp_path))


def test_study_log_from_user_values(tmp_path, mlflow_db):
    assert api.study_log("s") is None  # neither on
    log = api.study_log("s", store=mlflow_db.parent, tensorboard=True, mlflow=True, task=tw.tasks.digits())
    assert isinstance(log, StudyLog) and log.image_shape == (1, 8, 8)
    assert log.tensorboard_dir == mlflow_db.parent / "tensorboard" / "s"
    assert log.mlflow_uri == f"sqlite:///{mlflow_db.resolve()}"
    log.start()
    sinks = api.sinks_for(study_log=log, trial=0, kind="trial")
    assert [type(s) for s in sinks] == [TensorBoardSink, MLflowSink]
    assert sinks[1].parent_run_id == log.mlflow_run_id


def test_train_and_range_test_return_where_they_logged(tmp_path, mlflow_db):
    runs = mlflow_db.parent
    run = tw.train(tw.tasks.spirals(), tw.TrainConfig(epochs=1, device="cpu"), store=runs, tensorboard=True,
                   mlflow=True, name="baseline")
    assert run.tensorboard_dir == str(runs / "tensorboard" / "baseline")
    assert run.mlflow_uri.endswith("/runs/mlflow.db") and run.sink_errors == []
    res = tw.lr_range_test(tw.tasks.spirals(), steps=10, device="cpu", store=runs, tensorboard=True, mlflow=True)
    assert res.tensorboard_dir == str(runs / "tensorboard" / f"lr_range_test-{res.run_id}")
    assert res.mlflow_uri == run.mlflow_uri
    assert "lr_range/loss" in read_events(res.tensorboard_dir).Tags()["scalars"]
    # plain runs keep their old behaviour: nothing logged, nothing set
    plain = tw.train(tw.tasks.spirals(), tw.TrainConfig(epochs=1, device="cpu"))
    assert plain.tensorboard_dir is None and plain.mlflow_uri is None and plain.matches is None
