"""Losses by name: ``get_loss("cross_entropy", label_smoothing=0.1)`` -> a ``Loss``.

A ``Loss`` is called as ``loss(output, target)`` and returns a 0-d tensor. Calling it does
no checks and no host syncs; ``loss.check(output, target)``, which the engine runs once on
the first batch, raises a ValueError that names the loss, both shapes and the fix when they
do not fit (no silent broadcasting).

``cross_entropy`` skips targets of -100, as torch does (padding, unlabelled pixels); the
first-batch check takes them, and the accuracy, dice and iou metrics leave them out. The other
class losses (focal, dice, ce_dice) have no such label: -100 is an error there.

Example:
    >>> import torch
    >>> loss = get_loss("mse")
    >>> float(loss(torch.zeros(4, 1), torch.ones(4, 1)))
    1.0
    >>> loss.check(torch.zeros(4, 1), torch.ones(4))
    Traceback (most recent call last):
    ...
    ValueError: loss 'mse': output shape (4, 1) and target shape (4,) differ, and broadcasting them would compare every output with every target; make them match, e.g. return output.squeeze(-1) from the model or give targets of shape (4, 1)
"""
from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F

from tunewidgets.engine._values import is_flag, is_real
from tunewidgets.engine.loss_checks import (check_result, class_targets, float_target, label_error, mask_targets,
                                            same_shape, shape, shapes, unit_values)
from tunewidgets.engine.loss_functions import (IGNORE_INDEX, binary_view, is_multiclass, sigmoid_focal_loss,
                                               soft_dice_loss, softmax_focal_loss)

__all__ = ["LOSSES", "Loss", "get_loss"]

# what torch raises for a class index out of range (IndexError from cross_entropy, RuntimeError from gather)
_LABEL_ERRORS = (IndexError, RuntimeError)

LOSSES = ("cross_entropy", "mse", "l1", "huber", "bce_with_logits", "focal", "dice", "ce_dice")

