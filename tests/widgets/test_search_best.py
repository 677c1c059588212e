"""The Search widget's best-config panel: shown once a trial finished, its code recreates the best
config, "Train best" trains it in the widget's worker (Stop works) beside the search's curve."""
from __future__ import annotations

import threading

import pytest

import tunewidgets as tw
from tunewidgets.widgets import Search
from tunewidgets.widgets._bokeh import saved_columns
from tunewidgets.widgets._search_best import AGAIN_CURVE, SEARCH_CURVE, config_code


@pytest.fixture(scope="module")
def task() -> tw.Task:
    return tw.tasks.spirals(n=300)


def make(task, tmp_path, **kw) -> Search:
    base = tw.TrainConfig(optimizer="adam", epochs=3, device="cpu", schedule=tw.schedules.Cosine())
    return Search(task, {"lr": tw.space.LogUniform(1e-3, 1e-1)}, base=kw.pop("base", base), n_trials=3,
                  store=tmp_path / "runs", interval=0.02, **kw)


@pytest.fixture
def searched(task, tmp_path) -> Search:
    w = make(task, tmp_path)
    assert w.launch(), w.error_area.message
    w.wait(timeout=120)
    return w


def test_the_panel_is_hidden_until_a_trial_finished(task, tmp_path):
    w = make(task, tmp_path)
    assert not w.best_panel.visible and w.best_panel in w.children
    assert not w.train_best()  # nothing to train: said, nothing started
    assert w.status == "invalid" and "no finished trial yet" in w.error_area.message
    assert w.session.status == "idle"


def test_the_panel_shows_the_best_config_and_its_code(searched):
    w, study = searched, searched.study
    panel = w.best_panel
    assert panel.visible and study.best["trial"] == w.best["trial"]
    assert f"trial {w.best['trial']}," in panel.title.value
    assert "<code>lr</code> = " in panel.values.value
    assert eval(panel.code.value, {"tw": tw}) == w.best_config  # the code recreates it exactly
    assert panel.code.value.startswith("tw.TrainConfig(optimizer='adam', lr=")
    panel.code.value = "edited by hand"
    panel.copy_button.click()
    assert panel.copied == panel.code.value == config_code(w.best_config)
    assert "Ctrl+A and Ctrl+C" in panel.note.value
    # a new Launch hides it until that search has a best trial
    assert w.launch()
    assert not panel.visible
    w.wait(timeout=120)
    assert panel.visible and eval(panel.code.value, {"tw": tw}) == w.best_config


def test_train_best_trains_the_config_again_beside_the_search_curve(searched):
    w = searched
    best = w.best
    curve = w.live.trials.by_number[best["trial"]]
    trials_before = len(w.study.trials)
    assert w.train_best(), w.error_area.message
    assert w.session.running and w.best_panel.train_button.disabled and w.run_bar.run_button.disabled
    run = w.wait(timeout=120)
    assert run.status == "finished" and run.config == w.best_config
    assert w.status == "finished" and not w.best_panel.train_button.disabled
    data = w.best_panel.data
    assert data["search"] == {"epoch": list(curve.epochs), "value": list(curve.values)}
    assert data["again"]["epoch"] == [1, 2, 3]
    # the same config and seed on the CPU: the same run, so the two curves are the same values
    assert data["again"]["value"] == pytest.approx(data["search"]["value"], rel=1e-6)
    assert data["again"]["value"][-1] == pytest.approx(run.final["val_accuracy"])
    assert saved_columns(w.best_panel.plot, AGAIN_CURVE)["epoch"] == [1, 2, 3]  # the saved state shows it
    assert saved_columns(w.best_panel.plot, SEARCH_CURVE)["epoch"] == list(curve.epochs)
    text = w.status_line.value
    assert f"the best config (trial {best['trial']}) trained again: val_accuracy" in text
    assert f"(in the search {best['value']:.4g})" in text and "logged as run" in text
    assert len(w.study.trials) == trials_before  # a run of the store, not a trial of the study
    # Launch works again after it, as a search
    assert w.launch() and w.wait(timeout=120) is w.study and w.status == "finished"


def test_stop_stops_the_training_of_the_best_config(searched):
    w = searched
    real = w.study.config
    w.study.config = lambda n: real(n).replace(epochs=100_000)  # long enough to be stopped
    assert w.train_best()
    for _ in range(100_000):  # drain until the first evaluation is drawn
        w.session.drain()
        if w.best_panel.data["again"]["epoch"]:
            break
        w.session._worker_done.wait(0.01)
    w.run_bar.stop_button.click()
    assert w.status == "stopping"
    run = w.wait(timeout=60)
    assert run.status == "stopped" and w.status == "stopped" and run.final["epochs"] < 100_000
    assert not any(t.name == "tunewidgets-worker" and t.is_alive() for t in threading.enumerate())
    assert w.study.status == "finished"  # the stop did not reach the ended search
    assert w._job == "search" and not w.best_panel.train_button.disabled


def test_config_code_writes_every_changed_field_and_refuses_a_function_schedule():
    cfg = tw.TrainConfig(optimizer="sgd", lr=0.1234567, momentum=0.9, weight_decay=1e-4, batch_size=32,
                         model_kwargs={"width": 64}, schedule=tw.schedules.Warmup(steps=10, then=tw.schedules.Cosine()))
    code = config_code(cfg)
    assert eval(code, {"tw": tw}) == cfg and "model_kwargs={'width': 64}" in code
    assert config_code(tw.TrainConfig()) == "tw.TrainConfig()"
    with pytest.raises(ValueError, match="config.schedule: a plain function has no code"):
        config_code(tw.TrainConfig(schedule=lambda step: 1.0))
    with pytest.raises(TypeError, match="config: expected a tw.TrainConfig"):
        config_code({"lr": 0.1})
