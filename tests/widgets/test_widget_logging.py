"""The widgets log where ``tw.lr_range_test`` and ``tw.search`` log: ``store=``, ``tensorboard=`` and
``mlflow=`` on LRFinder and Search, read back with the store, TensorBoard's own reader and
``MlflowClient``, run after run; a bad value is an error when the widget is made."""
from __future__ import annotations

import math
import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tracking"))
from sink_helpers import (hparam_value, mlflow_db, mlflow_template,  # noqa: E402,F401
                          read_events, scalars, session_groups)

import tunewidgets as tw  # noqa: E402
from tunewidgets.tracking import Store  # noqa: E402
from tunewidgets.widgets import LRFinder, Search  # noqa: E402


@pytest.fixture
def client(mlflow_db):
    from mlflow.tracking import MlflowClient

    return MlflowClient(tracking_uri=f"sqlite:///{mlflow_db}")


def mlflow_runs(client):
    from mlflow.entities import ViewType

    exp = client.get_experiment_by_name("tunewidgets")
    return client.search_runs([exp.experiment_id], run_view_type=ViewType.ALL, max_results=1000)


def history(client, run_id, name):
    got = sorted(client.get_metric_history(run_id, name), key=lambda m: m.step)
    return np.array([m.value for m in got])


def test_lr_finder_logs_each_run_to_the_store_tensorboard_and_mlflow(mlflow_db, client):
    runs = mlflow_db.parent
    finder = LRFinder(tw.tasks.digits(), steps=30, device="cpu", seed=0, interval=0.02,
                      store=runs, tensorboard=True, mlflow=True)
    results = []
    for start, end in ((1e-5, 1e-1), (1e-3, 10.0)):  # a second run with other settings: a second record
        finder.set_range(start, end)
        assert finder.run(), finder.error_area.message
        result = finder.wait(60)
        assert finder.status == "finished" and result.sink_errors == []
        assert f"logged as run {result.run_id}, to TensorBoard and MLflow" in finder.status_line.value
        results.append(result)
    first, second = results
    assert first.run_id != second.run_id
    assert second.lrs[0] == pytest.approx(1e-3) and first.lrs[0] == pytest.approx(1e-5)

    with Store(runs) as store:
        table = store.runs(kind="lr_range_test").set_index("id")
        assert sorted(table.index) == sorted([first.run_id, second.run_id])
        for res in results:
            np.testing.assert_array_equal(store.metrics(res.run_id, "train/loss")["value"].to_numpy(), res.losses)
            assert table.loc[res.run_id, "status"] == res.stop_reason

    # TensorBoard: one folder per run, loss against lr on the 1000 log10(lr) step axis
    assert first.tensorboard_dir != second.tensorboard_dir
    for res in results:
        assert Path(res.tensorboard_dir).parent == runs / "tensorboard"
        steps, losses = scalars(read_events(res.tensorboard_dir), "lr_range/loss")
        assert steps == [round(1000 * math.log10(lr)) for lr in res.lrs]
        np.testing.assert_array_equal(losses, res.losses.astype(np.float32))

    # MLflow: one plain run per test, with the same losses
    assert first.mlflow_uri == f"sqlite:///{mlflow_db.resolve()}"
    logged = {r.info.run_name: r for r in mlflow_runs(client)}
    for res in results:
        got = logged[f"lr_range_test-{res.run_id}"]
        assert "mlflow.parentRunId" not in got.data.tags
        np.testing.assert_array_equal(history(client, got.info.run_id, "train/loss"), res.losses)


