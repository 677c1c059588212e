"""Hypothesis strategies for valid schedule specs and runs, and a tiny training loop that
steps a built scheduler the way the engine does and records what each optimizer step used."""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from hypothesis import assume
from hypothesis import strategies as st

import tunewidgets.schedules as S

OPTIMIZERS = ("sgd", "adam", "adamw", "rmsprop")
ALL_OPTIMIZERS = (*OPTIMIZERS, "rprop", "adagrad")

factors = st.floats(0.01, 1.0)
momenta = st.floats(0.0, 0.99)
lrs = st.floats(-5, 0).map(lambda e: 10.0 ** e)


@dataclass
class Run:
    spec: S.ScheduleSpec
    total_steps: int
    steps_per_epoch: int | None
    optimizer: str
    base_lr: float
    momentum: float
    metrics: list[float] | None = None

    def preview_kwargs(self) -> dict[str, Any]:
        kw: dict[str, Any] = dict(optimizer=self.optimizer, momentum=self.momentum)
        if self.metrics is not None:
            kw["metrics"] = self.metrics
        return kw


def _optional(strategy):
    return st.none() | strategy


def _milestones(draw, low: int, high: int, size: int) -> list[int]:
    return sorted(draw(st.sets(st.integers(low, high), min_size=size, max_size=size)))


def _momentum_fields(draw) -> dict[str, Any]:
    base = draw(st.floats(0.0, 0.9))
    return dict(cycle_momentum=draw(st.booleans()), base_momentum=base, max_momentum=draw(st.floats(base, 0.99)))


def spec_for(draw, name: str, interval: str, n: int, depth: int = 0) -> S.ScheduleSpec:
    """A random valid spec of class ``name`` for a run of ``n`` scheduler positions."""
    iv = {"interval": interval}
    if name == "Constant":
        return S.Constant(**iv)
    # lengths fit in the run (see the run-length rule in tunewidgets/schedules/_base.py)
    if name == "Step":
        assume(n >= 2)
        return S.Step(step_size=draw(st.integers(1, n - 1)), gamma=draw(factors), **iv)
    if name == "MultiStep":
        assume(n >= 2)
        size = draw(st.integers(1, min(4, n - 1)))
        return S.MultiStep(milestones=_milestones(draw, 1, n - 1, size), gamma=draw(factors), **iv)
    if name == "Exponential":
        return S.Exponential(gamma=draw(st.floats(0.5, 1.0)), **iv)
    if name == "Polynomial":
        return S.Polynomial(total_iters=draw(_optional(st.integers(1, n))), power=draw(st.floats(0.1, 5.0)), **iv)
    if name == "Cosine":
        return S.Cosine(T_max=draw(_optional(st.integers(1, n))), eta_min=draw(st.floats(0.0, 0.01)), **iv)
    if name == "CosineWarmRestarts":
        return S.CosineWarmRestarts(T_0=draw(st.integers(1, n)), T_mult=draw(st.integers(1, 3)),
                                    eta_min=draw(st.floats(0.0, 0.01)), **iv)
    if name == "Cyclic":  # the first cycle fits in the run
        assume(n >= 2)
        up = draw(st.integers(1, min(20, n - 1)))
        down = draw(_optional(st.integers(1, min(20, n - up))))
        assume(down is not None or 2 * up <= n)
        base = draw(lrs)
        return S.Cyclic(base_lr=base, max_lr=base * draw(st.floats(1.01, 100.0)),
                        step_size_up=up, step_size_down=down,
                        mode=draw(st.sampled_from(["triangular", "triangular2", "exp_range"])),
                        gamma=draw(st.floats(0.8, 1.0)), **_momentum_fields(draw), **iv)
    if name == "OneCycle":
        three = draw(st.booleans())
        pct = draw(st.floats(0.01, 0.49 if three else 0.99))
        assume(float(pct * n) - 1 != 0)
        return S.OneCycle(max_lr=draw(lrs), pct_start=pct, anneal_strategy=draw(st.sampled_from(["cos", "linear"])),
                          div_factor=draw(st.floats(1.0, 100.0)), final_div_factor=draw(st.floats(1.0, 1e5)),
                          three_phase=three, **_momentum_fields(draw), **iv)
    if name == "WSD":
        fraction = draw(st.floats(0.01, 1.0))
        decay = max(1, round(fraction * n))
        return S.WSD(warmup_steps=draw(st.integers(0, n - decay)), decay_fraction=fraction,
                     decay=draw(st.sampled_from(["linear", "cosine", "1-sqrt"])),
                     final_factor=draw(st.floats(0.0, 0.9)), start_factor=draw(factors), **iv)
    if name == "InverseSqrt":
        return S.InverseSqrt(warmup_steps=draw(st.integers(0, n - 1)), timescale=draw(_optional(st.integers(1, 50))),
                             start_factor=draw(factors), **iv)
    if name == "ReduceOnPlateau":
        return S.ReduceOnPlateau(mode=draw(st.sampled_from(["min", "max"])), factor=draw(st.floats(0.05, 0.95)),
                                 patience=draw(st.integers(0, 3)), threshold=draw(st.floats(0.0, 0.1)),
                                 threshold_mode=draw(st.sampled_from(["rel", "abs"])),
                                 cooldown=draw(st.integers(0, 2)), min_lr=draw(st.floats(0.0, 0.01)),
                                 eps=draw(st.sampled_from([0.0, 1e-8])))
    children = [c for c in S.CATALOGUE if c != "ReduceOnPlateau" and (depth == 0 or c not in ("Warmup", "Sequential"))]
    assume(n >= 2)

    def child(length: int) -> S.ScheduleSpec:  # one that can fit in ``length`` positions
        fits = [c for c in children if length >= 2 or c not in ("Step", "MultiStep", "Warmup", "Sequential")]
        return spec_for(draw, draw(st.sampled_from(fits)), interval, length, depth + 1)

    if name == "Warmup":
        steps = draw(st.integers(1, n - 1))
        then = child(n - steps)
        return S.Warmup(steps=steps, then=then, start_factor=draw(factors), **iv)
    if name == "Sequential":
        k = draw(st.integers(2, min(3, n)))
        marks = _milestones(draw, 1, n - 1, k - 1)
        edges = [0, *marks, n]
        specs = [child(b - a) for a, b in zip(edges, edges[1:])]
        return S.Sequential(specs=specs, milestones=marks, **iv)
    raise AssertionError(name)


