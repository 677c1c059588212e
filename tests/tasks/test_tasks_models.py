"""The networks behind the built-in tasks: MLP and TinyUNet."""
from __future__ import annotations

import pytest
import torch
from torch import nn

from tunewidgets.tasks.models import ACTIVATIONS, MLP, TinyUNet


@pytest.mark.parametrize("depth", [0, 1, 3])
def test_mlp_depth_counts_hidden_layers(depth):
    model = MLP(5, 2, width=7, depth=depth)
    sizes = [(m.in_features, m.out_features) for m in model.modules() if isinstance(m, nn.Linear)]
    assert sizes == ([(5, 7)] + [(7, 7)] * (depth - 1) + [(7, 2)] if depth else [(5, 2)])
    assert model(torch.zeros(4, 5)).shape == (4, 2)


@pytest.mark.parametrize("name", sorted(ACTIVATIONS))
def test_mlp_activation_by_name(name):
    model = MLP(3, 1, width=4, depth=2, activation=name)
    assert sum(isinstance(m, ACTIVATIONS[name]) for m in model.modules()) == 2


def test_dropout_is_active_only_in_training():
    torch.manual_seed(0)
    model = MLP(8, 1, width=64, depth=1, dropout=0.5)
    x = torch.ones(1, 8)
    model.eval()
    torch.testing.assert_close(model(x), model(x))
    model.train()
    assert not torch.allclose(model(x), model(x))


@pytest.mark.parametrize("kwargs, field", [
    ({"width": 0}, "width"), ({"width": 2.5}, "width"), ({"depth": -1}, "depth"),
    ({"dropout": 1.0}, "dropout"), ({"dropout": -0.1}, "dropout"), ({"activation": "sigmoidd"}, "activation"),
])
def test_bad_model_arguments_name_the_field(kwargs, field):
    with pytest.raises(ValueError, match=f"^{field}: "):
        MLP(2, 2, **kwargs)
    if field != "depth":
        with pytest.raises(ValueError, match=f"^{field}: "):
            TinyUNet(1, 1, **kwargs)


@pytest.mark.parametrize("size", [8, 16, 32])
def test_unet_keeps_the_spatial_size(size):
    model = TinyUNet(2, 3, width=4)
    assert model(torch.zeros(5, 2, size, size)).shape == (5, 3, size, size)


def test_unet_is_a_fully_convolutional_net_without_batch_norm():
    model = TinyUNet(1, 1, width=6)
    kinds = {type(m) for m in model.modules()}
    assert nn.Conv2d in kinds and nn.ConvTranspose2d in kinds and nn.Linear not in kinds
    assert not any(issubclass(k, nn.modules.batchnorm._BatchNorm) for k in kinds)
    convs = (nn.Conv2d, nn.ConvTranspose2d)
    widths = sorted({m.out_channels for m in model.modules() if isinstance(m, convs)})
    assert widths == [1, 6, 12]


def test_unet_sees_beyond_one_pixel():
    # the logit at a pixel depends on pixels a few steps away (the context behind circle vs rectangle)
    torch.manual_seed(0)
    model = TinyUNet(1, 1, width=4).eval()
    x = torch.zeros(1, 1, 16, 16, requires_grad=True)
    model(x)[0, 0, 8, 8].backward()
    reach = torch.nonzero(x.grad[0, 0].abs() > 0)
    span = int((reach - torch.tensor([8, 8])).abs().max())
    assert span >= 5
