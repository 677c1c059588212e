"""Schedules that set their own lr range and cycle momentum: ``Cyclic`` and ``OneCycle``.

Momentum moves opposite to the lr: "momentum" for sgd and rmsprop, beta1 for adam and adamw
(torch's ``CyclicLR`` and ``OneCycleLR`` do this). With sgd at momentum 0, cycling turns
momentum on, as torch does; set ``cycle_momentum=False`` to keep plain sgd.

    >>> from tunewidgets.schedules import OneCycle
    >>> df = OneCycle(max_lr=0.1).preview(total_steps=100)
    >>> float(df["lr"].max()), round(float(df["lr"].iloc[0]), 6), list(df.columns)
    (0.1, 0.004, ['step', 'epoch', 'lr', 'momentum'])
"""
from __future__ import annotations

from dataclasses import dataclass

from torch.optim.lr_scheduler import CyclicLR, OneCycleLR

from tunewidgets.schedules._base import INTERVAL_CONTROL, ScheduleSpec
from tunewidgets.schedules._fields import Control, check_choice, check_flag, check_number, check_whole

__all__ = ["Cyclic", "OneCycle"]

_CYCLE_MOMENTUM = Control("cycle_momentum", "bool", "move momentum (or beta1) opposite to the lr")


def _check_momentum(spec: ScheduleSpec) -> None:
    name = type(spec).__name__
    spec._set("cycle_momentum", check_flag(name, "cycle_momentum", spec.cycle_momentum))
    for field in ("base_momentum", "max_momentum"):
        spec._set(field, check_number(name, field, getattr(spec, field), low=0, high=1, high_open=True,
                                      fix="a momentum such as 0.85 or 0.95"))
    if spec.base_momentum > spec.max_momentum:
        raise ValueError(f"{name}.base_momentum: must be <= max_momentum ({spec.max_momentum!r}), "
                         f"got {spec.base_momentum!r}; e.g. base_momentum=0.85, max_momentum=0.95")


@dataclass(frozen=True, kw_only=True, repr=False)
class Cyclic(ScheduleSpec):
    """Cycle the lr between ``base_lr`` and ``max_lr``: torch's ``CyclicLR``.

    Modes: "triangular" (same height every cycle), "triangular2" (height halves each
    cycle), "exp_range" (height times ``gamma`` per step). It sets the lr itself: the
    optimizer's lr is not used. The first cycle (``step_size_up + step_size_down``) must
    fit in the run; the last one may be cut short by its end.
    """

    base_lr: float = 1e-4
    max_lr: float = 1e-2
    step_size_up: int = 100
    step_size_down: int | None = None
    mode: str = "triangular"
    gamma: float = 1.0
    cycle_momentum: bool = True
    base_momentum: float = 0.8
    max_momentum: float = 0.9
    interval: str = "step"

    _controls = (
        Control("base_lr", "lr", "the lowest lr of each cycle", min=1e-6, max=1.0),
        Control("max_lr", "lr", "the highest lr of the first cycle", min=1e-6, max=10.0),
        Control("step_size_up", "int", "steps (or epochs) from base_lr up to max_lr", min=1, max=5000),
        Control("step_size_down", "int", "steps (or epochs) back down; None: same as up",
                min=1, max=5000, optional=True),
        Control("mode", "choice", "how the height changes from cycle to cycle",
                choices=("triangular", "triangular2", "exp_range")),
        Control("gamma", "float", "exp_range: height factor per step (or epoch)", min=0.99, max=1.0),
        _CYCLE_MOMENTUM,
        Control("base_momentum", "float", "momentum at the top of the lr", min=0.0, max=0.99),
        Control("max_momentum", "float", "momentum at the bottom of the lr", min=0.0, max=0.99),
        INTERVAL_CONTROL,
    )

    def _check(self) -> None:
        self._set("base_lr", check_number("Cyclic", "base_lr", self.base_lr, low=0, low_open=True, fix="e.g. 1e-4"))
        self._set("max_lr", check_number("Cyclic", "max_lr", self.max_lr, low=0, low_open=True, fix="e.g. 1e-2"))
        if self.max_lr <= self.base_lr:
            raise ValueError(f"Cyclic.max_lr: must be above base_lr ({self.base_lr!r}), got {self.max_lr!r}; "
                             f"e.g. max_lr={self.base_lr * 10!r}, or pick both from tw.lr_range_test")
        self._set("step_size_up", check_whole("Cyclic", "step_size_up", self.step_size_up, 1, "e.g. 100"))
        if self.step_size_down is not None:
            self._set("step_size_down", check_whole("Cyclic", "step_size_down", self.step_size_down, 1,
                                                    "or None for the same as step_size_up"))
        self._set("mode", check_choice("Cyclic", "mode", self.mode, ("triangular", "triangular2", "exp_range")))
        self._set("gamma", check_number("Cyclic", "gamma", self.gamma, low=0, high=1, low_open=True,
                                        fix="exp_range shrinks the height by gamma per step, e.g. 0.999"))
        _check_momentum(self)
        self._check_interval()

    def _check_run(self, n: int) -> None:
        # the first cycle must fit: else the lr never completes one (later cycles may be cut by the end)
        up = self.step_size_up
        down = up if self.step_size_down is None else self.step_size_down
        self._span_in_run("step_size_up", up, n, "the rise from base_lr to max_lr",
                          f"lower step_size_up to at most {n // 2} (a whole cycle in the run), or train longer")
        self._span_in_run("step_size_down" if self.step_size_down is not None else "step_size_up", up + down, n,
                          f"the first cycle (up {up} + down {down})",
                          f"make step_size_up + step_size_down at most {n}, or train longer")

    def _peak_lr(self):
        return self.max_lr

    def _cycles_momentum(self):
        return self.cycle_momentum

    def _make(self, optimizer, n):
        return CyclicLR(optimizer, base_lr=self.base_lr, max_lr=self.max_lr, step_size_up=self.step_size_up,
                        step_size_down=self.step_size_down, mode=self.mode, gamma=self.gamma,
                        cycle_momentum=self.cycle_momentum, base_momentum=self.base_momentum,
                        max_momentum=self.max_momentum)


