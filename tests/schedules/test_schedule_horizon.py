"""One rule for every spec: its lengths must fit in the run it is built for (an error otherwise)."""
from __future__ import annotations

import numpy as np
import pytest
import torch

import tunewidgets as tw
import tunewidgets.schedules as S

RUN = 20

# int fields that are not lengths in the run, so the rule does not apply to them (and why)
NOT_LENGTHS = {
    ("CosineWarmRestarts", "T_mult"): "a factor between cycle lengths",
    ("InverseSqrt", "timescale"): "a decay constant: any value gives a decaying lr from the first step",
    ("ReduceOnPlateau", "patience"): "metric-driven: when it acts depends on the metric's values",
    ("ReduceOnPlateau", "cooldown"): "metric-driven, as patience",
}


def sgd(lr: float = 0.1) -> torch.optim.Optimizer:
    return torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=lr, momentum=0.9)


def length_fields():
    for name, cls in S.CATALOGUE.items():
        for c in cls.controls():
            if c.kind in ("int", "list[int]") and (name, c.name) not in NOT_LENGTHS:
                yield name, c


@pytest.mark.parametrize("name, control", list(length_fields()), ids=lambda v: getattr(v, "name", v))
def test_every_length_far_past_the_end_is_refused_naming_the_field(name, control):
    far = [10**6] if control.kind == "list[int]" else 10**6
    others = {"step_size_up": 5} if control.name == "step_size_down" else {}  # the other lengths fit
    spec = S.CATALOGUE[name](**{control.name: far}, **others)
    with pytest.raises(ValueError) as info:
        spec.build(sgd(), RUN)
    message = str(info.value)
    assert message.startswith(f"{name}.{control.name}:"), message
    assert "100000" in message and f"({RUN} steps)" in message
    with pytest.raises(ValueError, match=rf"^{name}\.{control.name}:"):
        spec.preview(RUN)


@pytest.mark.parametrize("spec, inside, field", [
    (S.Step(step_size=RUN), S.Step(step_size=RUN - 1), "step_size"),
    (S.MultiStep(milestones=[5, RUN]), S.MultiStep(milestones=[5, RUN - 1]), "milestones"),
    (S.Polynomial(total_iters=RUN + 1), S.Polynomial(total_iters=RUN), "total_iters"),
    (S.Cosine(T_max=RUN + 1), S.Cosine(T_max=RUN), "T_max"),
    (S.CosineWarmRestarts(T_0=RUN + 1), S.CosineWarmRestarts(T_0=RUN), "T_0"),
    (S.Cyclic(step_size_up=11), S.Cyclic(step_size_up=10), "step_size_up"),
    (S.Cyclic(step_size_up=5, step_size_down=16), S.Cyclic(step_size_up=5, step_size_down=15), "step_size_down"),
    (S.Warmup(steps=RUN), S.Warmup(steps=RUN - 1), "steps"),
    (S.InverseSqrt(warmup_steps=RUN), S.InverseSqrt(warmup_steps=RUN - 1), "warmup_steps"),
    (S.Sequential(specs=[S.Constant(), S.Exponential(gamma=0.5)], milestones=[RUN]),
     S.Sequential(specs=[S.Constant(), S.Exponential(gamma=0.5)], milestones=[RUN - 2]), "milestones"),
])
def test_the_boundary_is_exact_and_a_spec_just_inside_acts(spec, inside, field):
    with pytest.raises(ValueError, match=rf"^{type(spec).__name__}\.{field}:"):
        spec.build(sgd(), RUN)
    lrs = inside.preview(RUN, base_lr=0.1)["lr"].to_numpy()
    assert len(lrs) == RUN and np.ptp(lrs) > 0  # the lr changes within the run


def test_step_and_multistep_that_used_to_do_nothing_are_refused_like_warmup():
    """The probe: on a 20-step run, Step() and MultiStep([5000]) never changed the lr, silently."""
    for spec in (S.Step(), S.MultiStep(milestones=[5000])):
        with pytest.raises(ValueError, match=r"must come before the end of the run \(20 steps\), or it never happens"):
            spec.build(sgd(), 20)
    with pytest.raises(ValueError, match=r"Warmup.steps: .*\(20 steps\)"):
        S.Warmup(steps=100).build(sgd(), 20)


def test_epoch_interval_counts_epochs():
    spec = S.Step(step_size=5, interval="epoch")
    with pytest.raises(ValueError, match=r"Step.step_size: the first decay \(at 5 epochs\) .* \(5 epochs\)"):
        spec.build(sgd(), 50, steps_per_epoch=10)
    lrs = spec.preview(60, base_lr=1.0, steps_per_epoch=10)["lr"].to_numpy()
    assert lrs[49] == 1.0 and lrs[50] == 0.5  # acts after epoch 5 of 6


def test_a_wrapped_spec_keeps_its_own_field_first_and_says_where_it_runs():
    with pytest.raises(ValueError) as info:
        S.Warmup(steps=5, then=S.Step(step_size=RUN - 5)).build(sgd(), RUN)
    message = str(info.value)
    assert message.startswith("Step.step_size:") and "in Warmup.then, which runs for the 15 steps" in message
    with pytest.raises(ValueError, match=r"^Cosine.T_max: .*in Sequential.specs\[1\], which runs for 10 of the run's 20"):
        S.Sequential(specs=[S.Constant(), S.Cosine(T_max=11)], milestones=[10]).build(sgd(), RUN)


def test_reduce_on_plateau_is_left_to_its_metric():
    spec = S.ReduceOnPlateau(patience=100)
    spec.build(sgd(), RUN, steps_per_epoch=4)  # builds: whether it cuts depends on the values
    frame = spec.preview(RUN, base_lr=1.0, steps_per_epoch=4, metrics=[1.0] * 5)
    assert frame["lr"].eq(1.0).all()


def test_training_refuses_the_schedule_before_the_first_step():
    task = tw.Task(model=lambda: torch.nn.Linear(2, 3), train=torch.utils.data.TensorDataset(
        torch.randn(64, 2), torch.randint(0, 3, (64,))), batch_size=16)
    steps = []
    cfg = tw.TrainConfig(lr=0.1, epochs=5, device="cpu", schedule=S.MultiStep(milestones=[5000]))
    with pytest.raises(ValueError, match=r"MultiStep.milestones: .*\(20 steps\)"):
        tw.train(task, cfg, callbacks=[{"step": steps.append}])
    assert steps == []
    run = tw.train(task, cfg.replace(schedule=S.MultiStep(milestones=[10], gamma=0.5)))
    lrs = run.history.query("kind == 'step'")["lr"].to_numpy()
    assert lrs[9] == pytest.approx(0.1) and lrs[10] == pytest.approx(0.05)

