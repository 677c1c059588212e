"""Run statuses are defined once, and every layer lists them from that one definition."""
from __future__ import annotations

from tunewidgets.engine import control, status
from tunewidgets.engine import run as engine_run
from tunewidgets.hpo import study
from tunewidgets.lr import result
from tunewidgets.tracking import _tb_hparams, store
from tunewidgets.widgets import _session


def test_one_definition_everywhere():
    assert engine_run.STATUSES is status.STATUSES and store.STATUSES is status.STATUSES
    assert store.FINAL_STATUSES is status.FINAL_STATUSES and control.EARLY_STATUSES is status.EARLY_STATUSES
    assert study.STATES is status.TRIAL_STATUSES and study.ENDED_STATES is status.ENDED_STATUSES
    assert result.STOP_REASONS is status.RANGE_TEST_STATUSES and _session.STATES is status.SESSION_STATUSES
    assert set(_tb_hparams.STATES) == set(status.TRIAL_STATUSES) - {status.RUNNING}


def test_the_groups_agree():
    assert set(status.FINAL_STATUSES) == set(status.STATUSES) - {status.RUNNING}
    assert set(status.ENDED_STATUSES) | set(status.CUT_SHORT_STATUSES) == set(status.FINAL_STATUSES)
    assert set(status.TRIAL_STATUSES) <= set(status.STATUSES) and set(status.FAILURE_STATUSES) <= set(status.ENDED_STATUSES)
    assert set(status.RANGE_TEST_STATUSES) <= set(status.FINAL_STATUSES)
