"""``Task``: what to train (a model factory), on what data, judged by which loss and metrics."""
from __future__ import annotations

import inspect
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset, TensorDataset

from tunewidgets.engine._values import whole
from tunewidgets.engine.collate import Collate

__all__ = ["Task", "TensorBatches", "unpack_default", "to_device"]

_INPUT_KEYS = ("x", "input", "inputs", "image", "images", "features")
_TARGET_KEYS = ("y", "target", "targets", "label", "labels", "mask", "masks")


def unpack_default(batch: Any) -> tuple[Any, Any]:
    """Turn a batch into ``(inputs, targets)``: a 2-tuple/list, or a dict with usual key names."""
    if isinstance(batch, (tuple, list)) and len(batch) == 2:
        return batch[0], batch[1]
    if isinstance(batch, Mapping):
        xs = [k for k in _INPUT_KEYS if k in batch]
        ys = [k for k in _TARGET_KEYS if k in batch]
        if xs and ys:
            return batch[xs[0]], batch[ys[0]]
        raise ValueError(
            f"unpack: a dict batch with keys {sorted(batch)} has no recognised input key "
            f"{_INPUT_KEYS} and target key {_TARGET_KEYS}; pass Task(unpack=lambda b: (b['...'], b['...']))"
        )
    kind = type(batch).__name__
    size = f" of length {len(batch)}" if isinstance(batch, (tuple, list)) else ""
    raise ValueError(
        f"unpack: cannot split a batch of type {kind}{size} into (inputs, targets); "
        "pass Task(unpack=fn) where fn(batch) returns (inputs, targets)"
    )


def to_device(obj: Any, device: torch.device, non_blocking: bool = False) -> Any:
    """Move tensors (also inside tuples, lists and dicts) to ``device``."""
    if isinstance(obj, torch.Tensor):
        return obj.to(device, non_blocking=non_blocking)
    if isinstance(obj, (tuple, list)):
        return type(obj)(to_device(o, device, non_blocking) for o in obj)
    if isinstance(obj, Mapping):
        return {k: to_device(v, device, non_blocking) for k, v in obj.items()}
    return obj


