"""The range test's words: ``steps``, ``val``, ``eval_every_steps``; the old ones warn and still work; a
ramp of any length costs nothing up front."""
from __future__ import annotations

import threading
import tracemalloc

import numpy as np
import pytest
from lr_helpers import blob_loader
from torch import nn

import tunewidgets as tw
from tunewidgets.lr.range_test import current_names


def _task() -> tw.Task:
    return tw.tasks.spirals()


@pytest.mark.parametrize(("old", "new", "value"), [
    ("num_iter", "steps", 12),
    ("val_data", "val", True),
    ("eval_every", "eval_every_steps", 4),
    ("val_every", "eval_every_steps", 4),
])
def test_each_old_keyword_warns_naming_the_new_one_and_gives_the_same_test(old, new, value):
    base = dict(steps=12, device="cpu", diverge=np.inf)
    if new == "eval_every_steps":
        base["val"] = True
    with pytest.warns(DeprecationWarning, match=rf"{old}= is now {new}="):
        got = tw.lr_range_test(_task(), **{k: v for k, v in base.items() if k != new}, **{old: value})
    want = tw.lr_range_test(_task(), **{**base, new: value})
    assert got.losses.tolist() == want.losses.tolist() and len(got) == 12
    if want.val_losses is not None:
        np.testing.assert_array_equal(got.val_losses, want.val_losses)
    assert "num_iter" not in got.settings and got.settings["steps"] == 12


def test_the_new_names_give_no_warning(recwarn):
    res = tw.lr_range_test(_task(), steps=6, val=True, eval_every_steps=3, device="cpu")
    assert not [w for w in recwarn if issubclass(w.category, DeprecationWarning)]
    assert [i + 1 for i, v in enumerate(res.val_losses) if v == v] == [3, 6]


def test_old_names_in_a_recorded_call_read_as_the_new_ones():
    assert current_names({"num_iter": 5, "eval_every": 2, "val_data": True, "mode": "exp"}) == {
        "steps": 5, "eval_every_steps": 2, "val": True, "mode": "exp"}


def test_a_hundred_million_steps_allocate_nothing_before_the_first_step():
    stop = threading.Event()
    tracemalloc.start()
    try:
        res = tw.lr_range_test(model=nn.Linear(4, 3), loss="cross_entropy", data=blob_loader(), steps=10**8,
                               stop=stop, on_step=lambda r: r["step"] == 3 and stop.set())
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert len(res) == 3 and res.stop_reason == "stopped" and res.settings["steps"] == 10**8
    assert peak < 20 * 2**20  # the eager ramp was 10**8 floats (800 MB) and more
