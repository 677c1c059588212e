"""Shared checks for the built-in task tests."""
from __future__ import annotations

import torch

import tunewidgets as tw


def rows(t: torch.Tensor) -> set[bytes]:
    """Each sample as bytes, to compare splits as sets."""
    flat = t.reshape(t.shape[0], -1).contiguous()
    return {r.numpy().tobytes() for r in flat}


def untrained_val_loss(task: tw.Task, seed: int = 0) -> float:
    """Val loss of a fresh, untrained model of ``task``."""
    torch.manual_seed(seed)
    model = task.build_model().eval()
    x, y = task.val.tensors
    with torch.no_grad():
        return float(task.loss_fn(model(x), y))


def train_recommended(task: tw.Task, **changes) -> tw.Run:
    """Train ``task`` on the CPU with its recommended config (and ``changes``)."""
    return tw.train(task, tw.TrainConfig(device="cpu", **{**task.recommended, **changes}))
