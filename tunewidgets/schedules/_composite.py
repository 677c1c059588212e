"""Specs made of other specs: ``Warmup`` (a linear ramp, then any spec) and ``Sequential``.

Each wrapped spec runs exactly as it would alone from where it starts (see ``PhasedLR``).

    >>> from tunewidgets.schedules import Constant, Exponential, Sequential, Warmup
    >>> Warmup(steps=2, then=Constant(), start_factor=0.5).preview(4, base_lr=1.0)["lr"].tolist()
    [0.5, 0.75, 1.0, 1.0]
    >>> s = Sequential(specs=[Constant(), Exponential(gamma=0.5)], milestones=[2])
    >>> s.preview(5, base_lr=1.0)["lr"].tolist()
    [1.0, 1.0, 1.0, 0.5, 0.25]
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from torch.optim.lr_scheduler import LinearLR

from tunewidgets.schedules._base import INTERVAL_CONTROL, ScheduleSpec
from tunewidgets.schedules._basic import Constant
from tunewidgets.schedules._cosine import Cosine
from tunewidgets.schedules._fields import Control, check_milestones, check_number, check_whole
from tunewidgets.schedules._phased import PhasedLR, _set_lr

__all__ = ["Warmup", "Sequential", "CHAINABLE"]

# the specs a Warmup or Sequential can hold (all but the metric-driven ReduceOnPlateau)
CHAINABLE = ("Constant", "Step", "MultiStep", "Exponential", "Polynomial", "Cosine", "CosineWarmRestarts",
             "Cyclic", "OneCycle", "Warmup", "WSD", "InverseSqrt", "Sequential")


def _check_child(owner: ScheduleSpec, name: str, child: Any) -> None:
    cls = type(owner).__name__
    if not isinstance(child, ScheduleSpec):
        raise TypeError(f"{cls}.{name}: expected a tw.schedules spec such as tw.schedules.Cosine(), got {child!r}")
    if child.metric_driven:
        raise ValueError(f"{cls}.{name}: {child!r} follows a validation metric and cannot be chained; "
                         f"use it alone as the schedule")
    if child.interval != owner.interval:
        raise ValueError(f"{cls}.{name}: {child!r} steps per {child.interval} but the {cls} per "
                         f"{owner.interval}; give both the same interval, e.g. {cls}(..., interval="
                         f"{child.interval!r})")


def _check_part(spec: ScheduleSpec, length: int, where: str) -> None:
    """Check a wrapped spec on its part of the run; the message keeps the spec's own field first."""
    try:
        spec._check_run(length)
    except ValueError as exc:
        raise ValueError(f"{exc} (in {where})") from None


def _ramp(optimizer: Any, *, then: ScheduleSpec, then_n: int, start_factor: float, steps: int) -> LinearLR:
    """A linear ramp from ``start_factor`` times the first lr of ``then`` up to it."""
    for group in optimizer.param_groups:
        target = then._first_lr(float(group["lr"]), then_n)
        _set_lr(group, target)
        group["initial_lr"] = target
    return LinearLR(optimizer, start_factor=start_factor, end_factor=1.0, total_iters=steps)


