"""tunewidgets: Jupyter widgets to tune neural-network training.

The core (engine, tasks, schedules, lr, tracking) imports no UI package; ``tw.widgets``
and ``tw.plots`` load ipywidgets and Bokeh only when first used.

Example:
    >>> import tunewidgets as tw
    >>> run = tw.train(tw.tasks.spirals(), tw.TrainConfig(optimizer="adam", lr=0.01, epochs=1, device="cpu"))
    >>> run.status
    'finished'
"""
from __future__ import annotations

import importlib
from typing import Any

from tunewidgets._version import __version__
from tunewidgets.engine.config import TrainConfig
from tunewidgets.engine.events import Events
from tunewidgets.engine.loop import Trainer
from tunewidgets.engine.run import Run
from tunewidgets.engine.task import Task
from tunewidgets.api import lr_range_test, train
from tunewidgets.engine.control import RunStop, StopRun

__all__ = [
    "__version__", "Task", "TrainConfig", "Trainer", "Run", "Events", "train", "RunStop", "StopRun",
    "Store", "lr_range_test", "LRRangeTestResult",
    "tasks", "schedules", "lr", "tracking", "plots", "widgets",
    "search", "presets", "space", "report", "reports", "hpo",
]

_SUBMODULES = {"tasks", "schedules", "lr", "tracking", "plots", "widgets", "engine", "reports", "hpo"}
_LAZY = {
    "Store": ("tunewidgets.tracking", "Store"),
    "LRRangeTestResult": ("tunewidgets.lr", "LRRangeTestResult"),
    "export_notebook": ("tunewidgets.export", "export_notebook"),
    "rerun": ("tunewidgets._rerun_api", "rerun"),
    "search": ("tunewidgets._search_api", "search"),
    "report": ("tunewidgets.reports", "report"),
    "presets": ("tunewidgets.hpo", "presets"),
    "space": ("tunewidgets.hpo", "space"),
}


def __getattr__(name: str) -> Any:
    if name in _SUBMODULES:
        return importlib.import_module(f"tunewidgets.{name}")
    if name in _LAZY:
        module, attr = _LAZY[name]
        return getattr(importlib.import_module(module), attr)
    raise AttributeError(f"module 'tunewidgets' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
