"""Checks run before a run trains: the first batch through the model and the loss, once, with no update."""
from __future__ import annotations

import contextlib
from collections.abc import Iterable
from typing import Any

import torch

from tunewidgets.engine.task import Task, to_device

__all__ = ["check_first_batch"]


def check_first_batch(task: Task, model: torch.nn.Module, batches: Iterable[Any],
                      device: torch.device, amp_dtype: torch.dtype | None = None) -> None:
    """Run the loss once on the first batch (no update) so shape errors surface before training."""
    source = batches
    if hasattr(batches, "tensors"):  # TensorBatches: take rows without drawing a permutation
        source = [tuple(t[: batches.batch_size] for t in batches.tensors)]
    try:
        batch = next(iter(source))
    except StopIteration:
        raise ValueError("train: the training data yields no batches; give it a non-empty dataset") from None
    x, y = task.unpack_batch(batch)
    x, y = to_device(x, device), to_device(y, device)
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            autocast = (torch.autocast(device.type, dtype=amp_dtype) if amp_dtype is not None
                        else contextlib.nullcontext())
            with autocast:
                out = model(x)
            task.loss_fn.check(out.float() if torch.is_tensor(out) else out, y)
    finally:
        model.train(was_training)
