"""Schedules with a built-in warm-up, common for transformers: ``WSD`` and ``InverseSqrt``.

Both are torch ``LambdaLR`` schedulers whose factor is a small callable object (so the
scheduler's ``state_dict`` keeps it). Their warm-up is linear: at step ``k < warmup_steps``
the factor is ``start_factor + (1 - start_factor) * k / warmup_steps``, as in ``Warmup``.

    >>> from tunewidgets.schedules import WSD
    >>> WSD(warmup_steps=2, decay_fraction=0.5, start_factor=0.5).preview(8, base_lr=1.0)["lr"].tolist()
    [0.5, 0.75, 1.0, 1.0, 1.0, 0.75, 0.5, 0.25]
"""
from __future__ import annotations

import math
from dataclasses import dataclass

from torch.optim.lr_scheduler import LambdaLR

from tunewidgets.schedules._base import INTERVAL_CONTROL, ScheduleSpec
from tunewidgets.schedules._fields import Control, check_choice, check_number, check_whole

__all__ = ["WSD", "InverseSqrt"]

DECAYS = ("linear", "cosine", "1-sqrt")

_START_FACTOR = Control("start_factor", "float", "the warm-up starts at this fraction of the lr",
                        min=0.001, max=1.0)


def _warmup_factor(k: int, warmup: int, start_factor: float) -> float:
    return start_factor + (1.0 - start_factor) * k / warmup


@dataclass(frozen=True)
class WSDFactor:
    """``LambdaLR`` factor of ``WSD`` for one run."""

    warmup: int
    decay_start: int
    decay_steps: int
    decay: str
    final_factor: float
    start_factor: float

    def __call__(self, k: int) -> float:
        if k < self.warmup:
            return _warmup_factor(k, self.warmup, self.start_factor)
        if k < self.decay_start:
            return 1.0
        p = min(1.0, (k - self.decay_start) / self.decay_steps)
        if self.decay == "linear":
            shape = 1.0 - p
        elif self.decay == "cosine":
            shape = 0.5 * (1.0 + math.cos(math.pi * p))
        else:
            shape = 1.0 - math.sqrt(p)
        return self.final_factor + (1.0 - self.final_factor) * shape


@dataclass(frozen=True, kw_only=True, repr=False)
class WSD(ScheduleSpec):
    """Warm-up, stable, decay: ramp up for ``warmup_steps``, hold the lr, then decay over the
    last ``decay_fraction`` of the run to ``final_factor`` times the lr (reached just after
    the last step). ``decay``: "linear", "cosine" or "1-sqrt" (``1 - sqrt(t)``, which drops
    fast at first).
    """

    warmup_steps: int = 100
    decay_fraction: float = 0.2
    decay: str = "linear"
    final_factor: float = 0.0
    start_factor: float = 0.01
    interval: str = "step"

    _controls = (
        Control("warmup_steps", "int", "steps (or epochs) of linear warm-up; 0: none", min=0, max=5000),
        Control("decay_fraction", "float", "fraction of the run spent decaying, at its end", min=0.01, max=1.0),
        Control("decay", "choice", "shape of the decay", choices=DECAYS),
        Control("final_factor", "float", "the lr at the end, as a fraction of the lr", min=0.0, max=0.99),
        _START_FACTOR,
        INTERVAL_CONTROL,
    )

    def _check(self) -> None:
        self._set("warmup_steps", check_whole("WSD", "warmup_steps", self.warmup_steps, 0, "e.g. 100, or 0"))
        self._set("decay_fraction", check_number("WSD", "decay_fraction", self.decay_fraction, low=0, high=1,
                                                 low_open=True, fix="e.g. 0.2 (the last fifth of the run)"))
        self._set("decay", check_choice("WSD", "decay", self.decay, DECAYS))
        self._set("final_factor", check_number("WSD", "final_factor", self.final_factor, low=0, high=1,
                                               high_open=True, fix="e.g. 0 or 0.1"))
        self._set("start_factor", check_number("WSD", "start_factor", self.start_factor, low=0, high=1,
                                               low_open=True, fix="e.g. 0.01"))
        self._check_interval()

    def _decay_steps(self, n: int) -> int:
        return max(1, round(self.decay_fraction * n))

    def _check_run(self, n: int) -> None:
        d = self._decay_steps(n)
        if self.warmup_steps + d > n:
            raise ValueError(f"WSD.warmup_steps: the warm-up ({self.warmup_steps} {self._unit()}) and the decay "
                             f"({d} {self._unit()}, decay_fraction={self.decay_fraction!r}) do not fit in the run "
                             f"({n} {self._unit()}); lower warmup_steps or decay_fraction, or train longer")

    def _make(self, optimizer, n):
        d = self._decay_steps(n)
        factor = WSDFactor(warmup=self.warmup_steps, decay_start=n - d, decay_steps=d, decay=self.decay,
                           final_factor=self.final_factor, start_factor=self.start_factor)
        return LambdaLR(optimizer, factor)


@dataclass(frozen=True)
class InverseSqrtFactor:
    """``LambdaLR`` factor of ``InverseSqrt``."""

    warmup: int
    timescale: int
    start_factor: float

    def __call__(self, k: int) -> float:
        if k < self.warmup:
            return _warmup_factor(k, self.warmup, self.start_factor)
        return math.sqrt(self.timescale / (k - self.warmup + self.timescale))


@dataclass(frozen=True, kw_only=True, repr=False)
class InverseSqrt(ScheduleSpec):
    """Linear warm-up, then decay as ``sqrt(timescale / (t + timescale))``, ``t`` counted
    from the end of the warm-up (the "Attention is all you need" / fairseq shape).

    ``timescale=None`` uses ``warmup_steps`` (so the lr is ``sqrt(warmup_steps / step)``
    after the warm-up), or 1 without a warm-up.
    """

    warmup_steps: int = 100
    timescale: int | None = None
    start_factor: float = 0.01
    interval: str = "step"

    _controls = (
        Control("warmup_steps", "int", "steps (or epochs) of linear warm-up; 0: none", min=0, max=5000),
        Control("timescale", "int", "steps (or epochs) for the lr to fall to 1/sqrt(2); None: warmup_steps",
                min=1, max=5000, optional=True),
        _START_FACTOR,
        INTERVAL_CONTROL,
    )

    def _check(self) -> None:
        self._set("warmup_steps", check_whole("InverseSqrt", "warmup_steps", self.warmup_steps, 0,
                                              "e.g. 100, or 0"))
        if self.timescale is not None:
            self._set("timescale", check_whole("InverseSqrt", "timescale", self.timescale, 1,
                                               "or None for warmup_steps"))
        self._set("start_factor", check_number("InverseSqrt", "start_factor", self.start_factor, low=0, high=1,
                                               low_open=True, fix="e.g. 0.01"))
        self._check_interval()

    def _check_run(self, n: int) -> None:
        if self.warmup_steps >= n:
            raise ValueError(f"InverseSqrt.warmup_steps: the warm-up ({self.warmup_steps} {self._unit()}) must be "
                             f"shorter than the run ({n} {self._unit()}); lower warmup_steps or train longer")

    def _make(self, optimizer, n):
        timescale = self.timescale if self.timescale is not None else max(self.warmup_steps, 1)
        return LambdaLR(optimizer, InverseSqrtFactor(self.warmup_steps, timescale, self.start_factor))
