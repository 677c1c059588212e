"""Presets: published values, their sources, spaces centred on them, and training from one."""
from __future__ import annotations

import re

import pytest

import tunewidgets as tw
from tunewidgets.hpo.presets import as_config
from tunewidgets.hpo.space import LogUniform, Space, Uniform


def test_published_values():
    cifar = tw.presets.get("sgd-resnet-cifar").config
    assert (cifar.optimizer, cifar.lr, cifar.momentum, cifar.weight_decay, cifar.batch_size) == \
        ("sgd", 0.1, 0.9, 5e-4, 128)
    assert cifar.schedule.milestones == (82, 123) and cifar.epochs == 164
    adam = tw.presets.get("adam").config
    assert (adam.optimizer, adam.lr, adam.betas, adam.eps) == ("adam", 1e-3, (0.9, 0.999), 1e-8)
    adamw = tw.presets.get("adamw").config
    assert adamw.optimizer == "adamw" and adamw.weight_decay == 1e-2
    one = tw.presets.get("one-cycle").config
    assert type(one.schedule).__name__ == "OneCycle"
    assert (one.schedule.base_momentum, one.schedule.max_momentum, one.schedule.pct_start) == (0.85, 0.95, 0.3)
    tf = tw.presets.get("transformer-warmup").config
    assert tf.betas == (0.9, 0.98) and tf.eps == 1e-9 and tf.schedule.warmup_steps == 4000
    # d_model^-0.5 * warmup^-0.5 for d_model 512: the peak of Vaswani et al.'s schedule
    assert tf.lr == pytest.approx(512 ** -0.5 * 4000 ** -0.5, rel=0.01)


@pytest.mark.parametrize("name", tw.presets.names())
def test_every_preset_names_its_source(name):
    p = tw.presets.get(name)
    assert re.search(r"\b(19|20)\d\d\b", p.source), p.source     # author and year
    assert p.url.startswith("https://")
    assert len(p.notes) > 40


def test_unknown_preset_lists_the_known_ones():
    with pytest.raises(ValueError, match=r"preset: unknown name 'adamm' \(did you mean 'adam'\?\); known presets: "
                                         r"sgd-resnet-cifar, adam, adamw"):
        tw.presets.get("adamm")


@pytest.mark.parametrize("name", tw.presets.names())
def test_centred_space_is_valid_for_the_preset(name):
    p = tw.presets.get(name)
    dims = p.space()
    Space(dims, base=p.config)  # every key applies and every end is a valid value
    rate_key = "schedule.max_lr" if name == "one-cycle" else "lr"
    rate = p.config.schedule.max_lr if name == "one-cycle" else p.config.lr
    assert isinstance(dims[rate_key], LogUniform)
    assert dims[rate_key].low == pytest.approx(rate / 10) and dims[rate_key].high == pytest.approx(rate * 10)


def test_space_options():
    p = tw.presets.get("sgd-resnet-cifar")
    dims = p.space(("lr", "momentum"), factor=3, grid=3)
    assert list(dims) == ["lr", "momentum"]
    assert dims["lr"].grid_values() == pytest.approx([0.1 / 3, 0.1, 0.3], rel=1e-3)
    assert isinstance(dims["momentum"], Uniform) and (dims["momentum"].low, dims["momentum"].high) == (0.8, 0.95)
    with pytest.raises(ValueError, match=r"keys: preset 'adam' centres no range on \['momentum'\]"):
        tw.presets.get("adam").space(("momentum",))
    with pytest.raises(ValueError, match=r"factor: must be a number > 1"):
        p.space(factor=0.5)


def test_with_epochs_scales_epoch_milestones():
    p = tw.presets.get("sgd-resnet-cifar").with_epochs(8)
    assert p.config.epochs == 8 and p.config.schedule.milestones == (4, 6)
    assert tw.presets.get("sgd-resnet-cifar").with_epochs(2).config.schedule.milestones == (1,)
    assert tw.presets.get("sgd-resnet-cifar").with_epochs(1).config.schedule is None
    assert tw.presets.get("adam").with_epochs(3).config.epochs == 3


def test_base_accepts_a_config_a_preset_or_its_name():
    p = tw.presets.get("adam")
    assert as_config(p) is p.config and as_config("adam") is p.config
    cfg = tw.TrainConfig()
    assert as_config(cfg) is cfg
    with pytest.raises(TypeError, match=r"base: expected a tw.TrainConfig, a preset"):
        as_config(3)


@pytest.mark.parametrize("name", ["sgd-resnet-cifar", "adam", "adamw", "one-cycle"])
def test_presets_train(name):
    task = tw.tasks.digits()
    cfg = tw.presets.get(name).with_epochs(2).config.replace(batch_size=64, device="cpu")
    run = tw.train(task, cfg)
    assert run.status == "finished"
    assert run.final["val_accuracy"] > 0.5, run.final


def test_transformer_warmup_says_to_shorten_the_warmup_on_a_short_run():
    cfg = tw.presets.get("transformer-warmup").config.replace(epochs=1, device="cpu")
    with pytest.raises(ValueError, match=r"InverseSqrt.warmup_steps: the warm-up \(4000 steps\) must be shorter"):
        tw.train(tw.tasks.digits(), cfg)
