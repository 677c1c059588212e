"""Run a built scheduler on a throwaway optimizer and record what each optimizer step uses.

The throwaway optimizer holds one dummy parameter and never sees a gradient; it is there so
that ``preview`` steps the very scheduler ``build`` returns, which makes the preview exact.
"""
from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
import torch

from tunewidgets.schedules._fields import check_number

__all__ = ["OPTIMIZER_KINDS", "momentum_column", "throwaway_optimizer", "simulate"]

# optimizer name -> (torch class, what cycling changes: "momentum", "beta1" or None)
OPTIMIZER_KINDS: dict[str, tuple[type[torch.optim.Optimizer], str | None]] = {
    "sgd": (torch.optim.SGD, "momentum"),
    "rmsprop": (torch.optim.RMSprop, "momentum"),
    "adam": (torch.optim.Adam, "beta1"),
    "adamw": (torch.optim.AdamW, "beta1"),
    "rprop": (torch.optim.Rprop, None),
    "adagrad": (torch.optim.Adagrad, None),
}


def _check_name(optimizer: Any) -> str:
    if optimizer not in OPTIMIZER_KINDS or not isinstance(optimizer, str):
        raise ValueError(f"preview.optimizer: must be one of {', '.join(map(repr, OPTIMIZER_KINDS))}, "
                         f"got {optimizer!r}; use the TrainConfig's optimizer name")
    return optimizer


def momentum_column(optimizer: str) -> str:
    """The preview column a cycling spec fills for ``optimizer``; raises if it has neither."""
    kind = OPTIMIZER_KINDS[_check_name(optimizer)][1]
    if kind is None:
        raise ValueError(f"cycle_momentum: {optimizer} has neither momentum nor betas to cycle; "
                         "set cycle_momentum=False, or use sgd/rmsprop (momentum) or adam/adamw (beta1)")
    return kind


def throwaway_optimizer(optimizer: str, lr: float, momentum: float) -> torch.optim.Optimizer:
    """A torch optimizer of kind ``optimizer`` over one dummy parameter, at ``lr``."""
    cls, kind = OPTIMIZER_KINDS[_check_name(optimizer)]
    m = check_number("preview", "momentum", momentum, low=0, high=1, high_open=True,
                     fix="the optimizer's momentum (or beta1), e.g. 0.9")
    params = [torch.zeros(1, requires_grad=True)]
    if kind == "momentum":
        opt = cls(params, lr=lr, momentum=m)
    elif kind == "beta1":
        opt = cls(params, lr=lr, betas=(m, 0.999))
    else:
        opt = cls(params, lr=lr)
    return opt


def _reader(group: dict[str, Any], column: str | None):
    if column == "beta1":
        return lambda: float(group["betas"][0])
    if column == "momentum":
        return lambda: float(group["momentum"])
    return None


def simulate(opt: torch.optim.Optimizer, sched: Any, total_steps: int, every: int,
             steps_per_epoch: int | None, column: str | None,
             metrics: Sequence[float] | None = None) -> pd.DataFrame:
    """Record ``opt``'s lr (and ``column``) for ``total_steps`` optimizer steps.

    The scheduler is stepped after every ``every`` optimizer steps, as training does;
    with ``metrics``, ``sched.step(metrics[k])`` after the k-th block (ReduceLROnPlateau).
    """
    opt.step()  # no gradients, so nothing changes; torch then knows the optimizer stepped first
    group = opt.param_groups[0]
    read = _reader(group, column)
    lrs = np.empty(total_steps)
    values = np.empty(total_steps) if read is not None else None
    blocks = math.ceil(total_steps / every)
    for k in range(blocks):
        start, stop = k * every, min((k + 1) * every, total_steps)
        if every == 1:
            lrs[start] = float(group["lr"])
            if values is not None:
                values[start] = read()
        else:
            lrs[start:stop] = float(group["lr"])
            if values is not None:
                values[start:stop] = read()
        if k == blocks - 1:
            break
        if metrics is None:
            sched.step()
        elif k < len(metrics):
            sched.step(metrics[k])
    steps = np.arange(1, total_steps + 1)
    if steps_per_epoch is None:
        epochs = np.full(total_steps, np.nan)
    else:
        epochs = (steps - 1) // steps_per_epoch
    frame = pd.DataFrame({"step": steps, "epoch": epochs, "lr": lrs})
    if values is not None:
        frame[column] = values
    return frame
