"""Strategies through tw.search: grid covers the product exactly once; random and TPE repeat with a seed."""
from __future__ import annotations

import itertools
import math
import statistics

import optuna
import pytest

import tunewidgets as tw
from hpo_helpers import BASE, blob_task, one_thread  # noqa: F401 (autouse)
from tunewidgets.hpo.space import Choice, Int, LogUniform, Space, SpaceError, Uniform
from tunewidgets.hpo.strategies import make_strategy


def _points(frame, keys):
    return [tuple(None if isinstance(v, float) and math.isnan(v) else v for v in row)
            for row in frame[keys].itertuples(index=False)]


def test_grid_covers_the_product_once(tmp_path):
    space = {"lr": LogUniform(0.01, 0.1, grid=3), "model.width": Choice([4, 8]), "batch_size": Choice([32, 64])}
    study = tw.search(blob_task(), space, base=BASE.replace(epochs=1), strategy="grid", store=tmp_path,
                      background=False)
    trials = study.trials
    expected = set(itertools.product(LogUniform(0.01, 0.1, grid=3).grid_values(), [4, 8], [32, 64]))
    got = _points(trials, ["lr", "model.width", "batch_size"])
    assert len(got) == 12 and set(got) == expected            # every point, none twice
    assert trials["state"].tolist() == ["finished"] * 12     # the last tell is recorded too
    assert trials["trial"].tolist() == list(range(12))
    assert study.status == "finished" and study.n_trials == 12


def test_grid_with_conditional_keys_has_no_duplicates(tmp_path):
    space = {"optimizer": Choice(["sgd", "adam"]), "momentum": Choice([0.0, 0.9]), "lr": Choice([0.01, 0.1])}
    study = tw.search(blob_task(), space, base=BASE.replace(epochs=1), strategy="grid", store=tmp_path,
                      background=False)
    got = _points(study.trials, ["optimizer", "momentum", "lr"])
    assert len(got) == 6 and len(set(got)) == 6               # sgd: 2 x 2, adam: 2 (no momentum)
    assert {p for p in got if p[0] == "adam"} == {("adam", None, 0.01), ("adam", None, 0.1)}


def test_grid_points_that_fail_are_not_retried(tmp_path):
    space = {"model.fail": Choice(["", "error"]), "lr": Choice([0.01, 0.1])}
    study = tw.search(blob_task(), space, base=BASE.replace(epochs=1), strategy="grid", store=tmp_path,
                      background=False)
    trials = study.trials
    assert len(trials) == 4 and len(set(_points(trials, ["model.fail", "lr"]))) == 4
    assert sorted(trials["state"]) == ["failed", "failed", "finished", "finished"]


def test_grid_bigger_than_n_trials_fails_before_any_trial(tmp_path):
    space = {"lr": LogUniform(0.01, 0.1, grid=4), "model.width": Choice([4, 8])}
    with pytest.raises(SpaceError, match=r"n_trials: the grid has lr 4 x model.width 2 = 8 points, more than "
                                         r"n_trials=5; raise n_trials to 8"):
        tw.search(blob_task(), space, base=BASE, strategy="grid", n_trials=5, store=tmp_path, background=False)
    assert not (tmp_path / "runs.sqlite").exists() or tw.Store(tmp_path).runs().empty


def test_grid_sampler_is_never_asked_past_its_points():
    strategy = make_strategy("grid", Space({"lr": Choice([0.1, 0.2])}), seed=0)
    study = optuna.create_study()
    asked = [strategy.ask(study, n) for n in range(2)]  # asked ahead of any tell: still two distinct points
    assert sorted(strategy.params(t)["lr"] for t in asked) == [0.1, 0.2]
    with pytest.raises(RuntimeError, match="the grid has 2 points"):
        strategy.ask(study, 2)


@pytest.mark.parametrize("strategy", ["random", "bayes"])
def test_same_seed_same_points_and_results(tmp_path, strategy):
    space = {"lr": LogUniform(1e-3, 0.3), "momentum": Uniform(0.5, 0.95), "model.width": Int(4, 16)}
    kw = dict(base=BASE.replace(epochs=2), strategy=strategy, n_trials=12, background=False)
    a = tw.search(blob_task(), space, store=tmp_path / "a", seed=3, **kw).trials
    b = tw.search(blob_task(), space, store=tmp_path / "b", seed=3, **kw).trials
    c = tw.search(blob_task(), space, store=tmp_path / "c", seed=4, **kw).trials
    cols = ["lr", "momentum", "model.width", "val_accuracy", "best_val_accuracy", "epochs"]
    assert a[cols].equals(b[cols])                            # same points, same results on the CPU
    assert not a["lr"].equals(c["lr"])
    assert a["lr"].nunique() == 12


def test_tpe_uses_the_history():
    # on a 1-D quadratic, TPE's later points (after its random start-up) sit nearer the optimum
    space = Space({"x": Uniform(-10.0, 10.0)})
    spread = {}
    for name in ("bayes", "random"):
        strategy = make_strategy(name, space, seed=0)
        study = optuna.create_study()
        for n in range(40):
            trial = strategy.ask(study, n)
            study.tell(trial, (strategy.params(trial)["x"] - 3.0) ** 2)
        spread[name] = statistics.median(abs(t.params["x"] - 3.0) for t in study.trials[-20:])
    assert spread["bayes"] < spread["random"] / 2, spread


def test_unknown_strategy():
    with pytest.raises(ValueError, match=r"strategy: unknown strategy 'grdi' \(did you mean 'grid'\?\)"):
        tw.search(blob_task(), {"lr": Choice([0.1])}, strategy="grdi", n_trials=1, store=None)


@pytest.mark.parametrize("name, cls", [("random", optuna.samplers.RandomSampler),
                                       ("bayes", optuna.samplers.TPESampler)])
def test_reseeded_sampler_draws_what_a_fresh_one_would(name, cls):
    from tunewidgets.hpo.strategies import _reseed, trial_seed

    space = Space({"x": Uniform(-1.0, 1.0), "k": Choice(["a", "b", "c"])})
    strategy = make_strategy(name, space, seed=9)
    mine, fresh = optuna.create_study(), optuna.create_study()
    for n in range(14):  # TPE: 10 start-up trials, then its model
        a = strategy.ask(mine, n)
        fresh.sampler = cls(seed=trial_seed(9, n))
        b = fresh.ask()
        pa, pb = strategy.params(a), space.suggest(b)
        assert pa == pb, n
        mine.tell(a, pa["x"] ** 2)
        fresh.tell(b, pb["x"] ** 2)
    assert _reseed(strategy.sampler(20), 1)  # the fast path is the one in use with this Optuna
