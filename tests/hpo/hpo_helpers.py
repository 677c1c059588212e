"""Small tasks and models for search tests: a few hundred points, models of a few hundred weights."""
from __future__ import annotations

import weakref

import pytest
import torch
from torch import nn
from torch.utils.data import TensorDataset

import tunewidgets as tw

@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """Tiny models train fastest on one thread; on a shared 2-core machine more threads only contend
    (a 10-trial search: 0.7 s on one thread, 37 s on two under load). Import it into a test module."""
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(old)


BASE = tw.TrainConfig(optimizer="sgd", lr=0.1, momentum=0.9, epochs=3, device="cpu", seed=0)


def blobs(n: int = 192, seed: int = 0, spread: float = 1.2) -> TensorDataset:
    g = torch.Generator().manual_seed(seed)
    y = torch.randint(0, 3, (n,), generator=g)
    centers = torch.tensor([[2.0, 0.0], [-2.0, 1.0], [0.0, -2.0]])
    return TensorDataset(centers[y] + spread * torch.randn(n, 2, generator=g), y)


class Net(nn.Sequential):
    """An MLP; ``fail`` makes its forward raise (``"error"``, ``"oom"``) to test failing trials."""

    made: "weakref.WeakSet[Net]" = weakref.WeakSet()

    def __init__(self, width: int = 8, dropout: float = 0.0, fail: str = "") -> None:
        super().__init__(nn.Linear(2, width), nn.ReLU(), nn.Dropout(dropout), nn.Linear(width, 3))
        self.fail = fail
        self.calls = 0
        self.ballast = nn.Parameter(torch.zeros(1)) if fail else None
        Net.made.add(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.calls += 1
        if self.fail and self.calls > 3:  # after the first-batch check and a couple of steps
            if self.fail == "oom":
                raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 20.00 GiB")
            raise RuntimeError("boom: this width does not work")
        return super().forward(x)


def blob_task(**kw) -> tw.Task:
    args = dict(model=Net, train=blobs(192, 0), val=blobs(96, 1), loss="cross_entropy", metrics=("accuracy",),
                batch_size=32, name="blobs")
    args.update(kw)
    return tw.Task(**args)
