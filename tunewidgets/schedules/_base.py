"""``ScheduleSpec``: the base of every schedule spec (a frozen, validated dataclass).

A spec says what shape the learning rate takes; ``build`` makes the torch scheduler that
training steps, and ``preview`` runs that same scheduler on a throwaway optimizer, so the
preview is exactly what training applies.

Units: ``total_steps`` is always counted in optimizer steps. A spec with ``interval="step"``
is stepped after every optimizer step; one with ``interval="epoch"`` after every epoch, and
its own lengths (``step_size``, ``milestones``, ``T_0``...) are then in epochs. Internally a
spec is built for ``n`` *positions*: the number of scheduler values training uses
(``total_steps``, or the number of epochs).

One rule for lengths, checked by ``build`` and ``preview`` (both know the run's length): every
length a spec sets must fit in the run. A point where something happens (a decay of ``Step``,
a ``MultiStep`` or ``Sequential`` milestone, the end of a warm-up) must come before the run
ends; a span (``Cosine.T_max``, ``Polynomial.total_iters``, the first cycle of
``CosineWarmRestarts``, the rise of ``Cyclic``) must end by the run's end. Otherwise the
spec would silently never act, or act only in part (``Step()`` on a 20-step run keeps the
lr constant), so it raises a ValueError naming the field, both lengths and the fix, as
``Warmup.steps`` past the end always has. An error, not a warning: a schedule that does not
do what its fields say is a wrong result reported as normal, warnings are easy to miss in a
notebook or a search of many trials, and this one is raised before any training, when the
fix (lower the length, leave it None for the whole run, or train longer) is cheap.
``ReduceOnPlateau`` is left out: when it acts depends on the metric's values.
"""
from __future__ import annotations

import dataclasses
import math
from typing import Any

import pandas as pd
import torch

from tunewidgets.schedules._fields import Control, check_choice, check_number, check_whole
from tunewidgets.schedules._preview import momentum_column, simulate, throwaway_optimizer

__all__ = ["ScheduleSpec", "INTERVALS"]

INTERVALS = ("step", "epoch")

INTERVAL_CONTROL = Control("interval", "choice", "step the schedule after every optimizer step or every epoch",
                           choices=INTERVALS)


