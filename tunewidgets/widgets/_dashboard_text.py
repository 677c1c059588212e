"""What the ``Dashboard`` says: its introduction, the title and a line of help for each step,
and the line about the task.

Example:
    >>> import tunewidgets as tw
    >>> from tunewidgets.widgets._dashboard_text import STEP_TITLES, task_line
    >>> [title for title, _ in STEP_TITLES]
    ['1. LR range test', '2. Schedule', '3. Search']
    >>> task_line(tw.tasks.digits(), 23)
    '<span style="color:#555">digits: 1438 training and 359 validation examples, 23 steps per epoch</span>'
"""
from __future__ import annotations

import html
from typing import Any

__all__ = ["INTRO", "STEP_TITLES", "task_line"]

INTRO = ('<span style="color:#555">Three steps, left to right: find a learning rate, shape it over the run, '
         "then search around it. Each step hands its result to the next; the green line in a step "
         "says what it received.</span>")

STEP_TITLES = [
    ("1. LR range test",
     "<b>Find a learning rate.</b> Press <i>Run test</i>: the lr rises step by step while the loss is "
     "watched; the suggested lr (or the one you pick) goes to step 2 and step 3."),
    ("2. Schedule",
     "<b>Shape the learning rate over the run.</b> Pick a shape and move its controls; the range "
     "test's lr sets its peak. A peak you set here wins over the range test."),
    ("3. Search",
     "<b>Search around it.</b> Press <i>Launch</i>: each trial trains with the lr and schedule of "
     "steps 1 and 2, varying what the rows switch on. When it ends, <i>Train best</i> trains the "
     "best config again beside its curve."),
]


def _length(data: Any) -> int | None:
    try:
        return len(data)
    except TypeError:
        return None


def task_line(task: Any, steps_per_epoch: int | None) -> str:
    """One line about ``task``: its name, its data and its steps per epoch."""
    parts = []
    n_train, n_val = _length(task.train), _length(task.val) if task.val is not None else None
    if n_train is not None:
        parts.append(f"{n_train} training" + (f" and {n_val} validation" if n_val is not None else "") + " examples")
    if steps_per_epoch:
        parts.append(f"{steps_per_epoch} steps per epoch")
    text = f"{task.name}: {', '.join(parts)}" if parts else task.name
    return f'<span style="color:#555">{html.escape(text)}</span>'