class Loss:
    """A named loss: ``loss(output, target) -> 0-d tensor``, plus ``check`` for the first batch."""

    defaults: dict[str, Any] = {}

    def __init__(self, name: str, **kwargs: Any) -> None:
        self.name = name
        self.kwargs = kwargs

    def __call__(self, output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def check(self, output: Any, target: Any) -> None:
        """Raise ValueError (naming the loss, both shapes and the fix) if ``output`` and ``target`` don't fit."""
        if not isinstance(output, torch.Tensor) or not isinstance(target, torch.Tensor):
            raise TypeError(
                f"loss {self.name!r}: expected tensors, got output {type(output).__name__} and target "
                f"{type(target).__name__}; the model must return one tensor and the data give one target tensor"
            )
        self._check(output, target)
        with torch.no_grad():
            try:
                value = self(output, target)
            except (RuntimeError, ValueError, IndexError) as e:
                raise ValueError(f"loss {self.name!r}: failed with {shapes(output, target)}: {e}") from e
        check_result(self.name, value)

    def _check(self, output: torch.Tensor, target: torch.Tensor) -> None:
        """Shape and value checks of one loss (may sync with the device: runs once)."""

    def counted(self, output: torch.Tensor, target: torch.Tensor) -> torch.Tensor | None:
        """How many targets the mean of ``loss(output, target)`` ran over, as a device tensor, when
        that is not one per sample (labels the loss skips); None: one per sample. ``evaluate`` weighs
        each batch by it, so a validation loss is the mean over every target that counted."""
        return None

    def __repr__(self) -> str:
        args = "".join(f", {k}={v!r}" for k, v in self.kwargs.items() if v is not None)
        return f"Loss({self.name!r}{args})"


def _raise_label_error(name: str, output: torch.Tensor, target: torch.Tensor, exc: BaseException) -> None:
    """Re-raise ``exc`` as a ValueError naming the bad label when that is what failed, else as it is."""
    err = label_error(name, output, target)
    if err is None:
        raise exc
    raise err from exc


# -- settings --------------------------------------------------------------------------------------
def _number(loss: str, key: str, value: Any, low: float, *, strict: bool = False,
            high: float | None = None) -> float:
    ok = is_real(value) and math.isfinite(value)
    ok = ok and (value > low if strict else value >= low) and (high is None or value <= high)
    if not ok:
        span = f"{'>' if strict else '>='} {low}" + (f" and <= {high}" if high is not None else "")
        raise ValueError(f"loss {loss!r}: {key} must be a number {span}, got {value!r}")
    return float(value)


def _vector(loss: str, key: str, value: Any) -> torch.Tensor | None:
    if value is None:
        return None
    if is_real(value):
        value = [value]
    try:
        flags = (is_flag(value) or str(getattr(value, "dtype", "")) in ("torch.bool", "bool")
                 or any(is_flag(v) for v in value))
        t = None if flags else torch.as_tensor(value, dtype=torch.float32)
    except (TypeError, ValueError, RuntimeError):
        t = None
    if t is None or t.ndim != 1 or not torch.isfinite(t).all() or (t < 0).any():
        raise ValueError(f"loss {loss!r}: {key} must be a 1-D sequence of numbers >= 0 (one per class), "
                         f"got {value!r}")
    return t.detach().clone()


class _OnDevice:
    """A constant tensor moved to the output's device and dtype once, then reused."""

    def __init__(self, tensor: torch.Tensor | None) -> None:
        self.tensor = tensor

    def like(self, output: torch.Tensor) -> torch.Tensor | None:
        t = self.tensor
        if t is None:
            return None
        dtype = output.dtype
        if dtype in (torch.float16, torch.bfloat16) and torch.is_autocast_enabled(output.device.type):
            dtype = torch.float32  # autocast runs the loss in float32: keep the weights exact
        return self.on(output.device, dtype)

    def on(self, device: torch.device, dtype: torch.dtype) -> torch.Tensor | None:
        t = self.tensor
        if t is not None and (t.device != device or t.dtype != dtype):
            t = self.tensor = t.to(device, dtype)
        return t


# -- the built-in losses -------------------------------------------------------------------------
class _CrossEntropy(Loss):
    defaults = {"label_smoothing": 0.0, "weight": None}

    def __init__(self, name: str, label_smoothing: float = 0.0, weight: Any = None) -> None:
        super().__init__(name, label_smoothing=_number(name, "label_smoothing", label_smoothing, 0.0, high=1.0),
                         weight=weight)
        self._weight = _OnDevice(_vector(name, "weight", weight))
        self._plain = self._weight.tensor is None and self.kwargs["label_smoothing"] == 0.0

    def __call__(self, output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        try:  # costs nothing unless it raises; then a label out of range is named
            if self._plain:  # the common case, on every training step: no keyword handling
                return F.cross_entropy(output, target)
            return F.cross_entropy(output, target, weight=self._weight.like(output),
                                   label_smoothing=self.kwargs["label_smoothing"])
        except _LABEL_ERRORS as exc:
            _raise_label_error(self.name, output, target, exc)

    def counted(self, output: torch.Tensor, target: torch.Tensor) -> torch.Tensor | None:
        if target.is_floating_point():
            return None  # class probabilities: one target per sample
        return (target != IGNORE_INDEX).sum()  # every label but the skipped ones (pixels too, for masks)

    def _check(self, output: torch.Tensor, target: torch.Tensor) -> None:
        if target.is_floating_point() and target.shape == output.shape and output.ndim >= 2:
            if output.shape[1] == 1:
                class_targets(self.name, output, target)  # raises: one class
            if (target < 0).any():
                raise ValueError(f"loss {self.name!r}: float targets of shape {shape(target)} are read as "
                                 "class probabilities and must be >= 0; for class indices give integer targets "
                                 "of shape (N,)")
        else:
            class_targets(self.name, output, target, ignore_index=IGNORE_INDEX)
        w = self._weight.tensor
        if w is not None and w.numel() != output.shape[1]:
            raise ValueError(f"loss {self.name!r}: weight has {w.numel()} entries but the output has "
                             f"{output.shape[1]} classes; give one weight per class")


class _Regression(Loss):
    def __init__(self, name: str, **kwargs: Any) -> None:
        if name == "huber":
            kwargs = {"delta": _number(name, "delta", kwargs.get("delta", 1.0), 0.0, strict=True)}
        super().__init__(name, **kwargs)
        self._fn: Callable[..., torch.Tensor] = {"mse": F.mse_loss, "l1": F.l1_loss, "huber": F.huber_loss}[name]

    def __call__(self, output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return self._fn(output, target, **self.kwargs)

    def _check(self, output: torch.Tensor, target: torch.Tensor) -> None:
        same_shape(self.name, output, target)
        float_target(self.name, target)


class _BCEWithLogits(Loss):
    defaults = {"pos_weight": None}

    def __init__(self, name: str, pos_weight: Any = None) -> None:
        super().__init__(name, pos_weight=pos_weight)
        self._pos_weight = _OnDevice(_vector(name, "pos_weight", pos_weight))

    def __call__(self, output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        if not target.is_floating_point():
            target = target.to(output.dtype)
        return F.binary_cross_entropy_with_logits(output, target, pos_weight=self._pos_weight.like(output))

    def _check(self, output: torch.Tensor, target: torch.Tensor) -> None:
        if is_multiclass(output, target):
            raise ValueError(f"loss {self.name!r}: {shapes(output, target)} look like {output.shape[1]}-class "
                             "scores with class-index targets; use loss='cross_entropy', or give 0/1 targets "
                             f"of shape {shape(output)} (one column per label)")
        same_shape(self.name, output, target)
        unit_values(self.name, target)
        w = self._pos_weight.tensor
        if w is not None and w.numel() not in (1, output.shape[-1] if output.ndim else 1):
            raise ValueError(f"loss {self.name!r}: pos_weight has {w.numel()} entries; give one, or one per "
                             f"output column ({output.shape[-1]})")


class _Focal(Loss):
    defaults = {"gamma": 2.0, "alpha": 0.25}

    def __init__(self, name: str, gamma: float = 2.0, alpha: Any = 0.25) -> None:
        gamma = _number(name, "gamma", gamma, 0.0)
        if isinstance(alpha, (int, float)) and not isinstance(alpha, bool):
            alpha = _number(name, "alpha", alpha, 0.0, high=1.0)
            per_class = None
        else:
            per_class = _vector(name, "alpha", alpha)
        super().__init__(name, gamma=gamma, alpha=alpha)
        self._alpha = per_class
        self._alpha_on = _OnDevice(per_class)

    def __call__(self, output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        gamma, alpha = self.kwargs["gamma"], self.kwargs["alpha"]
        if is_multiclass(output, target):
            per_class = self._alpha_on.on(output.device, torch.float32) if self._alpha is not None else None
            try:
                return softmax_focal_loss(output, target, gamma, per_class if per_class is not None else alpha)
            except _LABEL_ERRORS as exc:
                _raise_label_error(self.name, output, target, exc)
        if self._alpha is not None:
            raise ValueError(f"loss {self.name!r}: per-class alpha needs class-index targets; give one number")
        return sigmoid_focal_loss(output, target, gamma, alpha)

    def _check(self, output: torch.Tensor, target: torch.Tensor) -> None:
        if is_multiclass(output, target):
            class_targets(self.name, output, target)
            if self._alpha is not None and self._alpha.numel() != output.shape[1]:
                raise ValueError(f"loss {self.name!r}: alpha has {self._alpha.numel()} entries but the output "
                                 f"has {output.shape[1]} classes; give one per class, one number, or None")
            return
        if self._alpha is not None:
            raise ValueError(f"loss {self.name!r}: {shapes(output, target)} are binary (sigmoid) logits, but "
                             "alpha is a per-class list, which needs class scores (N, C) with class-index "
                             "targets (N,); give alpha as one number in [0, 1] or None")
        same_shape(self.name, output, target)
        unit_values(self.name, target)


class _Dice(Loss):
    defaults = {"smooth": 1.0}

    def __init__(self, name: str, smooth: float = 1.0) -> None:
        super().__init__(name, smooth=_number(name, "smooth", smooth, 0.0))

    def __call__(self, output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        try:
            return soft_dice_loss(output, target, self.kwargs["smooth"])
        except _LABEL_ERRORS as exc:
            _raise_label_error(self.name, output, target, exc)

    def _check(self, output: torch.Tensor, target: torch.Tensor) -> None:
        mask_targets(self.name, output, target)


class _CEDice(Loss):
    defaults = {"ce_weight": 1.0, "dice_weight": 1.0, "smooth": 1.0}

    def __init__(self, name: str, ce_weight: float = 1.0, dice_weight: float = 1.0, smooth: float = 1.0) -> None:
        super().__init__(name, ce_weight=_number(name, "ce_weight", ce_weight, 0.0),
                         dice_weight=_number(name, "dice_weight", dice_weight, 0.0),
                         smooth=_number(name, "smooth", smooth, 0.0))

    def __call__(self, output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        k = self.kwargs
        try:
            if is_multiclass(output, target):
                ce = F.cross_entropy(output, target)
            else:
                out, tgt = binary_view(output, target)
                ce = F.binary_cross_entropy_with_logits(out, tgt.to(out.dtype))
            return k["ce_weight"] * ce + k["dice_weight"] * soft_dice_loss(output, target, k["smooth"])
        except _LABEL_ERRORS as exc:
            _raise_label_error(self.name, output, target, exc)

    def _check(self, output: torch.Tensor, target: torch.Tensor) -> None:
        mask_targets(self.name, output, target)


class _CallableLoss(Loss):
    """A user's ``fn(output, target) -> 0-d tensor``."""

    def __init__(self, fn: Callable[..., torch.Tensor]) -> None:
        name = getattr(fn, "__name__", None) or type(fn).__name__
        super().__init__(name)
        self.fn = fn

    def __call__(self, output: Any, target: Any) -> torch.Tensor:
        return self.fn(output, target)

    def check(self, output: Any, target: Any) -> None:
        try:
            with torch.no_grad():
                value = self.fn(output, target)
        except (RuntimeError, ValueError, IndexError) as e:
            both = (shapes(output, target) if isinstance(output, torch.Tensor) and isinstance(target, torch.Tensor)
                    else f"output {type(output).__name__} and target {type(target).__name__}")
            raise ValueError(f"loss {self.name!r}: failed on the first batch with {both}: {e}; make the "
                             "model's output and the targets fit what the loss expects") from e
        check_result(self.name, value)

    def __repr__(self) -> str:
        return f"Loss({self.name!r}, fn={self.fn!r})"


_BUILDERS: dict[str, type[Loss]] = {
    "cross_entropy": _CrossEntropy, "mse": _Regression, "l1": _Regression, "huber": _Regression,
    "bce_with_logits": _BCEWithLogits, "focal": _Focal, "dice": _Dice, "ce_dice": _CEDice,
}
_KWARGS: dict[str, tuple[str, ...]] = {
    "cross_entropy": ("label_smoothing", "weight"), "mse": (), "l1": (), "huber": ("delta",),
    "bce_with_logits": ("pos_weight",), "focal": ("gamma", "alpha"), "dice": ("smooth",),
    "ce_dice": ("ce_weight", "dice_weight", "smooth"),
}


def get_loss(name_or_callable: str | Callable[..., torch.Tensor] | Loss, **kwargs: Any) -> Loss:
    """A ``Loss`` from a name in ``LOSSES`` (with its keyword settings) or from a callable.

    Keywords: cross_entropy ``label_smoothing``, ``weight``; huber ``delta``; bce_with_logits
    ``pos_weight``; focal ``gamma``, ``alpha``; dice ``smooth``; ce_dice ``ce_weight``,
    ``dice_weight``, ``smooth``.

    >>> get_loss("huber", delta=0.5)
    Loss('huber', delta=0.5)
    """
    if isinstance(name_or_callable, Loss):
        if kwargs:
            raise ValueError(f"loss_kwargs: {sorted(kwargs)} given with a ready Loss object; build it with "
                             "get_loss(name, **kwargs) instead")
        return name_or_callable
    if isinstance(name_or_callable, str):
        name = name_or_callable
        if name not in _BUILDERS:
            raise ValueError(f"loss: unknown loss {name!r}; use one of: {', '.join(LOSSES)}, "
                             "or pass a callable (output, target) -> tensor")
        unknown = sorted(set(kwargs) - set(_KWARGS[name]))
        if unknown:
            takes = ", ".join(_KWARGS[name]) or "no keywords"
            raise ValueError(f"loss_kwargs: loss {name!r} takes no keyword(s) {unknown}; it takes: {takes}")
        return _BUILDERS[name](name, **kwargs)
    if callable(name_or_callable):
        if kwargs:
            raise ValueError(f"loss_kwargs: {sorted(kwargs)} only apply to named losses; bind them in your "
                             "callable instead (e.g. functools.partial)")
        return _CallableLoss(name_or_callable)
    raise TypeError(f"loss: expected a name ({', '.join(LOSSES)}) or a callable (output, target) -> tensor, "
                    f"got {type(name_or_callable).__name__}")
