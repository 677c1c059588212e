"""Run statuses: the one definition of how a run (a training, a range test, a trial) stands or ended.

A run and a trial are the same thing seen from two places, so they share one word and one set
of values: *status*. (A study's ``trials`` table, the TensorBoard HParams and the MLflow tag
call the same value ``state``, a name kept because notebooks and dashboards read it.) Every
module that compares or lists statuses imports these names; none spells its own tuple.

- :data:`STATUSES`: every status a store's run row may have;
- :data:`FINAL_STATUSES`: how a run may end (``Store.finish_run``);
- :data:`EARLY_STATUSES`: what a stop may end a run with (``StopRun``, ``RunStop.set``);
- :data:`ENDED_STATUSES`: a trial that ran its course (it counts towards ``n_trials``; a stopped
  or interrupted one runs again when its study resumes);
- :data:`FAILURE_STATUSES`: ended by a fault (TensorBoard's STATUS_FAILURE, MLflow's FAILED);
- :data:`CUT_SHORT_STATUSES`: ended before its course (a repeat is compared on the steps it ran);
- :data:`TRIAL_STATUSES`: what a study counts (``study.counts()``): the ended ones, running, stopped;
- :data:`RANGE_TEST_STATUSES`: how a range test ends (``LRRangeTestResult.stop_reason``);
- :data:`SESSION_STATUSES`: a widget's worker session: idle, running, stopping, then how it ended.

Example:
    >>> from tunewidgets.engine import status
    >>> status.FINISHED in status.ENDED_STATUSES, status.STOPPED in status.ENDED_STATUSES
    (True, False)
    >>> status.FINAL_STATUSES
    ('finished', 'failed', 'stopped', 'pruned', 'diverged', 'interrupted')
    >>> status.is_final("running"), status.is_final("pruned")
    (False, True)
"""
from __future__ import annotations

__all__ = ["RUNNING", "FINISHED", "FAILED", "STOPPED", "PRUNED", "DIVERGED", "INTERRUPTED", "IDLE", "STOPPING", "PENDING", "ENDED",
           "STATUSES", "FINAL_STATUSES", "EARLY_STATUSES", "ENDED_STATUSES", "FAILURE_STATUSES",
           "CUT_SHORT_STATUSES", "TRIAL_STATUSES",
           "RANGE_TEST_STATUSES", "SESSION_STATUSES", "is_final"]

RUNNING = "running"
FINISHED = "finished"
FAILED = "failed"
STOPPED = "stopped"  # a stop flag (the user's, a search's, a timeout's) ended it
PRUNED = "pruned"  # a pruner (or stop("pruned")) ended it
DIVERGED = "diverged"  # a non-finite or exploding loss ended it
INTERRUPTED = "interrupted"  # its process ended while it ran (found when the store is opened again)
IDLE = "idle"  # a widget session before its first run
STOPPING = "stopping"  # a widget session asked to stop, its worker not yet done
PENDING = "pending"  # a run object made, not yet started (never stored)
ENDED = "ended"  # a run object whose END was fired (never stored: the store keeps the final status)

STATUSES = (RUNNING, FINISHED, FAILED, STOPPED, PRUNED, DIVERGED, INTERRUPTED)
FINAL_STATUSES = STATUSES[1:]
EARLY_STATUSES = (STOPPED, PRUNED)
ENDED_STATUSES = (FINISHED, PRUNED, FAILED, DIVERGED)
FAILURE_STATUSES = (FAILED, DIVERGED)
CUT_SHORT_STATUSES = (STOPPED, PRUNED, INTERRUPTED)
TRIAL_STATUSES = (RUNNING, FINISHED, PRUNED, FAILED, DIVERGED, STOPPED)
RANGE_TEST_STATUSES = (FINISHED, DIVERGED, STOPPED)
SESSION_STATUSES = (IDLE, RUNNING, STOPPING, FINISHED, STOPPED, FAILED)


def is_final(status: str) -> bool:
    """True for a status a run ends with (anything but ``running``)."""
    return status in FINAL_STATUSES
