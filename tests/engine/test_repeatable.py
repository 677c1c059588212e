"""Same seed and config, same run: whatever else runs in the process, on other threads too."""
from __future__ import annotations

import random
import threading

import numpy as np
import torch
from torch import nn

import tunewidgets as tw
from engine_helpers import blob_task

CFG = tw.TrainConfig(epochs=3, lr=0.05, seed=0, device="cpu", log_every=1)


def _dropout_task():
    return blob_task(model=lambda: nn.Sequential(nn.Linear(2, 32), nn.ReLU(), nn.Dropout(0.3), nn.Linear(32, 3)))


def _curve(run):
    return run.steps()["loss"].tolist(), run.evals()["val_loss"].tolist()


def test_two_threads_training_at_once_match_their_lone_runs():
    lone = _curve(tw.train(_dropout_task(), CFG))
    other_cfg = CFG.replace(seed=1, lr=0.1)
    lone_other = _curve(tw.train(_dropout_task(), other_cfg))
    results = {}

    def work(name, cfg):
        results[name] = _curve(tw.train(_dropout_task(), cfg))
    threads = [threading.Thread(target=work, args=(f"a{i}", CFG)) for i in range(2)]
    threads += [threading.Thread(target=work, args=("b", other_cfg))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert results["a0"] == lone and results["a1"] == lone
    assert results["b"] == lone_other
    assert lone != lone_other


def test_a_range_test_running_in_the_background_does_not_change_a_seeded_run():
    # the LRFinder pattern: finder.run() in a worker thread, then tw.train(seed=0) in the next cell
    lone = _curve(tw.train(_dropout_task(), CFG))
    started = threading.Event()
    background = threading.Thread(target=lambda: tw.lr_range_test(
        _dropout_task(), steps=400, diverge=float("inf"), device="cpu", seed=None,
        on_step=lambda rec: started.set()))
    background.start()
    started.wait(30)
    during = _curve(tw.train(_dropout_task(), CFG))
    background.join(60)
    assert during == lone


def test_python_and_numpy_generators_are_seeded_inside_the_run_and_restored():
    def numpy_init():
        model = nn.Linear(2, 3)
        with torch.no_grad():
            model.weight.copy_(torch.from_numpy(np.random.randn(3, 2)).float())
            model.bias.fill_(random.random())
        return model
    task = blob_task(model=numpy_init)
    np.random.seed(123)
    random.seed(123)
    before = (np.random.get_state()[1].copy(), random.getstate())
    first = tw.train(task, CFG)
    np.random.seed(999)  # a different outside state must not matter
    second = tw.train(task, CFG)
    assert _curve(first) == _curve(second)
    third = tw.train(task, CFG.replace(seed=5))
    assert _curve(third) != _curve(first)
    np.random.seed(123)
    random.seed(123)
    tw.train(task, CFG)
    assert (np.random.get_state()[1] == before[0]).all() and random.getstate() == before[1]