class ScheduleSpec:
    """Base of the schedule specs. Subclasses are ``@dataclass(frozen=True, kw_only=True, repr=False)``.

    Subclasses define ``_check`` (validate and normalise fields), ``_make(optimizer, n)`` (the
    torch scheduler for ``n`` positions) and ``_controls`` (one ``Control`` per field), and
    override ``_check_run``, ``_peak_lr`` or ``_cycles_momentum`` where needed.
    """

    metric_driven = False
    _controls: tuple[Control, ...] = ()

    # -- validation ---------------------------------------------------------------------
    def __post_init__(self) -> None:
        self._check()

    def _check(self) -> None:  # pragma: no cover - every subclass overrides it
        raise NotImplementedError

    def _set(self, name: str, value: Any) -> None:
        object.__setattr__(self, name, value)

    def _check_interval(self) -> None:
        self._set("interval", check_choice(type(self).__name__, "interval", self.interval, INTERVALS))

    def _unit(self) -> str:
        return "epochs" if getattr(self, "interval", "step") == "epoch" else "steps"

    def _check_run(self, n: int) -> None:
        """Checks that need the run length (``n`` positions); raise ValueError naming the field."""

    def _point_in_run(self, field: str, value: int, n: int, what: str, fix: str) -> None:
        """A point where something happens at position ``value`` must come before the run ends."""
        if value >= n:
            unit = self._unit()
            raise ValueError(f"{type(self).__name__}.{field}: {what} (at {value} {unit}) must come before the end "
                             f"of the run ({n} {unit}), or it never happens; {fix}")

    def _span_in_run(self, field: str, value: int | None, n: int, what: str, fix: str) -> None:
        """A span of ``value`` positions from the start must end by the run's end."""
        if value is not None and value > n:
            unit = self._unit()
            raise ValueError(f"{type(self).__name__}.{field}: {what} ({value} {unit}) must fit in the run "
                             f"({n} {unit}), or it is cut short; {fix}")

    # -- shape facts used by composites and preview ------------------------------------
    def _first_lr(self, base: float, n: int) -> float:
        """The lr at position 0 of a run of ``n`` positions when the optimizer's lr is ``base``."""
        opt = throwaway_optimizer("sgd", base, 0.9)
        self._make(opt, n)
        return float(opt.param_groups[0]["lr"])

    def _peak_lr(self) -> float | None:
        """The spec's own peak lr if it sets its lr scale itself (OneCycle, Cyclic), else None."""
        return None

    def _cycles_momentum(self) -> bool:
        return False

    def _make(self, optimizer: torch.optim.Optimizer, n: int) -> Any:  # pragma: no cover
        raise NotImplementedError

    # -- public API ---------------------------------------------------------------------
    def _positions(self, total_steps: Any, steps_per_epoch: Any) -> int:
        name = type(self).__name__
        total_steps = check_whole(name, "total_steps", total_steps, 1, "the number of optimizer steps in the run")
        if steps_per_epoch is not None:
            steps_per_epoch = check_whole(name, "steps_per_epoch", steps_per_epoch, 1, "e.g. len(train_loader)")
        if getattr(self, "interval", "step") == "step":
            return total_steps
        if steps_per_epoch is None:
            raise ValueError(f"{name}.steps_per_epoch: {self!r} changes the lr once per epoch, so it needs "
                             "steps_per_epoch (optimizer steps in one epoch, e.g. len(train_loader)); got None")
        return math.ceil(total_steps / steps_per_epoch)

    def _check_optimizer(self, optimizer: Any) -> None:
        if not isinstance(optimizer, torch.optim.Optimizer):
            raise TypeError(f"{type(self).__name__}.build: expected a torch optimizer, got {type(optimizer).__name__}")
        if self._cycles_momentum() and not ({"momentum", "betas"} & set(optimizer.defaults)):
            raise ValueError(
                f"cycle_momentum: {type(optimizer).__name__} has neither momentum nor betas to cycle; "
                "set cycle_momentum=False, or use sgd/rmsprop (momentum) or adam/adamw (beta1)")

    def build(self, optimizer: torch.optim.Optimizer, total_steps: int,
              steps_per_epoch: int | None = None) -> Any:
        """The torch scheduler that training steps (after every optimizer step or every epoch).

        Args:
            optimizer: the training optimizer; its lr is the base the spec scales (except
                specs that set their own lr, e.g. ``OneCycle.max_lr``).
            total_steps: optimizer steps in the run.
            steps_per_epoch: optimizer steps per epoch; needed when ``interval="epoch"``.
        """
        n = self._positions(total_steps, steps_per_epoch)
        self._check_optimizer(optimizer)
        self._check_run(n)
        return self._make(optimizer, n)

    def _default_base(self, base_lr: Any) -> float:
        if base_lr is None:
            peak = self._peak_lr()
            return 1.0 if peak is None else peak
        return check_number(type(self).__name__, "base_lr", base_lr, low=0, low_open=True,
                            fix="the optimizer's lr (TrainConfig.lr), e.g. 0.1")

    def preview(self, total_steps: int, base_lr: float | None = None, steps_per_epoch: int | None = None,
                *, optimizer: str = "sgd", momentum: float = 0.9) -> pd.DataFrame:
        """The lr (and momentum or beta1 where it cycles) of every optimizer step of a run.

        It builds the very scheduler ``build`` returns on a throwaway optimizer (one dummy
        parameter) and steps it as training does, so it equals what training applies.

        Args:
            total_steps: optimizer steps in the run.
            base_lr: the optimizer's lr (TrainConfig.lr); default: the spec's own peak
                lr if it has one (OneCycle.max_lr...), else 1.0 (so lr reads as a factor).
            steps_per_epoch: optimizer steps per epoch (fills ``epoch``; needed for
                ``interval="epoch"``).
            optimizer: "sgd" or "rmsprop" show a ``momentum`` column where it cycles,
                "adam" or "adamw" a ``beta1`` column.
            momentum: the optimizer's own momentum (or beta1), shown where nothing cycles it.

        Returns:
            DataFrame with ``step`` (1 = the first optimizer step, as in ``run.history``),
            ``epoch`` (0-based; NaN without ``steps_per_epoch``), ``lr``, and ``momentum`` or
            ``beta1`` when the spec cycles it.
        """
        base = self._default_base(base_lr)
        n = self._positions(total_steps, steps_per_epoch)
        self._check_run(n)
        column = momentum_column(optimizer) if self._cycles_momentum() else None
        opt = throwaway_optimizer(optimizer, base, momentum)
        sched = self.build(opt, total_steps, steps_per_epoch)
        every = 1 if getattr(self, "interval", "step") == "step" else steps_per_epoch
        return simulate(opt, sched, total_steps, every, steps_per_epoch, column)

    # -- serialisation ------------------------------------------------------------------
    @classmethod
    def controls(cls) -> list[Control]:
        """One ``Control`` per field, in field order, with the field's default filled in."""
        by_name = {c.name: c for c in cls._controls}
        out = []
        for f in dataclasses.fields(cls):
            default = f.default if f.default is not dataclasses.MISSING else f.default_factory()
            out.append(dataclasses.replace(by_name[f.name], default=default))
        return out

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ScheduleSpec:
        """The spec ``d`` describes (``d["type"]`` names its class); same as ``tw.schedules.from_dict``."""
        from tunewidgets.schedules._catalogue import from_dict

        spec = from_dict(d)
        if not isinstance(spec, cls):
            raise ValueError(f"{cls.__name__}.from_dict: the dict describes a {type(spec).__name__}; "
                             "use tw.schedules.from_dict(d) for any spec")
        return spec

    def replace(self, **changes: Any) -> ScheduleSpec:
        """A validated copy with some fields changed."""
        names = [f.name for f in dataclasses.fields(self)]
        unknown = sorted(set(changes) - set(names))
        if unknown:
            raise ValueError(f"{type(self).__name__} has no field(s) {unknown}; its fields are {names}")
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        """JSON-able values with the spec's name under ``"type"``; ``from_dict`` reverses it."""
        out: dict[str, Any] = {"type": type(self).__name__}
        for f in dataclasses.fields(self):
            out[f.name] = _plain(getattr(self, f.name))
        return out

    def _changed(self) -> list[tuple[str, Any]]:
        out = []
        for f in dataclasses.fields(self):
            default = f.default if f.default is not dataclasses.MISSING else f.default_factory()
            value = getattr(self, f.name)
            if value != default or type(value) is not type(default):
                out.append((f.name, value))
        return out

    def to_code(self) -> str:
        """Python that recreates the spec (only fields that differ from their defaults)."""
        args = ", ".join(f"{name}={_code(value)}" for name, value in self._changed())
        return f"tw.schedules.{type(self).__name__}({args})"

    def __repr__(self) -> str:
        return self.to_code()


def _plain(value: Any) -> Any:
    if isinstance(value, ScheduleSpec):
        return value.to_dict()
    if isinstance(value, (tuple, list)):
        return [_plain(v) for v in value]
    return value


def _code(value: Any) -> str:
    if isinstance(value, ScheduleSpec):
        return value.to_code()
    if isinstance(value, (tuple, list)):
        return "[" + ", ".join(_code(v) for v in value) + "]"
    return repr(value)
