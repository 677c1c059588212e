"""Checks a run makes before its first training step, and the cheap one it makes on every lr.

``check_first_batch`` runs the model and the loss once on the first training batch (no update)
and looks at the data, so that the usual mistakes fail before any training with an error that
names the field (``model``, ``train``, ``val``, ``loss``), the shapes and the fix, instead of a
raw torch message mid-run: a model with nothing to train, inputs the model cannot take, items
that cannot be batched, validation data that yields nothing, and (for tensor data) any class
label out of range in the whole training or validation set, not only in the first batch.
``check_lr`` stops a run whose
schedule gives a negative or NaN learning rate.

Example:
    >>> from tunewidgets.engine.checks import check_lr
    >>> def flip(step):
    ...     return 1.0 if step < 10 else -1.0
    >>> check_lr(0.1, flip)
    >>> check_lr(-0.1, flip, step=10)
    Traceback (most recent call last):
    ...
    ValueError: schedule: flip set the lr to -0.1 at step 10; a learning rate must be a number >= 0 (a callable schedule returns a factor of TrainConfig.lr, so return a number >= 0)
"""
from __future__ import annotations

import contextlib
from collections.abc import Iterable, Mapping
from typing import Any

import torch
from torch.utils.data import DataLoader, IterableDataset, TensorDataset

from tunewidgets.engine.collate import ragged_items
from tunewidgets.engine.loss_functions import IGNORE_INDEX, is_multiclass
from tunewidgets.engine.task import Task, to_device

__all__ = ["check_first_batch", "check_model", "check_val_data", "check_labels", "check_lr", "describe"]

_SCAN = 1000  # items of a dataset read to find two of different shapes (only when batching failed)
# what drawing a batch or a forward pass raises for bad shapes, types or values
_DATA_ERRORS = (RuntimeError, TypeError, ValueError, LookupError)
_CLASS_LOSSES = ("cross_entropy", "focal", "dice", "ce_dice")  # built-in losses of class-index targets


def describe(x: Any) -> str:
    """Shapes of a batch part in words: ``shape (32, 4)``, or per entry for tuples and dicts."""
    if isinstance(x, torch.Tensor):
        return f"shape {tuple(x.shape)} ({str(x.dtype).replace('torch.', '')})"
    if isinstance(x, Mapping):
        return "{" + ", ".join(f"{k!r}: {describe(v)}" for k, v in x.items()) + "}"
    if isinstance(x, (tuple, list)):
        return "(" + ", ".join(describe(v) for v in x) + ")"
    return type(x).__name__


def check_model(model: torch.nn.Module) -> None:
    """Raise ValueError naming ``model`` if it has no parameters or none that can be trained."""
    params = list(model.parameters())
    name = type(model).__name__
    if not params:
        raise ValueError(f"model: {name} has no parameters, so there is nothing to train; return a network with "
                         "layers (e.g. nn.Linear) from the factory")
    if not any(p.requires_grad for p in params):
        n = sum(p.numel() for p in params)
        raise ValueError(f"model: all {len(params)} parameter tensors of {name} ({n} values) are frozen "
                         "(requires_grad=False), so training cannot change it; unfreeze the layers to train, "
                         "e.g. `for p in model.head.parameters(): p.requires_grad_(True)` in the factory")


def check_first_batch(task: Task, model: torch.nn.Module, batches: Iterable[Any],
                      device: torch.device, amp_dtype: torch.dtype | None = None) -> None:
    """Run the loss once on the first batch (no update) so shape errors surface before training.

    Raises ValueError naming the field: ``model`` (nothing to train, a forward pass that fails
    on the batch, an output that does not depend on the parameters), ``train`` (no batches,
    items that cannot be batched), ``loss`` (output and targets that do not fit) or ``val``
    (validation data that yields no batch).
    """
    check_model(model)
    batch = _first_batch(task, batches)
    x, y = task.unpack_batch(batch)
    x, y = to_device(x, device), to_device(y, device)
    was_training = model.training
    model.eval()
    try:
        autocast = (torch.autocast(device.type, dtype=amp_dtype) if amp_dtype is not None
                    else contextlib.nullcontext())
        with torch.enable_grad(), autocast:  # with autograd, to see that the output can be trained
            try:
                out = model(x)
            except torch.cuda.OutOfMemoryError:
                raise
            except _DATA_ERRORS as exc:
                raise ValueError(
                    f"model: the forward pass failed on the first training batch, inputs of {describe(x)}: {exc}; "
                    "make the model take inputs of this shape (e.g. the first layer's in_features or "
                    "in_channels) or reshape the data") from exc
        if torch.is_tensor(out) and not out.requires_grad:
            raise ValueError(
                f"model: its output on the first batch ({describe(out)}) does not depend on any trainable "
                "parameter (it has no gradient), so training cannot change it; is part of forward() under "
                "torch.no_grad(), or is the output .detach()-ed or rebuilt with torch.tensor(...)?")
        with torch.no_grad():
            task.loss_fn.check(out.detach().float() if torch.is_tensor(out) else out, y)
    finally:
        model.train(was_training)
    check_labels(task, out, y)
    check_val_data(task)


