"""Errors before work: what a trial builds first (its model, device and schedule) is built for every
dimension's extremes before trial 0; every preset runs on the built-in tasks it lists."""
from __future__ import annotations

import numpy as np
import pytest
import torch

import tunewidgets as tw
from hpo_helpers import BASE, blob_task, one_thread  # noqa: F401 (autouse)
from tunewidgets.hpo.space import Choice, Int, LogUniform, SpaceError
from tunewidgets.tracking import studies

TINY = {"digits": {}, "spirals": {"n": 200}, "shapes": {"n": 48, "size": 16, "batch_size": 16}, "sine": {"n": 200}}


@pytest.mark.parametrize("name", tw.presets.names())
def test_every_preset_runs_on_every_built_in_task_it_lists(tmp_path, name):
    preset = tw.presets.get(name)
    assert preset.tasks  # every preset lists the built-in tasks it runs on
    for task_name in preset.tasks:
        task = getattr(tw.tasks, task_name)(**TINY[task_name])
        study = tw.search(task, preset.space(), base=preset.with_epochs(1), n_trials=2, store=tmp_path,
                          study=f"{name}-{task_name}", seed=0, background=False)
        assert study.trials["state"].tolist() == ["finished", "finished"], (task_name, study.trials["error"].tolist())


def test_a_preset_warm_up_too_long_for_the_run_is_cut_to_its_share():
    preset = tw.presets.get("transformer-warmup")
    short = preset.for_steps(500).config.schedule
    assert (short.warmup_steps, short.start_factor) == (20, 1 / 20)  # 4% of the run, from lr / steps as published
    assert preset.for_steps(10_000).config.schedule.warmup_steps == 4000  # a run it fits: as published
    plan_base = tw.hpo.plan.make_plan(tw.tasks.spirals(n=200), preset.space(), base=preset, n_trials=1).base
    assert plan_base.schedule.warmup_steps == 1  # 4% of 15 steps rounds to 1
    with pytest.raises(SpaceError, match=r"^base.schedule: ValueError: InverseSqrt.warmup_steps: the warm-up \(4000 "
                                         r"steps\) must be shorter than the run \(15 steps\).* \(a run of 15 steps on "
                                         r"task 'spirals'\)"):
        tw.search(tw.tasks.spirals(n=200), preset.space(), base=preset.config, n_trials=1, background=False)


def _refused(tmp_path, space, match, base=BASE, task=None, **kw):
    seen = []
    with pytest.raises(SpaceError, match=match):
        tw.search(task or blob_task(), space, base=base, store=tmp_path, study="refused", background=False,
                  callbacks=[lambda event, record: seen.append(event)], **kw)
    assert seen == []  # nothing trained
    with tw.Store(tmp_path) as store:
        assert studies.study_row(store, "refused") is None  # nothing recorded either


def test_a_model_argument_no_model_builds_with_is_refused_before_training(tmp_path):
    spirals = tw.tasks.spirals(n=200)
    _refused(tmp_path, {"lr": LogUniform(1e-3, 0.3), "model.width": Int(0, 16)},
             r"^model.width: Int\(0, 16\): low 0 fails before training: ValueError: width: must be a whole number "
             r">= 1, got 0", n_trials=5, task=spirals)
    _refused(tmp_path, {"model.width": Choice([{"a": 1}, {"b": 2}])},
             r"^model.width: Choice\(\[\{'a': 1\}, \{'b': 2\}\]\): the choice \{'a': 1\} fails before training: "
             r"ValueError: width: must be a whole number >= 1, got \{'a': 1\}", n_trials=5, task=spirals)
    _refused(tmp_path, {"model.width": Choice([4, {"b": 2}])},  # a factory of one's own: whatever it raises
             r"^model.width: .*: the choice \{'b': 2\} fails before training: TypeError: ", n_trials=5)


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_a_device_this_machine_lacks_is_refused_before_training(tmp_path):
    _refused(tmp_path, {"device": Choice(["cpu", "cuda"])},
             r"^device: Choice\(\['cpu', 'cuda'\]\): the choice 'cuda' fails before training: ValueError: device: "
             r"'cuda' was asked for but CUDA is not available", n_trials=2)
    _refused(tmp_path, {"lr": LogUniform(1e-3, 0.3)}, r"^base.device: ValueError: device: 'cuda' was asked for",
             base=BASE.replace(device="cuda"), n_trials=2)


def test_a_schedule_that_does_not_fit_a_trial_is_refused_before_training(tmp_path):
    base = BASE.replace(epochs=1, schedule=tw.schedules.Warmup(steps=5, then=tw.schedules.Cosine()))
    _refused(tmp_path, {"schedule.steps": Int(2, 50)},
             r"^schedule.steps: Int\(2, 50\): high 50 fails before training: ValueError: .*\(a run of 6 steps on "
             r"task 'blobs'\)", n_trials=2, base=base)


def test_one_value_twice_in_a_choice_is_a_duplicate(tmp_path):
    _refused(tmp_path, {"lr": Choice([0.1, np.float64(0.1)])},
             r"^lr: Choice lists np.float64\(0.1\) twice \(0.1 and np.float64\(0.1\) are one value\); give each "
             r"value once", n_trials=2)
    _refused(tmp_path, {"batch_size": Choice([32, 32.0])}, r"^batch_size: Choice lists 32.0 twice", n_trials=2)


def test_more_trials_than_a_grid_has_points_says_how_many_it_has(tmp_path):
    _refused(tmp_path, {"lr": Choice([0.05, 0.1])},
             r"^n_trials: the grid has lr 2 = 2 points, fewer than n_trials=1000000000, and tries each once; leave "
             r"n_trials None \(the whole grid: 2 trials\)", strategy="grid", n_trials=10**9)
