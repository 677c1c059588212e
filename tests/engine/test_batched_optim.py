"""The batched optimizer step makes, for every trial, the updates torch.optim makes for that trial alone."""
from __future__ import annotations

import pytest
import torch

import tunewidgets as tw
from tunewidgets.engine.batched_optim import BatchedOptimizer, fused_settings
from tunewidgets.engine.optimizers import build_from_config

SHAPES = [(4, 3), (3,), ()]


def trial_configs(name: str) -> list[tw.TrainConfig]:
    if name == "sgd":
        return [tw.TrainConfig(optimizer="sgd", lr=0.1),
                tw.TrainConfig(optimizer="sgd", lr=0.05, momentum=0.9),
                tw.TrainConfig(optimizer="sgd", lr=0.02, momentum=0.8, nesterov=True, weight_decay=0.01),
                tw.TrainConfig(optimizer="sgd", lr=0.3, weight_decay=0.1)]
    if name in ("adam", "adamw"):
        return [tw.TrainConfig(optimizer=name, lr=1e-2),
                tw.TrainConfig(optimizer=name, lr=3e-3, betas=(0.8, 0.99), eps=1e-6),
                tw.TrainConfig(optimizer=name, lr=5e-2, weight_decay=0.05),
                tw.TrainConfig(optimizer=name, lr=1e-3, betas=(0.95, 0.9), weight_decay=0.0)]
    return [tw.TrainConfig(optimizer="rprop", lr=0.01),
            tw.TrainConfig(optimizer="rprop", lr=0.05, optimizer_kwargs={"etas": (0.3, 1.5)}),
            tw.TrainConfig(optimizer="rprop", lr=0.002, optimizer_kwargs={"step_sizes": (1e-4, 0.02)}),
            tw.TrainConfig(optimizer="rprop", lr=0.1, optimizer_kwargs={"etas": (0.6, 1.1), "step_sizes": (1e-3, 1)})]


def grads_at(step: int, trial: int, params: list[torch.Tensor]) -> list[torch.Tensor]:
    """A gradient that depends on the trial's own weights (a quadratic bowl) plus noise that flips signs."""
    g = torch.Generator().manual_seed(1000 * step + trial)
    return [0.5 * p.detach() + torch.randn(p.shape, generator=g) for p in params]


def run_both(configs: list[tw.TrainConfig], steps: int = 12, lr_steps=None):
    g = torch.Generator().manual_seed(0)
    start = [torch.randn((len(configs), *s), generator=g) for s in SHAPES]
    alone = []
    for k, cfg in enumerate(configs):
        params = [torch.nn.Parameter(t[k].clone()) for t in start]
        opt = build_from_config(cfg, params)
        for step in range(steps):
            if lr_steps is not None:
                opt.param_groups[0]["lr"] = lr_steps(step, k)
            for p, grad in zip(params, grads_at(step, k, params)):
                p.grad = grad
            opt.step()
        alone.append([p.detach() for p in params])
    stacked = [t.clone().requires_grad_() for t in start]
    bopt = BatchedOptimizer(configs[0].optimizer, stacked, [fused_settings(c) for c in configs])
    for step in range(steps):
        if lr_steps is not None:
            bopt.set("lr", [lr_steps(step, k) for k in range(len(configs))])
        per_trial = [grads_at(step, k, [p[k] for p in stacked]) for k in range(len(configs))]
        for i, p in enumerate(stacked):
            p.grad = torch.stack([per_trial[k][i] for k in range(len(configs))])
        bopt.step()
    return alone, stacked


@pytest.mark.parametrize("name", ["sgd", "adam", "adamw", "rprop"])
def test_each_trial_updates_as_torch_optim_does(name):
    configs = trial_configs(name)
    alone, stacked = run_both(configs)
    for k in range(len(configs)):
        for p_alone, p_stacked in zip(alone[k], stacked):
            torch.testing.assert_close(p_stacked[k].detach(), p_alone, rtol=1e-6, atol=1e-6)
    # and the trials really differ from one another
    assert not torch.allclose(stacked[0][0], stacked[0][1])


