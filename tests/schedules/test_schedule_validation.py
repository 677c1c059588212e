"""Bad input fails before any work, with a message naming the field, the bad value and a fix."""
from __future__ import annotations

import math

import pytest
import torch

import tunewidgets.schedules as S

# (spec class, keyword arguments, exception, substrings the message must hold)
BAD_FIELDS = [
    (S.Constant, {"interval": "batch"}, ValueError, ["Constant.interval", "'batch'", "'step', 'epoch'"]),
    (S.Step, {"step_size": 0}, ValueError, ["Step.step_size", ">= 1", "got 0"]),
    (S.Step, {"step_size": 2.5}, TypeError, ["Step.step_size", "whole number", "2.5"]),
    (S.Step, {"step_size": True}, TypeError, ["Step.step_size", "True"]),
    (S.Step, {"gamma": 0}, ValueError, ["Step.gamma", "(0, 1]", "got 0", "such as 0.1"]),
    (S.Step, {"gamma": 1.5}, ValueError, ["Step.gamma", "1.5"]),
    (S.Step, {"gamma": "0.1"}, TypeError, ["Step.gamma", "'0.1'"]),
    (S.Step, {"gamma": math.nan}, ValueError, ["Step.gamma", "nan"]),
    (S.MultiStep, {"milestones": []}, TypeError, ["MultiStep.milestones", "non-empty", "e.g."]),
    (S.MultiStep, {"milestones": [30, 20]}, ValueError, ["MultiStep.milestones", "strictly increasing", "[30, 20]",
                                                         "e.g. [20, 30]"]),
    (S.MultiStep, {"milestones": [10, 10]}, ValueError, ["MultiStep.milestones", "strictly increasing"]),
    (S.MultiStep, {"milestones": [0, 5]}, ValueError, ["MultiStep.milestones", ">= 1", "[0, 5]"]),
    (S.MultiStep, {"milestones": [1.5]}, TypeError, ["MultiStep.milestones", "1.5"]),
    (S.MultiStep, {"milestones": 5}, TypeError, ["MultiStep.milestones", "got 5"]),
    (S.MultiStep, {"gamma": -0.1}, ValueError, ["MultiStep.gamma", "-0.1"]),
    (S.Exponential, {"gamma": 0.0}, ValueError, ["Exponential.gamma", "got 0.0", "e.g. 0.995"]),
    (S.Exponential, {"gamma": 1.01}, ValueError, ["Exponential.gamma", "1.01"]),
    (S.Polynomial, {"total_iters": 0}, ValueError, ["Polynomial.total_iters", "got 0", "None"]),
    (S.Polynomial, {"power": 0}, ValueError, ["Polynomial.power", "> 0", "got 0"]),
    (S.Cosine, {"T_max": -3}, ValueError, ["Cosine.T_max", "-3"]),
    (S.Cosine, {"eta_min": -1e-3}, ValueError, ["Cosine.eta_min", ">= 0", "-0.001"]),
    (S.Cosine, {"interval": "epochs"}, ValueError, ["Cosine.interval", "'epochs'"]),
    (S.CosineWarmRestarts, {"T_0": 0}, ValueError, ["CosineWarmRestarts.T_0", "got 0"]),
    (S.CosineWarmRestarts, {"T_mult": 0}, ValueError, ["CosineWarmRestarts.T_mult", ">= 1", "got 0", "whole factor"]),
    (S.CosineWarmRestarts, {"T_mult": 1.5}, TypeError, ["CosineWarmRestarts.T_mult", "whole number", "1.5"]),
    (S.CosineWarmRestarts, {"eta_min": -1}, ValueError, ["CosineWarmRestarts.eta_min", "-1"]),
    (S.Cyclic, {"base_lr": 0}, ValueError, ["Cyclic.base_lr", "> 0", "got 0"]),
    (S.Cyclic, {"max_lr": -1.0}, ValueError, ["Cyclic.max_lr", "-1.0"]),
    (S.Cyclic, {"base_lr": 0.1, "max_lr": 0.01}, ValueError, ["Cyclic.max_lr", "above base_lr (0.1)", "got 0.01",
                                                              "max_lr=1.0"]),
    (S.Cyclic, {"step_size_up": 0}, ValueError, ["Cyclic.step_size_up", "got 0"]),
    (S.Cyclic, {"step_size_down": 0}, ValueError, ["Cyclic.step_size_down", "got 0"]),
    (S.Cyclic, {"mode": "triangle"}, ValueError, ["Cyclic.mode", "'triangle'", "'triangular2'"]),
    (S.Cyclic, {"gamma": 1.2}, ValueError, ["Cyclic.gamma", "1.2"]),
    (S.Cyclic, {"cycle_momentum": 1}, TypeError, ["Cyclic.cycle_momentum", "True or False", "got 1"]),
    (S.Cyclic, {"base_momentum": 1.0}, ValueError, ["Cyclic.base_momentum", "[0, 1)", "1.0"]),
    (S.Cyclic, {"max_momentum": -0.5}, ValueError, ["Cyclic.max_momentum", "-0.5"]),
    (S.Cyclic, {"base_momentum": 0.95, "max_momentum": 0.9}, ValueError, ["Cyclic.base_momentum", "<= max_momentum",
                                                                           "0.95"]),
    (S.OneCycle, {"max_lr": 0}, ValueError, ["OneCycle.max_lr", "got 0", "lr_range_test"]),
    (S.OneCycle, {"pct_start": 0}, ValueError, ["OneCycle.pct_start", "(0, 1)", "got 0", "e.g. 0.3"]),
    (S.OneCycle, {"pct_start": 1.0}, ValueError, ["OneCycle.pct_start", "1.0"]),
    (S.OneCycle, {"pct_start": 0.6, "three_phase": True}, ValueError, ["OneCycle.pct_start", "(0, 0.5)", "0.6",
                                                                        "three_phase=True"]),
    (S.OneCycle, {"anneal_strategy": "cosine"}, ValueError, ["OneCycle.anneal_strategy", "'cosine'", "'cos'"]),
    (S.OneCycle, {"div_factor": 0.5}, ValueError, ["OneCycle.div_factor", ">= 1", "0.5"]),
    (S.OneCycle, {"final_div_factor": 0}, ValueError, ["OneCycle.final_div_factor", "got 0"]),
    (S.OneCycle, {"three_phase": "yes"}, TypeError, ["OneCycle.three_phase", "'yes'"]),
    (S.OneCycle, {"cycle_momentum": None}, TypeError, ["OneCycle.cycle_momentum", "None"]),
    (S.OneCycle, {"base_momentum": 0.99, "max_momentum": 0.9}, ValueError, ["OneCycle.base_momentum", "0.99"]),
    (S.Warmup, {"steps": 0}, ValueError, ["Warmup.steps", "got 0", "drop the Warmup"]),
    (S.Warmup, {"then": "cosine"}, TypeError, ["Warmup.then", "'cosine'", "tw.schedules.Cosine()"]),
    (S.Warmup, {"then": S.ReduceOnPlateau()}, ValueError, ["Warmup.then", "validation metric", "alone"]),
    (S.Warmup, {"then": S.Cosine(interval="epoch")}, ValueError, ["Warmup.then", "epoch", "interval='epoch'"]),
    (S.Warmup, {"start_factor": 0}, ValueError, ["Warmup.start_factor", "(0, 1]", "got 0"]),
    (S.Warmup, {"start_factor": 1.5}, ValueError, ["Warmup.start_factor", "1.5"]),
    (S.WSD, {"warmup_steps": -1}, ValueError, ["WSD.warmup_steps", ">= 0", "-1"]),
    (S.WSD, {"decay_fraction": 0}, ValueError, ["WSD.decay_fraction", "(0, 1]", "got 0"]),
    (S.WSD, {"decay_fraction": 1.2}, ValueError, ["WSD.decay_fraction", "1.2"]),
    (S.WSD, {"decay": "sqrt"}, ValueError, ["WSD.decay", "'sqrt'", "'1-sqrt'"]),
    (S.WSD, {"final_factor": 1.0}, ValueError, ["WSD.final_factor", "[0, 1)", "1.0"]),
    (S.WSD, {"start_factor": -0.5}, ValueError, ["WSD.start_factor", "-0.5"]),
    (S.InverseSqrt, {"warmup_steps": -2}, ValueError, ["InverseSqrt.warmup_steps", "-2"]),
    (S.InverseSqrt, {"timescale": 0}, ValueError, ["InverseSqrt.timescale", "got 0"]),
    (S.InverseSqrt, {"start_factor": 2}, ValueError, ["InverseSqrt.start_factor", "got 2"]),
    (S.Sequential, {"specs": [S.Cosine()], "milestones": []}, TypeError, ["Sequential.specs", "two or more"]),
    (S.Sequential, {"specs": "cosine"}, TypeError, ["Sequential.specs", "'cosine'"]),
    (S.Sequential, {"specs": [S.Constant(), "x"]}, TypeError, ["Sequential.specs[1]", "'x'"]),
    (S.Sequential, {"specs": [S.Constant(), S.ReduceOnPlateau()]}, ValueError, ["Sequential.specs[1]", "metric"]),
    (S.Sequential, {"specs": [S.Step(interval="epoch"), S.Cosine()]}, ValueError, ["Sequential.specs[0]", "interval"]),
    (S.Sequential, {"milestones": [10, 20]}, ValueError, ["Sequential.milestones", "needs 1 milestone", "[10, 20]"]),
    (S.Sequential, {"specs": [S.Constant()] * 3, "milestones": [20, 10]}, ValueError,
     ["Sequential.milestones", "strictly increasing"]),
    (S.ReduceOnPlateau, {"mode": "minimum"}, ValueError, ["ReduceOnPlateau.mode", "'minimum'", "'min', 'max'"]),
    (S.ReduceOnPlateau, {"factor": 1.0}, ValueError, ["ReduceOnPlateau.factor", "(0, 1)", "1.0"]),
    (S.ReduceOnPlateau, {"factor": 0}, ValueError, ["ReduceOnPlateau.factor", "got 0"]),
    (S.ReduceOnPlateau, {"patience": -1}, ValueError, ["ReduceOnPlateau.patience", "-1"]),
    (S.ReduceOnPlateau, {"patience": 2.0}, TypeError, ["ReduceOnPlateau.patience", "2.0"]),
    (S.ReduceOnPlateau, {"threshold": -1e-4}, ValueError, ["ReduceOnPlateau.threshold", "-0.0001"]),
    (S.ReduceOnPlateau, {"threshold_mode": "relative"}, ValueError, ["ReduceOnPlateau.threshold_mode", "'relative'"]),
    (S.ReduceOnPlateau, {"cooldown": -1}, ValueError, ["ReduceOnPlateau.cooldown", "-1"]),
    (S.ReduceOnPlateau, {"min_lr": -1.0}, ValueError, ["ReduceOnPlateau.min_lr", "-1.0"]),
    (S.ReduceOnPlateau, {"eps": -1.0}, ValueError, ["ReduceOnPlateau.eps", "-1.0"]),
]


