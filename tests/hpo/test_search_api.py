"""tw.search's surface: the Study's tables, best config, curves, importance, callbacks, arguments."""
from __future__ import annotations

import json
import math
import subprocess
import sys
import time
from pathlib import Path

import pytest

import tunewidgets as tw
from hpo_helpers import BASE, blob_task, one_thread  # noqa: F401 (autouse)
from tunewidgets.hpo.space import Choice, Int, LogUniform, SpaceError, Uniform
from tunewidgets.tracking import Sink

REPO = Path(__file__).resolve().parents[2]

_IMPORT_ALL = """
import importlib, json, pkgutil
import tunewidgets as tw
names = [m.name for m in pkgutil.walk_packages(tw.__path__, prefix="tunewidgets.")]
for name in names:
    try:
        importlib.import_module(name)
    except ModuleNotFoundError as exc:
        if (exc.name or "").split(".")[0] not in ("mlflow", "ray"):
            raise
print(json.dumps({"n": len(names), "search": callable(tw.search), "search_name": tw.search.__module__,
                  "space": hasattr(tw.space, "LogUniform"), "presets": callable(tw.presets.get)}))
"""


def test_importing_every_module_leaves_tw_search_callable():
    proc = subprocess.run([sys.executable, "-c", _IMPORT_ALL], capture_output=True, text=True, cwd=REPO,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["n"] > 50
    assert out == {**out, "search": True, "search_name": "tunewidgets._search_api", "space": True, "presets": True}
    # no module or package directly under tunewidgets/ is named like a facade function
    names = {p.stem for p in (REPO / "tunewidgets").iterdir() if p.suffix == ".py" or p.is_dir()}
    assert not names & {"search", "presets", "space", "report"}


@pytest.fixture(scope="module")
def searched(tmp_path_factory):
    folder = tmp_path_factory.mktemp("runs")
    records = []
    space = {"lr": LogUniform(0.01, 0.3), "momentum": Uniform(0.5, 0.95), "model.width": Choice([4, 16])}
    study = tw.search(blob_task(), space, base=BASE, n_trials=6, store=folder, study="api", seed=2,
                      background=False, callbacks=[lambda event, record: records.append((event, dict(record)))])
    return study, records, folder


def test_trials_table(searched):
    study, _, _ = searched
    trials = study.trials
    assert list(trials.columns) == ["trial", "state", "lr", "momentum", "model.width", "val_accuracy",
                                    "best_val_accuracy", "epochs", "duration", "run_id", "error"]
    assert trials["trial"].tolist() == list(range(6)) and (trials["state"] == "finished").all()
    assert (trials["best_val_accuracy"] >= trials["val_accuracy"]).all()
    assert (trials["epochs"] == 3).all() and (trials["duration"] > 0).all()
    assert trials["run_id"].is_unique and trials["error"].isna().all()
    assert study.counts()["finished"] == 6 and "finished 6" in repr(study)


def test_best_config_trains_the_best_trial_again(searched):
    study, _, _ = searched
    best = study.best
    trials = study.trials.set_index("trial")
    assert best[study.metric] == trials["val_accuracy"].max()
    cfg = study.best_config
    assert (cfg.lr, cfg.momentum, cfg.model_kwargs["width"]) == (best["params"]["lr"], best["params"]["momentum"],
                                                                  best["params"]["model.width"])
    again = tw.train(blob_task(), cfg)  # same seed and config on the CPU: the same run
    assert again.final["val_accuracy"] == best["val_accuracy"]
    assert again.final["val_loss"] == best["final"]["val_loss"]


def test_curves_match_the_trials(searched):
    study, _, _ = searched
    curves = study.curves()
    assert list(curves.columns) == ["trial", "run_id", "epoch", "step", "name", "value"]
    assert set(curves["name"]) == {"val_accuracy", "val_loss", "train_loss"}
    acc = curves[curves["name"] == "val_accuracy"]
    assert acc.groupby("trial").size().tolist() == [3] * 6 and sorted(set(acc["epoch"])) == [0, 1, 2]
    trials = study.trials.set_index("trial")
    last = acc.sort_values("epoch").groupby("trial")["value"].last()
    assert (last == trials["val_accuracy"]).all()
    assert (acc.groupby("trial")["value"].max() == trials["best_val_accuracy"]).all()


def test_importance(searched):
    study, _, _ = searched
    imp = study.importance()
    assert set(imp) == {"lr", "momentum", "model.width"}
    assert math.isclose(sum(imp.values()), 1.0, rel_tol=1e-6) and all(v >= 0 for v in imp.values())
    assert len(study.to_optuna().trials) == 6


def test_callbacks_get_every_record_with_run_and_trial(searched):
    study, records, _ = searched
    events = [e for e, _ in records]
    assert events.count("start") == 6 and events.count("end") == 6 and events.count("eval") == 18
    assert "step" not in events
    run_ids = dict(zip(study.trials["trial"], study.trials["run_id"]))
    for event, record in records:
        assert record["run_id"] == run_ids[record["trial"]], event
    ends = [r for e, r in records if e == "end"]
    assert [r["status"] for r in ends] == ["finished"] * 6


def test_a_sink_as_a_callback(tmp_path):
    class Counter(Sink):
        def __init__(self):
            super().__init__()
            self.evals = 0

        def on_eval(self, record):
            self.evals += 1

    sink = Counter()
    tw.search(blob_task(), {"lr": Choice([0.05, 0.1])}, base=BASE.replace(epochs=2), strategy="grid",
              store=tmp_path, background=False, callbacks=[sink])
    assert sink.evals == 4


def test_preset_base_and_loss_metric(tmp_path):
    study = tw.search(blob_task(), tw.presets.get("adam").space(), base=tw.presets.get("adam").with_epochs(2),
                      metric="loss", n_trials=2, store=tmp_path, background=False)
    assert study.metric == "val_loss" and study.direction == "minimize"
    assert {"val_loss", "best_val_loss"} <= set(study.trials.columns)
    assert study.best_config.optimizer == "adam"


def test_default_study_names_do_not_collide(tmp_path):
    a = tw.search(blob_task(), {"lr": Choice([0.1])}, base=BASE.replace(epochs=1), n_trials=1, store=tmp_path,
                  background=False)
    b = tw.search(blob_task(), {"lr": Choice([0.1])}, base=BASE.replace(epochs=1), n_trials=1, store=tmp_path,
                  background=False)
    assert (a.name, b.name) == ("blobs-random-1", "blobs-random-2")


class Clock:
    """The search driver's clock, moved by the test: a trial takes as long as the test says."""

    def __init__(self):
        self.now = 0.0

    def monotonic(self):
        return self.now

    perf_counter = staticmethod(time.perf_counter)


@pytest.mark.parametrize(("trial_s", "timeout", "trials"), [(5.0, 0.01, 1), (5.0, 12.0, 3), (0.001, 0.01, 10)])
def test_timeout_starts_no_trial_after_it(tmp_path, monkeypatch, trial_s, timeout, trials):
    # the driver's clock moves only when a trial ends, by trial_s: no dependence on this machine's speed
    from tunewidgets.hpo import driver

    clock = Clock()
    monkeypatch.setattr(driver, "time", clock)

    def trial_took(event, record):
        if event == "end":
            clock.now += trial_s

    study = tw.search(blob_task(), {"lr": LogUniform(0.01, 0.1)}, base=BASE.replace(epochs=1), timeout=timeout,
                      n_trials=10, store=tmp_path, background=False, callbacks=[trial_took])
    assert len(study.trials) == trials and study.status == "finished"


def test_an_error_of_the_search_itself_reaches_wait(tmp_path):
    store = tw.Store(tmp_path)

    def close_the_store(event, record):
        if event == "end":
            store.close()

    study = tw.search(blob_task(), {"lr": LogUniform(0.01, 0.1)}, base=BASE.replace(epochs=1), n_trials=3,
                      store=store, background=True, callbacks=[close_the_store])
    with pytest.raises(ValueError, match="is closed"):
        study.wait(timeout=60)
    assert study.status == "failed"


@pytest.mark.parametrize("kwargs, error, message", [
    (dict(metric="f1"), ValueError, r"metric: the task reports no 'f1'; use one of: val_loss, val_accuracy, train_loss"),
    (dict(direction="up"), ValueError, r"direction: must be 'maximize' or 'minimize', got 'up'"),
    (dict(n_trials=None), ValueError, r"n_trials: give the number of trials for strategy='random'"),
    (dict(n_trials=0), ValueError, r"n_trials: must be >= 1, got 0"),
    (dict(store=None), TypeError, r"store: expected a runs folder .* so it can resume"),
    (dict(executor="lcoal"), ValueError, r"executor: unknown executor 'lcoal' \(did you mean 'local'\?\)"),
    (dict(base=3), TypeError, r"base: expected a tw.TrainConfig, a preset"),
    (dict(background="yes"), TypeError, r"background: expected True, False or None"),
    (dict(seed=-1), ValueError, r"seed: must be >= 0"),
    (dict(timeout=0), ValueError, r"timeout: must be a number of seconds > 0"),
    (dict(study=""), ValueError, r"study: expected a non-empty name"),
])
def test_bad_arguments_fail_before_any_trial(tmp_path, kwargs, error, message):
    args = dict(base=BASE, n_trials=2, store=tmp_path / "runs", background=False)
    args.update(kwargs)
    with pytest.raises(error, match=message):
        tw.search(blob_task(), {"lr": LogUniform(0.01, 0.1)}, **args)
    assert not (tmp_path / "runs").exists() or not tw.Store(tmp_path / "runs").runs(kind="trial").shape[0]


def test_bad_space_names_the_key(tmp_path):
    with pytest.raises(SpaceError, match=r"model.depth: the model factory takes no argument 'depth'"):
        tw.search(blob_task(), {"model.depth": Int(1, 3)}, base=BASE, n_trials=2, store=tmp_path)
    with pytest.raises(ValueError, match=r"metric: the task has no validation data"):
        tw.search(blob_task(val=None), {"lr": LogUniform(0.01, 0.1)}, base=BASE, n_trials=2, store=tmp_path)
