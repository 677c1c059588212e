"""tw.rerun: a recorded run repeated from the store gives the identical curve on the CPU, and a
changed dataset or model factory is named when it does not."""
from __future__ import annotations

import threading

import numpy as np
import pytest
import torch
from torch.utils.data import TensorDataset

import tunewidgets as tw
from tunewidgets.tracking import Store


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def curves(folder, run_id):
    with Store(folder) as store:
        m = store.metrics(run_id)
    return {name: (g["step"].tolist(), g["value"].tolist()) for name, g in m.groupby("name")}


def test_train_run_repeats_exactly(tmp_path):
    cfg = tw.TrainConfig(optimizer="sgd", lr=0.05, momentum=0.9, epochs=3, seed=5, device="cpu",
                         schedule=tw.schedules.OneCycle(max_lr=0.1), model_kwargs={"width": 32, "dropout": 0.1})
    run = tw.train(tw.tasks.digits(seed=2), cfg, store=tmp_path)
    again = tw.rerun(tmp_path, run.run_id)
    assert isinstance(again, tw.Run) and again.matches is True and again.mismatch is None
    assert again.run_id != run.run_id and again.status == "finished"
    before, now = curves(tmp_path, run.run_id), curves(tmp_path, again.run_id)
    assert set(before) == {"train/loss", "lr", "train/epoch_loss", "val/loss", "val/accuracy"}
    assert before == now  # every point, bit for bit
    assert again.final == run.final
    with Store(tmp_path) as store:
        row = store.run(again.run_id)
    assert row["name"] == f"rerun of {run.run_id}" and row["params"] == store_params(tmp_path, run.run_id)


def store_params(folder, run_id):
    with Store(folder) as store:
        return store.run(run_id)["params"]


def test_a_changed_dataset_is_named(tmp_path):
    task = tw.tasks.digits()
    run = tw.train(task, tw.TrainConfig(optimizer="adam", lr=0.01, epochs=1, device="cpu"), store=tmp_path)
    x, y = (t.clone() for t in task.train.tensors)
    x[0] = 1.0 - x[0]  # one image changed
    changed = tw.Task(model=task.model, train=TensorDataset(x, y), val=task.val, loss=task.loss,
                      metrics=task.metrics, name="digits")
    again = tw.rerun(tmp_path, run.run_id, task=changed)
    assert again.matches is False
    assert again.mismatch.startswith("the training data of task 'digits' changed (same size, other values)")
    assert "first difference: train/loss at step" in again.mismatch
    assert "model factory" not in again.mismatch and "validation data" not in again.mismatch


def test_a_changed_model_factory_is_named(tmp_path):
    task = tw.tasks.digits()
    run = tw.train(task, tw.TrainConfig(optimizer="adam", lr=0.01, epochs=1, device="cpu"), store=tmp_path)

    def wider(width=128, depth=1, dropout=0.0, activation="relu"):
        return tw.tasks._digits.digits_model(width=2 * width, depth=depth, dropout=dropout, activation=activation)

    other = tw.Task(model=wider, train=task.train, val=task.val, loss=task.loss, metrics=task.metrics,
                    name="digits")
    again = tw.rerun(tmp_path, run.run_id, task=other)
    assert again.matches is False
    assert again.mismatch.startswith("the model factory changed: tunewidgets.tasks._digits.digits_model then, "
                                     f"{__name__}.test_a_changed_model_factory_is_named.<locals>.wider now")
    assert "data" not in again.mismatch.split(" (first difference")[0]


def test_custom_task_is_passed_again(tmp_path):
    g = torch.Generator().manual_seed(0)
    ds = TensorDataset(torch.randn(96, 5, generator=g), torch.randint(0, 2, (96,), generator=g))

    def net():
        return torch.nn.Sequential(torch.nn.Linear(5, 16), torch.nn.ReLU(), torch.nn.Linear(16, 2))

    task = tw.Task(model=net, train=ds, val=ds, metrics=("accuracy",), batch_size=16, name="mine")
    run = tw.train(task, tw.TrainConfig(optimizer="adam", lr=0.01, epochs=2, device="cpu"), store=tmp_path)
    with pytest.raises(ValueError, match=r"custom task \('mine'\).*task=your_task"):
        tw.rerun(tmp_path, run.run_id)
    again = tw.rerun(tmp_path, run.run_id, task=task)
    assert again.matches and curves(tmp_path, run.run_id) == curves(tmp_path, again.run_id)


def test_range_test_repeats_exactly(tmp_path):
    res = tw.lr_range_test(tw.tasks.digits(), optimizer="sgd", optimizer_kwargs={"momentum": 0.5},
                           steps=40, start_lr=1e-4, end_lr=3.0, device="cpu", store=tmp_path, val=True,
                           eval_every_steps=10)
    again = tw.rerun(tmp_path, res.run_id)
    assert isinstance(again, tw.LRRangeTestResult) and again.matches and again.mismatch is None
    np.testing.assert_array_equal(again.losses, res.losses)
    np.testing.assert_array_equal(again.lrs, res.lrs)
    assert again.suggestions == res.suggestions
    assert set(curves(tmp_path, res.run_id)) == {"train/loss", "train/smoothed", "lr", "val/loss"}


def test_a_trial_repeats_and_so_does_a_stopped_run(tmp_path):
    cfg = tw.TrainConfig(optimizer="adam", lr=0.01, epochs=2, device="cpu")
    trial = tw.train(tw.tasks.spirals(), cfg.replace(lr=0.02), store=tmp_path, kind="trial", study="s", trial=4)
    assert tw.rerun(tmp_path, trial.run_id).matches

    stop = threading.Event()
    stopped = tw.train(tw.tasks.spirals(), cfg, store=tmp_path, stop=stop,
                       callbacks=[{"step": lambda r: r["step"] == 9 and stop.set()}])
    assert stopped.status == "stopped"
    again = tw.rerun(tmp_path, stopped.run_id)  # trains to the end: its first points are the recorded ones
    assert again.status == "finished" and again.matches, again.mismatch


def test_a_changed_setting_is_named(tmp_path):
    # the record is edited as if the run had been made with other code: its curve no longer matches
    run = tw.train(tw.tasks.spirals(), tw.TrainConfig(epochs=1, device="cpu"), store=tmp_path)
    again = tw.rerun(tmp_path, run.run_id, task=tw.tasks.spirals(noise=0.2))
    assert not again.matches
    assert again.mismatch.startswith("the arguments of task 'spirals' changed: noise=0.05 then, 0.2 now; "
                                     "the training data")


def test_runs_that_cannot_be_repeated_say_why(tmp_path):
    cfg = tw.TrainConfig(epochs=1, device="cpu", schedule=lambda step: 1.0)
    run = tw.train(tw.tasks.spirals(), cfg, store=tmp_path)
    with pytest.raises(ValueError, match="schedule given as a function"):
        tw.rerun(tmp_path, run.run_id)
    model = tw.tasks.spirals().build_model()
    res = tw.lr_range_test(model=model, optimizer="sgd", loss="cross_entropy", steps=5, store=tmp_path,
                           data=[(torch.randn(8, 2), torch.randint(0, 3, (8,)))])
    with pytest.raises(ValueError, match=r"objects of your own \(model, data\)"):
        tw.rerun(tmp_path, res.run_id)
    with Store(tmp_path) as store:
        other = store.start_run(kind="study", study="s")
    with pytest.raises(ValueError, match="kind 'study'"):
        tw.rerun(tmp_path, other)
    with pytest.raises(TypeError, match="task: expected a tw.Task"):
        tw.rerun(tmp_path, run.run_id, task="digits")
