"""What a run records to be repeated: config, seed, versions, device, data and factory fingerprints."""
from __future__ import annotations

import functools

import numpy as np
import pytest
import torch
from sink_helpers import one_torch_thread  # noqa: F401
from torch.utils.data import DataLoader, Dataset, TensorDataset

import tunewidgets as tw
from tunewidgets.tracking import Store
from tunewidgets.tracking.records import (SAMPLES_HASHED, differences, fingerprint_data, fingerprint_factory,
                                          train_record, versions)


def test_store_keeps_config_seed_versions_device_and_fingerprints(tmp_path):
    cfg = tw.TrainConfig(optimizer="sgd", lr=0.05, epochs=1, seed=7, device="cpu",
                         schedule=tw.schedules.Warmup(steps=5, then=tw.schedules.Cosine()))
    run = tw.train(tw.tasks.digits(val_fraction=0.25), cfg, store=tmp_path)
    with Store(tmp_path) as store:
        env = store.run(run.run_id)["env"]
    repro = env["repro"]
    assert repro["config"] == cfg.to_dict()  # the full config, the schedule as its own dict
    assert repro["config"]["schedule"]["then"]["type"] == "Cosine"
    assert repro["seed"] == 7 and repro["device"] == "cpu"
    assert repro["versions"] == versions() and env["numpy"] == np.__version__
    assert repro["versions"]["torch"] == torch.__version__
    task = repro["task"]
    assert task["spec"] == {"name": "digits", "kwargs": {"val_fraction": 0.25, "seed": 0, "batch_size": 64}}
    assert task["train"]["kind"] == "tensors" and task["train"]["n"] == 1348
    assert task["model"]["name"] == "tunewidgets.tasks._digits.digits_model" and task["model"]["from"] == "source"


def test_range_test_records_the_arguments_that_repeat_it(tmp_path):
    res = tw.lr_range_test(tw.tasks.spirals(), optimizer="sgd", optimizer_kwargs={"momentum": 0.9},
                           steps=20, start_lr=1e-4, end_lr=1.0, device="cpu", store=tmp_path, seed=2)
    with Store(tmp_path) as store:
        repro = store.run(res.run_id)["env"]["repro"]
    call = repro["call"]
    assert (call["optimizer"], call["optimizer_kwargs"]["momentum"], call["steps"], call["seed"]) == (
        "sgd", 0.9, 20, 2)
    assert repro["own_objects"] == [] and repro["task"]["spec"]["name"] == "spirals"


def test_tensor_data_fingerprint_sees_every_value_and_in_place_changes():
    x, y = torch.randn(50, 4), torch.randint(0, 3, (50,))
    ds = TensorDataset(x, y)
    first = fingerprint_data(ds)
    assert fingerprint_data(ds) == first
    assert fingerprint_data(DataLoader(ds, batch_size=8)) == first  # a loader is its dataset
    x[49, 3] += 1e-3  # in place: the cached digest must not be reused
    assert fingerprint_data(ds)["sha256"] != first["sha256"]
    assert fingerprint_data(TensorDataset(x.double(), y))["sha256"] != fingerprint_data(ds)["sha256"]


class Squares(Dataset):
    def __init__(self, n, bump_at=None):
        self.n, self.bump_at = n, bump_at

    def __len__(self):
        return self.n

    def __getitem__(self, i):
        noise = torch.rand(1)  # an augmentation: seeded while fingerprinting, so stable
        return torch.tensor([float(i * i + (i == self.bump_at))]) + noise, i % 2


def test_other_datasets_are_fingerprinted_by_their_first_samples():
    a = fingerprint_data(Squares(100))
    assert a == fingerprint_data(Squares(100)) and a["kind"] == f"first {SAMPLES_HASHED} samples"
    assert fingerprint_data(Squares(100, bump_at=3))["sha256"] != a["sha256"]
    assert fingerprint_data(Squares(101))["sha256"] != a["sha256"]  # the length counts
    assert fingerprint_data(Squares(100, bump_at=90)) == a  # past the first 64: not seen (the stated cost)
    state = torch.get_rng_state()
    fingerprint_data(Squares(10))
    assert torch.equal(torch.get_rng_state(), state)  # the caller's generator is untouched


def mlp(width=8):
    return torch.nn.Sequential(torch.nn.Linear(4, width), torch.nn.ReLU(), torch.nn.Linear(width, 3))


def mlp_other(width=8):
    return torch.nn.Sequential(torch.nn.Linear(4, width), torch.nn.Tanh(), torch.nn.Linear(width, 3))


def test_factory_fingerprint_is_its_source_and_bound_arguments():
    a = fingerprint_factory(mlp)
    assert a == fingerprint_factory(mlp) and a["from"] == "source" and a["name"].endswith("mlp")
    assert fingerprint_factory(mlp_other)["sha256"] != a["sha256"]
    assert fingerprint_factory(functools.partial(mlp, width=4))["sha256"] != a["sha256"]
    built = fingerprint_factory(eval("lambda: None"))  # no source to read: its name stands in
    assert built["from"] == "name" and built["name"].endswith("<lambda>")


def test_differences_name_what_changed():
    ds = TensorDataset(torch.randn(20, 4), torch.randint(0, 3, (20,)))
    task = tw.Task(model=mlp, train=ds, val=ds, name="mine")
    cfg = tw.TrainConfig(epochs=1, device="cpu")
    before = train_record(task, cfg)
    assert differences(before, train_record(task, cfg)) == []
    smaller = TensorDataset(ds.tensors[0][:19], ds.tensors[1][:19])
    changed = differences(before, train_record(tw.Task(model=mlp_other, train=smaller, val=ds, name="mine"),
                                               cfg.replace(lr=0.5)))
    assert changed == ["the training data of task 'mine' changed (20 samples then, 19 now)",
                       f"the model factory changed: {__name__}.mlp then, {__name__}.mlp_other now",
                       "the settings changed: lr"]


def test_a_failing_fingerprint_does_not_stop_training(tmp_path, monkeypatch):
    from tunewidgets.tracking import records

    def broken(data):
        raise RuntimeError("cannot read")

    monkeypatch.setattr(records, "fingerprint_data", broken)
    run = tw.train(tw.tasks.spirals(), tw.TrainConfig(epochs=1, device="cpu"), store=tmp_path)
    assert run.status == "finished"
    with Store(tmp_path) as store:
        assert "RuntimeError: cannot read" in store.run(run.run_id)["env"]["repro"]["error"]
    with pytest.raises(ValueError, match="not recorded fully enough to repeat it"):
        tw.rerun(tmp_path, run.run_id)


@pytest.mark.parametrize("factory", [mlp])
def test_task_record_keeps_loss_metrics_and_model_kwargs(factory):
    ds = TensorDataset(torch.randn(20, 4), torch.randint(0, 3, (20,)))
    task = tw.Task(model=factory, train=ds, val=None, metrics=("accuracy",), model_kwargs={"width": 4})
    record = train_record(task, tw.TrainConfig(device="cpu"))["task"]
    assert (record["loss"], record["metrics"], record["model_kwargs"], record["val"]) == (
        "cross_entropy", ["accuracy"], {"width": 4}, None)
