"""Search spaces: grid values, conditions, key mapping and the errors a bad space gives."""
from __future__ import annotations

import itertools
import math

import optuna
import pytest

import tunewidgets as tw
from tunewidgets.engine.optimizers import _TAKES
from tunewidgets.hpo.space import Choice, Fixed, Int, LogUniform, Space, SpaceError, Uniform
from tunewidgets.hpo.targets import OPTIMIZER_SETTINGS, apply_params

BASE = tw.TrainConfig(optimizer="sgd", lr=0.1, momentum=0.9, epochs=2, device="cpu")


@pytest.fixture(scope="module")
def digits():
    return tw.tasks.digits()


# -- grid values --------------------------------------------------------------------------
def test_uniform_grid_includes_both_ends_evenly():
    assert Uniform(0.0, 1.0, grid=5).grid_values() == [0.0, 0.25, 0.5, 0.75, 1.0]


def test_log_grid_is_log_spaced_with_exact_ends():
    values = LogUniform(1e-4, 1e-1, grid=4).grid_values()
    assert values[0] == 1e-4 and values[-1] == 1e-1
    assert [round(math.log10(v), 9) for v in values] == [-4, -3, -2, -1]


def test_int_grid_all_values_or_rounded_log_points():
    assert Int(2, 5).grid_values() == [2, 3, 4, 5]
    assert Int(0, 10, step=5).grid_values() == [0, 5, 10]
    values = Int(16, 256, log=True, grid=5).grid_values()
    assert values == [16, 32, 64, 128, 256]


def test_grid_is_the_cartesian_product_in_order():
    space = Space({"lr": LogUniform(1e-3, 1e-1, grid=3), "batch_size": Choice([32, 64]), "epochs": Fixed(3)})
    points = space.grid()
    expected = [{"lr": lr, "batch_size": b, "epochs": 3}
                for lr, b in itertools.product(LogUniform(1e-3, 1e-1, grid=3).grid_values(), [32, 64])]
    assert points == expected
    assert space.grid_size() == 6
    assert space.grid_shape() == "lr 3 x batch_size 2 = 6 points"


def test_conditional_keys_only_in_the_points_they_apply_to():
    space = Space({"optimizer": Choice(["sgd", "adam", "rmsprop"]), "momentum": Choice([0.5, 0.9]),
                   "lr": Choice([0.01, 0.1])})
    points = space.grid()
    # sgd and rmsprop: 2 momenta x 2 lr each; adam: 2 lr, no momentum
    assert len(points) == 10
    assert len({tuple(sorted(p.items())) for p in points}) == 10  # no duplicates
    assert all(("momentum" in p) == (p["optimizer"] != "adam") for p in points)
    assert "conditional" in space.grid_shape()


def test_explicit_when_condition():
    space = Space({"model.depth": Choice([0, 2]), "model.width": Choice([16, 64], when={"model.depth": [2]})})
    assert space.grid() == [{"model.depth": 0}, {"model.depth": 2, "model.width": 16},
                            {"model.depth": 2, "model.width": 64}]


def test_grid_over_a_continuous_dimension_needs_grid_n():
    space = Space({"lr": LogUniform(1e-4, 1e-1), "momentum": Choice([0.9])})
    with pytest.raises(SpaceError, match=r"lr: a grid search needs the values .* grid=4"):
        space.grid()


# -- sampling with Optuna -----------------------------------------------------------------
def test_suggest_samples_only_applicable_keys():
    space = Space({"optimizer": Choice(["sgd", "adam"]), "momentum": Uniform(0.8, 0.99),
                   "lr": LogUniform(1e-4, 1e-1)})
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=1))
    seen = set()
    for _ in range(20):
        trial = study.ask()
        params = space.suggest(trial)
        assert set(trial.params) == set(params)
        seen.add(params["optimizer"])
        assert ("momentum" in params) == (params["optimizer"] == "sgd")
        assert 1e-4 <= params["lr"] <= 1e-1
        study.tell(trial, 0.0)
    assert seen == {"sgd", "adam"}


def test_choice_of_non_plain_values_round_trips():
    schedules = [None, tw.schedules.Cosine(), tw.schedules.OneCycle(max_lr=0.2)]
    space = Space({"schedule": Choice(schedules), "betas": Choice([(0.9, 0.999), (0.9, 0.98)])})
    internal = space.to_internal({"schedule": schedules[2], "betas": (0.9, 0.98)})
    assert all(isinstance(v, str) for v in internal.values())
    assert space.from_internal(internal) == {"schedule": schedules[2], "betas": (0.9, 0.98)}


# -- key mapping ----------------------------------------------------------------------------
def test_keys_map_onto_config_schedule_and_model(digits):
    base = BASE.replace(schedule=tw.schedules.Warmup(steps=5, then=tw.schedules.Cosine()))
    Space({"lr": LogUniform(1e-3, 1e-1), "schedule.then.eta_min": Uniform(0.0, 1e-4),
           "model.width": Int(16, 64)}, base=base, task=digits)
    cfg = apply_params(base, {"lr": 0.05, "schedule.steps": 7, "schedule.then.eta_min": 1e-5, "model.width": 32})
    assert (cfg.lr, cfg.schedule.steps, cfg.schedule.then.eta_min, cfg.model_kwargs) == (0.05, 7, 1e-5, {"width": 32})
    assert base.schedule.steps == 5  # the base is untouched


