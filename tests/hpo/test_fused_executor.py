"""executor="fused": the same trials in the store as the local executor writes, groups, fallbacks, memory."""
from __future__ import annotations

import threading

import pytest
import torch
from torch import nn

import tunewidgets as tw
from hpo_helpers import blob_task, blobs, one_thread  # noqa: F401 (autouse)
from tunewidgets.engine.fused import FusedRun
from tunewidgets.hpo.executors import EXECUTORS, make_executor
from tunewidgets.hpo.fused_executor import FusedExecutor, choose_k
from tunewidgets.hpo.space import Choice, LogUniform, Uniform
from tunewidgets.tracking import Store, studies

BASE = tw.TrainConfig(optimizer="sgd", lr=0.1, momentum=0.9, epochs=2, device="cpu", seed=0, log_every=4)


def mlp(width: int = 8) -> nn.Module:
    return nn.Sequential(nn.Linear(2, width), nn.ReLU(), nn.Linear(width, 3))


def task(**kw) -> tw.Task:
    return blob_task(model=mlp, **kw)


def stored(folder, study: str) -> tuple[list[tuple], dict[int, list[tuple]]]:
    """Per trial: (number, state, search values) and its metric rows (name, step, epoch, value)."""
    with Store(folder) as store:
        rows = studies.latest_trials(store, study)
        metrics = studies.trial_metrics(store, [r["id"] for r in rows])
    trials = [(r["trial"], r["status"], r["search"]) for r in rows]
    curves = {}
    for r in rows:
        m = metrics[metrics["run"] == r["id"]].sort_values(["name", "step"])
        curves[r["trial"]] = list(zip(m["name"], m["step"], m["epoch"].fillna(-1), m["value"]))
    return trials, curves


def test_a_fused_search_writes_the_trials_a_local_search_writes(tmp_path):
    space = {"lr": LogUniform(0.01, 0.3), "momentum": Uniform(0.5, 0.95), "seed": Choice([0, 1, 2])}
    args = dict(base=BASE, n_trials=6, store=tmp_path, seed=3, background=False)
    local = tw.search(task(), space, study="local", executor="local", **args)
    ex = FusedExecutor(k=4)
    fused = tw.search(task(), space, study="fused", executor=ex, **args)
    assert ex.groups == [[0, 1, 2, 3], [4, 5]] and ex.fallbacks == {}
    lt, lc = stored(tmp_path, "local")
    ft, fc = stored(tmp_path, "fused")
    assert ft == lt and [t[1] for t in ft] == ["finished"] * 6
    for number in lc:
        assert [c[:3] for c in fc[number]] == [c[:3] for c in lc[number]]
        names = {c[0] for c in lc[number]}
        assert {"train/loss", "lr", "val/accuracy", "val/loss"} <= names
        for (name, _, _, a), (_, _, _, b) in zip(fc[number], lc[number]):
            if name.startswith(("train/", "val/", "lr")):
                assert abs(a - b) <= 1e-5, (number, name)
    assert (fused.trials["val_accuracy"] - local.trials["val_accuracy"]).abs().max() <= 1e-5
    assert fused.best["trial"] == local.best["trial"]


def test_executor_fused_by_name_and_its_k():
    assert EXECUTORS["fused"] is FusedExecutor and tw.hpo.FusedExecutor is FusedExecutor
    assert isinstance(make_executor("fused"), FusedExecutor)
    assert FusedExecutor(k=8).slots == 8
    for bad in (0, -1, 2.5, True, "4"):
        with pytest.raises(ValueError, match="k: trials per fused group"):
            FusedExecutor(k=bad)


