"""A fused run gives every trial what it would get alone: the same curves, records and endings."""
from __future__ import annotations

import math
import threading

import pytest
import torch
from torch import nn

import tunewidgets as tw
from engine_helpers import blob_task, blobs
from tunewidgets.engine.events import HOST_EVENTS
from tunewidgets.engine.fused import FusedRun, FusedUnsupported

ATOL = 1e-5


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(old)


def sgd_trials(**common) -> list[tw.TrainConfig]:
    base = dict(optimizer="sgd", epochs=2, device="cpu", log_every=5, **common)
    return [tw.TrainConfig(lr=0.05, momentum=0.9, seed=0, **base),
            tw.TrainConfig(lr=0.2, weight_decay=1e-3, seed=1, **base),
            tw.TrainConfig(lr=0.02, momentum=0.8, nesterov=True, seed=2,
                           schedule=tw.schedules.OneCycle(max_lr=0.1), **base),
            tw.TrainConfig(lr=0.1, momentum=0.5, weight_decay=1e-4, seed=3,
                           schedule=tw.schedules.Step(step_size=1, gamma=0.5, interval="epoch"), **base)]


def recorded(target) -> list[tuple[str, dict]]:
    """Every host-side record of ``target`` (a Trainer, or one trial of a fused run: its records only)."""
    seen: list[tuple[str, dict]] = []
    for event in HOST_EVENTS:
        target.on(event, lambda record, _name=event.value: seen.append((_name, record)))
    return seen


def assert_same_curves(alone: tw.Run, fused: tw.Run) -> None:
    a, f = alone.steps(), fused.steps()
    assert a["step"].tolist() == f["step"].tolist()
    assert a["lr"].tolist() == f["lr"].tolist()
    assert (a["loss"] - f["loss"]).abs().max() <= ATOL
    ea, ef = alone.evals(), fused.evals()
    assert list(ea.columns) == list(ef.columns)
    for col in ("train_loss", "val_loss", "val_accuracy"):
        assert (ea[col] - ef[col]).abs().max() <= ATOL, col
    assert fused.status == alone.status and fused.final["steps"] == alone.final["steps"]


def test_sgd_trials_fused_match_each_trial_trained_alone():
    task, configs = tw.tasks.digits(), sgd_trials()
    fused = FusedRun(task, configs).fit()
    for cfg, run in zip(configs, fused):
        assert_same_curves(tw.train(task, cfg), run)
    finals = {round(r.final["val_loss"], 4) for r in fused}
    assert len(finals) == 4  # four different trials, not one trained four times


@pytest.mark.parametrize("name", ["adam", "adamw", "rprop"])
def test_adam_adamw_and_rprop_trials_match_alone(name):
    task = blob_task()
    base = dict(optimizer=name, epochs=2, device="cpu", log_every=3)
    configs = [tw.TrainConfig(lr=1e-2, seed=0, **base),
               tw.TrainConfig(lr=3e-2, seed=1, weight_decay=0.0 if name == "rprop" else 0.01, **base),
               tw.TrainConfig(lr=5e-3, seed=2, schedule=tw.schedules.OneCycle(
                   max_lr=0.05, cycle_momentum=name != "rprop"), **base)]
    if name != "rprop":
        configs.append(tw.TrainConfig(lr=2e-2, seed=3, betas=(0.8, 0.99), **base))
    for cfg, run in zip(configs, FusedRun(task, configs).fit()):
        assert_same_curves(tw.train(task, cfg), run)


class BNNet(nn.Sequential):
    def __init__(self, width: int = 16) -> None:
        super().__init__(nn.Linear(2, width), nn.BatchNorm1d(width), nn.ReLU(), nn.Linear(width, 3))


def test_batchnorm_keeps_running_statistics_per_trial():
    task = blob_task(model=BNNet)
    configs = [c.replace(epochs=2) for c in sgd_trials()[:3]]
    fused = FusedRun(task, configs).fit()
    for cfg, run in zip(configs, fused):
        alone = tw.train(task, cfg)
        assert_same_curves(alone, run)  # eval mode: each trial's own running mean and variance
        torch.testing.assert_close(run.model[1].running_mean, alone.model[1].running_mean, atol=ATOL, rtol=0)
    assert not torch.allclose(fused[0].model[1].running_mean, fused[1].model[1].running_mean)


def test_records_have_the_shapes_and_numbers_a_trainer_fires():
    task, cfg = blob_task(), sgd_trials()[0]
    trainer = tw.Trainer(task, cfg, run_id=7, trial=3)
    alone = recorded(trainer)
    trainer.fit()
    run = FusedRun(task, [sgd_trials()[1], cfg], run_ids=[6, 7], trials=[2, 3])
    fused = recorded(run.members[1])
    run.fit()
    assert [e for e, _ in fused] == [e for e, _ in alone]
    for (event, a), (_, f) in zip(alone, fused):
        assert set(a) == set(f), event
        assert (f["run_id"], f["trial"]) == (7, 3)
        if event == "log":
            assert [r["step"] for r in f["rows"]] == [r["step"] for r in a["rows"]]
        if event == "start":
            assert f["total_steps"] == a["total_steps"] and f["params"] == a["params"]
        if event in ("epoch", "eval"):
            assert (f["epoch"], f["step"]) == (a["epoch"], a["step"])
    assert alone[1][1]["rows"][0]["step"] == 1  # 1-based: the k-th optimizer step