def test_optimizer_settings_match_the_engine():
    for key, names in OPTIMIZER_SETTINGS.items():
        assert set(names) == {o for o, takes in _TAKES.items() if key in takes}, key


# -- errors ------------------------------------------------------------------------------------
@pytest.mark.parametrize("dims, message", [
    ({"lr": Uniform(0.5, 0.1)}, r"lr: Uniform needs low < high, got low=0.5, high=0.1; swap them"),
    ({"lr": LogUniform(0, 0.1)}, r"lr: LogUniform needs low > 0"),
    ({"lr": LogUniform(-1, 0.1)}, r"lr: LogUniform needs low > 0"),
    ({"batch_size": Choice([])}, r"batch_size: Choice has no values"),
    ({"batch_size": Choice([32, 32])}, r"batch_size: Choice lists 32 twice"),
    ({"lr": Uniform(0.1, float("inf"))}, r"lr: Uniform high must be a finite number"),
    ({"model.width": Int(1.5, 4)}, r"model.width: Int low must be a whole number"),
    ({"model.width": Int(1, 3, grid=5)}, r"model.width: grid=5 asks for more points than Int\(1, 3\) has"),
    ({"lr": Uniform(0.1, 0.5, grid=1)}, r"lr: grid must be a whole number >= 2"),
    ({"lr": [0.1, 0.01]}, r"lr: a list of values is ambiguous; use Choice\(\[0.1, 0.01\]\)"),
    ({"lr": Uniform}, r"lr: got the class Uniform, not a dimension"),
    ({"momentum": Choice([0.9], when={"optimizer": ["sgd"]})}, r"momentum: when names 'optimizer', which is not in"),
    ({"optimizer": Choice(["adam", "adamw"]), "momentum": Uniform(0.8, 0.9)},
     r"momentum: applies only when optimizer is one of \['sgd', 'rmsprop'\], but optimizer takes only"),
    ({}, r"space: is empty"),
])
def test_bad_spaces_name_the_key_and_the_fix(dims, message):
    with pytest.raises(SpaceError, match=message):
        Space(dims)


def test_unknown_key_lists_the_valid_ones(digits):
    with pytest.raises(SpaceError) as err:
        Space({"width": Int(16, 64)}, base=BASE, task=digits)
    text = str(err.value)
    assert text.startswith("width: not a parameter a search can set (did you mean 'model.width'?)")
    assert "lr, momentum" in text and "model.<kwarg>' for the model factory (width, depth, dropout, activation)" in text


def test_unknown_model_kwarg_and_schedule_field(digits):
    with pytest.raises(SpaceError, match=r"model.size: the model factory takes no argument 'size'"):
        Space({"model.size": Int(1, 4)}, base=BASE, task=digits)
    with pytest.raises(SpaceError, match=r"schedule.max_lr: the base config has no schedule spec"):
        Space({"schedule.max_lr": LogUniform(0.01, 1.0)}, base=BASE)
    cyc = BASE.replace(schedule=tw.schedules.OneCycle(max_lr=0.1))
    with pytest.raises(SpaceError, match=r"schedule.maxlr: the base schedule \(OneCycle\) has no field 'maxlr'; "
                                         r"its fields are max_lr, pct_start"):
        Space({"schedule.maxlr": LogUniform(0.01, 1.0)}, base=cyc)


def test_values_the_config_rejects_fail_before_any_trial():
    with pytest.raises(SpaceError, match=r"momentum: Uniform\(0.8, 1.2\): high 1.2 is not valid there: "
                                         r"momentum: must be in \[0, 1\)"):
        Space({"momentum": Uniform(0.8, 1.2)}, base=BASE)
    with pytest.raises(SpaceError, match=r"optimizer: Choice\(\['sgd', 'adamm'\]\): one of its values 'adamm'"):
        Space({"optimizer": Choice(["sgd", "adamm"])}, base=BASE)
    with pytest.raises(SpaceError, match=r"epochs: Uniform\(1, 5\): low 1.0 is not valid there: epochs: "
                                         r"expected a whole number"):
        Space({"epochs": Uniform(1, 5)}, base=BASE)


def test_keys_with_no_effect_are_rejected():
    adam = BASE.replace(optimizer="adam", momentum=0.0)
    with pytest.raises(SpaceError, match=r"momentum: applies only to optimizers sgd, rmsprop, but the base "
                                         r"optimizer is 'adam'"):
        Space({"momentum": Uniform(0.8, 0.99)}, base=adam)
    cyc = BASE.replace(schedule=tw.schedules.OneCycle(max_lr=0.1))
    with pytest.raises(SpaceError, match=r"lr: the base schedule OneCycle sets its own learning rate .* "
                                         r"search 'schedule.max_lr' instead"):
        Space({"lr": LogUniform(1e-3, 1e-1)}, base=cyc)
    with pytest.raises(SpaceError, match=r"momentum: the base schedule OneCycle cycles momentum itself"):
        Space({"momentum": Uniform(0.8, 0.95)}, base=cyc)


def test_settings_that_need_each_other_are_checked_together():
    base = BASE.replace(momentum=0.0)
    Space({"momentum": Uniform(0.5, 0.9), "nesterov": Choice([True, False])}, base=base)  # no error