def test_k_none_is_chosen_from_free_memory(monkeypatch):
    digits = tw.tasks.digits()
    assert choose_k(digits, "cpu", free_bytes=10**10) == 16  # capped
    small = choose_k(digits, "cpu", free_bytes=4 * 10**6)
    assert 1 <= small < 16
    assert choose_k(digits, "cpu", free_bytes=8 * 10**6) >= 2 * small - 1  # twice the memory, about twice k
    monkeypatch.setattr("tunewidgets.hpo.fused_executor._free_memory_bytes", lambda device: 4 * 10**6)
    ex = FusedExecutor()
    ex.open(digits, lambda *a: None)
    assert ex.slots == small


def test_configs_it_cannot_fuse_train_locally_and_say_why(tmp_path):
    space = {"optimizer": Choice(["sgd", "rmsprop"]), "grad_accum": Choice([1, 2])}
    ex = FusedExecutor(k=4)
    study = tw.search(task(), space, base=BASE, strategy="grid", store=tmp_path, study="mixed", executor=ex,
                      background=False)
    assert study.trials["state"].tolist() == ["finished"] * 4
    fused = [n for g in ex.groups for n in g]
    assert len(fused) == 1 and set(ex.fallbacks) == {0, 1, 2, 3} - set(fused)
    notes = ex.notes()
    assert any("rmsprop" in line and "no batched step" in line for line in notes)
    assert any("grad_accum=2" in line for line in notes)
    assert len(notes) == 2  # one line per reason, naming its trials
    with study._lock:
        reasons = {n: r.reason for n, r in study._records.items()}
    assert all("trained on the local executor" in reasons[n] for n in ex.fallbacks)


def test_a_loss_vmap_cannot_run_trains_locally(tmp_path):
    def item_loss(out, y):
        return nn.functional.cross_entropy(out, y) * (1.0 if out.sum().item() > -1e9 else 0.0)
    ex = FusedExecutor(k=2)
    study = tw.search(task(loss=item_loss), {"lr": Choice([0.05, 0.1])}, base=BASE, strategy="grid",
                      store=tmp_path, study="item", executor=ex, background=False)
    assert study.trials["state"].tolist() == ["finished", "finished"]
    assert ex.groups == [] and all("torch.func.vmap" in why for why in ex.fallbacks.values())


def test_trials_of_different_shapes_form_different_groups(tmp_path):
    ex = FusedExecutor(k=4)
    study = tw.search(task(), {"model.width": Choice([4, 8]), "lr": Choice([0.05, 0.1])}, base=BASE,
                      strategy="grid", store=tmp_path, study="shapes", executor=ex, background=False)
    assert study.trials["state"].tolist() == ["finished"] * 4
    widths = study.trials.set_index("trial")["model.width"]
    assert sorted(sorted(g) for g in ex.groups) == sorted(
        sorted(widths.index[widths == w].tolist()) for w in (4, 8))


def test_a_pruned_trial_ends_alone_and_new_trials_join_the_next_group(tmp_path):
    space = {"lr": Choice([0.02, 0.05, 0.1, 0.2, 0.3])}
    args = dict(base=BASE.replace(epochs=3), strategy="grid", store=tmp_path, background=False)

    def prune_one(event, record):
        if event == "eval" and record["trial"] == 1 and record["epoch"] == 0:
            raise tw.StopRun("pruned", reason="told to")
    ex = FusedExecutor(k=3)
    study = tw.search(task(), space, study="pruned", executor=ex, callbacks=[prune_one], **args)
    plain = tw.search(task(), space, study="plain", executor=FusedExecutor(k=3), **args)
    assert ex.groups == [[0, 1, 2], [3, 4]]
    assert study.trials["state"].tolist() == ["finished", "pruned", "finished", "finished", "finished"]
    assert study.trials.loc[1, "epochs"] == 1
    same = study.trials.drop(index=1)["val_accuracy"].tolist()
    assert same == plain.trials.drop(index=1)["val_accuracy"].tolist()


