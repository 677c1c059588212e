"""The loop's own guards: a schedule that gives a bad lr, empty validation data."""
from __future__ import annotations

import math

import pytest
import torch
from torch.utils.data import DataLoader, TensorDataset

import tunewidgets as tw
from engine_helpers import blob_task, blobs

CPU = dict(device="cpu")


@pytest.mark.parametrize("bad", [-0.5, math.nan])
def test_a_schedule_giving_a_bad_lr_stops_the_run_naming_the_schedule(bad):
    def schedule(step):
        return bad if step >= 5 else 1.0
    steps = []
    with pytest.raises(ValueError, match=r"schedule: .*schedule set the lr to .* at step 5; a learning rate must be"):
        tw.train(blob_task(), tw.TrainConfig(epochs=3, schedule=schedule, **CPU),
                 callbacks=[{"step": lambda rec: steps.append(rec["step"])}])
    assert steps == [1, 2, 3, 4]  # the step that would have used the bad lr never ran


def test_an_infinite_lr_from_a_schedule_ends_the_run_diverged():
    run = tw.train(blob_task(), tw.TrainConfig(epochs=3, schedule=lambda step: math.inf if step >= 5 else 1.0, **CPU))
    assert run.status == "diverged"


def test_a_bad_first_lr_fails_before_training_and_is_recorded(tmp_path):
    with pytest.raises(ValueError, match="at step 0"):
        tw.train(blob_task(), tw.TrainConfig(schedule=lambda step: -1.0, **CPU), store=tmp_path)
    with tw.Store(tmp_path) as store:
        run = store.runs().iloc[0]
        assert run["status"] == "failed" and "schedule" in run["error"]


class _Nothing(torch.utils.data.IterableDataset):
    def __iter__(self):
        return iter(())


class _Two(torch.utils.data.IterableDataset):
    def __iter__(self):
        data = blobs(16, 3)
        return iter([data[i] for i in range(2)])


def test_an_empty_validation_loader_of_unknown_length_is_an_error_before_the_first_step():
    task = blob_task(val=DataLoader(_Nothing(), batch_size=8))
    steps = []
    with pytest.raises(ValueError, match="val: "):
        tw.train(task, tw.TrainConfig(**CPU), callbacks=[{"step": steps.append}])
    assert steps == []


def test_a_validation_loader_of_unknown_length_with_data_is_used():
    run = tw.train(blob_task(val=DataLoader(_Two(), batch_size=8)), tw.TrainConfig(epochs=1, **CPU))
    assert run.status == "finished" and run.final["val_loss"] > 0
