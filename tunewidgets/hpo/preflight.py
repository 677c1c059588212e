"""Before trial 0: build what each trial would build first, for every dimension's extreme values.

``Space`` checks that each value is a valid value of its field. That is not all a trial needs:
its model must build with its ``model.<kwarg>`` values, its device must be on this machine, and
its schedule must fit its run (a 4,000-step warm-up in a 15-step run fails in every trial). So
before any training ``check_trials`` builds, for the base config and for each dimension at each
of its extremes (ends, every choice; the other keys as in the base), the config, the model, the
device and the schedule (with a stand-in optimizer, for the run's length on this task), and
raises naming the key, the value and the cause. It trains nothing and leaves the random
generators as it found them.

Example:
    >>> import tunewidgets as tw
    >>> from tunewidgets.hpo.plan import make_plan
    >>> make_plan(tw.tasks.spirals(), {"model.width": tw.space.Int(0, 64)}, n_trials=2)
    Traceback (most recent call last):
    ...
    tunewidgets.hpo.dimensions.SpaceError: model.width: Int(0, 64): low 0 fails before training: ValueError: width: must be a whole number >= 1, got 0; e.g. width=64
"""
from __future__ import annotations

import math
from typing import Any

import torch

from tunewidgets.engine.config import TrainConfig
from tunewidgets.engine.devices import resolve_device
from tunewidgets.engine.task import Task
from tunewidgets.hpo.dimensions import Choice, Fixed, SpaceError
from tunewidgets.hpo.space import Space
from tunewidgets.hpo.targets import apply_params

__all__ = ["check_trials", "run_length"]


def run_length(task: Task, config: TrainConfig) -> tuple[int | None, int | None]:
    """``(total steps, steps per epoch)`` of a run of ``config`` on ``task``, as the trainer counts
    them; ``(max_steps, None)`` when the training data has no length."""
    loader = getattr(task.train, "batch_size", None) is not None and hasattr(task.train, "dataset")
    if loader:
        try:
            batches: int | None = len(task.train)
        except TypeError:
            batches = None
    else:
        n = task.num_train_samples()
        batches = None if n is None else math.ceil(n / int(config.batch_size or task.batch_size))
    if batches is None:
        return config.max_steps, None
    per_epoch = max(1, math.ceil(batches / config.grad_accum))
    total = config.epochs * per_epoch
    return (total if config.max_steps is None else min(total, config.max_steps)), per_epoch


def check_trials(task: Task, space: Space, base: TrainConfig) -> None:
    """Raise a SpaceError naming the key (or ``base.<field>``) whose value a trial could not start with."""
    with torch.random.fork_rng(devices=[]):  # building models draws from torch's generator
        models: dict[str, str | None] = {}
        _check_config(task, base, models, lambda what, err: SpaceError(f"base.{what}: {err}"))
        for key, dim in space.items():
            extremes = dim.extremes()
            for value in extremes:
                try:
                    config = apply_params(base, {key: value})
                except (ValueError, TypeError):
                    continue  # a value that needs other keys' values: Space has checked it with them
                if isinstance(dim, Fixed):
                    shown = "its value"
                elif isinstance(dim, Choice):
                    shown = "the choice"
                else:
                    shown = "low" if value == extremes[0] else "high"

                def error(what: str, err: str, key: Any = key, dim: Any = dim, shown: str = shown,
                          value: Any = value) -> SpaceError:
                    return SpaceError(f"{key}: {dim!r}: {shown} {value!r} fails before training: {err}")

                _check_config(task, config, models, error)


def _check_config(task: Task, config: TrainConfig, models: dict[str, str | None], error: Any) -> None:
    try:
        resolve_device(config.device)
    except (ValueError, TypeError) as exc:
        raise error("device", _line(exc)) from None
    kwargs = dict(config.model_kwargs)
    key = repr(sorted(kwargs.items(), key=lambda kv: kv[0]))
    if key not in models:
        try:
            task.build_model(**kwargs)
            models[key] = None
        except Exception as exc:  # noqa: BLE001 - whatever the factory raises, the trial would too
            models[key] = _line(exc)
    if models[key] is not None:
        raise error("model_kwargs", models[key]) from None
    schedule = config.schedule
    if schedule is None or not hasattr(schedule, "build"):
        return
    total, per_epoch = run_length(task, config)
    if total is None:
        return
    optimizer = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=float(config.lr),
                                momentum=float(config.momentum))
    try:
        schedule.build(optimizer, total, steps_per_epoch=per_epoch)
    except (ValueError, TypeError) as exc:
        raise error("schedule", f"{_line(exc)} (a run of {total} steps on task {task.name!r})") from None


def _line(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}".strip().splitlines()[0]