@pytest.mark.parametrize("cls,kwargs,error,parts", BAD_FIELDS,
                         ids=[f"{c.__name__}-{'-'.join(k)}" for c, k, _, _ in BAD_FIELDS])
def test_bad_field_names_field_value_and_fix(cls, kwargs, error, parts):
    with pytest.raises(error) as info:
        cls(**kwargs)
    for part in parts:
        assert part in str(info.value), (part, str(info.value))
    with pytest.raises(error):  # replace() validates too
        cls().replace(**kwargs)


def test_every_field_of_every_spec_has_a_bad_input_case():
    covered = {(c.__name__, name) for c, kwargs, _, _ in BAD_FIELDS for name in kwargs}
    missing = [(name, c.name) for name, cls in S.CATALOGUE.items() for c in cls.controls()
               if (name, c.name) not in covered and not (c.kind == "choice" and c.name == "interval")]
    assert missing == []


# errors that depend on the run length come from preview and build
RUN_ERRORS = [
    (S.Warmup(steps=100), 100, None, ["Warmup.steps", "(100 steps)", "shorter than the run (100 steps)"]),
    (S.Warmup(steps=3, then=S.Step(interval="epoch"), interval="epoch"), 25, 10,
     ["Warmup.steps", "(3 epochs)", "(3 epochs)"]),
    (S.Sequential(specs=[S.Constant(), S.Warmup(steps=50)], milestones=[60]), 100, None,
     ["Warmup.steps", "(50 steps)", "run (40 steps)"]),
    (S.Sequential(milestones=[500]), 500, None, ["Sequential.milestones", "(500)", "(500 steps)"]),
    (S.WSD(warmup_steps=90, decay_fraction=0.2), 100, None, ["WSD.warmup_steps", "(90 steps)", "(20 steps",
                                                             "decay_fraction=0.2"]),
    (S.InverseSqrt(warmup_steps=10), 10, None, ["InverseSqrt.warmup_steps", "(10 steps)"]),
    (S.OneCycle(pct_start=0.25), 4, None, ["OneCycle.pct_start", "one-step warm-up"]),
    (S.Cosine(), 0, None, ["Cosine.total_steps", ">= 1", "got 0"]),
    (S.Cosine(interval="epoch"), 100, None, ["Cosine.steps_per_epoch", "once per epoch", "len(train_loader)"]),
    (S.Cosine(), 100, 0, ["Cosine.steps_per_epoch", "got 0"]),
]


