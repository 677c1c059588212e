"""Small models, data and state snapshots shared by the LR range test tests."""
from __future__ import annotations

import copy
import random
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

FLAT = dict(diverge=float("inf"))  # never stop on divergence


def scripted(values: Sequence[float]) -> dict[str, Any]:
    """Own objects whose step losses are exactly ``values`` (a zero-gradient term keeps autograd happy).

    Batches are index tensors 0..n-1, so the data yields one batch per value.
    """
    model = nn.Linear(1, 1)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    data = [torch.tensor([i]) for i in range(len(values))]

    def batch_loss(batch: torch.Tensor) -> torch.Tensor:
        return model.weight.sum() * 0.0 + float(values[int(batch)])

    return dict(model=model, optimizer=optimizer, data=data, batch_loss=batch_loss)


class RecordingSGD(torch.optim.SGD):
    """SGD that records every group's lr at each ``step()``."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.seen: list[list[float]] = []

    def step(self, closure: Any = None) -> Any:
        self.seen.append([float(g["lr"]) for g in self.param_groups])
        return super().step(closure)


def bn_net() -> nn.Module:
    """A net with BatchNorm running statistics and dropout (uses the global RNG)."""
    return nn.Sequential(nn.Linear(4, 16), nn.BatchNorm1d(16), nn.ReLU(), nn.Dropout(0.2), nn.Linear(16, 3))


def blob_data(n: int = 96, seed: int = 0) -> TensorDataset:
    g = torch.Generator().manual_seed(seed)
    y = torch.randint(0, 3, (n,), generator=g)
    x = torch.randn(n, 4, generator=g) + 2.0 * nn.functional.one_hot(y, 4).float()
    return TensorDataset(x, y)


def blob_loader(batch_size: int = 16, shuffle: bool = True) -> DataLoader:
    """A shuffling DataLoader (its order comes from the global torch RNG)."""
    return DataLoader(blob_data(), batch_size=batch_size, shuffle=shuffle)


def warmed_up(model: nn.Module, optimizer: torch.optim.Optimizer, loader: DataLoader, steps: int = 2) -> None:
    """A few real steps, so that momentum buffers and BatchNorm statistics are not at their defaults."""
    it = iter(loader)
    for _ in range(steps):
        x, y = next(it)
        optimizer.zero_grad()
        nn.functional.cross_entropy(model(x), y).backward()
        optimizer.step()


def snapshot(model: nn.Module, optimizer: torch.optim.Optimizer | None) -> dict[str, Any]:
    """Deep copies of everything a range test must leave as it found it."""
    return {
        "params": {k: v.detach().clone() for k, v in model.named_parameters()},
        "buffers": {k: v.detach().clone() for k, v in model.named_buffers()},
        "grads": {k: None if v.grad is None else v.grad.clone() for k, v in model.named_parameters()},
        "modes": [m.training for m in model.modules()],
        "optimizer": None if optimizer is None else copy.deepcopy(optimizer.state_dict()),
        "torch_rng": torch.get_rng_state(),
        "python_rng": random.getstate(),
        "numpy_rng": np.random.get_state(),
    }


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, torch.Tensor):
        return isinstance(b, torch.Tensor) and a.dtype == b.dtype and a.shape == b.shape and torch.equal(a, b)
    if isinstance(a, dict):
        return isinstance(b, dict) and a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)):
        return isinstance(b, (list, tuple)) and len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    if isinstance(a, np.ndarray):
        return np.array_equal(a, b)
    return a == b


def assert_restored(before: dict[str, Any], model: nn.Module, optimizer: torch.optim.Optimizer | None) -> None:
    after = snapshot(model, optimizer)
    for key in ("params", "buffers", "grads", "modes", "optimizer", "torch_rng", "python_rng"):
        assert _same(before[key], after[key]), f"{key} changed by the range test"
    assert _same(list(before["numpy_rng"]), list(after["numpy_rng"])), "numpy RNG changed by the range test"


def same_draws_as_before(before: dict[str, Any]) -> bool:
    """True when the generators now draw what they would have drawn without the test."""
    now = (torch.rand(4), random.random(), np.random.rand())
    torch.set_rng_state(before["torch_rng"])
    random.setstate(before["python_rng"])
    np.random.set_state(before["numpy_rng"])
    then = (torch.rand(4), random.random(), np.random.rand())
    return bool(torch.equal(now[0], then[0])) and now[1] == then[1] and now[2] == then[2]
