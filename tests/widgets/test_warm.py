"""The one-time work of a first run, done ahead: it makes later optimizers cheap, draws from no random
generator (a run's seeds stay as they were), runs once, and outside a kernel schedules nothing."""
from __future__ import annotations

import random
import sys

import numpy as np
import pytest
import torch

from tunewidgets.widgets import _warm


def test_warming_draws_from_no_random_generator_and_runs_once(monkeypatch):
    monkeypatch.setattr(_warm, "_done", set())
    torch.manual_seed(123)
    random.seed(4)
    np.random.seed(5)
    states = (torch.get_rng_state(), random.getstate(), np.random.get_state()[1].copy())
    assert _warm.warm_now("torch", "search") == ["torch", "search"]
    assert torch.equal(torch.get_rng_state(), states[0]) and random.getstate() == states[1]
    assert (np.random.get_state()[1] == states[2]).all()
    assert "torch._dynamo" in sys.modules and "optuna.samplers" in sys.modules  # what a first run imports
    assert set(_warm.timings) >= {"torch", "search"}
    assert _warm.warm_now("torch", "search") == []  # once per process


def test_outside_a_kernel_nothing_is_scheduled_and_unknown_parts_are_named(monkeypatch):
    monkeypatch.setattr(_warm, "_done", set())
    monkeypatch.setattr(_warm, "_scheduled", set())
    assert _warm.warm_later("torch", "search") is False and _warm._scheduled == set()
    with pytest.raises(ValueError, match=r"parts: 'gpu' is not one of torch, search"):
        _warm.warm_now("gpu")


def test_widgets_name_what_their_first_run_needs():
    from tunewidgets.widgets import LRFinder, Search

    assert LRFinder._warm_parts == ("torch",) and Search._warm_parts == ("torch", "search")
