"""sine(): 1-D regression of sin(x) plus noise."""
from __future__ import annotations

import math

import torch
from tasks_helpers import train_recommended, untrained_val_loss

import tunewidgets as tw


def test_shapes_and_input_range():
    task = tw.tasks.sine()
    x, y = task.train.tensors
    assert x.shape == (800, 1) and y.shape == (800, 1) and len(task.val) == 200
    assert float(x.min()) >= -1.0 and float(x.max()) <= 1.0
    assert float(x.min()) < -0.95 and float(x.max()) > 0.95  # the whole period is covered


def test_targets_are_the_sine_plus_noise_of_the_given_size():
    clean = tw.tasks.sine(noise=0.0, periods=2.0)
    x, y = clean.train.tensors
    torch.testing.assert_close(y, torch.sin(2 * math.pi * x))
    x, y = tw.tasks.sine(noise=0.1).train.tensors
    residual = y - torch.sin(math.pi * x)
    assert 0.09 < float(residual.std()) < 0.11 and abs(float(residual.mean())) < 0.02


def test_model_kwargs_and_output_shape():
    task = tw.tasks.sine()
    x = task.train.tensors[0][:9]
    assert task.build_model()(x).shape == (9, 1)
    wide = task.build_model(width=8, depth=1, activation="relu")
    assert [m.out_features for m in wide.modules() if isinstance(m, torch.nn.Linear)] == [8, 1]


def test_recommended_config_fits_down_to_the_noise():
    task = tw.tasks.sine()
    before = untrained_val_loss(task)
    run = train_recommended(task)
    assert run.final["val_loss"] < 0.1 * before
    assert run.final["val_mae"] < 0.12  # the noise alone gives about 0.08; predicting 0 gives about 0.64
