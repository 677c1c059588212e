"""digits(): the shipped 8x8 handwritten digits, its default MLP, and the 95% quality bar."""
from __future__ import annotations

import gzip
from importlib import resources

import numpy as np
import pytest
import torch
from tasks_helpers import train_recommended
from torch import nn

import tunewidgets as tw
from tunewidgets.tasks._digits import load_digits


def _file_table() -> np.ndarray:
    path = resources.files("tunewidgets.tasks").joinpath("data/digits.csv.gz")
    with path.open("rb") as raw, gzip.open(raw, "rt") as text:
        return np.loadtxt(text, delimiter=",")


def test_all_1797_images_split_with_pixels_in_unit_range():
    task = tw.tasks.digits()
    x = torch.cat([task.train.tensors[0], task.val.tensors[0]])
    y = torch.cat([task.train.tensors[1], task.val.tensors[1]])
    assert x.shape == (1797, 64) and y.shape == (1797,)
    assert (len(task.train), len(task.val)) == (1438, 359)
    assert float(x.min()) == 0.0 and float(x.max()) == 1.0
    assert torch.equal(x * 16, (x * 16).round())  # pixel / 16 with pixels 0..16
    assert sorted(y.unique().tolist()) == list(range(10))
    for part in (task.train, task.val):
        assert set(part.tensors[1].tolist()) == set(range(10))  # every class on both sides


def test_split_is_a_permutation_of_the_shipped_file():
    table = _file_table()
    assert table.shape == (1797, 65)
    task = tw.tasks.digits(seed=3)
    x = torch.cat([task.train.tensors[0], task.val.tensors[0]]) * 16
    y = torch.cat([task.train.tensors[1], task.val.tensors[1]])
    got = np.column_stack([x.numpy(), y.numpy()])
    key = lambda a: a[np.lexsort(a.T[::-1])]  # noqa: E731 - sort rows
    np.testing.assert_array_equal(key(got), key(table))


def test_load_digits_gives_fresh_tensors():
    x, y = load_digits()
    x[0] = 5.0  # writing to one copy must not change the next
    assert float(load_digits()[0].max()) == 1.0
    assert y.dtype == torch.int64 and np.bincount(y.numpy()).tolist()[:2] == [178, 182]


def test_default_model_is_an_mlp_with_one_hidden_layer_of_128():
    model = tw.tasks.digits().build_model()
    linears = [m for m in model.modules() if isinstance(m, nn.Linear)]
    assert [(m.in_features, m.out_features) for m in linears] == [(64, 128), (128, 10)]
    assert not any(isinstance(m, nn.Dropout) for m in model.modules())


def test_model_kwargs_set_width_depth_dropout_and_activation():
    task = tw.tasks.digits()
    model = task.build_model(width=32, depth=3, dropout=0.25, activation="tanh")
    linears = [m for m in model.modules() if isinstance(m, nn.Linear)]
    assert [m.out_features for m in linears] == [32, 32, 32, 10]
    assert [m.p for m in model.modules() if isinstance(m, nn.Dropout)] == [0.25] * 3
    assert sum(isinstance(m, nn.Tanh) for m in model.modules()) == 3
    x = task.train.tensors[0][:5]
    assert model(x).shape == (5, 10)
    assert model(x.view(5, 1, 8, 8)).shape == (5, 10)  # images are flattened first
    linear = task.build_model(depth=0)
    assert [type(m) for m in linear] == [nn.Flatten, nn.Linear]
    with pytest.raises(ValueError, match="model_kwargs: .*takes no argument"):
        task.build_model(widht=64)


def test_recommended_config_reaches_95_percent_within_10_epochs():
    task = tw.tasks.digits()
    assert task.recommended["epochs"] <= 10
    run = train_recommended(task)
    assert run.status == "finished" and run.final["epochs"] <= 10
    assert run.final["val_accuracy"] >= 0.95


def test_sgd_with_momentum_also_reaches_95_percent():
    run = tw.train(tw.tasks.digits(), tw.TrainConfig(optimizer="sgd", lr=0.05, momentum=0.9, epochs=10,
                                                    device="cpu"))
    assert run.final["val_accuracy"] >= 0.95
