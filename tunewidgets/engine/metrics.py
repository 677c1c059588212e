"""Metrics by name, accumulated on the device over a whole dataset.

A ``Metric`` keeps running sums as device tensors: ``update(output, target)`` does no host
sync, and ``compute()`` fetches one number at the end. Values are dataset-level (correct /
total, sum of intersections / sum of unions over all batches), not means of batch means.

Shape conventions match ``tunewidgets.engine.losses``: class scores ``(N, C, *S)`` with
integer targets ``(N, *S)`` are argmax-ed; binary logits ``(N, *S)`` or ``(N, 1, *S)`` with
0/1 targets ``(N, *S)`` are thresholded at 0 (probability 0.5).

Example:
    >>> import torch
    >>> name, make = get_metric("accuracy")
    >>> m = make()
    >>> m.update(torch.tensor([[2.0, 0.0], [0.0, 1.0]]), torch.tensor([0, 0]))
    >>> m.update(torch.tensor([[0.0, 3.0]]), torch.tensor([1]))
    >>> name, round(m.compute(), 4)
    ('accuracy', 0.6667)
"""
from __future__ import annotations

import copy
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import torch

from tunewidgets.engine._values import is_real
from tunewidgets.engine.loss_functions import IGNORE_INDEX, binary_view, is_multiclass

__all__ = ["METRICS", "Metric", "Accuracy", "Dice", "IoU", "MeanAbsoluteError", "MeanSquaredError",
           "BatchMean", "get_metric", "resolve_metrics"]

METRICS = ("accuracy", "dice", "iou", "mae", "mse")
RESERVED = ("loss",)  # "val_loss" is the validation loss itself


class Metric:
    """Base class: ``reset()``, ``update(output, target)`` (no host sync), ``compute() -> float``."""

    name = "metric"

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        raise NotImplementedError

    def update(self, output: torch.Tensor, target: torch.Tensor) -> None:
        raise NotImplementedError

    def compute(self) -> float:
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


def _sum_dtype(device: torch.device) -> torch.dtype:
    return torch.float32 if device.type == "mps" else torch.float64  # mps has no float64


def _shapes(name: str, output: torch.Tensor, target: torch.Tensor, want: str) -> ValueError:
    return ValueError(f"metric {name!r}: output shape {tuple(output.shape)} and target shape "
                      f"{tuple(target.shape)} don't fit; {want}")


def _labels(name: str, output: torch.Tensor, target: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, int]:
    """Hard predictions and targets of the same shape, and the number of classes (2 for binary)."""
    if is_multiclass(output, target):
        if output.shape[0] != target.shape[0] or output.shape[2:] != target.shape[1:]:
            raise _shapes(name, output, target, "class scores (N, C, *S) need integer targets (N, *S)")
        return output.argmax(dim=1), target.long(), int(output.shape[1])
    output, target = binary_view(output, target)
    if output.shape != target.shape:
        raise _shapes(name, output, target, "binary logits (N,) or (N, 1) need 0/1 targets (N,); "
                      "class scores (N, C) need integer targets (N,)")
    return (output > 0).long(), (target > 0.5).long(), 2


class Accuracy(Metric):
    """Fraction of correct predictions (argmax for class scores, logit > 0 for binary)."""

    name = "accuracy"

    def reset(self) -> None:
        self.correct: torch.Tensor | int = 0
        self.total = 0

    def update(self, output: torch.Tensor, target: torch.Tensor) -> None:
        pred, target, _ = _labels(self.name, output.detach(), target)
        kept = target != IGNORE_INDEX  # labels cross-entropy skips count neither way (no host sync)
        self.correct = self.correct + ((pred == target) & kept).sum()
        self.total = self.total + kept.sum()

    def compute(self) -> float:
        total = float(self.total)
        return float(self.correct) / total if total else float("nan")


def _count(index: torch.Tensor, size: int) -> torch.Tensor:
    """Occurrences of 0..size-1 in ``index`` (like bincount, without its host sync on CUDA)."""
    out = torch.zeros(size, dtype=torch.long, device=index.device)
    return out.scatter_add_(0, index, torch.ones_like(index))


