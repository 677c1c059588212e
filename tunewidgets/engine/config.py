"""``TrainConfig``: how to train. Frozen and validated; bad values fail here, before any training."""
from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = ["TrainConfig"]

_AMP_MODES = (False, True, "bf16", "fp16")


@dataclass(frozen=True)
class TrainConfig:
    """Optimizer, schedule and loop settings of one run.

    Args:
        optimizer: a name from ``tunewidgets.engine.optimizers.OPTIMIZERS``.
        lr: the base learning rate (> 0).
        momentum, nesterov: for sgd and rmsprop (momentum in [0, 1)).
        betas, eps: for adam and adamw.
        weight_decay: L2 / decoupled decay (>= 0).
        optimizer_kwargs: any other keyword the torch optimizer takes (e.g. rprop ``etas``).
        schedule: a ``tw.schedules`` spec, or a callable ``step -> lr factor``, or None.
        epochs: passes over the training data (>= 1); ``max_steps`` caps optimizer steps.
        batch_size: overrides the task's batch size when set.
        seed: seeds model init and batch order: the same seed and config give the same run.
        device: "auto" (cuda, then mps, then cpu), "cpu", "cuda", "cuda:N" or "mps".
        amp: False; True or "bf16" for bf16 autocast on CUDA; "fp16" for fp16 with a grad scaler.
        grad_accum: mini-batches per optimizer step (>= 1).
        grad_clip: max global grad norm, or None.
        eval_every: evaluate on val every this many epochs (the last epoch always).
        log_every: fetch recorded losses to the host every this many steps.
        model_kwargs: keyword arguments for the task's model factory (width, dropout...).

    Example:
        >>> import tunewidgets as tw
        >>> cfg = tw.TrainConfig(optimizer="sgd", lr=0.1, momentum=0.9, epochs=3)
        >>> cfg.replace(lr=0.05).lr
        0.05
        >>> tw.TrainConfig(lr=-1)
        Traceback (most recent call last):
        ...
        ValueError: lr: must be a finite number > 0, got -1; try a value such as 1e-3 or run tw.lr_range_test
    """

    optimizer: str = "sgd"
    lr: float = 0.01
    momentum: float = 0.0
    nesterov: bool = False
    betas: tuple[float, float] = (0.9, 0.999)
    eps: float = 1e-8
    weight_decay: float = 0.0
    optimizer_kwargs: Mapping[str, Any] = field(default_factory=dict)
    schedule: Any = None
    epochs: int = 5
    max_steps: int | None = None
    batch_size: int | None = None
    seed: int = 0
    device: str = "auto"
    amp: bool | str = False
    grad_accum: int = 1
    grad_clip: float | None = None
    eval_every: int = 1
    log_every: int = 25
    model_kwargs: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        from tunewidgets.engine.optimizers import check_optimizer

        check_optimizer(self.optimizer)
        _positive_float("lr", self.lr, "try a value such as 1e-3 or run tw.lr_range_test")
        if not _is_real(self.momentum) or not 0.0 <= self.momentum < 1.0:
            raise ValueError(f"momentum: must be in [0, 1), got {self.momentum!r}; 0.9 is a common choice")
        if self.nesterov and self.optimizer == "sgd" and self.momentum == 0:
            raise ValueError("nesterov: needs momentum > 0 with sgd; set momentum=0.9 or nesterov=False")
        if (not isinstance(self.betas, (tuple, list)) or len(self.betas) != 2
                or not all(_is_real(b) and 0.0 <= b < 1.0 for b in self.betas)):
            raise ValueError(f"betas: must be two numbers in [0, 1), got {self.betas!r}; e.g. (0.9, 0.999)")
        object.__setattr__(self, "betas", tuple(float(b) for b in self.betas))
        _positive_float("eps", self.eps, "e.g. 1e-8")
        if not _is_real(self.weight_decay) or not math.isfinite(self.weight_decay) or self.weight_decay < 0:
            raise ValueError(f"weight_decay: must be >= 0, got {self.weight_decay!r}; use 0 to turn it off")
        if not isinstance(self.optimizer_kwargs, Mapping):
            raise TypeError(f"optimizer_kwargs: expected a dict, got {self.optimizer_kwargs!r}")
        object.__setattr__(self, "optimizer_kwargs", dict(self.optimizer_kwargs))
        _whole("epochs", self.epochs, 1)
        if self.max_steps is not None:
            _whole("max_steps", self.max_steps, 1)
        if self.batch_size is not None:
            _whole("batch_size", self.batch_size, 1)
        if isinstance(self.seed, bool) or not isinstance(self.seed, int) or self.seed < 0:
            raise ValueError(f"seed: must be a whole number >= 0, got {self.seed!r}")
        if not isinstance(self.device, str):
            raise TypeError(f"device: expected a string such as 'auto', 'cpu' or 'cuda', got {self.device!r}")
        if self.amp not in _AMP_MODES or isinstance(self.amp, int) and not isinstance(self.amp, bool):
            raise ValueError(f"amp: must be False, True, 'bf16' or 'fp16', got {self.amp!r}")
        _whole("grad_accum", self.grad_accum, 1)
        if self.grad_clip is not None:
            _positive_float("grad_clip", self.grad_clip, "e.g. 1.0, or None to turn clipping off")
        _whole("eval_every", self.eval_every, 1)
        _whole("log_every", self.log_every, 1)
        if not isinstance(self.model_kwargs, Mapping):
            raise TypeError(f"model_kwargs: expected a dict, got {self.model_kwargs!r}")
        object.__setattr__(self, "model_kwargs", dict(self.model_kwargs))
        _check_schedule(self.schedule)

    def replace(self, **changes: Any) -> "TrainConfig":
        """A copy with some fields changed (validated again)."""
        names = {f.name for f in dataclasses.fields(self)}
        unknown = sorted(set(changes) - names)
        if unknown:
            raise ValueError(f"TrainConfig has no field(s) {unknown}; fields are {sorted(names)}")
        return dataclasses.replace(self, **changes)

    def with_params(self, params: Mapping[str, Any]) -> "TrainConfig":
        """A copy with search parameters applied: config fields by name, anything else to model_kwargs."""
        names = {f.name for f in dataclasses.fields(self)}
        fields = {k: v for k, v in params.items() if k in names}
        model = {k: v for k, v in params.items() if k not in names}
        if model:
            fields["model_kwargs"] = {**self.model_kwargs, **model}
        return self.replace(**fields)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able values (the schedule as its repr), for stores and sinks."""
        out: dict[str, Any] = {}
        for f in dataclasses.fields(self):
            v = getattr(self, f.name)
            if f.name == "schedule":
                v = None if v is None else (v.to_dict() if hasattr(v, "to_dict") else repr(v))
            elif isinstance(v, tuple):
                v = list(v)
            elif isinstance(v, Mapping):
                v = dict(v)
            out[f.name] = v
        return out


def _is_real(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _positive_float(name: str, v: Any, fix: str) -> None:
    if not _is_real(v) or not math.isfinite(v) or v <= 0:
        raise ValueError(f"{name}: must be a finite number > 0, got {v!r}; {fix}")


def _whole(name: str, v: Any, low: int) -> None:
    if isinstance(v, bool) or not isinstance(v, int):
        raise TypeError(f"{name}: expected a whole number >= {low}, got {v!r}")
    if v < low:
        raise ValueError(f"{name}: must be >= {low}, got {v}")


def _check_schedule(schedule: Any) -> None:
    if schedule is None or callable(schedule) or hasattr(schedule, "build"):
        return
    raise TypeError(
        f"schedule: expected a tw.schedules spec (e.g. tw.schedules.OneCycle(max_lr=0.1)), "
        f"a callable step -> lr factor, or None; got {schedule!r}"
    )