class TensorBatches:
    """Mini-batches of a ``TensorDataset`` by slicing, kept on one device.

    Much cheaper than a DataLoader for data that fits in memory: the tensors move to the
    device once, and each epoch draws one permutation from ``generator``.
    """

    def __init__(self, tensors: Sequence[torch.Tensor], batch_size: int, shuffle: bool = True,
                 generator: torch.Generator | None = None, drop_last: bool = False) -> None:
        self.tensors = tuple(tensors)
        self.batch_size = int(batch_size)
        self.shuffle = shuffle
        self.generator = generator
        self.drop_last = drop_last
        self.n = int(self.tensors[0].shape[0])
        self.device = self.tensors[0].device

    def __len__(self) -> int:
        if self.drop_last:
            return self.n // self.batch_size
        return -(-self.n // self.batch_size)

    def __iter__(self) -> Iterator[tuple[torch.Tensor, ...]]:
        if self.shuffle:
            order = torch.randperm(self.n, generator=self.generator)
            order = order.to(self.tensors[0].device)
        else:
            order = None
        bs = self.batch_size
        for i in range(len(self)):
            if order is None:
                yield tuple(t[i * bs:(i + 1) * bs] for t in self.tensors)
            else:
                idx = order[i * bs:(i + 1) * bs]
                yield tuple(t[idx] for t in self.tensors)


@dataclass
class Task:
    """A model factory, its data, loss and metrics.

    Args:
        model: a callable returning a fresh ``nn.Module``; may take keyword arguments
            (``width``, ``dropout``...) that ``model_kwargs`` or a search sets.
        train, val: a ``Dataset`` or ``DataLoader``; a ``TensorDataset`` is batched by slicing.
        loss: a name (see ``tunewidgets.engine.losses.LOSSES``) or a callable ``(output, target)``.
        metrics: names (see ``tunewidgets.engine.metrics.METRICS``) or callables, computed on val;
            or a dict ``{name: metric}`` to name them (each is reported as ``val_<name>``, so
            names must be distinct: two lambdas in a list are refused).
        batch_size: mini-batch size when the data is a Dataset (a NumPy int is fine).
        unpack: ``batch -> (inputs, targets)`` for batches of other shapes.

    Example:
        >>> import torch, tunewidgets as tw
        >>> from torch.utils.data import TensorDataset
        >>> ds = TensorDataset(torch.randn(32, 4), torch.randint(0, 3, (32,)))
        >>> task = tw.Task(model=lambda width=8: torch.nn.Sequential(
        ...     torch.nn.Linear(4, width), torch.nn.ReLU(), torch.nn.Linear(width, 3)),
        ...     train=ds, val=ds, loss="cross_entropy", metrics=("accuracy",), batch_size=8)
        >>> task.build_model(width=16)[0].out_features
        16
    """

    model: Callable[..., nn.Module]
    train: Dataset | DataLoader
    val: Dataset | DataLoader | None = None
    loss: str | Callable[..., torch.Tensor] = "cross_entropy"
    metrics: Sequence[str | Callable[..., Any]] | Mapping[str, str | Callable[..., Any]] = ()
    batch_size: int = 64
    unpack: Callable[[Any], tuple[Any, Any]] | None = None
    loss_kwargs: Mapping[str, Any] = field(default_factory=dict)
    model_kwargs: Mapping[str, Any] = field(default_factory=dict)
    name: str = "task"
    num_workers: int = 0
    recommended: Mapping[str, Any] = field(default_factory=dict)  # TrainConfig kwargs that train it well

    def __post_init__(self) -> None:
        from tunewidgets.engine.losses import get_loss
        from tunewidgets.engine.metrics import resolve_metrics

        if not callable(self.model):
            raise TypeError(
                f"model: expected a factory (a callable returning an nn.Module), got {self.model!r}; "
                "pass the class or a function, e.g. Task(model=MyNet) or Task(model=lambda: MyNet())"
            )
        if isinstance(self.model, nn.Module):
            raise TypeError(
                "model: got an nn.Module instance, but a Task needs a factory so each run starts fresh; "
                "pass Task(model=lambda: net_class(...)) instead"
            )
        self.batch_size = whole("batch_size", self.batch_size, 1, fix="use e.g. batch_size=64")
        self.num_workers = whole("num_workers", self.num_workers, 0, fix="0 loads batches in this process")
        _check_data("train", self.train)
        if self.val is not None:
            _check_data("val", self.val)
        if isinstance(self.metrics, str):
            self.metrics = (self.metrics,)
        self.metrics = dict(self.metrics) if isinstance(self.metrics, Mapping) else tuple(self.metrics)
        self.loss_kwargs = dict(self.loss_kwargs or {})
        self.model_kwargs = dict(self.model_kwargs or {})
        # resolve names now: unknown names fail here, before any training
        self.loss_fn = get_loss(self.loss, **self.loss_kwargs)
        self.metric_fns = resolve_metrics(self.metrics)
        if self.unpack is not None and not callable(self.unpack):
            raise TypeError(f"unpack: expected a callable batch -> (inputs, targets), got {self.unpack!r}")

    # -- model --------------------------------------------------------------------------
    def build_model(self, **overrides: Any) -> nn.Module:
        """A fresh model from the factory, with ``model_kwargs`` updated by ``overrides``."""
        kwargs = {**self.model_kwargs, **overrides}
        if kwargs:
            _check_factory_kwargs(self.model, kwargs)
        model = self.model(**kwargs)
        if not isinstance(model, nn.Module):
            raise TypeError(
                f"model: the factory {_name(self.model)} returned {type(model).__name__}, not a "
                "torch.nn.Module; make it return the network, e.g. `return nn.Sequential(...)`"
            )
        return model

    # -- data ---------------------------------------------------------------------------
    def unpack_batch(self, batch: Any) -> tuple[Any, Any]:
        return self.unpack(batch) if self.unpack is not None else unpack_default(batch)

    def train_batches(self, batch_size: int | None = None, generator: torch.Generator | None = None,
                      device: torch.device | None = None) -> Any:
        """An iterable of training batches (shuffled with ``generator``)."""
        return self._batches(self.train, batch_size, shuffle=True, generator=generator, device=device, field="train")

    def val_batches(self, batch_size: int | None = None, device: torch.device | None = None) -> Any:
        if self.val is None:
            return None
        bs = max(batch_size or self.batch_size, 256)
        return self._batches(self.val, bs, shuffle=False, generator=None, device=device, field="val")

    def _batches(self, data: Any, batch_size: int | None, shuffle: bool,
                 generator: torch.Generator | None, device: torch.device | None, field: str = "train") -> Any:
        if isinstance(data, DataLoader):
            return data
        bs = int(batch_size or self.batch_size)
        if isinstance(data, TensorDataset):
            tensors = data.tensors
            if device is not None:
                tensors = tuple(t.to(device) for t in tensors)
            return TensorBatches(tensors, bs, shuffle=shuffle, generator=generator)
        # the default collate, raising an error that names the field and the items' shapes
        return DataLoader(data, batch_size=bs, shuffle=shuffle, generator=generator,
                          num_workers=self.num_workers, collate_fn=Collate(field))

    def num_train_samples(self) -> int | None:
        data = self.train.dataset if isinstance(self.train, DataLoader) else self.train
        try:
            return len(data)  # type: ignore[arg-type]
        except TypeError:
            return None


def _name(fn: Any) -> str:
    return getattr(fn, "__qualname__", None) or repr(fn)


def _check_data(field_name: str, data: Any) -> None:
    if isinstance(data, DataLoader):
        try:
            n = len(data)
        except TypeError:
            return  # iterable-style loader: length unknown
        if n == 0:
            raise ValueError(f"{field_name}: the DataLoader yields no batches; give it a non-empty dataset")
        return
    if not isinstance(data, Dataset) and not hasattr(data, "__getitem__"):
        raise TypeError(
            f"{field_name}: expected a torch Dataset or DataLoader, got {type(data).__name__}; "
            "wrap tensors as torch.utils.data.TensorDataset(x, y)"
        )
    try:
        n = len(data)  # type: ignore[arg-type]
    except TypeError:
        return
    if n == 0:
        raise ValueError(f"{field_name}: the dataset is empty (0 samples); give it at least one sample")


def _check_factory_kwargs(factory: Callable[..., Any], kwargs: Mapping[str, Any]) -> None:
    try:
        sig = inspect.signature(factory)
    except (TypeError, ValueError):
        return
    params = sig.parameters.values()
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params):
        return
    names = {p.name for p in params if p.kind in (inspect.Parameter.POSITIONAL_OR_KEYWORD,
                                                   inspect.Parameter.KEYWORD_ONLY)}
    unknown = sorted(set(kwargs) - names)
    if unknown:
        raise ValueError(
            f"model_kwargs: the factory {_name(factory)} takes no argument(s) {unknown}; "
            f"it accepts {sorted(names) or 'none'}; add them to its signature or drop them"
        )
