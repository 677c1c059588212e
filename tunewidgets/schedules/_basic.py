"""Plain decays: Constant, Step, MultiStep, Exponential, Polynomial (torch's own schedulers).

    >>> from tunewidgets.schedules import Step
    >>> Step(step_size=2, gamma=0.5).preview(total_steps=5, base_lr=0.1)["lr"].tolist()
    [0.1, 0.1, 0.05, 0.05, 0.025]
"""
from __future__ import annotations

from dataclasses import dataclass

from torch.optim.lr_scheduler import ExponentialLR, LambdaLR, MultiStepLR, PolynomialLR, StepLR

from tunewidgets.schedules._base import INTERVAL_CONTROL, ScheduleSpec
from tunewidgets.schedules._fields import Control, check_milestones, check_number, check_whole

__all__ = ["Constant", "Step", "MultiStep", "Exponential", "Polynomial"]


@dataclass(frozen=True)
class ConstantFactor:
    """``LambdaLR`` factor that keeps the lr where it is (a callable object, so state_dict keeps it)."""

    def __call__(self, step: int) -> float:
        return 1.0


@dataclass(frozen=True, kw_only=True, repr=False)
class Constant(ScheduleSpec):
    """The optimizer's lr, unchanged for the whole run.

    >>> Constant().preview(total_steps=3, base_lr=0.01)["lr"].tolist()
    [0.01, 0.01, 0.01]
    """

    interval: str = "step"

    _controls = (INTERVAL_CONTROL,)

    def _check(self) -> None:
        self._check_interval()

    def _make(self, optimizer, n):
        return LambdaLR(optimizer, ConstantFactor())


@dataclass(frozen=True, kw_only=True, repr=False)
class Step(ScheduleSpec):
    """Multiply the lr by ``gamma`` every ``step_size`` steps (or epochs): torch's ``StepLR``."""

    step_size: int = 100
    gamma: float = 0.5
    interval: str = "step"

    _controls = (
        Control("step_size", "int", "steps (or epochs) between decays", min=1, max=1000),
        Control("gamma", "float", "multiply the lr by this at each decay", min=0.01, max=1.0),
        INTERVAL_CONTROL,
    )

    def _check(self) -> None:
        self._set("step_size", check_whole("Step", "step_size", self.step_size, 1, "e.g. 100"))
        self._set("gamma", check_number("Step", "gamma", self.gamma, low=0, high=1, low_open=True,
                                        fix="a decay factor such as 0.1 or 0.5"))
        self._check_interval()

    def _check_run(self, n: int) -> None:
        self._point_in_run("step_size", self.step_size, n, "the first decay",
                           f"lower step_size below {n}, or train longer")

    def _make(self, optimizer, n):
        return StepLR(optimizer, step_size=self.step_size, gamma=self.gamma)


@dataclass(frozen=True, kw_only=True, repr=False)
class MultiStep(ScheduleSpec):
    """Multiply the lr by ``gamma`` at each milestone: torch's ``MultiStepLR``.

    >>> MultiStep(milestones=[2, 3], gamma=0.1).preview(4, base_lr=1.0)["lr"].round(6).tolist()
    [1.0, 1.0, 0.1, 0.01]
    """

    milestones: tuple[int, ...] = (500, 750)
    gamma: float = 0.1
    interval: str = "step"

    _controls = (
        Control("milestones", "list[int]", "steps (or epochs) at which the lr decays, increasing", min=1),
        Control("gamma", "float", "multiply the lr by this at each milestone", min=0.01, max=1.0),
        INTERVAL_CONTROL,
    )

    def _check(self) -> None:
        self._set("milestones", check_milestones("MultiStep", "milestones", self.milestones,
                                                 "e.g. milestones=[500, 750]"))
        self._set("gamma", check_number("MultiStep", "gamma", self.gamma, low=0, high=1, low_open=True,
                                        fix="a decay factor such as 0.1"))
        self._check_interval()

    def _check_run(self, n: int) -> None:
        late = [m for m in self.milestones if m >= n]
        if late:
            self._point_in_run("milestones", late[0], n, "a decay",
                               f"keep every milestone below {n} (got {list(self.milestones)}), or train longer")

    def _make(self, optimizer, n):
        return MultiStepLR(optimizer, milestones=list(self.milestones), gamma=self.gamma)


@dataclass(frozen=True, kw_only=True, repr=False)
class Exponential(ScheduleSpec):
    """Multiply the lr by ``gamma`` after every step (or epoch): torch's ``ExponentialLR``."""

    gamma: float = 0.995
    interval: str = "step"

    _controls = (
        Control("gamma", "float", "multiply the lr by this after every step (or epoch)", min=0.9, max=1.0),
        INTERVAL_CONTROL,
    )

    def _check(self) -> None:
        self._set("gamma", check_number("Exponential", "gamma", self.gamma, low=0, high=1, low_open=True,
                                        fix="e.g. 0.995 per step or 0.9 per epoch"))
        self._check_interval()

    def _make(self, optimizer, n):
        return ExponentialLR(optimizer, gamma=self.gamma)


@dataclass(frozen=True, kw_only=True, repr=False)
class Polynomial(ScheduleSpec):
    """Decay to 0 as ``(1 - t / total_iters) ** power``: torch's ``PolynomialLR``.

    ``total_iters=None`` decays over the whole run (reaching 0 just after its last step).
    """

    total_iters: int | None = None
    power: float = 1.0
    interval: str = "step"

    _controls = (
        Control("total_iters", "int", "steps (or epochs) to decay over; None: the whole run",
                min=1, max=10000, optional=True),
        Control("power", "float", "1 is linear; above 1 drops early, below 1 drops late", min=0.1, max=5.0),
        INTERVAL_CONTROL,
    )

    def _check(self) -> None:
        if self.total_iters is not None:
            self._set("total_iters", check_whole("Polynomial", "total_iters", self.total_iters, 1,
                                                 "or None for the whole run"))
        self._set("power", check_number("Polynomial", "power", self.power, low=0, low_open=True,
                                        fix="e.g. 1.0 (linear) or 2.0"))
        self._check_interval()

    def _check_run(self, n: int) -> None:
        self._span_in_run("total_iters", self.total_iters, n, "the decay to 0",
                          f"use total_iters=None (the whole run) or at most {n}")

    def _make(self, optimizer, n):
        total = n if self.total_iters is None else self.total_iters
        return PolynomialLR(optimizer, total_iters=total, power=self.power)
