"""``TrainConfig``: how to train. Frozen and validated; bad values fail here, before any training."""
from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from tunewidgets.engine._values import check_nesting, flag, is_flag, is_real, is_whole, real, whole

__all__ = ["TrainConfig", "SEED_MAX"]

SEED_MAX = 2**32 - 1  # NumPy's global generator takes seeds up to this; torch and Python take it too


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
        seed: seeds model init and batch order: the same seed and config give the same run;
            a whole number in [0, 2**32 - 1].
        device: "auto" (cuda, then mps, then cpu), "cpu", "cuda", "cuda:N" or "mps".
        amp: False; True or "bf16" for bf16 autocast on CUDA; "fp16" for fp16 with a grad scaler.
        grad_accum: mini-batches per optimizer step (>= 1).
        grad_clip: max global grad norm, or None.
        eval_every: evaluate on val every this many epochs (the last epoch always).
        log_every: fetch recorded losses to the host every this many steps.
        model_kwargs: keyword arguments for the task's model factory (width, dropout...).

    Numbers may be NumPy scalars (``np.float32(0.1)``, ``np.int64(64)``); they are stored as
    Python numbers. Flags (``nesterov``, ``amp``'s True/False) must be booleans: a string, a
    number or None is refused rather than read as true or false.

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
        self._set("lr", real("lr", self.lr, "try a value such as 1e-3 or run tw.lr_range_test", positive=True))
        if not is_real(self.momentum) or not 0.0 <= self.momentum < 1.0:
            raise ValueError(f"momentum: must be in [0, 1), got {self.momentum!r}; 0.9 is a common choice")
        self._set("momentum", float(self.momentum))
        self._set("nesterov", flag("nesterov", self.nesterov, "nesterov=True turns Nesterov momentum on (sgd)"))
        if self.nesterov and self.optimizer == "sgd" and self.momentum == 0:
            raise ValueError("nesterov: needs momentum > 0 with sgd; set momentum=0.9 or nesterov=False")
        if (not isinstance(self.betas, (tuple, list)) or len(self.betas) != 2
                or not all(is_real(b) and 0.0 <= b < 1.0 for b in self.betas)):
            raise ValueError(f"betas: must be two numbers in [0, 1), got {self.betas!r}; e.g. (0.9, 0.999)")
        self._set("betas", tuple(float(b) for b in self.betas))
        self._set("eps", real("eps", self.eps, "e.g. 1e-8", positive=True))
        if not is_real(self.weight_decay) or not math.isfinite(self.weight_decay) or self.weight_decay < 0:
            raise ValueError(f"weight_decay: must be >= 0, got {self.weight_decay!r}; use 0 to turn it off")
        self._set("weight_decay", float(self.weight_decay))
        if not isinstance(self.optimizer_kwargs, Mapping):
            raise TypeError(f"optimizer_kwargs: expected a dict, got {self.optimizer_kwargs!r}")
        check_nesting("optimizer_kwargs", self.optimizer_kwargs)
        self._set("optimizer_kwargs", dict(self.optimizer_kwargs))
        self._set("epochs", whole("epochs", self.epochs, 1))
        for name in ("max_steps", "batch_size"):
            if getattr(self, name) is not None:
                self._set(name, whole(name, getattr(self, name), 1))
        self._set("seed", _check_seed(self.seed))
        if not isinstance(self.device, str):
            raise TypeError(f"device: expected a string such as 'auto', 'cpu' or 'cuda', got {self.device!r}")
        self._set("amp", _check_amp(self.amp))
        self._set("grad_accum", whole("grad_accum", self.grad_accum, 1))
        if self.grad_clip is not None:
            self._set("grad_clip", real("grad_clip", self.grad_clip, "e.g. 1.0, or None to turn clipping off",
                                        positive=True))
        self._set("eval_every", whole("eval_every", self.eval_every, 1))
        self._set("log_every", whole("log_every", self.log_every, 1))
        if not isinstance(self.model_kwargs, Mapping):
            raise TypeError(f"model_kwargs: expected a dict, got {self.model_kwargs!r}")
        check_nesting("model_kwargs", self.model_kwargs)
        self._set("model_kwargs", dict(self.model_kwargs))
        _check_schedule(self.schedule)

    def _set(self, name: str, value: Any) -> None:
        object.__setattr__(self, name, value)

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


def _check_seed(seed: Any) -> int:
    span = f"in [0, {SEED_MAX}] (0 to 2**32 - 1, the seeds torch, NumPy and Python's random all take)"
    if not is_whole(seed):
        raise TypeError(f"seed: expected a whole number {span}, got {seed!r}")
    if not 0 <= seed <= SEED_MAX:
        raise ValueError(f"seed: must be a whole number {span}, got {int(seed)}; e.g. seed=0")
    return int(seed)


def _check_amp(amp: Any) -> bool | str:
    if is_flag(amp):
        return bool(amp)
    if isinstance(amp, str) and amp in ("bf16", "fp16"):
        return amp
    raise ValueError(f"amp: must be False, True, 'bf16' or 'fp16', got {amp!r}")


def _check_schedule(schedule: Any) -> None:
    if schedule is None or callable(schedule) or hasattr(schedule, "build"):
        return
    raise TypeError(
        f"schedule: expected a tw.schedules spec (e.g. tw.schedules.OneCycle(max_lr=0.1)), "
        f"a callable step -> lr factor, or None; got {schedule!r}"
    )
