"""Helpers shared by the built-in tasks: argument checks and the seeded train/val split."""
from __future__ import annotations

import math
from typing import Any

import torch
from torch.utils.data import TensorDataset

from tunewidgets.engine.task import Task

__all__ = ["check_seed", "check_fraction", "check_whole", "check_number", "split", "described"]


def check_seed(seed: Any) -> int:
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise ValueError(f"seed: must be a whole number >= 0, got {seed!r}; e.g. seed=0")
    return seed


def check_fraction(val_fraction: Any, n: int) -> int:
    """Check ``val_fraction`` and return the number of validation samples it gives out of ``n``."""
    ok = isinstance(val_fraction, (int, float)) and not isinstance(val_fraction, bool)
    if not ok or not math.isfinite(val_fraction) or not 0.0 < val_fraction < 1.0:
        raise ValueError(f"val_fraction: must be a number in (0, 1), got {val_fraction!r}; e.g. 0.2")
    n_val = round(n * val_fraction)
    if n_val < 1 or n_val > n - 1:
        raise ValueError(
            f"val_fraction: {val_fraction!r} of {n} samples leaves {n_val} for validation and "
            f"{n - n_val} for training; both need at least 1, so choose a fraction nearer 0.2"
        )
    return n_val


def check_whole(name: str, value: Any, low: int, example: int, high: int | None = None) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name}: expected a whole number >= {low}, got {value!r}; e.g. {name}={example}")
    if value < low or (high is not None and value > high):
        allowed = f">= {low}" if high is None else f"in [{low}, {high}]"
        raise ValueError(f"{name}: must be {allowed}, got {value}; e.g. {name}={example}")
    return value


def check_number(name: str, value: Any, low: float, example: float) -> float:
    ok = isinstance(value, (int, float)) and not isinstance(value, bool)
    if not ok or not math.isfinite(value) or value < low:
        raise ValueError(f"{name}: must be a finite number >= {low}, got {value!r}; e.g. {name}={example}")
    return float(value)


def split(x: torch.Tensor, y: torch.Tensor, n_val: int,
          generator: torch.Generator) -> tuple[TensorDataset, TensorDataset]:
    """Shuffle the samples with ``generator``; the first ``n_val`` go to validation, the rest to training."""
    order = torch.randperm(x.shape[0], generator=generator)
    val, train = order[:n_val], order[n_val:]
    return TensorDataset(x[train], y[train]), TensorDataset(x[val], y[val])


def described(task: Task, name: str, kwargs: dict[str, Any], image_shape: tuple[int, ...] | None = None) -> Task:
    """Mark ``task`` as built by ``tw.tasks.<name>(**kwargs)``.

    ``task.spec`` (``{"name": ..., "kwargs": ...}``) lets a recorded run rebuild its task
    (``tw.rerun``); ``task.image_shape`` (or None) says how one input is viewed as an image
    ``(channels, height, width)``, for sinks that show predictions.
    """
    task.spec = {"name": name, "kwargs": dict(kwargs)}
    task.image_shape = image_shape
    return task
