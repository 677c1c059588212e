"""Honest search records: a full disk ends a search in one line and leaves it resumable; a search in
which every trial failed says so."""
from __future__ import annotations

import sqlite3

import pytest

import tunewidgets as tw
from hpo_helpers import BASE, blob_task, one_thread  # noqa: F401 (autouse)
from tunewidgets.hpo.space import Choice, LogUniform
from tunewidgets.tracking import studies
from tunewidgets.tracking._writer import Writer
from tunewidgets.tracking.store import StoreWarning, StoreWriteError

SPACE = {"lr": LogUniform(1e-3, 0.3), "model.width": Choice([4, 8])}


@pytest.fixture
def disk(monkeypatch):
    """A disk that fills on demand: while ``disk["full"]``, every store transaction fails as SQLite's does."""
    state = {"full": False}
    commit = Writer._commit

    def full_commit(self, works, rows):
        if state["full"]:
            raise sqlite3.OperationalError("database or disk is full")
        return commit(self, works, rows)

    monkeypatch.setattr(Writer, "_commit", full_commit)
    return state


def test_a_full_disk_ends_the_search_in_one_line_and_the_study_resumes(tmp_path, disk):
    def fill_in_trial_2(event, record):
        if event == "epoch" and record["trial"] == 2:
            disk["full"] = True

    kw = dict(base=BASE.replace(epochs=2), n_trials=4, store=tmp_path, study="full", seed=1)
    with pytest.warns(StoreWarning):
        with pytest.raises(StoreWriteError) as caught:
            tw.search(blob_task(), SPACE, background=False, callbacks=[fill_in_trial_2], **kw)
    message = str(caught.value)
    assert "\n" not in message and not isinstance(caught.value, sqlite3.Error)
    assert message.startswith(f"search 'full' ended: the store {tmp_path / 'runs.sqlite'} could not be written "
                              f"(database or disk is full; the disk holding {tmp_path} is full: ")
    assert "trial 2 could not be recorded and runs again" in message and "study='full', resume=True to resume" in message

    disk["full"] = False  # space freed: the same call resumes the study
    study = tw.search(blob_task(), SPACE, background=False, resume=True, **kw)
    assert study.trials["state"].tolist() == ["finished"] * 4
    with tw.Store(tmp_path) as store:
        rows = studies.trial_runs(store, "full")
    attempts = [r for r in rows if r["trial"] == 2]
    assert [r["status"] for r in attempts] == ["interrupted", "finished"]  # the in-flight trial, marked
    assert attempts[0]["search"] == attempts[1]["search"]
    assert sorted(r["trial"] for r in rows) == [0, 1, 2, 2, 3]


def test_a_full_disk_while_the_search_starts_is_one_line_too(tmp_path, disk):
    tw.Store(tmp_path).close()
    disk["full"] = True
    with pytest.warns(StoreWarning), pytest.raises(
            StoreWriteError, match=r"^search 'early' ended: the store .* could not be written "
                                   r"\(database or disk is full; the disk holding .* is full"):
        tw.search(blob_task(), SPACE, base=BASE.replace(epochs=1), n_trials=2, store=tmp_path, study="early",
                  background=False)


def test_a_search_in_which_every_trial_failed_says_so(tmp_path):
    space = {**SPACE, "model.fail": "error"}
    study = tw.search(blob_task(), space, base=BASE.replace(epochs=1), n_trials=5, store=tmp_path, study="bad",
                      background=False)
    assert study.status == "finished"
    summary = "finished, 0 of 5 trials succeeded; most common error (5 of 5): RuntimeError: boom: this width does not work"
    assert study.summary == summary
    assert "0 of 5 trials succeeded" in repr(study)
    with tw.Store(tmp_path) as store:
        row = studies.study_row(store, "bad")
    assert row["status"] == "finished" and row["error"] == summary
    assert row["final"] == {"ended": 5, "succeeded": 0}


def test_a_search_that_went_well_says_how_many_succeeded(tmp_path):
    space = {"lr": Choice([0.05, 0.1]), "model.fail": Choice(["", "error"])}
    study = tw.search(blob_task(), space, base=BASE.replace(epochs=1), strategy="grid", store=tmp_path,
                      background=False)
    assert study.summary == ("finished, 2 of 4 trials succeeded; most common error (2 of 2): RuntimeError: boom: "
                             "this width does not work")
    with tw.Store(tmp_path) as store:
        row = studies.study_row(store, study.name)
    assert row["error"] is None and row["final"] == {"ended": 4, "succeeded": 2}