@st.composite
def runs(draw, name: str, max_steps: int = 80) -> Run:
    """A valid spec of class ``name`` with a run to preview and train it on."""
    metric = name == "ReduceOnPlateau"
    interval = "epoch" if metric else draw(st.sampled_from(["step", "epoch"]))
    total = draw(st.integers(1, max_steps))
    spe = draw(st.integers(1, 12)) if interval == "epoch" else draw(_optional(st.integers(1, 12)))
    n = total if interval == "step" else math.ceil(total / spe)
    spec = spec_for(draw, name, interval, n)
    optimizer = draw(st.sampled_from(OPTIMIZERS if spec._cycles_momentum() else ALL_OPTIMIZERS))
    metrics = None
    if metric:
        values = st.sampled_from([0.5, 0.7, 0.7, 0.9, 1.0, 1.0])
        metrics = draw(st.lists(values, min_size=1, max_size=math.ceil(total / spe) + 2))
    return Run(spec, total, spe, optimizer, draw(lrs), draw(momenta), metrics)


def make_optimizer(name: str, params, lr: float, momentum: float) -> torch.optim.Optimizer:
    if name in ("sgd", "rmsprop"):
        cls = torch.optim.SGD if name == "sgd" else torch.optim.RMSprop
        return cls(params, lr=lr, momentum=momentum)
    if name in ("adam", "adamw"):
        cls = torch.optim.Adam if name == "adam" else torch.optim.AdamW
        return cls(params, lr=lr, betas=(momentum, 0.999))
    return {"rprop": torch.optim.Rprop, "adagrad": torch.optim.Adagrad}[name](params, lr=lr)


def train_and_record(run: Run) -> dict[str, np.ndarray]:
    """Train a tiny model with ``run.spec.build`` stepped as the engine steps it.

    Returns the lr, momentum and beta1 each optimizer step used (NaN where the optimizer
    has no such setting). The scheduler is stepped after every optimizer step
    (interval "step"), after every epoch (interval "epoch", the last partial one too), or
    with the next metric after every epoch (metric-driven specs).
    """
    torch.manual_seed(0)
    model = torch.nn.Linear(3, 1)
    x, y = torch.randn(16, 3), torch.randn(16, 1)
    opt = make_optimizer(run.optimizer, model.parameters(), run.base_lr, run.momentum)
    sched = run.spec.build(opt, run.total_steps, run.steps_per_epoch)
    group = opt.param_groups[0]
    out = {k: np.full(run.total_steps, np.nan) for k in ("lr", "momentum", "beta1")}
    spe, epoch = run.steps_per_epoch, 0
    for i in range(run.total_steps):
        out["lr"][i] = group["lr"]
        if "momentum" in group:
            out["momentum"][i] = group["momentum"]
        if "betas" in group:
            out["beta1"][i] = group["betas"][0]
        loss = torch.nn.functional.mse_loss(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        end_of_epoch = spe is not None and ((i + 1) % spe == 0 or i == run.total_steps - 1)
        if run.spec.metric_driven:
            if end_of_epoch and epoch < len(run.metrics):
                sched.step(run.metrics[epoch])
        elif run.spec.interval == "step" or end_of_epoch:
            sched.step()
        epoch += end_of_epoch
    return out
