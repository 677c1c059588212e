"""Bad input fails before any work, with a message naming the field, the value and a fix."""
from __future__ import annotations

import math

import pytest
import torch
from lr_helpers import blob_data, blob_loader, bn_net, snapshot
from torch import nn

import tunewidgets as tw


def _task():
    return tw.Task(model=lambda: nn.Linear(4, 3), train=blob_data(), batch_size=16)


class _Untouchable(nn.Module):
    """A model whose forward fails: any work done before the check would show."""

    def __init__(self) -> None:
        super().__init__()
        self.lin = nn.Linear(4, 3)

    def forward(self, x):
        raise AssertionError("the model ran before the input was checked")


@pytest.mark.parametrize("kwargs, error, words", [
    (dict(start_lr=0), ValueError, ["start_lr", "0", "1e-7"]),
    (dict(start_lr=-1e-3), ValueError, ["start_lr", "-0.001"]),
    (dict(start_lr=math.nan), ValueError, ["start_lr", "nan"]),
    (dict(start_lr="1e-3"), ValueError, ["start_lr", "'1e-3'"]),
    (dict(start_lr=1e-2, end_lr=1e-2), ValueError, ["end_lr", "> start_lr", "0.01"]),
    (dict(end_lr=math.inf), ValueError, ["end_lr", "inf"]),
    (dict(steps=1), ValueError, ["steps", ">= 2", "1"]),
    (dict(steps=10.0), TypeError, ["steps", "10.0"]),
    (dict(steps=True), TypeError, ["steps", "True"]),
    (dict(mode="log"), ValueError, ["mode", "'log'", "'exp'", "'linear'"]),
    (dict(smoothing=1.0), ValueError, ["smoothing", "[0, 1)", "1.0"]),
    (dict(smoothing=-0.1), ValueError, ["smoothing", "-0.1"]),
    (dict(diverge=1.0), ValueError, ["diverge", "> 1", "1.0", "diverge=4"]),
    (dict(diverge=math.nan), ValueError, ["diverge", "nan"]),
    (dict(grad_accum=0), ValueError, ["grad_accum", ">= 1", "0"]),
    (dict(eval_every_steps=0), ValueError, ["eval_every_steps", "0"]),
    (dict(amp="fp8"), ValueError, ["amp", "'fp8'", "'bf16'"]),
    (dict(amp="fp16"), ValueError, ["amp", "'fp16'", "CUDA", "amp='bf16'"]),
    (dict(method="fastest"), ValueError, ["method", "'fastest'", "valley"]),
    (dict(stop=True), TypeError, ["stop", "threading.Event"]),
    (dict(on_step="print"), TypeError, ["on_step", "callable"]),
    (dict(optimizer="adamm"), ValueError, ["optimizer", "'adamm'", "did you mean 'adam'"]),
    (dict(optimizer=3), TypeError, ["optimizer", "int"]),
    (dict(optimizer_kwargs={"momentun": 0.9}), ValueError, ["optimizer_kwargs", "momentun", "momentum"]),
    (dict(optimizer_kwargs={"lr": 0.1}), ValueError, ["optimizer_kwargs", "'lr'", "ramp"]),
    (dict(seed=-1), ValueError, ["seed", "-1"]),
    (dict(batch_size=0), ValueError, ["batch_size", "0", "64"]),
    (dict(device="cuda:7"), ValueError, ["device", "cuda"]),
    (dict(device="tpu"), ValueError, ["device", "'tpu'"]),
    (dict(config={"lr": 0.1}), TypeError, ["config", "TrainConfig"]),
    (dict(store=42), TypeError, ["store", "Store", "int"]),
    (dict(val=True), ValueError, ["val", "the task has none"]),
])
def test_bad_settings_are_rejected_before_any_work(kwargs, error, words):
    task = _task()
    model = _Untouchable()
    before = snapshot(model, None)
    with pytest.raises(error) as info:
        tw.lr_range_test(task, model=model, optimizer=kwargs.pop("optimizer", "sgd"), **kwargs)
    for word in words:
        assert word in str(info.value), (word, str(info.value))
    assert torch.equal(before["torch_rng"], torch.get_rng_state())


@pytest.mark.parametrize("kwargs, error, words", [
    (dict(), ValueError, ["missing model", "loss (or batch_loss)", "data", "tw.tasks.digits()"]),
    (dict(model=nn.Linear(4, 3)), ValueError, ["missing loss (or batch_loss), data"]),
    (dict(model=nn.Linear(4, 3), loss="mse"), ValueError, ["missing data"]),
    (dict(model="net", loss="mse", data=[]), TypeError, ["model", "nn.Module", "str"]),
    (dict(model=nn.Linear(4, 3), loss="hinge", data=[]), ValueError, ["loss", "'hinge'", "cross_entropy"]),
    (dict(model=nn.Linear(4, 3), loss="mse", batch_loss=lambda b: b, data=[]), ValueError,
     ["loss, batch_loss", "one of them"]),
    (dict(model=nn.Linear(4, 3), batch_loss="f", data=[]), TypeError, ["batch_loss", "callable"]),
    (dict(model=nn.Linear(4, 3), loss="mse", data=blob_data()), TypeError, ["data", "Dataset", "DataLoader("]),
    (dict(model=nn.Linear(4, 3), loss="mse", data=5), TypeError, ["data", "iterable", "int"]),
    (dict(model=nn.Linear(4, 3), loss="mse", data=[], unpack="xy"), TypeError, ["unpack", "callable"]),
    (dict(model=nn.Linear(4, 3), loss="mse", data=[], val=3.0), TypeError, ["val", "float"]),
    (dict(model=nn.Linear(4, 3), loss="mse", data=[], optimizer=torch.optim.SGD(nn.Linear(2, 2).parameters(), 0.1)),
     ValueError, ["optimizer", "none of the model's parameters"]),
    (dict(model=nn.Linear(4, 3), loss="mse", data=[], device="cuda"), ValueError, ["device", "cuda"]),
])
def test_bad_own_objects_are_rejected(kwargs, error, words):
    with pytest.raises(error) as info:
        tw.lr_range_test(**kwargs)
    for word in words:
        assert word in str(info.value), (word, str(info.value))


def test_a_model_passed_as_the_task_gets_a_hint():
    with pytest.raises(TypeError, match="model=model, optimizer=opt"):
        tw.lr_range_test(nn.Linear(4, 3))


def test_an_optimizer_object_needs_its_model():
    opt = torch.optim.SGD(nn.Linear(4, 3).parameters(), lr=0.1)
    with pytest.raises(ValueError, match="needs model="):
        tw.lr_range_test(_task(), optimizer=opt)


def test_optimizer_kwargs_with_an_optimizer_object_are_rejected():
    model = bn_net()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    with pytest.raises(ValueError, match="optimizer_kwargs: only apply"):
        tw.lr_range_test(model=model, optimizer=opt, optimizer_kwargs={"momentum": 0.9}, loss="cross_entropy",
                         data=blob_loader())


def test_a_first_group_with_lr_zero_is_rejected():
    model = bn_net()
    opt = torch.optim.SGD([{"params": model[0].parameters(), "lr": 0.0},
                           {"params": model[4].parameters(), "lr": 0.1}], lr=0.1)
    with pytest.raises(ValueError, match="first param group has lr=0.0"):
        tw.lr_range_test(model=model, optimizer=opt, loss="cross_entropy", data=blob_loader())


def test_batch_loss_needs_the_model():
    with pytest.raises(ValueError, match="batch_loss: needs model="):
        tw.lr_range_test(_task(), batch_loss=lambda b: b)
