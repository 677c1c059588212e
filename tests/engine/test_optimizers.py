"""Optimizers by name: the right torch class with only the settings it takes; clear errors."""
from __future__ import annotations

import pytest
import torch

from tunewidgets.engine.config import TrainConfig
from tunewidgets.engine.optimizers import (OPTIMIZERS, build_from_config, build_optimizer, check_optimizer,
                                           momentum_key)


def params():
    return [torch.nn.Parameter(torch.zeros(3))]


def group(opt):
    return opt.param_groups[0]


COMMON = dict(lr=0.05, momentum=0.8, nesterov=True, betas=(0.85, 0.99), eps=1e-6, weight_decay=0.01)


@pytest.mark.parametrize("name, cls, want, absent", [
    ("sgd", torch.optim.SGD, {"momentum": 0.8, "nesterov": True, "weight_decay": 0.01}, ("betas", "eps")),
    ("adam", torch.optim.Adam, {"betas": (0.85, 0.99), "eps": 1e-6, "weight_decay": 0.01}, ("momentum",)),
    ("adamw", torch.optim.AdamW, {"betas": (0.85, 0.99), "eps": 1e-6, "weight_decay": 0.01}, ("momentum",)),
    ("rmsprop", torch.optim.RMSprop, {"momentum": 0.8, "weight_decay": 0.01, "eps": 1e-8}, ("betas",)),
    ("adagrad", torch.optim.Adagrad, {"weight_decay": 0.01, "eps": 1e-10}, ("momentum", "betas")),
])
def test_each_name_builds_its_class_with_its_settings(name, cls, want, absent):
    opt = build_optimizer(name, params(), **COMMON)
    assert type(opt) is cls
    g = group(opt)
    assert g["lr"] == 0.05
    for key, v in want.items():
        assert g[key] == v, key
    for key in absent:
        assert key not in g, key


def test_rprop_takes_its_own_kwargs_and_has_no_weight_decay():
    opt = build_optimizer("rprop", params(), lr=0.01, momentum=0.9, etas=(0.4, 1.3))
    assert type(opt) is torch.optim.Rprop and group(opt)["etas"] == (0.4, 1.3)
    with pytest.raises(ValueError, match=r"weight_decay: rprop has no weight decay, got weight_decay=0.01"):
        build_optimizer("rprop", params(), lr=0.01, weight_decay=0.01)


def test_extra_kwargs_go_to_torch():
    assert group(build_optimizer("rmsprop", params(), lr=0.01, alpha=0.9))["alpha"] == 0.9
    assert group(build_optimizer("adam", params(), lr=0.01, amsgrad=True))["amsgrad"] is True


def test_unknown_kwarg_lists_accepted():
    with pytest.raises(ValueError, match=r"sgd \(SGD\) takes no keyword\(s\) \['alpha'\]; it accepts lr, momentum"):
        build_optimizer("sgd", params(), lr=0.1, alpha=0.9)
    with pytest.raises(ValueError, match=r"\['lr'\] are set by their own fields"):
        build_from_config(TrainConfig(optimizer="sgd", optimizer_kwargs={"lr": 1.0}), params())


def test_names_and_check():
    assert OPTIMIZERS == ("sgd", "adam", "adamw", "rmsprop", "rprop", "adagrad")
    assert all(check_optimizer(n) == n for n in OPTIMIZERS)
    with pytest.raises(ValueError, match=r"optimizer: unknown optimizer 'foo'; use one of: sgd, adam, adamw, "
                                         r"rmsprop, rprop, adagrad"):
        check_optimizer("foo")
    with pytest.raises(ValueError, match=r"did you mean 'adamw'"):
        check_optimizer("AdamW")
    with pytest.raises(TypeError, match=r"optimizer: expected a name \(str\)"):
        check_optimizer(torch.optim.SGD)
    with pytest.raises(ValueError, match=r"unknown optimizer 'lbfgs'"):
        build_optimizer("lbfgs", params(), lr=0.1)
    with pytest.raises(ValueError, match=r"lr: must be a finite number > 0, got 0"):
        build_optimizer("sgd", params(), lr=0)


def test_build_from_config():
    cfg = TrainConfig(optimizer="adamw", lr=3e-3, betas=(0.8, 0.9), eps=1e-7, weight_decay=0.1,
                      optimizer_kwargs={"amsgrad": True})
    g = group(build_from_config(cfg, params()))
    assert (g["lr"], g["betas"], g["eps"], g["weight_decay"], g["amsgrad"]) == (3e-3, (0.8, 0.9), 1e-7, 0.1, True)
    g = group(build_from_config(TrainConfig(optimizer="sgd", lr=0.1, momentum=0.9, nesterov=True), params()))
    assert (g["momentum"], g["nesterov"]) == (0.9, True)


def test_built_optimizer_steps():
    p = torch.nn.Parameter(torch.tensor([1.0]))
    opt = build_optimizer("sgd", [p], lr=0.5)
    p.grad = torch.tensor([2.0])
    opt.step()
    assert float(p.detach()) == 0.0


def test_momentum_key():
    for name, key in [("sgd", "momentum"), ("rmsprop", "momentum"), ("adam", "betas"), ("adamw", "betas"),
                      ("rprop", None), ("adagrad", None)]:
        assert momentum_key(build_optimizer(name, params(), lr=0.1)) == key, name
        assert momentum_key(name) == key, name
    with pytest.raises(TypeError, match=r"expected a torch optimizer or a name"):
        momentum_key(3)


def test_nesterov_needs_momentum():
    with pytest.raises(ValueError, match=r"nesterov: needs momentum > 0 with sgd"):
        build_optimizer("sgd", params(), lr=0.1, nesterov=True)
    assert "nesterov" not in group(build_optimizer("adam", params(), lr=0.1, nesterov=True))
