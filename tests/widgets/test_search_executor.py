"""The Search widget's executor controls without a browser: values -> controls -> each Launch's
executor, bad k and address refused before any training, fused and Ray searches launched from the
widget, and the status line saying how many trials run at once and where.

The Ray test starts the module's one local Ray (``hpo/ray_helpers.py``) and shuts it down."""
from __future__ import annotations

import html
import re

import numpy as np
import pytest

import tunewidgets as tw
from tunewidgets.hpo.fused_executor import choose_k
from tunewidgets.widgets import Search

#: one local Ray on the machine at a time: with pytest-xdist, one worker runs these tests
pytestmark = pytest.mark.xdist_group("ray")

GRID = {"lr": tw.space.Choice([0.02, 0.05, 0.1])}


@pytest.fixture(scope="module")
def task() -> tw.Task:
    return tw.tasks.spirals(n=200)


def base(**kw) -> tw.TrainConfig:
    return tw.TrainConfig(**{"optimizer": "sgd", "momentum": 0.9, "epochs": 2, "device": "cpu", **kw})


def make(task, tmp_path, space=GRID, **kw) -> Search:
    kw.setdefault("interval", 0.02)
    kw.setdefault("store", tmp_path / "runs")
    kw.setdefault("base", base())
    kw.setdefault("strategy", "grid")
    return Search(task, space, **kw)


def as_text(value: str) -> str:
    """HTML as the page shows it: tags dropped, entities unescaped."""
    return html.unescape(re.sub(r"<[^>]+>", "", value))


def status_text(w: Search) -> str:
    return as_text(w.status_line.value)


def launched(w: Search):
    assert w.launch(), w.error_area.message
    study = w.wait(timeout=120)
    assert w.status == "finished", (w.status, w.error)
    return study


# ------------------------------------------------------------------------------- controls
def test_the_executor_argument_sets_the_controls_and_each_launch_gets_a_fresh_executor(task, tmp_path):
    w = make(task, tmp_path)
    c = w.executor_controls
    assert c.kind.value == "local" and c.k.layout.display == "none" and c.address.layout.display == "none"
    assert type(w.search_settings()["executor"]) is tw.hpo.LocalExecutor

    w = make(task, tmp_path, executor=tw.hpo.FusedExecutor(k=8))
    c = w.executor_controls
    assert (c.kind.value, c.k.value, c.k.layout.display, c.address.layout.display) == ("fused", "8", None, "none")
    first, second = w.search_settings()["executor"], w.search_settings()["executor"]
    assert isinstance(first, tw.hpo.FusedExecutor) and first.k == 8 and first is not second
    c.k.value = "auto"
    assert w.search_settings()["executor"].k is None
    assert make(task, tmp_path, executor="fused").executor_controls.k.value == "auto"
    assert make(task, tmp_path, executor=tw.hpo.FusedExecutor).executor_controls.kind.value == "fused"


def test_a_ray_executor_given_keeps_its_settings_and_the_address_field_shows_its_address(task, tmp_path):
    pytest.importorskip("ray")
    given = tw.hpo.RayExecutor(address="ray://10.0.0.5:10001", cpus_per_trial=0.5, max_retries=2, workers=3)
    w = make(task, tmp_path, executor=given)
    c = w.executor_controls
    assert (c.kind.value, c.address.value, c.address.layout.display, c.k.layout.display) == (
        "ray", "ray://10.0.0.5:10001", None, "none")
    made = w.search_settings()["executor"]
    assert made is not given
    assert (made.address, made.cpus_per_trial, made.max_retries, made.workers) == ("ray://10.0.0.5:10001", 0.5, 2, 3)
    c.address.value = "  "
    assert w.search_settings()["executor"].address is None  # empty: a local Ray
    c.address.value = "auto"
    assert w.search_settings()["executor"].address == "auto"


class Mine(tw.hpo.LocalExecutor):
    """An executor of the user's own (here: the local one under another name)."""

    name = "mine"


def test_an_executor_of_another_kind_gets_its_own_button_and_is_used_as_it_is(task, tmp_path):
    mine = Mine()
    w = make(task, tmp_path, base=base(epochs=1), executor=mine)
    assert w.executor_controls.kind.options == ("local", "fused", "ray", "mine")
    assert w.executor_controls.kind.value == "mine" and w.search_settings()["executor"] is mine
    study = launched(w)
    assert w._executor is mine and study.trials["state"].tolist() == ["finished"] * 3
    assert status_text(w).endswith("; one trial at a time (mine)")
    w.executor_controls.kind.value = "local"
    assert type(w.search_settings()["executor"]) is tw.hpo.LocalExecutor


@pytest.mark.parametrize("executor, error, words", [
    ("fussed", ValueError, "executor: unknown executor 'fussed' (did you mean 'fused'?)"),
    (3, TypeError, "executor: expected a name (local, fused, ray) or an Executor, got int 3"),
    (None, TypeError, "got NoneType None"),
])
def test_a_bad_executor_argument_fails_before_anything_is_built(task, tmp_path, executor, error, words):
    with pytest.raises(error) as info:
        make(task, tmp_path, executor=executor)
    assert words in str(info.value)


