"""HParams: each run of a study appears once in TensorBoard's HParams dashboard (read through the
plugin's own request handlers) with the params, final metrics and state the store holds."""
from __future__ import annotations

import numpy as np
import pytest
from sink_helpers import hparam_value, hparams_tags, one_torch_thread, read_events, session_groups  # noqa: F401

import tunewidgets as tw
from tunewidgets.tracking import Store
from tunewidgets.tracking._tb_hparams import EXPERIMENT_SUFFIX, STATES, StudyExperiment


def _prune(record):
    raise tw.StopRun("pruned", reason="below the median")


def _crash(record):
    raise RuntimeError("a bug in a callback")


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    """Four runs of study "s": finished, pruned, diverged and failed, in a store and on TensorBoard."""
    runs = tmp_path_factory.mktemp("hp") / "runs"
    task = tw.tasks.digits()
    base = tw.TrainConfig(optimizer="adam", lr=0.01, epochs=2, device="cpu")
    common = dict(store=runs, study="s", tensorboard=True)
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        tw.train(task, base.replace(model_kwargs={"width": 32}), **common)
        tw.train(task, base.replace(lr=0.02), callbacks=[{"eval": _prune}], **common)
        tw.train(task, base.replace(optimizer="sgd", lr=1e6), **common)
        with pytest.raises(RuntimeError, match="a bug"):
            tw.train(task, base.replace(lr=0.03), callbacks=[{"epoch": _crash}], **common)
    finally:
        torch.set_num_threads(threads)
    with Store(runs) as store:
        rows = store.runs().to_dict("records")
    return runs / "tensorboard" / "s", rows


def test_each_run_is_one_session_with_the_stores_params_state_and_metrics(study):
    folder, rows = study
    experiment, groups = session_groups(folder)
    assert sorted(g.name for g in groups) == sorted(f"train-{r['id']}" for r in rows)
    assert all(len(g.sessions) == 1 for g in groups)
    by_name = {g.name: g for g in groups}
    assert sorted(r["status"] for r in rows) == ["diverged", "failed", "finished", "pruned"]
    for row in rows:
        group = by_name[f"train-{row['id']}"]
        hp = {k: hparam_value(v) for k, v in group.hparams.items()}
        assert hp["state"] == row["status"]
        assert hp["lr"] == row["params"]["lr"] and hp["optimizer"] == row["params"]["optimizer"]
        assert hp.get("model_kwargs.width") == row["params"]["model_kwargs"].get("width")
        status = group.sessions[0].status
        assert status == (2 if row["status"] in ("failed", "diverged") else 1)  # FAILURE / SUCCESS
        metrics = {m.name.tag: m.value for m in group.metric_values}
        final = row["final"] or {}
        for key in ("val_loss", "val_accuracy"):
            if key in final and np.isfinite(final[key]):
                assert metrics["val/" + key[4:]] == pytest.approx(float(np.float32(final[key])), rel=1e-7)
        if row["status"] == "finished":
            assert metrics["perf/samples_per_sec"] == pytest.approx(float(np.float32(row["perf"]["samples_per_sec"])))


def test_one_experiment_at_the_study_root_with_the_union(study):
    folder, rows = study
    assert len(list(folder.glob(f"events.out.tfevents.*{EXPERIMENT_SUFFIX}"))) == 1
    experiment, _ = session_groups(folder)
    infos = {h.name: h for h in experiment.hparam_infos}
    assert "model_kwargs.width" in infos  # set in one run only: still a column
    assert list(infos["state"].domain_discrete) == list(STATES)  # discrete: the dashboard filters by it
    assert sorted(infos["optimizer"].domain_discrete) == ["adam", "sgd"]
    tags = [m.name.tag for m in experiment.metric_infos]
    assert {"val/loss", "val/accuracy", "train/epoch_loss", "perf/samples_per_sec"} <= set(tags)
    assert "train/loss" not in tags and "lr" not in tags  # per-step curves are not final metrics
    # the Experiment sits in the study's folder (its own run) and nowhere else
    assert hparams_tags(read_events(folder)) == {"_hparams_/experiment"}
    for row in rows:
        assert hparams_tags(read_events(folder / f"train-{row['id']}")) == {
            "_hparams_/session_start_info", "_hparams_/session_end_info"}


def test_experiment_is_rewritten_only_when_the_union_grows(tmp_path):
    exp = StudyExperiment(tmp_path)
    assert exp.update({"lr": 0.1, "opt": "sgd", "state": "finished"}, ["val/loss"])
    first = list(tmp_path.glob(f"*{EXPERIMENT_SUFFIX}"))
    assert not exp.update({"lr": 0.2, "opt": "sgd", "state": "finished"}, ["val/loss"])  # nothing new
    assert list(tmp_path.glob(f"*{EXPERIMENT_SUFFIX}")) == first
    assert exp.update({"lr": 0.2, "opt": "adam", "state": "pruned"}, ["val/loss", "val/acc"])
    files = list(tmp_path.glob(f"*{EXPERIMENT_SUFFIX}"))
    assert len(files) == 1 and files != first  # the old one is gone: TensorBoard takes the first it finds
    experiment, _ = session_groups(tmp_path)
    assert sorted(experiment.hparam_infos[i].name for i in range(3)) == ["lr", "opt", "state"]
    assert sorted(m.name.tag for m in experiment.metric_infos) == ["val/acc", "val/loss"]
