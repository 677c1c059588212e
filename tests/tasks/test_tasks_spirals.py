"""spirals(): interleaved arms, not linearly separable, learnt by the default MLP."""
from __future__ import annotations

import math

import torch
from tasks_helpers import train_recommended
from torch import nn

import tunewidgets as tw
from tunewidgets.tasks._spirals import make_spirals


def test_sizes_labels_and_range():
    task = tw.tasks.spirals()
    x, y = task.train.tensors
    assert x.shape == (800, 2) and len(task.val) == 200
    both = torch.cat([y, task.val.tensors[1]])
    assert torch.bincount(both).tolist() == [334, 333, 333]  # arms share the points evenly
    assert float(torch.cat([x, task.val.tensors[0]]).abs().max()) < 1.3  # radius <= 1 plus noise


def test_points_lie_on_their_arm_without_noise():
    arms, turns = 4, 1.5
    x, y = make_spirals(500, arms=arms, turns=turns, noise=0.0, generator=torch.Generator().manual_seed(0))
    r = x.norm(dim=1)
    assert float(r.max()) <= 1.0 + 1e-6
    angle = torch.atan2(x[:, 1], x[:, 0]).double()
    want = 2 * math.pi * (turns * r.double() + y.double() / arms)
    gap = torch.remainder(angle - want + math.pi, 2 * math.pi) - math.pi  # angle difference in (-pi, pi]
    assert float(gap[r > 1e-3].abs().max()) < 1e-3


def test_more_arms_give_more_classes_and_model_outputs():
    task = tw.tasks.spirals(n=500, arms=5)
    assert set(task.train.tensors[1].tolist()) == set(range(5))
    model = task.build_model(width=16, depth=2)
    assert model(task.train.tensors[0][:7]).shape == (7, 5)
    assert [m.out_features for m in model.modules() if isinstance(m, nn.Linear)] == [16, 16, 5]


def test_default_model_is_three_hidden_layers_of_64():
    model = tw.tasks.spirals().build_model()
    assert [(m.in_features, m.out_features) for m in model.modules() if isinstance(m, nn.Linear)] == [
        (2, 64), (64, 64), (64, 64), (64, 3)]


def test_default_model_learns_what_a_linear_model_cannot():
    task = tw.tasks.spirals()
    deep = train_recommended(task)
    linear = train_recommended(task, model_kwargs={"depth": 0}, epochs=10)
    assert deep.final["val_accuracy"] > 0.9
    assert linear.final["val_accuracy"] < 0.7  # chance is 1/3
