"""Cosine annealing, once (``Cosine``) or with warm restarts (``CosineWarmRestarts``).

    >>> from tunewidgets.schedules import Cosine
    >>> Cosine().preview(total_steps=4, base_lr=1.0)["lr"].round(4).tolist()
    [1.0, 0.8536, 0.5, 0.1464]
"""
from __future__ import annotations

from dataclasses import dataclass

from torch.optim.lr_scheduler import CosineAnnealingLR, CosineAnnealingWarmRestarts

from tunewidgets.schedules._base import INTERVAL_CONTROL, ScheduleSpec
from tunewidgets.schedules._fields import Control, check_number, check_whole

__all__ = ["Cosine", "CosineWarmRestarts"]

_ETA_MIN = Control("eta_min", "float", "the lowest lr, reached at the end of each cosine", min=0.0, max=0.01)


@dataclass(frozen=True, kw_only=True, repr=False)
class Cosine(ScheduleSpec):
    """Anneal from the optimizer's lr to ``eta_min`` along half a cosine: torch's ``CosineAnnealingLR``.

    ``T_max=None`` anneals over the whole run (reaching ``eta_min`` just after its last step);
    after ``T_max`` the lr climbs back along the cosine, as torch's scheduler does.
    """

    T_max: int | None = None
    eta_min: float = 0.0
    interval: str = "step"

    _controls = (
        Control("T_max", "int", "steps (or epochs) of the half cosine; None: the whole run",
                min=1, max=10000, optional=True),
        _ETA_MIN,
        INTERVAL_CONTROL,
    )

    def _check(self) -> None:
        if self.T_max is not None:
            self._set("T_max", check_whole("Cosine", "T_max", self.T_max, 1, "or None for the whole run"))
        self._set("eta_min", check_number("Cosine", "eta_min", self.eta_min, low=0,
                                          fix="an lr below the optimizer's, e.g. 0 or 1e-5"))
        self._check_interval()

    def _check_run(self, n: int) -> None:
        self._span_in_run("T_max", self.T_max, n, "the half cosine down to eta_min",
                          f"use T_max=None (the whole run) or at most {n}")

    def _make(self, optimizer, n):
        return CosineAnnealingLR(optimizer, T_max=n if self.T_max is None else self.T_max, eta_min=self.eta_min)


@dataclass(frozen=True, kw_only=True, repr=False)
class CosineWarmRestarts(ScheduleSpec):
    """Cosine annealing that restarts: the first cycle lasts ``T_0`` steps (or epochs), each
    next one ``T_mult`` times longer. torch's ``CosineAnnealingWarmRestarts`` (SGDR).
    """

    T_0: int = 100
    T_mult: int = 1
    eta_min: float = 0.0
    interval: str = "step"

    _controls = (
        Control("T_0", "int", "steps (or epochs) of the first cycle", min=1, max=5000),
        Control("T_mult", "int", "each cycle is this many times longer than the one before", min=1, max=4),
        _ETA_MIN,
        INTERVAL_CONTROL,
    )

    def _check(self) -> None:
        self._set("T_0", check_whole("CosineWarmRestarts", "T_0", self.T_0, 1, "e.g. 100"))
        self._set("T_mult", check_whole("CosineWarmRestarts", "T_mult", self.T_mult, 1,
                                        "a whole factor such as 1 (equal cycles) or 2 (each twice as long)"))
        self._set("eta_min", check_number("CosineWarmRestarts", "eta_min", self.eta_min, low=0,
                                          fix="an lr below the optimizer's, e.g. 0 or 1e-5"))
        self._check_interval()

    def _check_run(self, n: int) -> None:
        self._span_in_run("T_0", self.T_0, n, "the first cycle", f"lower T_0 to at most {n}, or train longer")

    def _make(self, optimizer, n):
        return CosineAnnealingWarmRestarts(optimizer, T_0=self.T_0, T_mult=self.T_mult, eta_min=self.eta_min)