@dataclass(frozen=True, kw_only=True, repr=False)
class OneCycle(ScheduleSpec):
    """The one-cycle policy: warm up from ``max_lr / div_factor`` to ``max_lr`` over
    ``pct_start`` of the run, then anneal to ``max_lr / div_factor / final_div_factor``.
    torch's ``OneCycleLR``; it sets the lr itself (the optimizer's lr is not used).

    ``three_phase=True`` comes back down to the start lr symmetrically before the final
    anneal (fastai's original shape); ``pct_start`` must then be below 0.5.
    """

    max_lr: float = 0.1
    pct_start: float = 0.3
    anneal_strategy: str = "cos"
    div_factor: float = 25.0
    final_div_factor: float = 1e4
    three_phase: bool = False
    cycle_momentum: bool = True
    base_momentum: float = 0.85
    max_momentum: float = 0.95
    interval: str = "step"

    _controls = (
        Control("max_lr", "lr", "the peak lr", min=1e-5, max=10.0),
        Control("pct_start", "float", "fraction of the run spent warming up", min=0.01, max=0.49),
        Control("anneal_strategy", "choice", "shape of the ramps", choices=("cos", "linear")),
        Control("div_factor", "float", "start lr = max_lr / div_factor", min=1.0, max=1000.0, log=True),
        Control("final_div_factor", "float", "final lr = start lr / final_div_factor",
                min=1.0, max=1e6, log=True),
        Control("three_phase", "bool", "come back down to the start lr before the final anneal"),
        _CYCLE_MOMENTUM,
        Control("base_momentum", "float", "momentum at the peak lr", min=0.0, max=0.99),
        Control("max_momentum", "float", "momentum at the start and end", min=0.0, max=0.99),
        INTERVAL_CONTROL,
    )

    def _check(self) -> None:
        self._set("max_lr", check_number("OneCycle", "max_lr", self.max_lr, low=0, low_open=True,
                                         fix="e.g. 0.1, or tw.lr_range_test(...).suggested * 10"))
        self._set("three_phase", check_flag("OneCycle", "three_phase", self.three_phase))
        high = 0.5 if self.three_phase else 1.0
        why = " with three_phase=True" if self.three_phase else ""
        self._set("pct_start", check_number("OneCycle", "pct_start", self.pct_start, low=0, high=high,
                                            low_open=True, high_open=True, fix=f"e.g. 0.3{why}"))
        self._set("anneal_strategy", check_choice("OneCycle", "anneal_strategy", self.anneal_strategy,
                                                  ("cos", "linear")))
        self._set("div_factor", check_number("OneCycle", "div_factor", self.div_factor, low=1,
                                             fix="start lr = max_lr / div_factor; e.g. 25"))
        self._set("final_div_factor", check_number("OneCycle", "final_div_factor", self.final_div_factor, low=1,
                                                   fix="final lr = start lr / final_div_factor; e.g. 1e4"))
        _check_momentum(self)
        self._check_interval()

    def _check_run(self, n: int) -> None:
        # OneCycleLR divides by (pct_start * total - 1), so a one-step warm-up fails inside torch
        if float(self.pct_start * n) - 1 == 0:
            raise ValueError(f"OneCycle.pct_start: {self.pct_start!r} of a run of {n} {self._unit()} is a "
                             "one-step warm-up, which torch's OneCycleLR cannot compute; "
                             "change pct_start or the run length")

    def _peak_lr(self):
        return self.max_lr

    def _cycles_momentum(self):
        return self.cycle_momentum

    def _make(self, optimizer, n):
        return OneCycleLR(optimizer, max_lr=self.max_lr, total_steps=n, pct_start=self.pct_start,
                          anneal_strategy=self.anneal_strategy, cycle_momentum=self.cycle_momentum,
                          base_momentum=self.base_momentum, max_momentum=self.max_momentum,
                          div_factor=self.div_factor, final_div_factor=self.final_div_factor,
                          three_phase=self.three_phase)
