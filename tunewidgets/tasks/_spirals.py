"""``spirals()``: 2-D points on interleaved spiral arms, one class per arm.

Good for seeing capacity and learning-rate effects. No straight line separates the arms,
so a linear model (``depth=0``) stays near chance while a few hidden layers wind a
boundary between them; too small a ``width`` or too low a learning rate leaves the loss
on a plateau for a long time, too high a rate makes it jump. Everything is 2-D, so a
decision boundary can be drawn, and an epoch of 1,000 points takes milliseconds.

Example:
    >>> import tunewidgets as tw
    >>> task = tw.tasks.spirals(n=600, arms=3)
    >>> x, y = task.train.tensors
    >>> tuple(x.shape), int(y.max()) + 1
    ((480, 2), 3)
    >>> task.build_model(width=16, depth=2)(x).shape
    torch.Size([480, 3])
"""
from __future__ import annotations

import functools
import math

import torch
from torch import nn

from tunewidgets.engine.task import Task
from tunewidgets.tasks._common import check_fraction, check_number, check_seed, check_whole, split, described
from tunewidgets.tasks.models import MLP

__all__ = ["spirals", "spirals_model", "make_spirals"]


def make_spirals(n: int = 1000, arms: int = 3, turns: float = 1.0, noise: float = 0.05,
                 generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """``n`` points on ``arms`` spirals: float32 ``(n, 2)`` inside about [-1, 1]^2, int64 arm index.

    Each arm starts at the centre and winds ``turns`` times outwards; arm ``k`` is rotated
    by ``2 * pi * k / arms``. Gaussian noise of standard deviation ``noise`` moves each point.
    """
    labels = torch.arange(n) % arms
    t = torch.rand(n, generator=generator).sqrt()  # sqrt: points spread evenly along the arm
    angle = 2 * math.pi * (turns * t + labels / arms)
    xy = torch.stack([t * angle.cos(), t * angle.sin()], dim=1)
    xy = xy + noise * torch.randn(n, 2, generator=generator)
    return xy.float(), labels.long()


def spirals_model(width: int = 64, depth: int = 3, dropout: float = 0.0, activation: str = "relu",
                  arms: int = 3) -> nn.Module:
    """The default spirals network: an MLP from 2 coordinates to ``arms`` class logits."""
    return MLP(2, arms, width=width, depth=depth, dropout=dropout, activation=activation)


def spirals(n: int = 1000, arms: int = 3, turns: float = 1.0, noise: float = 0.05,
            val_fraction: float = 0.2, seed: int = 0, batch_size: int = 64) -> Task:
    """Interleaved spirals as a classification ``Task``.

    Args:
        n: number of points (train + val).
        arms: number of spiral arms, which is the number of classes (>= 2).
        turns: how many times each arm winds round the centre; more is harder.
        noise: standard deviation of the Gaussian jitter of each point; more is harder.
        val_fraction: share of the points held out for validation.
        seed: seeds the points and the train/val split.
        batch_size: mini-batch size of training.

    Inputs are float32 ``(2,)`` coordinates, targets int64 arm indices. Loss ``cross_entropy``,
    metric ``accuracy``; ``task.recommended`` holds a config that passes 90% val accuracy.
    """
    check_whole("n", n, 2, 1000)
    check_whole("arms", arms, 2, 3)
    check_number("turns", turns, 0.0, 1.0)
    check_number("noise", noise, 0.0, 0.05)
    n_val = check_fraction(val_fraction, n)
    gen = torch.Generator().manual_seed(check_seed(seed))
    check_whole("batch_size", batch_size, 1, 64)
    x, y = make_spirals(n, arms, turns, noise, generator=gen)
    train, val = split(x, y, n_val, gen)
    task = Task(
        model=functools.partial(spirals_model, arms=arms), train=train, val=val,
        loss="cross_entropy", metrics=("accuracy",), batch_size=batch_size, name="spirals",
        recommended={"optimizer": "adam", "lr": 1e-2, "epochs": 30},
    )
    return described(task, "spirals", {
        "n": n, "arms": arms, "turns": turns, "noise": noise, "val_fraction": val_fraction,
        "seed": seed, "batch_size": batch_size})
