"""Small tasks for engine tests (a few hundred samples, tiny models)."""
from __future__ import annotations

import torch
from torch import nn
from torch.utils.data import TensorDataset

import tunewidgets as tw


def blobs(n: int = 256, seed: int = 0) -> TensorDataset:
    g = torch.Generator().manual_seed(seed)
    y = torch.randint(0, 3, (n,), generator=g)
    centers = torch.tensor([[2.0, 0.0], [-2.0, 1.0], [0.0, -2.0]])
    x = centers[y] + 0.7 * torch.randn(n, 2, generator=g)
    return TensorDataset(x, y)


def mlp(width: int = 16, dropout: float = 0.0) -> nn.Module:
    return nn.Sequential(nn.Linear(2, width), nn.ReLU(), nn.Dropout(dropout), nn.Linear(width, 3))


def blob_task(**kw) -> tw.Task:
    args = dict(model=mlp, train=blobs(256, 0), val=blobs(128, 1), loss="cross_entropy",
                metrics=("accuracy",), batch_size=32)
    args.update(kw)
    return tw.Task(**args)
