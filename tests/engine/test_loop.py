from __future__ import annotations

import math
import threading

import numpy as np
import pandas as pd
import pytest
import torch
from engine_helpers import blob_task, blobs, mlp

import tunewidgets as tw
from tunewidgets.engine.events import Events

CPU = dict(device="cpu")


def test_train_learns_and_reports_history_final_and_perf():
    run = tw.train(blob_task(), tw.TrainConfig(optimizer="adam", lr=0.02, epochs=4, log_every=3, **CPU))
    assert run.status == "finished"
    steps = run.steps()
    assert list(steps["step"]) == list(range(1, 4 * 8 + 1))  # 256 samples / 32 = 8 steps per epoch
    assert list(steps["epoch"].unique()) == [0, 1, 2, 3]
    evals = run.evals()
    assert list(evals["epoch"]) == [0, 1, 2, 3]
    assert run.final["val_accuracy"] >= 0.9
    assert run.final["val_loss"] < evals["val_loss"].iloc[0]
    assert run.final["steps"] == 32 and run.final["epochs"] == 4
    assert run.perf["n_params"] == sum(p.numel() for p in run.model.parameters())
    assert run.perf["samples_per_sec"] > 0 and run.perf["step_time"] > 0
    assert run.perf["peak_memory"] is None  # CPU
    assert isinstance(run.history, pd.DataFrame)


def test_same_seed_same_curves_other_seed_differs():
    task = blob_task(model=lambda: mlp(dropout=0.2))
    cfg = tw.TrainConfig(optimizer="sgd", lr=0.1, momentum=0.9, epochs=2, seed=3, **CPU)
    a = tw.train(task, cfg).steps()["loss"].to_numpy()
    b = tw.train(task, cfg).steps()["loss"].to_numpy()
    c = tw.train(task, cfg.replace(seed=4)).steps()["loss"].to_numpy()
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)


def test_run_does_not_disturb_global_rng():
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    tw.train(blob_task(), tw.TrainConfig(epochs=1, **CPU))
    assert torch.equal(torch.rand(3), expected)


def test_events_fire_in_order_with_expected_records():
    trainer = tw.Trainer(blob_task(), tw.TrainConfig(epochs=2, log_every=5, **CPU))
    order = []
    for ev in Events:
        trainer.on(ev, lambda rec, ev=ev: order.append(ev.value))
    steps = []
    trainer.on(Events.STEP, lambda rec: steps.append((rec["step"], rec["epoch"], torch.is_tensor(rec["loss"]))))
    trainer.fit()
    assert order[0] == "start" and order[-1] == "end"
    compact = [e for e in order if e != "step"]
    # per epoch: LOG (5 steps), LOG (rest of the epoch), EPOCH, EVAL
    assert compact == ["start", "log", "log", "epoch", "eval", "log", "log", "epoch", "eval", "end"]
    assert steps[0] == (1, 0, True) and steps[-1] == (16, 1, True)


def test_detached_handler_is_not_called():
    trainer = tw.Trainer(blob_task(), tw.TrainConfig(epochs=1, **CPU))
    seen = []
    with trainer.on("epoch", seen.append):
        pass
    trainer.fit()
    assert seen == []


def test_stop_from_another_thread_halts_within_one_step():
    task = blob_task(train=blobs(4096, 0), batch_size=8)
    stop = threading.Event()
    steps_after_stop = []

    def on_step(rec):
        if stop.is_set():
            steps_after_stop.append(rec["step"])
        if rec["step"] == 20:
            t = threading.Thread(target=stop.set)
            t.start()
            t.join()

    run = tw.train(task, tw.TrainConfig(epochs=50, **CPU), callbacks=[{"step": on_step}], stop=stop)
    assert run.status == "stopped"
    # the flag is checked after every step: step 20 sets it, no step runs after it
    assert steps_after_stop == []
    assert run.final["steps"] == 20
    assert run.steps()["step"].max() == 20


def test_trainer_stop_method_from_a_thread_while_running():
    task = blob_task(train=blobs(4096, 0), batch_size=8)
    trainer = tw.Trainer(task, tw.TrainConfig(epochs=1000, **CPU))
    started = threading.Event()
    trainer.on("step", lambda rec: started.set())
    result = {}
    worker = threading.Thread(target=lambda: result.setdefault("run", trainer.fit()))
    worker.start()
    assert started.wait(30)
    trainer.stop()
    worker.join(30)
    assert not worker.is_alive()
    assert result["run"].status == "stopped"
    assert result["run"].final["steps"] < 1000 * 512


def test_non_finite_loss_marks_run_diverged():
    run = tw.train(blob_task(), tw.TrainConfig(optimizer="sgd", lr=1e6, momentum=0.9, epochs=20,
                                               log_every=2, **CPU))
    assert run.status == "diverged"
    assert not math.isfinite(run.steps()["loss"].iloc[-1])
    assert run.final["steps"] < 20 * 8


def test_grad_accumulation_counts_optimizer_steps():
    run = tw.train(blob_task(), tw.TrainConfig(epochs=1, grad_accum=3, **CPU))
    assert run.final["steps"] == math.ceil(8 / 3)


def test_max_steps_caps_the_run():
    run = tw.train(blob_task(), tw.TrainConfig(epochs=10, max_steps=5, **CPU))
    assert run.status == "finished" and run.final["steps"] == 5


def test_callable_schedule_scales_the_lr_per_step():
    cfg = tw.TrainConfig(lr=0.1, epochs=1, schedule=lambda step: 1.0 / (step + 1), **CPU)
    lrs = tw.train(blob_task(), cfg).steps()["lr"].to_numpy()
    np.testing.assert_allclose(lrs, [0.1 / (k + 1) for k in range(8)], rtol=1e-12)


def test_grad_clip_and_bf16_autocast_on_cpu_train():
    run = tw.train(blob_task(), tw.TrainConfig(optimizer="adam", lr=0.01, epochs=2, grad_clip=0.5,
                                               amp="bf16", **CPU))
    assert run.status == "finished" and run.final["val_accuracy"] > 0.8


def test_exception_in_model_fails_the_run_and_propagates():
    class Boom(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.lin = torch.nn.Linear(2, 3)
            self.calls = 0

        def forward(self, x):
            self.calls += 1
            if self.calls > 3:
                raise RuntimeError("boom at call 4")
            return self.lin(x)

    ends = []
    with pytest.raises(RuntimeError, match="boom"):
        tw.train(blob_task(model=Boom), tw.TrainConfig(epochs=1, **CPU), callbacks=[{"end": ends.append}])
    assert ends[0]["status"] == "failed" and "boom at call 4" in ends[0]["error"]


def test_model_kwargs_reach_the_factory():
    run = tw.train(blob_task(), tw.TrainConfig(epochs=1, model_kwargs={"width": 7}, **CPU))
    assert run.model[0].out_features == 7


def test_dict_batches_and_custom_unpack():
    base = blobs(64)

    class DictDS(torch.utils.data.Dataset):
        def __len__(self):
            return len(base)

        def __getitem__(self, i):
            x, y = base[i]
            return {"features": x, "cls": y}

    task = tw.Task(model=mlp, train=DictDS(), batch_size=16, unpack=lambda b: (b["features"], b["cls"]))
    run = tw.train(task, tw.TrainConfig(epochs=1, **CPU))
    assert run.status == "finished" and run.final["steps"] == 4