@pytest.mark.parametrize("name", ["sgd", "adam", "adamw"])
def test_a_changing_lr_per_trial_matches_a_scheduled_torch_optimizer(name):
    configs = trial_configs(name)
    alone, stacked = run_both(configs, lr_steps=lambda step, k: 0.01 * (k + 1) * (1 + step % 3))
    for k in range(len(configs)):
        for p_alone, p_stacked in zip(alone[k], stacked):
            torch.testing.assert_close(p_stacked[k].detach(), p_alone, rtol=1e-6, atol=1e-6)


def test_selecting_trials_keeps_their_state_and_settings():
    configs = trial_configs("adam")
    full_alone, _ = run_both(configs, steps=8)
    g = torch.Generator().manual_seed(0)
    start = [torch.randn((len(configs), *s), generator=g) for s in SHAPES]
    stacked = [t.clone().requires_grad_() for t in start]
    bopt = BatchedOptimizer("adam", stacked, [fused_settings(c) for c in configs])
    keep = [0, 1, 2, 3]
    for step in range(8):
        if step == 3:  # trials 1 and 3 leave; 0 and 2 go on
            keep = [0, 2]
            stacked = [p.detach()[keep].clone().requires_grad_() for p in stacked]
            bopt.select([0, 2], stacked)
        grads = [grads_at(step, k, [p[i] for p in stacked]) for i, k in enumerate(keep)]
        for j, p in enumerate(stacked):
            p.grad = torch.stack([gr[j] for gr in grads])
        bopt.step()
    assert bopt.k == 2 and bopt.hyper["lr"] == [configs[0].lr, configs[2].lr]
    for i, k in enumerate(keep):
        for p_alone, p_stacked in zip(full_alone[k], stacked):
            torch.testing.assert_close(p_stacked[i].detach(), p_alone, rtol=1e-6, atol=1e-6)


def test_settings_the_batched_step_lacks_are_named():
    assert "rmsprop" in fused_settings(tw.TrainConfig(optimizer="rmsprop"))
    assert "adagrad" in fused_settings(tw.TrainConfig(optimizer="adagrad"))
    why = fused_settings(tw.TrainConfig(optimizer="adam", optimizer_kwargs={"amsgrad": True}))
    assert isinstance(why, str) and "amsgrad" in why
    # a keyword at torch's default changes nothing, so it is fine
    assert isinstance(fused_settings(tw.TrainConfig(optimizer="adam", optimizer_kwargs={"amsgrad": False})), dict)


def test_bad_shapes_and_settings_are_refused():
    with pytest.raises(ValueError, match="trials along dim 0"):
        BatchedOptimizer("sgd", [torch.zeros(2, 3)], [{"lr": 0.1}] * 3)
    with pytest.raises(ValueError, match="takes no"):
        BatchedOptimizer("sgd", [torch.zeros(2, 3)], [{"lr": 0.1, "betas": (0.9, 0.9)}] * 2)
    with pytest.raises(ValueError, match="no batched step"):
        BatchedOptimizer("rmsprop", [torch.zeros(2, 3)], [{"lr": 0.1}] * 2)


def test_gradients_are_clipped_per_trial_as_clip_grad_norm_does():
    g = torch.Generator().manual_seed(0)
    grads = [torch.randn((3, *s), generator=g) * 5 for s in SHAPES]
    stacked = [torch.zeros((3, *s), requires_grad=True) for s in SHAPES]
    for p, gr in zip(stacked, grads):
        p.grad = gr.clone()
    BatchedOptimizer("sgd", stacked, [{"lr": 0.1}] * 3).clip_grad_norm([1.0, None, 100.0])
    for k, max_norm in enumerate([1.0, None, 100.0]):
        alone = [torch.nn.Parameter(torch.zeros(s)) for s in SHAPES]
        for p, gr in zip(alone, grads):
            p.grad = gr[k].clone()
        if max_norm is not None:
            torch.nn.utils.clip_grad_norm_(alone, max_norm)
        for p, q in zip(alone, stacked):
            torch.testing.assert_close(q.grad[k], p.grad, rtol=1e-6, atol=1e-7)
    assert not torch.equal(stacked[0].grad[0], grads[0][0])  # trial 0 was clipped, trial 2 was not
    assert torch.equal(stacked[0].grad[2], grads[0][2])
