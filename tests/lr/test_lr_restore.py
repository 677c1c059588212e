"""After the test everything is as before: weights, buffers, gradients, modes, optimizer state, RNGs."""
from __future__ import annotations

import random
import threading

import numpy as np
import pytest
import torch
from lr_helpers import (FLAT, assert_restored, blob_data, blob_loader, bn_net, same_draws_as_before, snapshot,
                        warmed_up)

import tunewidgets as tw
from tunewidgets.lr._state import ModelState


@pytest.fixture
def objects():
    torch.manual_seed(0)
    model = bn_net()
    loader = blob_loader()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9, weight_decay=1e-4)
    warmed_up(model, optimizer, loader)
    for p in list(model.parameters())[:2]:
        p.grad = torch.full_like(p, 0.25)   # leftover gradients must come back too
    list(model.parameters())[-1].grad = None
    random.seed(1)
    np.random.seed(2)
    return model, optimizer, loader


def _test(model, optimizer, loader, **kwargs):
    settings = dict(start_lr=1e-4, end_lr=1.0, steps=12, loss="cross_entropy")
    settings.update(kwargs)
    return tw.lr_range_test(model=model, optimizer=optimizer, data=loader, **settings)


def test_restored_after_a_normal_end(objects):
    model, optimizer, loader = objects
    before = snapshot(model, optimizer)
    assert "momentum_buffer" in str(before["optimizer"]["state"])  # there is optimizer state to restore
    res = _test(model, optimizer, loader, **FLAT)
    assert res.stop_reason == "finished" and len(res.lrs) == 12
    assert not np.allclose(res.losses, res.losses[0])  # the weights did move during the test
    assert_restored(before, model, optimizer)
    assert same_draws_as_before(before)


def test_restored_after_divergence(objects):
    model, optimizer, loader = objects
    before = snapshot(model, optimizer)
    res = _test(model, optimizer, loader, start_lr=1.0, end_lr=1e6, steps=40, smoothing=0.0, diverge=1.5)
    assert res.stop_reason == "diverged" and res.stopped_early
    assert_restored(before, model, optimizer)
    assert same_draws_as_before(before)


def test_restored_after_stop_set_inside_on_step(objects):
    model, optimizer, loader = objects
    before = snapshot(model, optimizer)
    stop = threading.Event()
    seen = []

    def on_step(rec):
        seen.append(rec)
        if rec["step"] == 5:
            stop.set()

    res = _test(model, optimizer, loader, stop=stop, on_step=on_step, **FLAT)
    assert res.stop_reason == "stopped" and res.stopped_early and res.stopped_at == 5
    assert len(res.lrs) == len(seen) == 5
    assert_restored(before, model, optimizer)
    assert same_draws_as_before(before)


def test_restored_after_stop_from_another_thread(objects):
    model, optimizer, loader = objects
    before = snapshot(model, optimizer)
    stop, reached = threading.Event(), threading.Event()

    def stopper():
        reached.wait(10)
        stop.set()

    def on_step(rec):
        if rec["step"] == 3:
            reached.set()
            assert stop.wait(10)  # hold step 2 until the other thread has asked to stop

    thread = threading.Thread(target=stopper)
    thread.start()
    res = _test(model, optimizer, loader, stop=stop, on_step=on_step, **FLAT)
    thread.join(10)
    assert res.stop_reason == "stopped" and len(res.lrs) == 3
    assert_restored(before, model, optimizer)


def test_stop_set_before_the_start_records_nothing(objects):
    model, optimizer, loader = objects
    before = snapshot(model, optimizer)
    stop = threading.Event()
    stop.set()
    res = _test(model, optimizer, loader, stop=stop)
    assert res.stop_reason == "stopped" and len(res.lrs) == 0 and res.stopped_at is None
    assert res.suggested is None and res.warning
    assert_restored(before, model, optimizer)


def test_restored_after_an_exception_in_the_loss(objects):
    model, optimizer, loader = objects
    before = snapshot(model, optimizer)
    calls = []

    def loss(output, target):
        calls.append(1)
        if len(calls) == 6:  # the shape check on the first batch, then steps 0..4
            raise RuntimeError("boom at step 4")
        return torch.nn.functional.cross_entropy(output, target)

    with pytest.raises(RuntimeError, match="boom at step 4"):
        _test(model, optimizer, loader, loss=loss, **FLAT)
    assert_restored(before, model, optimizer)
    assert same_draws_as_before(before)


def test_restored_after_an_exception_in_on_step(objects):
    model, optimizer, loader = objects
    before = snapshot(model, optimizer)

    def on_step(rec):
        if rec["step"] == 3:
            raise KeyError("widget went away")

    with pytest.raises(KeyError):
        _test(model, optimizer, loader, on_step=on_step, **FLAT)
    assert_restored(before, model, optimizer)


def test_eval_mode_is_restored_and_the_test_trains_in_train_mode(objects):
    model, optimizer, loader = objects
    model.eval()
    before = snapshot(model, optimizer)
    modes = []

    def loss(output, target):
        if torch.is_grad_enabled():  # not the no-grad shape check on the first batch
            modes.append(model.training)
        return torch.nn.functional.cross_entropy(output, target)

    _test(model, optimizer, loader, loss=loss, **FLAT)
    assert modes and all(modes)
    assert not model.training and not any(m.training for m in model.modules())
    assert_restored(before, model, optimizer)


def test_adam_state_and_param_groups_are_restored():
    torch.manual_seed(0)
    model = bn_net()
    loader = blob_loader()
    optimizer = torch.optim.Adam([{"params": model[0].parameters(), "lr": 1e-3},
                                  {"params": model[4].parameters(), "lr": 1e-2}], weight_decay=0.01)
    warmed_up(model, optimizer, loader)
    before = snapshot(model, optimizer)
    res = tw.lr_range_test(model=model, optimizer=optimizer, loss="cross_entropy", data=loader,
                           steps=10, start_lr=1e-5, end_lr=1e-1, **FLAT)
    assert len(res.lrs) == 10
    assert_restored(before, model, optimizer)
    assert [g["lr"] for g in optimizer.param_groups] == [1e-3, 1e-2]
    # the optimizer keeps working on the restored state
    x, y = next(iter(loader))
    torch.nn.functional.cross_entropy(model(x), y).backward()
    optimizer.step()


def test_task_mode_leaves_the_global_generators_as_they_were():
    task = tw.Task(model=bn_net, train=blob_data(), batch_size=16)
    torch.manual_seed(5)
    random.seed(5)
    np.random.seed(5)
    before = snapshot(torch.nn.Linear(1, 1), None)
    tw.lr_range_test(task, steps=10, device="cpu", seed=3)
    assert same_draws_as_before(before)


def test_an_existing_model_on_a_task_is_tested_and_restored():
    task = tw.Task(model=bn_net, train=blob_data(), batch_size=16)
    model = task.build_model()
    before = snapshot(model, None)
    res = tw.lr_range_test(task, model=model, optimizer="sgd", steps=10, **FLAT)
    assert len(res.lrs) == 10
    assert_restored(before, model, None)


def test_the_saved_copy_is_on_the_cpu_and_separate_from_the_live_tensors():
    model = bn_net()
    state = ModelState(model)
    for live, saved in state.tensors:
        assert saved.device.type == "cpu"
        assert saved.data_ptr() != live.data_ptr()
    with torch.no_grad():
        for p in model.parameters():
            p.add_(1.0)
        model[1].running_mean.add_(3.0)
    state.restore()
    for live, saved in state.tensors:
        assert torch.equal(live, saved)
