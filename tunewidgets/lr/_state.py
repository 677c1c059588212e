"""Save and restore what a range test changes: weights, buffers, gradients, train/eval modes,
optimizer state and the random number generators. Copies live on the CPU, so a test on a GPU
does not double its memory.
"""
from __future__ import annotations

import copy
from collections.abc import Iterable
from typing import Any

import torch
from torch import nn

from tunewidgets.engine.seeding import RNGState  # shared with the train loop

__all__ = ["RNGState", "ModelState", "OptimizerState"]


def _cpu_copy(obj: Any) -> Any:
    """A deep copy with every tensor copied to the CPU."""
    if isinstance(obj, torch.Tensor):
        return obj.detach().to("cpu", copy=True)
    if isinstance(obj, dict):
        return {k: _cpu_copy(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(_cpu_copy(v) for v in obj)
    return copy.deepcopy(obj)


class ModelState:
    """Values of parameters and buffers (persistent or not), their gradients, and every module's mode.

    Restoring copies the values back into the same tensor objects, so an optimizer that holds
    the parameters keeps holding them.
    """

    def __init__(self, model: nn.Module, extra_params: Iterable[torch.Tensor] = ()) -> None:
        seen: set[int] = set()
        self.tensors: list[tuple[torch.Tensor, torch.Tensor]] = []
        self.grads: list[tuple[torch.Tensor, torch.Tensor | None]] = []
        for t in [*model.parameters(), *model.buffers(), *extra_params]:
            if id(t) in seen:
                continue
            seen.add(id(t))
            self.tensors.append((t, _cpu_copy(t)))
            if t.requires_grad:
                self.grads.append((t, None if t.grad is None else _cpu_copy(t.grad)))
        self.modes = [(m, m.training) for m in model.modules()]

    def restore(self) -> None:
        with torch.no_grad():
            for live, saved in self.tensors:
                live.copy_(saved)
            for param, grad in self.grads:
                param.grad = None if grad is None else grad.to(param.device)
        for module, training in self.modes:
            module.training = training


class OptimizerState:
    """An optimizer's ``state_dict`` on the CPU; tensor-valued group settings keep their objects."""

    def __init__(self, optimizer: torch.optim.Optimizer) -> None:
        self.optimizer = optimizer
        self.saved = _cpu_copy(optimizer.state_dict())
        self.group_tensors = [{k: v for k, v in g.items() if k != "params" and isinstance(v, torch.Tensor)}
                              for g in optimizer.param_groups]

    def restore(self) -> None:
        self.optimizer.load_state_dict(self.saved)
        for group, tensors, saved in zip(self.optimizer.param_groups, self.group_tensors,
                                         self.saved["param_groups"]):
            for key, live in tensors.items():
                with torch.no_grad():
                    live.copy_(saved[key])
                group[key] = live