def _first_batch(task: Task, batches: Iterable[Any]) -> Any:
    source = batches
    if hasattr(batches, "tensors"):  # TensorBatches: take rows without drawing a permutation
        source = [tuple(t[: batches.batch_size] for t in batches.tensors)]
    try:
        return next(iter(source))
    except StopIteration:
        raise ValueError("train: the training data yields no batches; give it a non-empty dataset") from None
    except _DATA_ERRORS as exc:
        detail = _ragged_in_dataset(batches)
        hint = f"; in the dataset, {detail}" if detail else ""
        if str(exc).startswith("train:"):  # already named by the Task's own collate
            if not hint:
                raise
            raise ValueError(f"{exc}{hint}") from exc
        raise ValueError(f"train: drawing the first training batch failed: {exc}{hint}") from exc


def _ragged_in_dataset(batches: Any) -> str | None:
    """Two dataset items (by index) of different shapes, found among its first items; None if none."""
    dataset = getattr(batches, "dataset", None)
    if dataset is None or isinstance(dataset, IterableDataset):
        return None
    try:
        n = min(len(dataset), _SCAN)
        items = [dataset[i] for i in range(n)]
    except Exception:  # noqa: BLE001 - only a hint for an error already being raised
        return None
    return ragged_items(items, list(range(n)))


def _tensors(data: Any) -> tuple[torch.Tensor, ...] | None:
    """The whole tensors of tensor data (a TensorDataset, or a DataLoader over one), else None."""
    dataset = data.dataset if isinstance(data, DataLoader) else data
    return tuple(dataset.tensors) if isinstance(dataset, TensorDataset) else None


def check_labels(task: Task, output: Any, target: Any) -> None:
    """Raise ValueError naming the field, the sample and the label when a class label of tensor data
    lies outside ``[0, C)`` anywhere in the set, not only in the first batch.

    ``output`` and ``target`` are the first batch's model output and targets: they tell whether
    the task's (built-in) loss takes class indices, and ``C``. One pass over the label tensors
    (``min``/``max``-like work), once per run, before training; other data is checked batch by
    batch as it comes (the loss names a bad label then).
    """
    name = getattr(task.loss_fn, "name", None)
    if name not in _CLASS_LOSSES or not torch.is_tensor(output) or not torch.is_tensor(target):
        return
    if target.is_floating_point() or target.is_complex() or target.dtype == torch.bool:
        return
    if not is_multiclass(output, target):
        return
    n = int(output.shape[1])
    for field, data in (("train", task.train), ("val", task.val)):
        tensors = _tensors(data)
        if tensors is None:
            continue
        try:
            _, labels = task.unpack_batch(tensors)
        except _DATA_ERRORS:  # an unpack made for batches only: the loss checks each batch
            continue
        if not torch.is_tensor(labels) or labels.is_floating_point() or labels.is_complex() or not labels.numel():
            continue
        bad = (labels < 0) | (labels >= n)
        if name == "cross_entropy":
            bad &= labels != IGNORE_INDEX
        if not bool(bad.any()):
            continue
        where = bad.nonzero()[0]
        sample, label = int(where[0]), int(labels[tuple(where.tolist())])
        kept = labels[labels != IGNORE_INDEX] if name == "cross_entropy" else labels.reshape(-1)
        low, high = int(kept.min()), int(kept.max())
        raise ValueError(
            f"loss {name!r}: target label {label} in the {field} data is out of range for {n} classes (the model "
            f"outputs {n} columns, so labels must lie in [0, {n})); first at sample {sample} of {len(labels)}, and "
            f"the labels of the {field} data lie in [{low}, {high}]; relabel the classes 0..{n - 1} or give the "
            f"model {max(high + 1, n)} outputs")


def check_val_data(task: Task) -> None:
    """Raise ValueError naming ``val`` when the validation data yields no batch.

    A Task already refuses an empty Dataset or a DataLoader of length 0; data of unknown
    length (an iterable-style DataLoader or IterableDataset) is tried here for one batch,
    so that a run cannot end "finished" with a validation loss over nothing.
    """
    val = task.val
    if val is None or hasattr(val, "__len__") and not _unsized_loader(val):
        return
    try:
        next(iter(val))
    except StopIteration:
        raise ValueError("val: the validation data yields no batches, so every evaluation would be over "
                         "nothing; give it data, or leave Task(val=None) to train without validation") from None


def _unsized_loader(data: Any) -> bool:
    if not isinstance(data, DataLoader):
        return False
    try:
        len(data)
    except TypeError:
        return True
    return False


def check_lr(lr: Any, schedule: Any, step: int | None = None) -> None:
    """Raise ValueError naming ``schedule`` and the value when ``lr`` is negative or NaN.

    The train loop calls it after every scheduler step: one float comparison when all is well.
    """
    if lr >= 0.0:  # False for NaN too
        return
    name = schedule if isinstance(schedule, str) else getattr(schedule, "__qualname__", None) or repr(schedule)
    at = f" at step {step}" if step is not None else ""
    raise ValueError(f"schedule: {name} set the lr to {float(lr)!r}{at}; a learning rate must be a number >= 0 "
                     "(a callable schedule returns a factor of TrainConfig.lr, so return a number >= 0)")