def test_a_trial_pruned_mid_way_leaves_the_others_curves_unchanged():
    task, configs = tw.tasks.digits(), sgd_trials()
    whole = FusedRun(task, configs).fit()
    run = FusedRun(task, configs)

    def prune(record):
        raise tw.StopRun("pruned", reason="below the median")
    run.members[1].on("eval", prune)
    cut = run.fit()
    assert cut[1].status == "pruned" and cut[1].reason == "below the median"
    assert cut[1].final["epochs"] == 0 and cut[1].final["steps"] == whole[1].final["steps"] // 2
    for k in (0, 2, 3):
        assert cut[k].status == "finished"
        assert cut[k].steps()["loss"].tolist() == whole[k].steps()["loss"].tolist()
        assert cut[k].evals()["val_loss"].tolist() == whole[k].evals()["val_loss"].tolist()


def test_a_diverging_trial_and_a_failing_trial_leave_without_disturbing_the_others():
    task = blob_task()
    configs = [tw.TrainConfig(lr=0.1, seed=0, epochs=2, device="cpu", log_every=4),
               tw.TrainConfig(lr=1e30, momentum=0.9, seed=1, epochs=2, device="cpu", log_every=4),
               tw.TrainConfig(lr=0.05, seed=2, epochs=2, device="cpu", log_every=4),
               tw.TrainConfig(lr=0.05, seed=3, epochs=2, device="cpu", log_every=4)]
    run = FusedRun(task, configs)

    def fail(record):
        if record["rows"][-1]["step"] >= 8:
            raise RuntimeError("the sink broke")
    run.members[2].on("log", fail)
    ends = recorded(run.members[1])
    runs = run.fit()
    assert [r.status for r in runs] == ["finished", "diverged", "failed", "finished"]
    assert "the sink broke" in runs[2].error and runs[2].final["steps"] == 8
    assert not all(math.isfinite(r["loss"]) for e, rec in ends if e == "log" for r in rec["rows"])
    for k in (0, 3):
        assert_same_curves(tw.train(task, configs[k]), runs[k])


def test_a_stop_flag_ends_its_trial_only():
    task, configs = blob_task(), [c.replace(epochs=3) for c in sgd_trials()[:2]]
    run = FusedRun(task, configs)
    run.members[0].on("epoch", lambda record: run.members[0].stop())
    runs = run.fit()
    assert runs[0].status == "stopped" and runs[0].final["epochs"] == 1
    assert runs[1].status == "finished" and runs[1].final["epochs"] == 3


def test_dropout_draws_differ_per_trial_and_repeat_run_to_run():
    task = blob_task(model_kwargs={"dropout": 0.3})
    configs = [tw.TrainConfig(lr=0.1, seed=0, epochs=1, device="cpu")] * 2
    one, two = FusedRun(task, configs).fit(), FusedRun(task, configs).fit()
    assert one[0].steps()["loss"].tolist() == two[0].steps()["loss"].tolist()
    # the same seed and config twice: only the dropout masks differ between the two trials
    assert one[0].steps()["loss"].tolist() != one[1].steps()["loss"].tolist()


def test_a_loss_that_vmap_cannot_run_is_named_before_any_record():
    def item_loss(out, y):
        return nn.functional.cross_entropy(out, y) * (1.0 if out.sum().item() > -1e9 else 0.0)
    task = blob_task(loss=item_loss)
    run = FusedRun(task, sgd_trials()[:2])
    seen = recorded(run.members[0])
    with pytest.raises(FusedUnsupported, match="vmap"):
        run.fit()
    assert seen == []


def test_trials_of_different_lengths_end_at_their_own_epoch_and_max_steps():
    task = blob_task()
    configs = [tw.TrainConfig(lr=0.1, epochs=1, device="cpu"), tw.TrainConfig(lr=0.1, epochs=3, device="cpu"),
               tw.TrainConfig(lr=0.1, epochs=3, max_steps=12, device="cpu")]
    runs = FusedRun(task, configs).fit()
    assert [r.final["steps"] for r in runs] == [8, 24, 12]
    for cfg, run in zip(configs, runs):
        assert_same_curves(tw.train(task, cfg), run)


def test_configs_it_cannot_fuse_are_refused_naming_the_field():
    task = blob_task()
    with pytest.raises(ValueError, match="grad_accum=2"):
        FusedRun(task, [tw.TrainConfig(grad_accum=2, device="cpu")])
    with pytest.raises(ValueError, match="must agree"):
        FusedRun(task, [tw.TrainConfig(device="cpu"), tw.TrainConfig(device="cpu", batch_size=16)])
    with pytest.raises(ValueError, match="rmsprop"):
        FusedRun(task, [tw.TrainConfig(optimizer="rmsprop", device="cpu")])


