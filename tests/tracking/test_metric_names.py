"""Metric names: one converter between record keys and stored names, used by the sinks, the search and reports."""
from __future__ import annotations

import pytest

import tunewidgets as tw
from tunewidgets.hpo.executors import TrialSpec
from tunewidgets.hpo.plan import metric_key
from tunewidgets.hpo.strategies import STRATEGY_ALIASES, make_strategy
from tunewidgets.tracking.metric_names import metric_key as any_form, metric_name, record_key
from tunewidgets.tracking.sink import metric_rows


@pytest.mark.parametrize("key, name", [("loss", "train/loss"), ("lr", "lr"), ("smoothed", "train/smoothed"),
                                       ("train_loss", "train/epoch_loss"), ("val_loss", "val/loss"),
                                       ("val_accuracy", "val/accuracy"), ("grad_norm", "grad_norm")])
def test_name_and_inverse(key, name):
    assert metric_name(key) == name and record_key(name) == key


def test_every_form_a_user_types_is_one_key():
    known = ("val_loss", "val_accuracy", "train_loss")
    for typed in ("accuracy", "val_accuracy", "val/accuracy"):
        assert any_form(typed, known) == "val_accuracy"
    assert any_form("train/epoch_loss", known) == any_form("train_epoch_loss", known) == "train_loss"
    task = tw.tasks.spirals()
    assert {metric_key(m, task) for m in ("accuracy", "val/accuracy", "val_accuracy")} == {"val_accuracy"}


def test_the_sinks_name_rows_with_it():
    rows = metric_rows("eval", {"step": 3, "epoch": 0, "val_loss": 0.5, "val_accuracy": 0.9})
    assert [(name, record_key(name)) for _, _, name, _ in rows] == [("val/loss", "val_loss"),
                                                                      ("val/accuracy", "val_accuracy")]


def test_trial_is_the_one_word_and_number_reads_it():
    spec = TrialSpec("s", 4, {}, tw.TrainConfig(), None, None)
    assert spec.trial == spec.number == 4
    with pytest.raises(AttributeError):
        spec.number = 5  # read-only: the former name


def test_strategy_aliases_are_defined_once():
    from tunewidgets.widgets import search

    assert search._STRATEGY_ALIASES is STRATEGY_ALIASES
    assert {alias: make_strategy(alias, tw.space.Space({"lr": tw.space.Choice([0.1])}), 0).name
            for alias in STRATEGY_ALIASES} == {"tpe": "bayes", "bayesian": "bayes"}