@dataclass(frozen=True, kw_only=True, repr=False)
class Warmup(ScheduleSpec):
    """Ramp the lr linearly for ``steps`` steps (or epochs), then run ``then``.

    The ramp goes from ``start_factor`` times the first lr of ``then`` up to that lr (the
    optimizer's lr for most specs, ``max_lr / div_factor`` for OneCycle, ``base_lr`` for
    Cyclic); ``then`` runs over the rest of the run as it would alone.
    """

    steps: int = 100
    then: ScheduleSpec = field(default_factory=Cosine)
    start_factor: float = 0.01
    interval: str = "step"

    _controls = (
        Control("steps", "int", "steps (or epochs) of linear warm-up", min=1, max=5000),
        Control("then", "spec", "the schedule after the warm-up (same interval)", choices=CHAINABLE),
        Control("start_factor", "float", "the ramp starts at this fraction of the lr", min=0.001, max=1.0),
        INTERVAL_CONTROL,
    )

    def _check(self) -> None:
        self._set("steps", check_whole("Warmup", "steps", self.steps, 1, "e.g. 100, or drop the Warmup"))
        self._set("start_factor", check_number("Warmup", "start_factor", self.start_factor, low=0, high=1,
                                               low_open=True, fix="e.g. 0.01"))
        self._check_interval()
        _check_child(self, "then", self.then)

    def _check_run(self, n: int) -> None:
        if self.steps >= n:
            raise ValueError(f"Warmup.steps: the warm-up ({self.steps} {self._unit()}) must be shorter than the "
                             f"run ({n} {self._unit()}); lower steps or train longer")
        _check_part(self.then, n - self.steps, f"Warmup.then, which runs for the {n - self.steps} {self._unit()} "
                    "after the warm-up")

    def _peak_lr(self):
        return self.then._peak_lr()

    def _cycles_momentum(self):
        return self.then._cycles_momentum()

    def _make(self, optimizer, n):
        rest = n - self.steps
        ramp = partial(_ramp, then=self.then, then_n=rest, start_factor=self.start_factor, steps=self.steps)
        return PhasedLR(optimizer, [ramp, partial(self.then._make, n=rest)], [self.steps])


@dataclass(frozen=True, kw_only=True, repr=False)
class Sequential(ScheduleSpec):
    """Run ``specs`` one after another, switching at ``milestones`` (steps or epochs).

    Each spec runs as it would alone over its part of the run (from its milestone to the
    next, the last one to the end of the run).
    """

    specs: tuple[ScheduleSpec, ...] = (Constant(), Cosine())
    milestones: tuple[int, ...] = (500,)
    interval: str = "step"

    _controls = (
        Control("specs", "list[spec]", "the schedules, in order (two or more, same interval)", choices=CHAINABLE),
        Control("milestones", "list[int]", "where each next schedule starts, increasing", min=1),
        INTERVAL_CONTROL,
    )

    def _check(self) -> None:
        if isinstance(self.specs, (str, bytes)) or not isinstance(self.specs, Sequence) or len(self.specs) < 2:
            raise TypeError(f"Sequential.specs: expected a list of two or more specs, got {self.specs!r}; "
                            "e.g. specs=[tw.schedules.Constant(), tw.schedules.Cosine()]")
        self._set("specs", tuple(self.specs))
        self._check_interval()
        for i, spec in enumerate(self.specs):
            _check_child(self, f"specs[{i}]", spec)
        self._set("milestones", check_milestones("Sequential", "milestones", self.milestones,
                                                 "one start step per spec after the first"))
        if len(self.milestones) != len(self.specs) - 1:
            raise ValueError(f"Sequential.milestones: needs {len(self.specs) - 1} milestone(s) for "
                             f"{len(self.specs)} specs (where each spec after the first starts), "
                             f"got {list(self.milestones)}")

    def _lengths(self, n: int) -> list[int]:
        edges = [0, *self.milestones, n]
        return [b - a for a, b in zip(edges, edges[1:])]

    def _check_run(self, n: int) -> None:
        if self.milestones[-1] >= n:
            raise ValueError(f"Sequential.milestones: the last milestone ({self.milestones[-1]}) must come before "
                             f"the end of the run ({n} {self._unit()}); lower it or train longer")
        for i, (spec, length) in enumerate(zip(self.specs, self._lengths(n))):
            _check_part(spec, length, f"Sequential.specs[{i}], which runs for {length} of the run's {n} {self._unit()}")

    def _peak_lr(self):
        peaks = [p for p in (s._peak_lr() for s in self.specs) if p is not None]
        return max(peaks) if peaks else None

    def _cycles_momentum(self):
        return any(s._cycles_momentum() for s in self.specs)

    def _make(self, optimizer, n):
        phases = [partial(spec._make, n=length) for spec, length in zip(self.specs, self._lengths(n))]
        return PhasedLR(optimizer, phases, list(self.milestones))
