"""The training engine: Task, TrainConfig, the run base, the loop with events, run control, the shared step,
losses, metrics, optimizers, devices."""
from __future__ import annotations

from tunewidgets.engine.config import TrainConfig
from tunewidgets.engine.control import RunStop, StopRun, run_slot, run_slot_busy
from tunewidgets.engine.events import EventBus, Events, Handle, emit
from tunewidgets.engine.loop import Trainer, train
from tunewidgets.engine import status
from tunewidgets.engine.run import Run
from tunewidgets.engine.run_base import RunBase
from tunewidgets.engine.step import TrainStep, evaluate
from tunewidgets.engine.task import Task

__all__ = ["Task", "TrainConfig", "Trainer", "train", "Run", "RunBase", "Events", "EventBus", "Handle", "emit",
           "RunStop", "StopRun", "run_slot", "run_slot_busy", "TrainStep", "evaluate", "status"]