def test_an_out_of_memory_group_is_split_in_half_and_retried(tmp_path, monkeypatch):
    probe = FusedRun._probe
    tried = []

    def small_device(self, generators):
        tried.append(self.stack.k)
        if self.stack.k > 2:
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
        return probe(self, generators)
    space = {"lr": Choice([0.02, 0.05, 0.1, 0.2])}
    args = dict(base=BASE, strategy="grid", store=tmp_path, background=False)
    whole = tw.search(task(), space, study="whole", executor=FusedExecutor(k=4), **args)
    monkeypatch.setattr(FusedRun, "_probe", small_device)
    ex = FusedExecutor(k=4)
    split = tw.search(task(), space, study="split", executor=ex, **args)
    assert tried == [4, 2, 2] and ex.groups == [[0, 1], [2, 3]]
    assert split.trials["state"].tolist() == ["finished"] * 4
    assert split.trials["val_accuracy"].tolist() == whole.trials["val_accuracy"].tolist()
    lt, lc = stored(tmp_path, "whole")
    st, sc = stored(tmp_path, "split")
    assert [c[:2] for c in sc[0]] == [c[:2] for c in lc[0]]  # each trial recorded once, not twice


def test_stopping_the_search_stops_every_trial_of_the_group(tmp_path):
    holder, ready = {}, threading.Event()

    def stop_after_first_epoch(event, record):
        if event == "epoch" and record["trial"] == 0:
            ready.wait()  # the study object is in holder
            holder["study"].stop()
    ex = FusedExecutor(k=3)
    study = tw.search(task(), {"lr": Choice([0.02, 0.05, 0.1, 0.2])}, base=BASE.replace(epochs=3),
                      strategy="grid", store=tmp_path, study="halt", executor=ex, background=True,
                      callbacks=[stop_after_first_epoch])
    holder["study"] = study
    ready.set()
    study.wait()
    assert study.status == "stopped"
    assert study.trials["state"].tolist() == ["stopped"] * 3  # the fourth never started
    assert study.trials["epochs"].tolist() == [1, 1, 1]  # each stopped within a step of epoch 1


def test_models_of_the_same_shapes_that_compute_differently_are_not_grouped(tmp_path):
    digits = tw.tasks.digits()
    ex = FusedExecutor(k=2)
    study = tw.search(digits, {"model.activation": Choice(["relu", "tanh"])},
                      base=BASE.replace(epochs=1, model_kwargs={"width": 16}), strategy="grid", store=tmp_path,
                      study="act", executor=ex, background=False)
    assert sorted(ex.groups) == [[0], [1]]
    local = tw.search(digits, {"model.activation": Choice(["relu", "tanh"])},
                      base=BASE.replace(epochs=1, model_kwargs={"width": 16}), strategy="grid", store=tmp_path,
                      study="act-local", background=False)
    assert (study.trials["val_accuracy"] - local.trials["val_accuracy"]).abs().max() <= 1e-5


class NegativeWidth(nn.Module):
    """Builds (so the checks before trial 0 pass it), then fails on its first batch: a set-up failure."""

    def __init__(self) -> None:
        super().__init__()
        self.linear = nn.Linear(2, 3)

    def forward(self, x):
        return torch.empty(-1, 3)


def mlp_or_broken(width: int = 8) -> nn.Module:
    return NegativeWidth() if width == -1 else mlp(width)


def test_a_trial_that_fails_to_set_up_fails_alone(tmp_path):
    ex = FusedExecutor(k=3)
    study = tw.search(blob_task(model=mlp_or_broken), {"model.width": Choice([8, -1])},
                      base=BASE.replace(epochs=1), strategy="grid", store=tmp_path, study="broken", executor=ex, background=False)
    states = dict(zip(study.trials["model.width"], study.trials["state"]))
    assert states == {8: "finished", -1: "failed"} and ex.fallbacks == {}
    assert "negative dimension" in study.trials.set_index("model.width").loc[-1, "error"]
    trials, _ = stored(tmp_path, "broken")
    assert sorted(t[1] for t in trials) == ["failed", "finished"]
