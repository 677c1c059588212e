"""``sine()``: 1-D regression, ``y = sin(x) + noise``.

Good for regression losses and for watching under- and over-fitting in one picture: the
target curve is known, so predictions can be plotted against it. ``mse`` is the loss and
``mae`` the metric; with noise of standard deviation 0.1 the best possible val MAE is
about 0.08 (the noise itself), so a run near that has learned all there is to learn.

Example:
    >>> import tunewidgets as tw
    >>> task = tw.tasks.sine(n=100)
    >>> x, y = task.train.tensors
    >>> tuple(x.shape), tuple(y.shape), bool(x.abs().max() <= 1)
    ((80, 1), (80, 1), True)
    >>> task.build_model(width=8)(x).shape
    torch.Size([80, 1])
"""
from __future__ import annotations

import math

import torch
from torch import nn

from tunewidgets.engine.task import Task
from tunewidgets.tasks._common import check_fraction, check_number, check_seed, check_whole, split, described
from tunewidgets.tasks.models import MLP

__all__ = ["sine", "sine_model", "make_sine"]


def make_sine(n: int = 1000, noise: float = 0.1, periods: float = 1.0,
              generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """``n`` noisy samples of one sine: float32 inputs ``u`` in [-1, 1] and targets, both ``(n, 1)``.

    ``u`` is ``x`` rescaled: ``x = u * periods * pi``, so ``periods=1`` covers [-pi, pi], one
    full period; the target is ``sin(x)`` plus Gaussian noise of standard deviation ``noise``.
    """
    u = 2 * torch.rand(n, 1, generator=generator) - 1
    y = torch.sin(u * periods * math.pi) + noise * torch.randn(n, 1, generator=generator)
    return u.float(), y.float()


def sine_model(width: int = 32, depth: int = 2, dropout: float = 0.0, activation: str = "tanh") -> nn.Module:
    """The default sine network: an MLP from 1 input to 1 output with smooth ``tanh`` units."""
    return MLP(1, 1, width=width, depth=depth, dropout=dropout, activation=activation)


def sine(n: int = 1000, noise: float = 0.1, periods: float = 1.0, val_fraction: float = 0.2,
         seed: int = 0, batch_size: int = 64) -> Task:
    """Noisy ``sin(x)`` as a regression ``Task``.

    Args:
        n: number of samples (train + val).
        noise: standard deviation of the Gaussian noise added to the targets.
        periods: how many periods of the sine the inputs span; more is harder.
        val_fraction: share of the samples held out for validation.
        seed: seeds the samples and the train/val split.
        batch_size: mini-batch size of training.

    Inputs are float32 ``(1,)`` values in [-1, 1] (``x / (periods * pi)``), targets float32
    ``(1,)``. Loss ``mse``, metric ``mae``; ``task.recommended`` (Adam, lr 1e-2, 30 epochs)
    brings the val MAE close to the noise floor (about 0.08 with ``noise=0.1``).
    """
    check_whole("n", n, 2, 1000)
    check_number("noise", noise, 0.0, 0.1)
    check_number("periods", periods, 0.0, 1.0)
    if periods == 0:
        raise ValueError("periods: must be > 0, got 0; e.g. periods=1.0")
    n_val = check_fraction(val_fraction, n)
    gen = torch.Generator().manual_seed(check_seed(seed))
    check_whole("batch_size", batch_size, 1, 64)
    x, y = make_sine(n, noise, periods, generator=gen)
    train, val = split(x, y, n_val, gen)
    task = Task(
        model=sine_model, train=train, val=val, loss="mse", metrics=("mae",),
        batch_size=batch_size, name="sine",
        recommended={"optimizer": "adam", "lr": 1e-2, "epochs": 30},
    )
    return described(task, "sine", {
        "n": n, "noise": noise, "periods": periods, "val_fraction": val_fraction, "seed": seed,
        "batch_size": batch_size})
