"""A search plan: every argument of ``tw.search`` checked and resolved before any trial trains.

Example:
    >>> import tunewidgets as tw
    >>> from tunewidgets.hpo.plan import make_plan
    >>> plan = make_plan(tw.tasks.digits(), {"lr": tw.space.LogUniform(1e-3, 1e-1, grid=3)},
    ...                  base=tw.TrainConfig(epochs=2), strategy="grid")
    >>> plan.metric, plan.direction, plan.n_trials
    ('val_accuracy', 'maximize', 3)
    >>> make_plan(tw.tasks.digits(), {"lr": tw.space.LogUniform(1e-3, 1e-1)}, strategy="grid")
    Traceback (most recent call last):
    ...
    tunewidgets.hpo.dimensions.SpaceError: lr: a grid search needs the values of each dimension, but LogUniform(0.001, 0.1) is continuous; give it points with LogUniform(0.001, 0.1, grid=4), list them with Choice([...]), or use strategy='random'
"""
from __future__ import annotations

import math
import numbers
from dataclasses import dataclass
from typing import Any

from tunewidgets.engine.config import TrainConfig
from tunewidgets.engine.task import Task
from tunewidgets.hpo.preflight import check_trials, run_length
from tunewidgets.hpo.presets import Preset, as_config
from tunewidgets.hpo.presets import get as get_preset
from tunewidgets.hpo.pruners import make_pruner
from tunewidgets.hpo.space import Space, SpaceError
from tunewidgets.hpo.strategies import GridStrategy, Strategy, make_strategy
from tunewidgets.tracking.metric_names import metric_key as metric_key_of

__all__ = ["Plan", "make_plan", "metric_key", "DIRECTIONS"]

DIRECTIONS = ("maximize", "minimize")
_HIGHER_IS_BETTER = ("accuracy", "dice", "iou", "f1", "auc", "precision", "recall", "r2")
_LOWER_IS_BETTER = ("loss", "error", "mse", "mae", "rmse", "perplexity")


@dataclass
class Plan:
    """What a search does, resolved: the names are those of ``tw.search``'s arguments."""

    task: Task
    space: Space
    base: TrainConfig
    strategy: Strategy
    metric: str
    direction: str
    pruner_name: str | None
    pruner: Any
    n_trials: int | None
    timeout: float | None
    seed: int
    max_epochs: int

    def settings(self) -> dict[str, Any]:
        """What a resumed search must match, stored with the study (JSON)."""
        return {"space": self.space.describe(), "strategy": self.strategy.name, "metric": self.metric,
                "direction": self.direction, "pruner": self.pruner_name, "seed": self.seed,
                "base": self.base.to_dict(), "task": self.task.name, "n_trials": self.n_trials}


def metric_key(metric: Any, task: Task) -> str:
    """The record key of a metric: ``"accuracy"``, ``"val/accuracy"`` and ``"val_accuracy"`` are one."""
    valid = ["val_loss", *(f"val_{m}" for m in task.metric_fns), "train_loss"]
    if metric is None:
        if task.val is None:
            raise ValueError("metric: the task has no validation data, and a search compares trials on a "
                             "validation metric; give the task val=..., or pass metric='train_loss'")
        return valid[1] if len(valid) > 2 else "val_loss"
    if not isinstance(metric, str):
        raise TypeError(f"metric: expected a metric name such as 'accuracy' or 'val_loss', got {metric!r}")
    name = metric_key_of(metric, valid)
    if name not in valid:
        raise ValueError(f"metric: the task reports no {metric!r}; use one of: {', '.join(valid)}")
    if name.startswith("val_") and task.val is None:
        raise ValueError(f"metric: {metric!r} is a validation metric, but the task has no validation data; "
                         "give the task val=..., or pass metric='train_loss'")
    return name


def _direction(direction: Any, metric: str) -> str:
    if direction is not None:
        if direction not in DIRECTIONS:
            raise ValueError(f"direction: must be 'maximize' or 'minimize', got {direction!r}")
        return direction
    name = metric.removeprefix("val_").removeprefix("train_")
    if any(word in name for word in _LOWER_IS_BETTER):
        return "minimize"
    if any(word in name for word in _HIGHER_IS_BETTER):
        return "maximize"
    raise ValueError(f"direction: cannot tell whether a higher {metric} is better; pass "
                     "direction='maximize' or direction='minimize'")


def _whole(name: str, value: Any, low: int) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name}: expected a whole number >= {low}, got {value!r}")
    if value < low:
        raise ValueError(f"{name}: must be >= {low}, got {value}")
    return int(value)


def make_plan(task: Task, space: Any, *, base: Any = None, strategy: str = "random", n_trials: int | None = None,
              metric: str | None = None, direction: str | None = None, pruner: Any = None, seed: int = 0,
              timeout: float | None = None) -> Plan:
    """Check every argument (see ``tw.search``) and return the plan; raises before any training."""
    if not isinstance(task, Task):
        raise TypeError(f"task: expected a tw.Task, got {type(task).__name__}; e.g. tw.tasks.digits()")
    preset = get_preset(base) if isinstance(base, str) else base if isinstance(base, Preset) else None
    base = TrainConfig() if base is None else as_config(base)
    if preset is not None:  # sized for this task's run (a warm-up longer than the run is cut to its share)
        total = run_length(task, base)[0]
        base = preset.for_steps(total).config if total else base
    space = Space(space, base=base, task=task)
    seed = _whole("seed", seed, 0)
    strat = make_strategy(strategy, space, seed)
    if n_trials is not None:
        n_trials = _whole("n_trials", n_trials, 1)
    if isinstance(strat, GridStrategy):
        size = strat.size or 0
        if n_trials is not None and n_trials < size:
            raise SpaceError(f"n_trials: the grid has {space.grid_shape()}, more than n_trials={n_trials}; "
                             f"raise n_trials to {size}, leave it None (the whole grid), use fewer grid points, "
                             "or use strategy='random'")
        if n_trials is not None and n_trials > size:
            raise SpaceError(f"n_trials: the grid has {space.grid_shape()}, fewer than n_trials={n_trials}, and "
                             f"tries each once; leave n_trials None (the whole grid: {size} trials), add grid "
                             "points, or use strategy='random' to draw more")
        n_trials = size
    elif n_trials is None and timeout is None:
        raise ValueError(f"n_trials: give the number of trials for strategy={strat.name!r}, e.g. n_trials=20 "
                         "(or a timeout= in seconds)")
    if timeout is not None:
        if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or not math.isfinite(timeout) \
                or timeout <= 0:
            raise ValueError(f"timeout: must be a number of seconds > 0, got {timeout!r}")
        timeout = float(timeout)
    key = metric_key(metric, task)
    direction = _direction(direction, key)
    max_epochs = base.epochs
    if "epochs" in space:
        max_epochs = max(space["epochs"].extremes())  # whole numbers: the space check made sure
    pruner_obj = make_pruner(pruner, epochs=int(max_epochs))
    check_trials(task, space, base)  # the model, device and schedule of each extreme, before any training
    pruner_name = pruner if isinstance(pruner, str) or pruner is None else type(pruner).__name__
    return Plan(task=task, space=space, base=base, strategy=strat, metric=key, direction=direction,
                pruner_name=pruner_name, pruner=pruner_obj, n_trials=n_trials, timeout=timeout, seed=seed,
                max_epochs=int(max_epochs))