@pytest.mark.parametrize("spec,total,spe,parts", RUN_ERRORS, ids=[repr(r[0]) for r in RUN_ERRORS])
def test_run_length_errors_come_from_preview_and_build_before_any_change(spec, total, spe, parts):
    with pytest.raises(ValueError) as info:
        spec.preview(total, steps_per_epoch=spe)
    for part in parts:
        assert part in str(info.value), (part, str(info.value))
    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=0.3, momentum=0.9)
    with pytest.raises(ValueError, match=parts[0].replace(".", r"\.")):
        spec.build(opt, total, spe)
    assert opt.param_groups[0]["lr"] == 0.3 and "initial_lr" not in opt.param_groups[0]


def test_whole_number_total_steps():
    with pytest.raises(TypeError, match=r"Cosine\.total_steps: expected a whole number >= 1, got 10\.0"):
        S.Cosine().preview(10.0)


@pytest.mark.parametrize("kwargs,error,parts", [
    ({"base_lr": 0}, ValueError, ["base_lr", "got 0", "TrainConfig.lr"]),
    ({"base_lr": "big"}, TypeError, ["base_lr", "'big'"]),
    ({"optimizer": "SGD"}, ValueError, ["optimizer", "'SGD'", "'sgd'"]),
    ({"momentum": 1.0}, ValueError, ["momentum", "[0, 1)", "1.0"]),
])
def test_bad_preview_arguments(kwargs, error, parts):
    with pytest.raises(error) as info:
        S.Cosine().preview(10, **kwargs)
    for part in parts:
        assert part in str(info.value)


