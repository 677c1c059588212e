"""Where a range test's model, optimizer, loss and data come from: a Task, the user's own
objects, or both. ``check_sources`` validates everything before any work; ``Sources.build``
then builds what is missing (a fresh seeded model, an optimizer by name, the task's batches).
"""
from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn
from torch.utils.data import Dataset, IterableDataset

from tunewidgets.engine.config import TrainConfig
from tunewidgets.engine.devices import amp_mode, resolve_device
from tunewidgets.engine.losses import get_loss
from tunewidgets.engine.optimizers import build_optimizer, check_optimizer
from tunewidgets.engine.task import Task, unpack_default

__all__ = ["Sources", "check_sources"]

# settings build_optimizer takes by name; anything else in optimizer_kwargs goes to the torch class
_COMMON = ("momentum", "nesterov", "betas", "eps", "weight_decay")


@dataclass
class Sources:
    """Checked inputs of one range test (nothing built yet)."""

    task: Task | None
    model: nn.Module | None
    optimizer: torch.optim.Optimizer | None
    optimizer_name: str | None
    optimizer_settings: dict[str, Any]
    loss_fn: Callable[..., torch.Tensor] | None
    batch_loss: Callable[[Any], torch.Tensor] | None
    unpack: Callable[[Any], tuple[Any, Any]]
    data: Any
    val: Any
    device: torch.device
    seed: int | None
    batch_size: int | None
    amp_dtype: torch.dtype | None
    use_scaler: bool
    model_kwargs: dict[str, Any] = field(default_factory=dict)

    @property
    def optimizer_label(self) -> str:
        return self.optimizer_name or type(self.optimizer).__name__

    def build(self, start_lr: float) -> tuple[nn.Module, torch.optim.Optimizer, Any, Any]:
        """The model, optimizer, training batches and validation batches (or None) of the test."""
        model = self.model
        if model is None:
            assert self.task is not None
            model = self.task.build_model(**self.model_kwargs).to(self.device)
        optimizer = self.optimizer
        if optimizer is None:
            assert self.optimizer_name is not None
            optimizer = build_optimizer(self.optimizer_name, model.parameters(), lr=start_lr,
                                        **self.optimizer_settings)
        data = self.data
        if data is None:
            assert self.task is not None
            generator = torch.Generator().manual_seed(self.seed if self.seed is not None else 0)
            data = self.task.train_batches(self.batch_size, generator, self.device)
        val = self.val
        if val is True:
            assert self.task is not None
            val = self.task.val_batches(self.batch_size, self.device)
        return model, optimizer, data, val


def _model_device(model: nn.Module) -> torch.device:
    for t in model.parameters():
        return t.device
    for t in model.buffers():
        return t.device
    return torch.device("cpu")


def _same_device(asked: torch.device, actual: torch.device) -> bool:
    """``"cuda"`` (no index) matches a model on any CUDA device."""
    return asked.type == actual.type and (asked.index is None or asked.index == actual.index)


def _check_data(name: str, data: Any) -> None:
    if data is None or (name == "val" and isinstance(data, bool)):
        return
    if isinstance(data, Dataset) and not isinstance(data, IterableDataset):
        raise TypeError(f"{name}: got a Dataset, which yields single samples; wrap it in a DataLoader, e.g. "
                        f"torch.utils.data.DataLoader(dataset, batch_size=64, shuffle=True)")
    if not hasattr(data, "__iter__"):
        raise TypeError(f"{name}: expected an iterable of batches (a DataLoader, a list of (x, y) batches...), "
                        f"got {type(data).__name__}")


def _split_optimizer_kwargs(config: TrainConfig | None, optimizer_kwargs: Any) -> dict[str, Any]:
    if optimizer_kwargs is not None and not isinstance(optimizer_kwargs, Mapping):
        raise TypeError(f"optimizer_kwargs: expected a dict such as {{'momentum': 0.9}}, got {optimizer_kwargs!r}")
    settings: dict[str, Any] = {}
    if config is not None:
        settings = {k: getattr(config, k) for k in _COMMON}
        settings.update(config.optimizer_kwargs)
    settings.update(optimizer_kwargs or {})
    if "lr" in settings:
        raise ValueError("optimizer_kwargs: 'lr' is set by the ramp (start_lr .. end_lr); remove it")
    return settings


