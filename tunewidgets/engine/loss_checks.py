"""Shape and value checks of the built-in losses, run once on the first batch.

Each raises a ValueError that names the loss, both shapes and the fix.
"""
from __future__ import annotations

from typing import Any

import torch

from tunewidgets.engine.loss_functions import binary_view, is_multiclass

__all__ = ["shape", "shapes", "check_result", "same_shape", "float_target", "unit_values", "class_targets",
           "mask_targets", "label_error"]

IGNORE_INDEX = -100  # torch's cross-entropy skips targets with this value


def shape(t: torch.Tensor) -> str:
    return str(tuple(t.shape))


def shapes(output: torch.Tensor, target: torch.Tensor) -> str:
    return f"output shape {shape(output)} and target shape {shape(target)}"


def check_result(name: str, value: Any) -> None:
    if not isinstance(value, torch.Tensor):
        raise TypeError(f"loss {name!r}: returned {type(value).__name__}, not a tensor; return a torch "
                        "tensor so that it can be backpropagated")
    if value.numel() != 1:
        raise ValueError(f"loss {name!r}: returned a tensor of shape {shape(value)}, expected one number; "
                         "reduce it, e.g. with .mean()")


def same_shape(name: str, output: torch.Tensor, target: torch.Tensor) -> None:
    if output.shape == target.shape:
        return
    fix = "make them match"
    if output.ndim == target.ndim + 1 and output.shape[-1] == 1:
        fix += (f", e.g. return output.squeeze(-1) from the model or give targets of shape "
                f"{shape(output)}")
    elif target.ndim == output.ndim + 1 and target.shape[-1] == 1:
        fix += f", e.g. targets of shape {shape(output)} (target.squeeze(-1))"
    raise ValueError(f"loss {name!r}: {shapes(output, target)} differ, and broadcasting them would "
                     f"compare every output with every target; {fix}")


def float_target(name: str, target: torch.Tensor) -> None:
    if not target.is_floating_point():
        raise ValueError(f"loss {name!r}: needs floating-point targets, got dtype {target.dtype}; "
                         "convert them with target.float()")


def unit_values(name: str, target: torch.Tensor) -> None:
    if target.numel() and (target.min() < 0 or target.max() > 1):
        raise ValueError(f"loss {name!r}: targets must lie in [0, 1] (0/1 labels or probabilities), got values "
                         f"in [{float(target.min()):g}, {float(target.max()):g}]")


def class_targets(name: str, output: torch.Tensor, target: torch.Tensor, ignore_index: int | None = None) -> None:
    """Check class-index targets ``(N, *S)`` for output ``(N, C, *S)``.

    ``ignore_index``: a label the loss skips (cross-entropy's -100, for padding or unlabelled
    pixels); it is allowed anywhere, but not as every label of the batch (the mean loss over no
    labels is NaN).
    """
    if output.ndim < 2:
        raise ValueError(f"loss {name!r}: output shape {shape(output)} has no class axis; the model must "
                         "return scores of shape (N, C) (or (N, C, H, W) for masks)")
    n_classes = output.shape[1]
    want = (output.shape[0], *output.shape[2:])
    if n_classes == 1:
        raise ValueError(f"loss {name!r}: {shapes(output, target)}: one output column is a binary task, and "
                         "cross-entropy over one class is always 0; use loss='bce_with_logits' "
                         "(targets of shape (N, 1), float), or make the model return 2 columns")
    if target.dtype == torch.bool or target.is_floating_point() or target.is_complex():
        if target.is_floating_point() and tuple(target.shape) == want:
            raise ValueError(f"loss {name!r}: targets of dtype {target.dtype} with shape {shape(target)} look "
                             "like class indices; convert them with target.long()")
        raise ValueError(f"loss {name!r}: {shapes(output, target)} don't fit: targets must be class "
                         f"indices (integers) of shape {want}, got dtype {target.dtype}")
    if tuple(target.shape) != want:
        what = "spatial sizes differ" if target.ndim == output.ndim - 1 else "expected target shape " + str(want)
        raise ValueError(f"loss {name!r}: {shapes(output, target)} don't fit ({what}); class-index targets "
                         f"must have the output's shape without the class axis, {want}")
    if ignore_index is not None and target.numel():
        kept = target[target != ignore_index]
        if kept.numel() == 0:
            raise ValueError(f"loss {name!r}: every target of the batch is the ignore index {ignore_index}, "
                             "so the loss is NaN; a batch needs at least one labelled sample")
        target = kept
    if target.numel():
        low, high = int(target.min()), int(target.max())
        if low < 0 or high >= n_classes:
            raise ValueError(f"loss {name!r}: class targets must lie in [0, {n_classes}) for {n_classes} "
                             f"output columns, got values in [{low}, {high}]; give the model "
                             f"{max(high + 1, n_classes)} outputs or relabel the classes 0..{n_classes - 1}")


def mask_targets(name: str, output: torch.Tensor, target: torch.Tensor) -> None:
    """Check masks: multi-class (N, C, *S) + (N, *S) class indices, or binary logits + 0/1 targets."""
    if is_multiclass(output, target):
        class_targets(name, output, target)
        return
    out, tgt = binary_view(output, target)
    if out.shape != tgt.shape:
        raise ValueError(f"loss {name!r}: {shapes(output, target)} don't fit: binary masks need logits of "
                         "shape (N, 1, H, W) or (N, H, W) with targets (N, H, W) of the same spatial size; "
                         "multi-class masks need logits (N, C, H, W) with integer targets (N, H, W)")
    if output.ndim >= 2 and output.shape == target.shape and output.shape[1] > 1 and not target.is_floating_point():
        raise ValueError(f"loss {name!r}: {shapes(output, target)}: integer targets with a class axis; "
                         "give class-index targets of shape (N, H, W) for multi-class masks")
    unit_values(name, tgt)


def label_error(name: str, output: Any, target: Any) -> ValueError | None:
    """After a loss failed: a ValueError naming the data field, the label and the class count when
    ``target`` holds class indices outside ``[0, C)`` for output ``(N, C, *S)``; else None.

    Runs only on the error path (it syncs with the device), so the loss itself stays check-free.
    The field is ``train`` when autograd records (a training step), ``val`` otherwise (evaluation).

    >>> import torch
    >>> print(label_error("cross_entropy", torch.zeros(2, 3), torch.tensor([0, 7])))
    loss 'cross_entropy': target label 7 in the train data is out of range for 3 classes (the model outputs 3 columns, so labels must lie in [0, 3)); labels of this batch lie in [0, 7]; relabel the classes 0..2 or give the model 8 outputs
    """
    if not isinstance(output, torch.Tensor) or not isinstance(target, torch.Tensor) or output.ndim < 2:
        return None
    if target.is_floating_point() or target.is_complex() or target.dtype == torch.bool or not target.numel():
        return None
    n_classes = int(output.shape[1])
    t = target.detach()
    bad = t[((t < 0) | (t >= n_classes)) & (t != IGNORE_INDEX)]
    if not bad.numel():
        return None
    field = "train" if torch.is_grad_enabled() else "val"
    kept = t[t != IGNORE_INDEX]
    low, high, label = int(kept.min()), int(kept.max()), int(bad[0])
    return ValueError(
        f"loss {name!r}: target label {label} in the {field} data is out of range for {n_classes} classes (the "
        f"model outputs {n_classes} columns, so labels must lie in [0, {n_classes})); labels of this batch lie "
        f"in [{low}, {high}]; relabel the classes 0..{n_classes - 1} or give the model "
        f"{max(high + 1, n_classes)} outputs")