class _Overlap(Metric):
    """Per-class intersection and cardinality sums over all batches."""

    def reset(self) -> None:
        self.inter: torch.Tensor | None = None
        self.pred_sum: torch.Tensor | None = None
        self.true_sum: torch.Tensor | None = None

    def update(self, output: torch.Tensor, target: torch.Tensor) -> None:
        multiclass = is_multiclass(output, target)
        pred, true, n_classes = _labels(self.name, output.detach(), target)
        if not multiclass:  # one class: the foreground
            inter, ps, ts = (pred * true).sum().reshape(1), pred.sum().reshape(1), true.sum().reshape(1)
        else:
            # ignored labels (-100) and what was predicted there go to an extra bin, left out
            t = true.reshape(-1)
            kept = (t >= 0) & (t < n_classes)
            p = torch.where(kept, pred.reshape(-1), n_classes)
            t = torch.where(kept, t, n_classes)
            ps, ts = _count(p, n_classes + 1)[:n_classes], _count(t, n_classes + 1)[:n_classes]
            inter = _count(torch.where(p == t, p, n_classes), n_classes + 1)[:n_classes]
        if self.inter is None:
            self.inter, self.pred_sum, self.true_sum = inter, ps, ts
        else:
            self.inter = self.inter + inter
            self.pred_sum = self.pred_sum + ps
            self.true_sum = self.true_sum + ts

    def _score(self, inter: torch.Tensor, pred_sum: torch.Tensor, true_sum: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def compute(self) -> float:
        if self.inter is None:
            return float("nan")
        inter, ps, ts = (x.double().cpu() for x in (self.inter, self.pred_sum, self.true_sum))
        present = (ps + ts) > 0
        if not present.any():
            return 1.0  # nothing predicted and nothing there: a perfect empty mask
        return float(self._score(inter[present], ps[present], ts[present]).mean())


class Dice(_Overlap):
    """Dice score ``2|P∩T| / (|P| + |T|)`` of hard masks, per class over the dataset, mean over classes.

    Classes absent from both predictions and targets are left out of the mean.
    """

    name = "dice"

    def _score(self, inter: torch.Tensor, pred_sum: torch.Tensor, true_sum: torch.Tensor) -> torch.Tensor:
        return 2 * inter / (pred_sum + true_sum)


class IoU(_Overlap):
    """Jaccard index ``|P∩T| / |P∪T|``, per class over the dataset, mean over classes."""

    name = "iou"

    def _score(self, inter: torch.Tensor, pred_sum: torch.Tensor, true_sum: torch.Tensor) -> torch.Tensor:
        return inter / (pred_sum + true_sum - inter)


class _ErrorMean(Metric):
    def reset(self) -> None:
        self.total: torch.Tensor | float = 0.0
        self.count = 0

    def _error(self, diff: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def update(self, output: torch.Tensor, target: torch.Tensor) -> None:
        if output.shape != target.shape:
            raise _shapes(self.name, output, target, "they must be equal (no broadcasting); e.g. return "
                          "output.squeeze(-1) from the model or reshape the targets")
        diff = output.detach().to(_sum_dtype(output.device)) - target.to(_sum_dtype(output.device))
        self.total = self.total + self._error(diff).sum()
        self.count += diff.numel()

    def compute(self) -> float:
        return float(self.total) / self.count if self.count else float("nan")


class MeanAbsoluteError(_ErrorMean):
    name = "mae"

    def _error(self, diff: torch.Tensor) -> torch.Tensor:
        return diff.abs()


class MeanSquaredError(_ErrorMean):
    name = "mse"

    def _error(self, diff: torch.Tensor) -> torch.Tensor:
        return diff * diff


class BatchMean(Metric):
    """A user's ``fn(output, target) -> float | tensor`` (a batch mean), averaged weighted by batch size."""

    def __init__(self, fn: Callable[[Any, Any], Any], name: str | None = None) -> None:
        self.fn = fn
        self.name = name or _name(fn)
        super().__init__()

    def reset(self) -> None:
        self.total: torch.Tensor | float = 0.0
        self.count = 0

    def update(self, output: Any, target: Any) -> None:
        value = self.fn(output, target)
        n = int(target.shape[0]) if isinstance(target, torch.Tensor) and target.ndim else 1
        if isinstance(value, torch.Tensor):
            if value.numel() != 1:
                raise ValueError(f"metric {self.name!r}: returned a tensor of shape {tuple(value.shape)}, "
                                 "expected one number (the batch mean); reduce it with .mean()")
            value = value.detach().reshape(()).to(_sum_dtype(value.device))
        elif is_real(value):
            value = float(value)
        else:
            raise TypeError(f"metric {self.name!r}: returned {type(value).__name__}; return a number or "
                            "a 0-d tensor (the batch mean)")
        self.total = self.total + value * n
        self.count += n

    def compute(self) -> float:
        return float(self.total) / self.count if self.count else float("nan")

    def __repr__(self) -> str:
        return f"BatchMean({self.name!r})"


_BUILTIN: dict[str, type[Metric]] = {"accuracy": Accuracy, "dice": Dice, "iou": IoU,
                                     "mae": MeanAbsoluteError, "mse": MeanSquaredError}


def _name(fn: Any) -> str:
    return getattr(fn, "__name__", None) or type(fn).__name__


def get_metric(name_or_callable: str | Callable[..., Any] | Metric | type[Metric]
               ) -> tuple[str, Callable[[], Metric]]:
    """``(name, factory)`` for a name in ``METRICS``, a ``Metric`` (class or object) or a callable.

    A callable ``fn(output, target)`` returning a batch mean becomes a ``BatchMean`` named
    ``fn.__name__``.

    >>> name, make = get_metric("iou")
    >>> name, type(make()).__name__
    ('iou', 'IoU')
    """
    m = name_or_callable
    if isinstance(m, str):
        if m not in _BUILTIN:
            raise ValueError(f"metrics: unknown metric {m!r}; use one of: {', '.join(METRICS)}, "
                             "or pass a callable (output, target) -> number")
        return m, _BUILTIN[m]
    if isinstance(m, type) and issubclass(m, Metric):
        return getattr(m, "name", m.__name__), m
    if isinstance(m, Metric):
        def fresh(proto: Metric = m) -> Metric:
            new = copy.deepcopy(proto)
            new.reset()
            return new
        return m.name, fresh
    if callable(m):
        fn = m
        return _name(fn), lambda: BatchMean(fn)
    raise TypeError(f"metrics: expected a name ({', '.join(METRICS)}) or a callable (output, target) -> number, "
                    f"got {type(m).__name__}")


def resolve_metrics(metrics: Iterable[Any] | Mapping[str, Any] | str) -> dict[str, Callable[[], Metric]]:
    """``{name: factory}`` for a Task's ``metrics``: names, metrics or callables, or a dict naming them.

    Each metric is reported as ``val_<name>``, so names must be distinct: two lambdas (both
    named ``<lambda>``) or the same name twice raise a ValueError instead of one silently
    replacing the other. Give your own names with a dict. ``loss`` is taken (``val_loss``).

    >>> sorted(resolve_metrics({"top1": "accuracy", "half": lambda o, t: 0.5}))
    ['half', 'top1']
    >>> resolve_metrics([lambda o, t: 1.0, lambda o, t: 0.0])
    Traceback (most recent call last):
    ...
    ValueError: metrics: two metrics are named '<lambda>' (items 0 and 1), and each is reported as val_<name>, so one would replace the other; name them with a dict, e.g. metrics={'<lambda>': ..., '<lambda>_2': ...}
    """
    if isinstance(metrics, str):
        metrics = (metrics,)
    if isinstance(metrics, Mapping):
        named = {}
        for key, m in metrics.items():
            if not isinstance(key, str) or not key.strip():
                raise TypeError(f"metrics: names must be non-empty strings, got {key!r} for {m!r}")
            named[_free(key)] = _renamed(m, key)
        return named
    named, first = {}, {}
    for i, m in enumerate(metrics):
        name, factory = get_metric(m)
        if name in named:
            raise ValueError(f"metrics: two metrics are named {name!r} (items {first[name]} and {i}), and each is "
                             "reported as val_<name>, so one would replace the other; name them with a dict, "
                             f"e.g. metrics={{{name!r}: ..., {name + '_2'!r}: ...}}")
        named[_free(name)], first[name] = factory, i
    return named


def _free(name: str) -> str:
    if name in RESERVED:
        raise ValueError(f"metrics: the name {name!r} is taken (val_{name} is the validation loss); "
                         f"name the metric otherwise, e.g. metrics={{'my_{name}': ...}}")
    return name


def _renamed(m: Any, name: str) -> Callable[[], Metric]:
    """The factory of ``m`` (a callable's BatchMean takes ``name``, the dict key)."""
    _, factory = get_metric(m)
    if callable(m) and not isinstance(m, (str, Metric)) and not (isinstance(m, type) and issubclass(m, Metric)):
        return lambda: BatchMean(m, name=name)
    return factory