def check_sources(task: Any, *, model: Any, optimizer: Any, loss: Any, data: Any, batch_loss: Any,
                  unpack: Any, val: Any, config: Any, optimizer_kwargs: Any, device: Any,
                  seed: Any, batch_size: Any, amp: Any, start_lr: float) -> Sources:
    """Check where each input comes from and that it fits; raises before any work."""
    if isinstance(task, nn.Module):
        raise TypeError("task: got a model; pass your own objects by name: "
                        "lr_range_test(model=model, optimizer=opt, loss=loss_fn, data=loader)")
    if task is not None and not isinstance(task, Task):
        raise TypeError(f"task: expected a tw.Task (e.g. tw.tasks.digits()), got {type(task).__name__}")
    if config is not None and not isinstance(config, TrainConfig):
        raise TypeError(f"config: expected a tw.TrainConfig, got {type(config).__name__}")
    if model is not None and not isinstance(model, nn.Module):
        raise TypeError(f"model: expected a torch.nn.Module, got {type(model).__name__}")

    missing = []
    if task is None:
        if model is None:
            missing.append("model")
        if loss is None and batch_loss is None:
            missing.append("loss (or batch_loss)")
        if data is None:
            missing.append("data")
    if missing:
        raise ValueError(
            f"lr_range_test: missing {', '.join(missing)}; give a task, e.g. lr_range_test(tw.tasks.digits()), "
            "or your own objects: lr_range_test(model=model, optimizer=opt, loss=loss_fn, data=loader)")

    if loss is not None and batch_loss is not None:
        raise ValueError("loss, batch_loss: give one of them; batch_loss(batch) computes the whole loss itself")
    if batch_loss is not None:
        if not callable(batch_loss):
            raise TypeError(f"batch_loss: expected a callable batch -> loss tensor, got {batch_loss!r}")
        if model is None:
            raise ValueError("batch_loss: needs model= too (the model batch_loss uses), so that the test can "
                             "put it in train mode and restore its weights afterwards")
    loss_fn = get_loss(loss) if loss is not None else (task.loss_fn if task is not None else None)
    if unpack is not None and not callable(unpack):
        raise TypeError(f"unpack: expected a callable batch -> (inputs, targets), got {unpack!r}")
    unpack_fn = unpack or (task.unpack if task is not None and task.unpack is not None else unpack_default)
    _check_data("data", data)
    _check_data("val", val)
    if val is False:
        val = None
    if val is True and (task is None or task.val is None):
        raise ValueError("val: True uses the task's validation data, but "
                         f"{'there is no task' if task is None else 'the task has none'}; pass val=loader")

    name: str | None = None
    if isinstance(optimizer, torch.optim.Optimizer):
        if model is None:
            raise ValueError("optimizer: an optimizer object needs model= (the model whose parameters it holds); "
                             "or pass a name such as optimizer='sgd' to build one over a fresh model of the task")
        if optimizer_kwargs:
            raise ValueError("optimizer_kwargs: only apply when the optimizer is given by name; set them on "
                             "your optimizer object instead")
        held = {id(p) for g in optimizer.param_groups for p in g["params"]}
        if not any(id(p) in held for p in model.parameters()):
            raise ValueError("optimizer: holds none of the model's parameters; build it over them, e.g. "
                             "torch.optim.SGD(model.parameters(), lr=1e-3)")
        if float(optimizer.param_groups[0]["lr"]) <= 0:
            raise ValueError(f"optimizer: its first param group has lr={float(optimizer.param_groups[0]['lr'])}; "
                             "the ramp keeps each group's lr ratio to the first group's, so give it an lr > 0")
        settings: dict[str, Any] = {}
    elif optimizer is None or isinstance(optimizer, str):
        name = check_optimizer(optimizer if optimizer is not None
                               else (config.optimizer if config is not None else "sgd"))
        settings = _split_optimizer_kwargs(config, optimizer_kwargs)
        build_optimizer(name, [nn.Parameter(torch.zeros(1))], lr=start_lr, **settings)  # bad kwargs fail now
    else:
        raise TypeError(f"optimizer: expected a name such as 'sgd' or a torch.optim.Optimizer, got "
                        f"{type(optimizer).__name__}")

    if model is not None:
        dev = _model_device(model)
        if device is not None and device != "auto" and not _same_device(resolve_device(device), dev):
            raise ValueError(f"device: {device!r} differs from the device of the given model ({dev}); move the "
                             f"model first with model.to({str(device)!r}), or leave device unset")
    else:
        dev = resolve_device(device if device is not None else (config.device if config is not None else "auto"))

    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int) or seed < 0):
        raise ValueError(f"seed: must be a whole number >= 0 or None, got {seed!r}")
    if seed is None and task is not None:
        seed = config.seed if config is not None else 0
    if batch_size is not None and (isinstance(batch_size, bool) or not isinstance(batch_size, int)
                                   or batch_size < 1):
        raise ValueError(f"batch_size: must be a whole number >= 1, got {batch_size!r}; e.g. batch_size=64")
    if batch_size is None and config is not None:
        batch_size = config.batch_size
    amp_dtype, use_scaler = amp_mode(amp, dev)
    return Sources(task=task, model=model, optimizer=optimizer if name is None else None, optimizer_name=name,
                   optimizer_settings=settings, loss_fn=loss_fn, batch_loss=batch_loss, unpack=unpack_fn,
                   data=data, val=val, device=dev, seed=seed, batch_size=batch_size,
                   amp_dtype=amp_dtype, use_scaler=use_scaler,
                   model_kwargs=dict(config.model_kwargs) if config is not None else {})
