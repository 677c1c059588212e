"""What a ``Search`` widget says about its search: the best trial so far, the closing summary, and
the status a search ended with (a Stop pressed after its last trial ended changes nothing).

Example:
    >>> from tunewidgets.widgets._search_status import end_status, summary
    >>> counts = {"finished": 3, "pruned": 1, "failed": 0, "diverged": 1, "stopped": 0}
    >>> summary("finished", 2.04, counts, {"trial": 2, "value": 0.91234}, "val_accuracy", seed=7)
    'finished after 2.0 s: 3 finished, 1 pruned, 1 failed; best val_accuracy 0.9123 (trial 2); seed 7'
    >>> end_status("stopped", "finished")  # Stop came after the search had ended
    'finished'
"""
from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import Any

__all__ = ["best_trial", "end_status", "summary"]


def best_trial(trials: Iterable[Any], direction: str) -> dict[str, Any] | None:
    """``{'trial', 'value', 'params'}`` of the best finished trial with a finite value (the lower
    number on a tie), or None."""
    finished = [t for t in trials if t.state == "finished" and math.isfinite(t.value)]
    if not finished:
        return None
    sign = -1.0 if direction == "maximize" else 1.0
    t = min(finished, key=lambda t: (sign * t.value, t.trial))
    return {"trial": t.trial, "value": t.value, "params": dict(t.params)}


def end_status(session_status: str, study_status: str | None) -> str:
    """The status to show when a search's session ends: ``stopped`` only if the Stop reached the
    search before it had ended by itself (its study then says ``finished``)."""
    if session_status == "stopped" and study_status == "finished":
        return "finished"
    return session_status


def summary(status: str, elapsed: float, counts: Mapping[str, int], best: Mapping[str, Any] | None,
            metric: str, study_name: str | None = None, seed: int | None = None) -> str:
    """The closing status line: counts by state, the sampler's seed, the best trial, and how to
    resume a stopped search."""
    text = (f"{status} after {elapsed:.1f} s: {counts['finished']} finished, {counts['pruned']} pruned, "
            f"{counts['failed'] + counts['diverged']} failed")
    if counts["stopped"]:
        text += f", {counts['stopped']} stopped"
    if best is not None:
        text += f"; best {metric} {best['value']:.4g} (trial {best['trial']})"
    if seed is not None:
        text += f"; seed {seed}"
    if status == "stopped" and study_name is not None:
        text += f"; resume with study name {study_name!r}"
    return text