@pytest.mark.parametrize("kind, field, value, words", [
    ("fused", "k", "0", "k: must be 'auto' (chosen from the device's free memory) or a whole number >= 1, "
                        "got '0'; e.g. 8"),
    ("fused", "k", "eight", "k: must be 'auto' (chosen from the device's free memory) or a whole number >= 1, "
                            "got 'eight'"),
    ("ray", "address", "localhost:6379", "address: must be empty (a local Ray), 'auto' (this machine's cluster) "
                                         "or 'ray://host:port', got 'localhost:6379'; e.g. ray://10.0.0.5:10001"),
    ("ray", "address", "ray://head", "got 'ray://head'"),
])
def test_bad_k_or_address_is_refused_in_the_status_line_and_nothing_starts(task, tmp_path, kind, field, value,
                                                                              words):
    w = make(task, tmp_path)
    w.executor_controls.kind.value = kind
    getattr(w.executor_controls, field).value = value
    assert w.launch() is False
    assert w.status == "invalid" and w.study is None and w.session.status == "idle"
    assert words in status_text(w) and words in w.error_area.message


def test_a_task_ray_cannot_send_is_refused_at_launch_naming_its_part(tmp_path):
    pytest.importorskip("ray")
    import threading

    task = tw.tasks.spirals(n=200)
    task.spec, task.loss_kwargs = None, {"lock": threading.Lock()}  # not built-in, and a part that does not pickle
    w = make(task, tmp_path, executor="ray")
    assert w.launch() is False
    assert w.status == "invalid" and w.study is None and w.session.status == "idle"
    assert "its 'loss_kwargs' (dict) cannot be sent to the Ray workers" in status_text(w)


# ------------------------------------------------------------------------------- launching
def test_local_then_fused_from_the_same_widget_same_states_and_metrics_the_status_line_says_where(task, tmp_path):
    w = make(task, tmp_path)
    local = launched(w)
    assert "; one trial at a time on cpu" in status_text(w)
    assert status_text(w).startswith("finished after ")

    seen: list[str] = []
    w.status_line.observe(lambda change: seen.append(as_text(change["new"])), names="value")
    w.executor_controls.kind.value = "fused"
    w.executor_controls.k.value = "3"
    fused = launched(w)  # the second Launch uses the executor chosen since
    assert isinstance(w._executor, tw.hpo.FusedExecutor) and w._executor.groups == [[0, 1, 2]]
    assert "running: 3 trials at once, fused on cpu" in seen
    assert "; 3 trials at once, fused on cpu" in status_text(w)
    cols = ["trial", "state", "lr"]
    assert fused.trials[cols].to_dict("records") == local.trials[cols].to_dict("records")
    assert fused.trials["state"].tolist() == ["finished"] * 3
    np.testing.assert_allclose(fused.trials["val_accuracy"], local.trials["val_accuracy"], atol=1e-6)
    # the executor controls, disabled while a search runs, are enabled again after it
    assert not any(c.disabled for c in w.executor_controls.inputs())


def test_fused_with_auto_k_says_the_k_it_chose_and_fallbacks_show_as_their_notes(task, tmp_path):
    w = make(task, tmp_path, base=base(grad_accum=2, epochs=1), executor="fused")
    study = launched(w)
    assert study.trials["state"].tolist() == ["finished"] * 3
    k = w._executor.slots
    assert k == choose_k(task) and k > 1  # a small model: several fit in free memory
    assert f"; {k} trials at once, fused on cpu" in status_text(w)
    note = ("trials 0, 1, 2 trained on the local executor: grad_accum=2: the fused step makes one optimizer step "
            "per batch")
    assert w._executor.notes() == [note]
    assert f'<br><span style="color:#777">{note}</span>' in w.status_line.value


def test_a_search_on_a_local_ray_names_ray_and_its_slots(task, tmp_path):
    ray = pytest.importorskip("ray", reason="the Ray executor needs ray: pip install tunewidgets[ray]")
    from hpo.ray_helpers import start_local_ray

    shutdown = start_local_ray(ray)  # the module's one Ray: 2 CPUs
    try:
        w = make(task, tmp_path, base=base(epochs=1), executor="ray")
        seen: list[str] = []
        w.status_line.observe(lambda change: seen.append(as_text(change["new"])), names="value")
        study = launched(w)
        assert w._executor.slots == 2
        assert "running: 2 trials at once on Ray (local)" in seen
        assert "; 2 trials at once on Ray (local)" in status_text(w)
        assert study.trials["state"].tolist() == ["finished"] * 3
        assert sorted(study.trials["lr"].tolist()) == [0.02, 0.05, 0.1]
    finally:
        tw.hpo.RayExecutor.release()
        shutdown()
