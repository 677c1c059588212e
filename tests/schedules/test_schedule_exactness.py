"""The contract of every spec: its preview is what training applies, to 1e-12 relative.

For random valid specs and runs, a tiny model is trained with ``spec.build`` stepped as the
engine steps it (per step, per epoch, or with a metric after each epoch), recording the lr
and momentum/beta1 of each optimizer step; the preview must give the same numbers and emit
no warning.
"""
from __future__ import annotations

import warnings

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schedule_strategies import runs, train_and_record

import tunewidgets.schedules as S


@pytest.mark.parametrize("name", list(S.CATALOGUE))
@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
@given(data=st.data())
def test_preview_equals_what_training_applies(name, data):
    run = data.draw(runs(name))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        frame = run.spec.preview(run.total_steps, run.base_lr, run.steps_per_epoch, **run.preview_kwargs())
    trained = train_and_record(run)

    assert frame["step"].tolist() == list(range(1, run.total_steps + 1))
    np.testing.assert_allclose(frame["lr"].to_numpy(), trained["lr"], rtol=1e-12, atol=0)
    column = {"sgd": "momentum", "rmsprop": "momentum", "adam": "beta1", "adamw": "beta1"}.get(run.optimizer)
    if run.spec._cycles_momentum():
        assert column in frame.columns
        np.testing.assert_allclose(frame[column].to_numpy(), trained[column], rtol=1e-12, atol=0)
    else:
        assert "momentum" not in frame.columns and "beta1" not in frame.columns
        if column is not None:  # nothing touched the optimizer's own momentum or beta1
            np.testing.assert_array_equal(trained[column], run.momentum)
    if run.steps_per_epoch is not None:
        assert frame["epoch"].tolist() == [i // run.steps_per_epoch for i in range(run.total_steps)]


@pytest.mark.parametrize("name", list(S.CATALOGUE))
def test_every_default_spec_previews_without_warnings(name):
    spec = S.CATALOGUE[name]()
    extra = {"metrics": [1.0] * 12} if spec.metric_driven else {}
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        frame = spec.preview(1200, steps_per_epoch=100, **extra)
    assert len(frame) == 1200
    assert np.isfinite(frame["lr"]).all() and (frame["lr"] >= 0).all()
    assert frame["epoch"].iloc[-1] == 11


def test_epoch_interval_holds_the_lr_within_each_epoch():
    spec = S.Cosine(interval="epoch")
    frame = spec.preview(total_steps=23, base_lr=1.0, steps_per_epoch=5)  # 5 epochs, the last partial
    per_epoch = S.Cosine().preview(total_steps=5, base_lr=1.0)["lr"].to_numpy()
    np.testing.assert_array_equal(frame["lr"].to_numpy(), np.repeat(per_epoch, 5)[:23])