def test_data_that_is_not_a_tensor_dataset_is_stacked_per_trial():
    data = blobs(96, 0)
    pairs = [(data[i][0], data[i][1]) for i in range(len(data))]  # a plain sequence: a DataLoader batches it
    task = tw.Task(model=lambda: nn.Sequential(nn.Linear(2, 8), nn.ReLU(), nn.Linear(8, 3)), train=pairs,
                   val=blobs(32, 1), loss="cross_entropy", metrics=("accuracy",), batch_size=16)
    configs = [tw.TrainConfig(lr=0.1, seed=s, epochs=2, device="cpu") for s in (0, 1)]
    for cfg, run in zip(configs, FusedRun(task, configs).fit()):
        assert_same_curves(tw.train(task, cfg), run)


def test_every_kind_of_schedule_is_followed_per_trial():
    task = blob_task()
    base = dict(optimizer="adam", epochs=3, device="cpu", log_every=4)
    configs = [tw.TrainConfig(lr=0.02, seed=0, schedule=tw.schedules.Warmup(steps=5, then=tw.schedules.Cosine()),
                              **base),
               tw.TrainConfig(lr=0.05, seed=1, schedule=tw.schedules.ReduceOnPlateau(patience=0, factor=0.5,
                                                                                      mode="max"), **base),
               tw.TrainConfig(lr=0.01, seed=2, schedule=lambda step: 1.0 / (1 + step), **base),
               tw.TrainConfig(lr=0.03, seed=3, **base)]
    runs = FusedRun(task, configs).fit()
    for cfg, run in zip(configs, runs):
        assert_same_curves(tw.train(task, cfg), run)
    lrs = [r.steps()["lr"] for r in runs]
    assert lrs[0].iloc[0] < lrs[0].max() and lrs[2].iloc[-1] < lrs[2].iloc[0] and lrs[3].nunique() == 1


def test_gradient_clipping_is_each_trials_own():
    task = blob_task()
    base = dict(lr=0.5, momentum=0.9, epochs=2, device="cpu", log_every=4)
    configs = [tw.TrainConfig(seed=0, grad_clip=0.05, **base), tw.TrainConfig(seed=1, **base),
               tw.TrainConfig(seed=2, grad_clip=1.0, **base)]
    for cfg, run in zip(configs, FusedRun(task, configs).fit()):
        assert_same_curves(tw.train(task, cfg), run)


def test_a_large_validation_set_is_scored_one_trial_at_a_time_alike(monkeypatch):
    monkeypatch.setattr("tunewidgets.engine.fused._VAL_OUTPUTS_MAX", 0)  # no outputs kept: a view per trial
    task = blob_task(model=BNNet)
    configs = sgd_trials()[:2]
    for cfg, run in zip(configs, FusedRun(task, configs).fit()):
        assert_same_curves(tw.train(task, cfg), run)


def test_a_start_handler_that_fails_ends_its_trial_with_an_end_record():
    task, configs = blob_task(), sgd_trials()[:2]
    run = FusedRun(task, configs)

    def broken(record):
        raise RuntimeError("no room for this run")
    run.members[0].on("start", broken)
    seen = recorded(run.members[0])
    runs = run.fit()
    assert runs[0].status == "failed" and "no room" in runs[0].error and runs[1].status == "finished"
    assert [e for e, _ in seen][-1] == "end"


def test_handlers_on_the_run_see_every_trial_as_its_own_run():
    task, configs = blob_task(), sgd_trials()[:2]
    ends: list[tuple] = []
    run = FusedRun(task, configs, run_ids=[6, 7], trials=[2, 3], callbacks=[{"end": lambda r: ends.append(
        (r["run_id"], r["trial"], r["status"], r["final"]["steps"]))}])
    logged: dict = {}
    run.on("log", lambda r: logged.setdefault(r["trial"], []).extend(row["step"] for row in r["rows"]))
    second = recorded(run.members[1])
    runs = run.fit()
    assert sorted(ends) == [(6, 2, "finished", runs[0].final["steps"]), (7, 3, "finished", runs[1].final["steps"])]
    assert logged[2] == logged[3] == list(range(1, runs[0].final["steps"] + 1))
    assert {(r["run_id"], r["trial"]) for _, r in second} == {(7, 3)}  # a trial's own handler: its records only


def test_a_run_stopped_while_another_holds_the_slot_ends_every_trial_unstarted():
    from tunewidgets.engine.control import run_slot

    held, release = threading.Event(), threading.Event()

    def hold():
        with run_slot():
            held.set()
            release.wait()
    holder = threading.Thread(target=hold)
    holder.start()
    held.wait()
    try:
        run = FusedRun(blob_task(), sgd_trials()[:3])
        ends = recorded(run.members[2])
        run.members[1].stop("pruned")
        run.stop()
        runs = run.fit()
    finally:
        release.set()
        holder.join()
    assert [r.status for r in runs] == ["stopped", "pruned", "stopped"]
    assert {r.reason for r in runs} == {"stopped before it started"} and {r.final["steps"] for r in runs} == {0}
    assert [e for e, _ in ends] == ["end"]
