"""Specs round-trip through dicts (JSON), code and pickle; their control metadata is usable."""
from __future__ import annotations

import dataclasses
import json
import pickle
import types

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schedule_strategies import runs

import tunewidgets.schedules as S
from tunewidgets.schedules._preview import OPTIMIZER_KINDS

TW = types.SimpleNamespace(schedules=S)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
@given(data=st.data(), name=st.sampled_from(list(S.CATALOGUE)))
def test_dict_code_and_pickle_round_trips(data, name):
    spec = data.draw(runs(name)).spec
    d = json.loads(json.dumps(spec.to_dict()))
    assert d["type"] == name
    assert S.from_dict(d) == spec and type(spec).from_dict(d) == spec
    assert eval(spec.to_code(), {"tw": TW}) == spec
    assert repr(spec) == spec.to_code()
    again = pickle.loads(pickle.dumps(spec))
    assert again == spec and hash(again) == hash(spec)


def test_code_shows_only_changed_fields():
    assert S.Cosine().to_code() == "tw.schedules.Cosine()"
    assert repr(S.OneCycle(max_lr=0.05, pct_start=0.25)) == "tw.schedules.OneCycle(max_lr=0.05, pct_start=0.25)"
    assert repr(S.Warmup(steps=50, then=S.Cosine(eta_min=1e-5))) == (
        "tw.schedules.Warmup(steps=50, then=tw.schedules.Cosine(eta_min=1e-05))")
    assert repr(S.MultiStep(milestones=(3, 9), interval="epoch")) == (
        "tw.schedules.MultiStep(milestones=[3, 9], interval='epoch')")
    assert repr(S.Cosine(eta_min=0)) == "tw.schedules.Cosine()"  # 0 is stored as 0.0, the default


def test_numpy_numbers_are_taken_and_stored_as_python_numbers():
    spec = S.MultiStep(milestones=np.array([3, 7]), gamma=np.float32(0.5))
    assert spec == S.MultiStep(milestones=[3, 7], gamma=0.5)
    assert type(spec.milestones[0]) is int and type(spec.gamma) is float
    assert json.dumps(spec.to_dict())
    assert len(spec.preview(np.int64(9), steps_per_epoch=np.int64(3))) == 9


def test_dict_holds_every_field_with_plain_values():
    d = S.Sequential(specs=[S.Warmup(steps=5), S.MultiStep(milestones=[10, 20])], milestones=[30]).to_dict()
    assert d == {"type": "Sequential", "interval": "step", "milestones": [30], "specs": [
        {"type": "Warmup", "steps": 5, "start_factor": 0.01, "interval": "step",
         "then": {"type": "Cosine", "T_max": None, "eta_min": 0.0, "interval": "step"}},
        {"type": "MultiStep", "milestones": [10, 20], "gamma": 0.1, "interval": "step"}]}


def test_from_dict_errors():
    with pytest.raises(ValueError, match="unknown schedule type 'Cosin'; known: Constant, Step"):
        S.from_dict({"type": "Cosin"})
    with pytest.raises(ValueError, match=r"Cosine has no field\(s\) \['T0'\]; its fields are \['T_max'"):
        S.from_dict({"type": "Cosine", "T0": 3})
    with pytest.raises(TypeError, match="'type' key"):
        S.from_dict({"T_max": 3})
    with pytest.raises(ValueError, match="OneCycle.pct_start"):
        S.from_dict({"type": "OneCycle", "pct_start": 2.0})
    with pytest.raises(ValueError, match="describes a OneCycle"):
        S.Cosine.from_dict(S.OneCycle().to_dict())


def test_replace_returns_a_validated_copy():
    spec = S.OneCycle(max_lr=0.1)
    changed = spec.replace(max_lr=0.2)
    assert changed == S.OneCycle(max_lr=0.2) and spec.max_lr == 0.1
    with pytest.raises(ValueError, match=r"OneCycle has no field\(s\) \['lr'\]; its fields are \['max_lr'"):
        spec.replace(lr=0.2)
    with pytest.raises(dataclasses.FrozenInstanceError):
        spec.max_lr = 0.3


def test_catalogue_and_exports():
    assert list(S.CATALOGUE) == ["Constant", "Step", "MultiStep", "Exponential", "Polynomial", "Cosine",
                                 "CosineWarmRestarts", "Cyclic", "OneCycle", "Warmup", "WSD", "InverseSqrt",
                                 "Sequential", "ReduceOnPlateau"]
    for name, cls in S.CATALOGUE.items():
        assert cls.__name__ == name and issubclass(cls, S.ScheduleSpec) and name in S.__all__
        assert cls().interval in S.INTERVALS
        assert cls.metric_driven == (name == "ReduceOnPlateau")
    assert all(hasattr(S, name) for name in S.__all__)


@pytest.mark.parametrize("name", list(S.CATALOGUE))
def test_controls_describe_every_field_and_their_ranges_are_valid(name):
    cls = S.CATALOGUE[name]
    controls = cls.controls()
    fields = dataclasses.fields(cls)
    assert [c.name for c in controls] == [f.name for f in fields]
    default = cls()
    for c in controls:
        assert c.kind in S.KINDS and c.help and "\n" not in c.help
        assert c.default == getattr(default, c.name)
        if c.kind == "choice":
            assert c.default in c.choices
        if c.kind == "lr":
            assert c.log and c.min > 0
        if c.kind in ("lr", "float", "int"):
            assert c.min is not None and c.max is not None and c.min < c.max
            cast = int if c.kind == "int" else float
            for value in (c.min, c.max):  # both ends of a slider give a valid spec (other fields default)
                try:
                    default.replace(**{c.name: cast(value)})
                except ValueError as exc:  # only a cross-field rule may refuse an end
                    assert "base_lr" in str(exc) or "momentum" in str(exc), exc
            if c.optional:
                assert default.replace(**{c.name: None}) is not None
        if c.kind == "spec":
            assert isinstance(c.default, S.ScheduleSpec)
        if c.kind in ("spec", "list[spec]"):
            assert list(c.choices) == [n for n, k in S.CATALOGUE.items() if not k.metric_driven]


def test_preview_knows_every_engine_optimizer():
    from tunewidgets.engine.optimizers import OPTIMIZERS

    assert set(OPTIMIZERS) <= set(OPTIMIZER_KINDS)


@pytest.mark.parametrize("name", list(S.CATALOGUE))
def test_train_config_takes_every_spec(name):
    from tunewidgets.engine.config import TrainConfig

    spec = S.CATALOGUE[name]()
    cfg = TrainConfig(optimizer="sgd", lr=0.1, momentum=0.9, schedule=spec)
    assert cfg.schedule is spec
    assert S.from_dict(json.loads(json.dumps(cfg.to_dict()))["schedule"]) == spec
