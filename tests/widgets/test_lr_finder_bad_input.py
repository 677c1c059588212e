"""LRFinder refuses first values its controls cannot hold, instead of clamping them."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn
from torch.utils.data import TensorDataset

import tunewidgets as tw
from tunewidgets.widgets import LRFinder


@pytest.fixture(scope="module")
def task() -> tw.Task:
    g = torch.Generator().manual_seed(0)
    data = TensorDataset(torch.randn(64, 2, generator=g), torch.randint(0, 3, (64,), generator=g))
    return tw.Task(model=lambda: nn.Linear(2, 3), train=data, batch_size=16)


@pytest.mark.parametrize("kwargs, error, pattern", [
    ({"steps": 0}, ValueError, r"^steps: must be in \[2, 1000000\] .*got 0"),
    ({"steps": 1}, ValueError, r"^steps: must be in \[2, 1000000\] .*got 1"),
    ({"steps": 2_000_000}, ValueError, r"^steps: must be in \[2, 1000000\] .*got 2000000"),
    ({"steps": 50.0}, TypeError, r"^steps: expected a whole number .*got 50.0"),
    ({"steps": True}, TypeError, r"^steps: expected a whole number .*got True"),
    ({"smoothing": 1.5}, ValueError, r"^smoothing: must be a number in \[0, 0.999\], got 1.5"),
    ({"smoothing": -0.1}, ValueError, r"^smoothing: must be a number in \[0, 0.999\], got -0.1"),
    ({"smoothing": float("nan")}, ValueError, r"^smoothing: .*got nan"),
    ({"smoothing": "0.9"}, ValueError, r"^smoothing: .*got '0.9'"),
])
def test_values_outside_the_controls_are_refused_not_clamped(task, kwargs, error, pattern):
    with pytest.raises(error, match=pattern):
        LRFinder(task, **kwargs)


def test_values_inside_the_controls_are_kept_exactly(task):
    f = LRFinder(task, steps=np.int64(2), smoothing=0.999, device="cpu")
    assert f.steps.value == 2 and f.smoothing.value == 0.999
    settings = f.test_settings()
    assert settings["steps"] == 2 and settings["smoothing"] == 0.999
    assert LRFinder(task, smoothing=0, device="cpu").test_settings()["smoothing"] == 0.0
