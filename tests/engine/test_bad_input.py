"""Bad input fails before any training, naming the field, the value and the fix."""
from __future__ import annotations

import math

import pytest
import torch
from engine_helpers import blob_task, blobs, mlp
from torch.utils.data import TensorDataset

import tunewidgets as tw


@pytest.mark.parametrize("kwargs, error, pattern", [
    ({"optimizer": "adamm"}, ValueError, r"optimizer.*'adamm'.*sgd.*adam"),
    ({"lr": 0}, ValueError, r"lr: must be a finite number > 0, got 0"),
    ({"lr": -1e-3}, ValueError, r"lr: .*got -0.001"),
    ({"lr": math.inf}, ValueError, r"lr: .*got inf"),
    ({"lr": math.nan}, ValueError, r"lr: .*got nan"),
    ({"epochs": 0}, ValueError, r"epochs: must be >= 1, got 0"),
    ({"epochs": 2.5}, TypeError, r"epochs: expected a whole number"),
    ({"batch_size": 0}, ValueError, r"batch_size: must be >= 1, got 0"),
    ({"momentum": 1.0}, ValueError, r"momentum: must be in \[0, 1\), got 1.0"),
    ({"momentum": -0.1}, ValueError, r"momentum: .*got -0.1"),
    ({"weight_decay": -1e-4}, ValueError, r"weight_decay: must be >= 0, got -0.0001"),
    ({"amp": "fp8"}, ValueError, r"amp: must be False, True, 'bf16' or 'fp16', got 'fp8'"),
    ({"grad_accum": 0}, ValueError, r"grad_accum: must be >= 1"),
    ({"grad_clip": -1.0}, ValueError, r"grad_clip: must be a finite number > 0"),
    ({"seed": -1}, ValueError, r"seed: must be a whole number in \[0, 4294967295\]"),
    ({"schedule": 3}, TypeError, r"schedule: expected a tw.schedules spec"),
    ({"nesterov": True}, ValueError, r"nesterov: needs momentum > 0"),
])
def test_config_rejects_bad_values(kwargs, error, pattern):
    with pytest.raises(error, match=pattern):
        tw.TrainConfig(**kwargs)


def test_replace_rejects_unknown_fields_and_revalidates():
    cfg = tw.TrainConfig()
    with pytest.raises(ValueError, match=r"no field\(s\) \['learning_rate'\]"):
        cfg.replace(learning_rate=0.1)
    with pytest.raises(ValueError, match="lr:"):
        cfg.replace(lr=0)


def test_with_params_routes_unknown_keys_to_model_kwargs():
    cfg = tw.TrainConfig().with_params({"lr": 0.3, "width": 32})
    assert cfg.lr == 0.3 and cfg.model_kwargs == {"width": 32}


@pytest.mark.parametrize("name", ["loss", "metrics"])
def test_unknown_loss_or_metric_lists_valid_names(name):
    bad = {"loss": "cross_entropyy", "metrics": ("acc",)}[name]
    with pytest.raises(ValueError, match=rf"{bad if isinstance(bad, str) else bad[0]}"):
        blob_task(**{name: bad})


def test_task_batch_size_and_empty_data():
    with pytest.raises(ValueError, match=r"batch_size: must be >= 1, got 0"):
        blob_task(batch_size=0)
    empty = TensorDataset(torch.zeros(0, 2), torch.zeros(0, dtype=torch.long))
    with pytest.raises(ValueError, match=r"train: the dataset is empty"):
        blob_task(train=empty)
    with pytest.raises(ValueError, match=r"val: the dataset is empty"):
        blob_task(val=empty)


def test_task_needs_a_factory_not_a_module_and_checks_the_product():
    with pytest.raises(TypeError, match="model: got an nn.Module instance"):
        blob_task(model=mlp())
    with pytest.raises(TypeError, match="model: expected a factory"):
        blob_task(model=42)
    task = blob_task(model=lambda: "not a net")
    with pytest.raises(TypeError, match=r"model: the factory .* returned str, not a torch.nn.Module"):
        tw.train(task, tw.TrainConfig(device="cpu"))


def test_unknown_model_kwargs_are_named():
    with pytest.raises(ValueError, match=r"model_kwargs: the factory mlp takes no argument\(s\) \['depth'\]"):
        tw.train(blob_task(), tw.TrainConfig(device="cpu", model_kwargs={"depth": 3}))


def test_loss_and_target_shapes_that_do_not_fit_are_named_before_training():
    steps = []
    task = blob_task(model=lambda: torch.nn.Linear(2, 5), loss="mse")
    with pytest.raises(ValueError, match=r"\(32, 5\).*\(32,\)|\(32,\).*\(32, 5\)"):
        tw.train(task, tw.TrainConfig(device="cpu"), callbacks=[{"step": steps.append}])
    assert steps == []


def test_cuda_without_cuda_is_refused_before_training():
    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    with pytest.raises(ValueError, match=r"device: 'cuda' was asked for but CUDA is not available"):
        tw.train(blob_task(), tw.TrainConfig(device="cuda"))


def test_fp16_amp_needs_cuda():
    with pytest.raises(ValueError, match=r"amp: 'fp16' needs a CUDA device"):
        tw.train(blob_task(), tw.TrainConfig(device="cpu", amp="fp16"))


def test_unknown_device_name():
    with pytest.raises(ValueError, match=r"device: 'tpu' is not a device name|device: 'tpu' is not supported"):
        tw.train(blob_task(), tw.TrainConfig(device="tpu"))


def test_store_path_that_is_a_file_of_another_kind(tmp_path):
    path = tmp_path / "notes.txt"
    path.write_text("these are my notes, not a database\n")
    steps = []
    with pytest.raises(ValueError, match="notes.txt"):
        tw.train(blob_task(), tw.TrainConfig(device="cpu"), store=path, callbacks=[{"step": steps.append}])
    assert steps == []
    assert path.read_text() == "these are my notes, not a database\n"


def test_task_is_required():
    with pytest.raises(TypeError, match="task: expected a tw.Task"):
        tw.train(blobs(), tw.TrainConfig())
