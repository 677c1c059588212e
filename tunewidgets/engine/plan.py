"""What a training run settles before its first step: how many optimizer steps, and its scheduler.

- ``step_counts(config, batches) -> (steps_per_epoch, total_steps)``: from the data's length
  (batches per epoch, ``grad_accum`` of them per step), ``epochs`` and ``max_steps``;
- ``build_schedule(schedule, optimizer, total_steps, steps_per_epoch) -> (scheduler, kind)``:
  the torch scheduler of a schedule spec (or of a callable ``step -> factor``), and when it
  steps: ``"step"`` (after every optimizer step), ``"epoch"`` or ``"metric"`` (after every
  evaluation, with the validation loss); ``(None, None)`` without a schedule.

A ``Trainer`` and every trial of a fused run plan with these two, so both count the same steps
and follow the same schedule.

Example:
    >>> import torch, tunewidgets as tw
    >>> cfg = tw.TrainConfig(epochs=3, max_steps=20, grad_accum=2)
    >>> step_counts(cfg, range(15))
    (8, 20)
    >>> opt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=0.1)
    >>> sched, kind = build_schedule(lambda step: 0.5 ** step, opt, 20, 8)
    >>> kind, type(sched).__name__
    ('step', 'LambdaLR')
"""
from __future__ import annotations

import math
from typing import Any

import torch

from tunewidgets.engine.config import TrainConfig

__all__ = ["step_counts", "build_schedule"]


def step_counts(config: TrainConfig, batches: Any) -> tuple[int | None, int]:
    """``(steps_per_epoch, total_steps)`` of a run of ``config`` over ``batches`` (None per epoch without a length).

    Data without a length needs ``max_steps``: a ValueError says so before any training.
    """
    try:
        n_batches: int | None = len(batches)
    except TypeError:
        n_batches = None
    if n_batches is None:
        if config.max_steps is None:
            raise ValueError("max_steps: the training data has no length, so set TrainConfig(max_steps=N)")
        return None, config.max_steps
    steps_per_epoch = max(1, math.ceil(n_batches / config.grad_accum))
    total_steps = config.epochs * steps_per_epoch
    if config.max_steps is not None:
        total_steps = min(total_steps, config.max_steps)
    return steps_per_epoch, total_steps


def build_schedule(schedule: Any, optimizer: torch.optim.Optimizer, total_steps: int,
                   steps_per_epoch: int | None) -> tuple[Any, str | None]:
    """The scheduler of ``schedule`` on ``optimizer`` and when it steps ("step", "epoch" or "metric")."""
    if schedule is None:
        return None, None
    if hasattr(schedule, "build"):
        sched = schedule.build(optimizer, total_steps, steps_per_epoch=steps_per_epoch)
        if getattr(schedule, "metric_driven", False):
            return sched, "metric"
        return sched, "epoch" if getattr(schedule, "interval", "step") == "epoch" else "step"
    return torch.optim.lr_scheduler.LambdaLR(optimizer, schedule), "step"
