"""The training engine: Task, TrainConfig, the loop with events, losses, metrics, optimizers, devices."""
from __future__ import annotations

from tunewidgets.engine.config import TrainConfig
from tunewidgets.engine.events import EventBus, Events, Handle
from tunewidgets.engine.loop import Trainer, train
from tunewidgets.engine.run import Run
from tunewidgets.engine.task import Task

__all__ = ["Task", "TrainConfig", "Trainer", "train", "Run", "Events", "EventBus", "Handle"]