@pytest.mark.parametrize("spec", [S.OneCycle(), S.Cyclic(), S.Warmup(then=S.OneCycle()),
                                  S.Sequential(specs=[S.Constant(), S.Cyclic(step_size_up=50)], milestones=[5])])
def test_cycling_momentum_needs_an_optimizer_that_has_one(spec):
    opt = torch.optim.Adagrad([torch.nn.Parameter(torch.zeros(1))], lr=0.3)
    with pytest.raises(ValueError, match="cycle_momentum: Adagrad has neither momentum nor betas.*cycle_momentum=False"):
        spec.build(opt, 200)
    assert opt.param_groups[0]["lr"] == 0.3
    with pytest.raises(ValueError, match="cycle_momentum: adagrad has neither"):
        spec.preview(200, optimizer="adagrad")
    assert "momentum" not in spec.replace(**_no_cycling(spec)).preview(200, optimizer="adagrad").columns


def _no_cycling(spec):
    if isinstance(spec, S.Warmup):
        return {"then": spec.then.replace(cycle_momentum=False)}
    if isinstance(spec, S.Sequential):
        return {"specs": [s.replace(cycle_momentum=False) if isinstance(s, S.Cyclic) else s for s in spec.specs]}
    return {"cycle_momentum": False}


def test_build_needs_a_torch_optimizer():
    with pytest.raises(TypeError, match="Cosine.build: expected a torch optimizer, got str"):
        S.Cosine().build("sgd", 10)


@pytest.mark.parametrize("metrics,error,part", [
    (None, ValueError, "metrics=[1.0] * 20"),
    ([], ValueError, "got []"),
    ([1.0, math.inf], ValueError, "metrics[1]"),
    ([1.0, "x"], TypeError, "metrics[1]"),
])
def test_plateau_preview_needs_metric_values(metrics, error, part):
    with pytest.raises(error) as info:
        S.ReduceOnPlateau().preview(10, metrics=metrics)
    assert part in str(info.value)