def test_lr_finder_without_logging_keeps_no_record(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    finder = LRFinder(tw.tasks.spirals(), steps=20, device="cpu", interval=0.02)
    assert finder.run()
    result = finder.wait(60)
    assert result.run_id is None and result.tensorboard_dir is None and result.mlflow_uri is None
    assert "logged" not in finder.status_line.value
    assert list(tmp_path.iterdir()) == []  # nothing written where the notebook runs


def test_search_widget_logs_trials_to_tensorboard_hparams_and_mlflow_children(mlflow_db, client):
    runs = mlflow_db.parent
    space = {"lr": tw.space.Choice([0.01, 0.05])}
    w = Search(tw.tasks.spirals(n=200), space, base=tw.TrainConfig(optimizer="adam", epochs=1, device="cpu"),
               strategy="grid", store=runs, study="logged", tensorboard=True, mlflow=True, interval=0.02)
    assert w.launch(), w.error_area.message
    study = w.wait(120)
    assert w.status == "finished"
    assert "logged to TensorBoard and MLflow" in w.status_line.value
    trials = study.trials.set_index("trial")
    assert list(trials["state"]) == ["finished", "finished"]

    folder = Path(study.tensorboard_dir)
    assert folder == runs / "tensorboard" / "logged"
    _, groups = session_groups(folder)
    assert sorted(g.name for g in groups) == ["trial-0000", "trial-0001"]
    for group in groups:
        n = int(group.name.split("-")[1])
        assert hparam_value(group.hparams["lr"]) == pytest.approx(trials.loc[n, "lr"])
        assert hparam_value(group.hparams["state"]) == "finished"

    logged = mlflow_runs(client)
    (parent,) = [r for r in logged if "mlflow.parentRunId" not in r.data.tags]
    children = [r for r in logged if r.data.tags.get("mlflow.parentRunId") == parent.info.run_id]
    assert len(children) == 2 and {r.data.tags["state"] for r in children} == {"finished"}


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"tensorboard": 3}, r"tensorboard: expected True, False or a folder"),
    ({"tensorboard": ""}, r"tensorboard: expected True, False or a folder"),
    ({"mlflow": "mlruns"}, r"mlflow: expected True, False or a tracking URI"),
    ({"mlflow": 1}, r"mlflow: expected True, False or a tracking URI"),
    ({"store": 5}, r"store: expected None, a runs folder"),
    ({"store": b"runs"}, r"store: expected None, a runs folder"),
])
def test_bad_logging_settings_are_refused_when_the_finder_is_made(tmp_path, kwargs, message):
    with pytest.raises((TypeError, ValueError), match=message):
        LRFinder(tw.tasks.spirals(), steps=20, device="cpu", **kwargs)


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"store": None}, r"store: expected a runs folder"),
    ({"tensorboard": 3}, r"tensorboard: expected True, False or a folder"),
    ({"mlflow": "mlruns"}, r"mlflow: expected True, False or a tracking URI"),
])
def test_bad_logging_settings_are_refused_when_the_search_widget_is_made(tmp_path, kwargs, message):
    kwargs.setdefault("store", tmp_path / "runs")
    with pytest.raises((TypeError, ValueError), match=message):
        Search(tw.tasks.spirals(n=200), {"lr": tw.space.Choice([0.01])}, **kwargs)
    assert not (tmp_path / "runs").exists()  # nothing was started


def test_a_missing_tensorboardx_is_named_when_the_widget_is_made(monkeypatch):
    monkeypatch.setitem(sys.modules, "tensorboardX", None)
    with pytest.raises(ImportError, match="tensorboard"):
        LRFinder(tw.tasks.spirals(), steps=20, device="cpu", tensorboard=True)


@pytest.mark.parametrize("where", ["store", "tensorboard", "store inside", "tensorboard inside"])
def test_a_file_where_a_folder_goes_is_refused_when_the_search_widget_is_made(tmp_path, where):
    note = tmp_path / "notes.txt"
    note.write_text("not a store")
    kwargs = {"store": tmp_path / "runs"}
    name = where.split()[0]
    kwargs[name] = note / "runs" if where.endswith("inside") else note
    message = (rf"{name}( path)?: .*notes.txt.* lies inside .*notes.txt, which is a file" if where.endswith("inside")
               else rf"{name}( path)?: .*notes.txt (is a file but not an SQLite database|is a file, not a folder)")
    with pytest.raises(ValueError, match=message):
        Search(tw.tasks.spirals(n=200), {"lr": tw.space.Choice([0.01])}, **kwargs)
    assert not (tmp_path / "runs").exists() and note.read_text() == "not a store"  # nothing made or changed
