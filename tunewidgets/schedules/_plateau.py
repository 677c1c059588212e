"""``ReduceOnPlateau``: cut the lr when a validation metric stops improving.

Training calls ``scheduler.step(val_loss)`` after each evaluation (``metric_driven = True``),
so its preview needs the metric values:

    >>> from tunewidgets.schedules import ReduceOnPlateau
    >>> spec = ReduceOnPlateau(patience=1, factor=0.5)
    >>> spec.preview(total_steps=5, base_lr=1.0, steps_per_epoch=1,
    ...              metrics=[1.0, 0.9, 0.9, 0.9, 0.9])["lr"].tolist()
    [1.0, 1.0, 1.0, 1.0, 0.5]
"""
from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import pandas as pd
from torch.optim.lr_scheduler import ReduceLROnPlateau

from tunewidgets.schedules._base import ScheduleSpec
from tunewidgets.schedules._fields import Control, check_choice, check_number, check_whole
from tunewidgets.schedules._preview import simulate, throwaway_optimizer

__all__ = ["ReduceOnPlateau"]


@dataclass(frozen=True, kw_only=True, repr=False)
class ReduceOnPlateau(ScheduleSpec):
    """Multiply the lr by ``factor`` when the metric has not improved for ``patience``
    evaluations: torch's ``ReduceLROnPlateau``. ``mode="min"`` for a loss, "max" for accuracy.
    """

    mode: str = "min"
    factor: float = 0.1
    patience: int = 10
    threshold: float = 1e-4
    threshold_mode: str = "rel"
    cooldown: int = 0
    min_lr: float = 0.0
    eps: float = 1e-8

    metric_driven = True

    _controls = (
        Control("mode", "choice", "min: lower is better (a loss); max: higher is better", choices=("min", "max")),
        Control("factor", "float", "multiply the lr by this on a plateau", min=0.01, max=0.99),
        Control("patience", "int", "evaluations without improvement before cutting the lr", min=0, max=50),
        Control("threshold", "float", "smallest change that counts as an improvement", min=0.0, max=0.1),
        Control("threshold_mode", "choice", "rel: threshold is relative; abs: absolute", choices=("rel", "abs")),
        Control("cooldown", "int", "evaluations to wait after a cut before counting again", min=0, max=50),
        Control("min_lr", "float", "never cut the lr below this", min=0.0, max=0.01),
        Control("eps", "float", "skip a cut smaller than this", min=0.0, max=1e-4),
    )

    @property
    def interval(self) -> str:
        """Stepped after each evaluation (once per epoch by default)."""
        return "epoch"

    def _check(self) -> None:
        self._set("mode", check_choice("ReduceOnPlateau", "mode", self.mode, ("min", "max")))
        self._set("factor", check_number("ReduceOnPlateau", "factor", self.factor, low=0, high=1,
                                         low_open=True, high_open=True, fix="e.g. 0.1 or 0.5"))
        self._set("patience", check_whole("ReduceOnPlateau", "patience", self.patience, 0, "e.g. 10"))
        self._set("threshold", check_number("ReduceOnPlateau", "threshold", self.threshold, low=0, fix="e.g. 1e-4"))
        self._set("threshold_mode", check_choice("ReduceOnPlateau", "threshold_mode", self.threshold_mode,
                                                 ("rel", "abs")))
        self._set("cooldown", check_whole("ReduceOnPlateau", "cooldown", self.cooldown, 0, "e.g. 0"))
        self._set("min_lr", check_number("ReduceOnPlateau", "min_lr", self.min_lr, low=0, fix="e.g. 0 or 1e-6"))
        self._set("eps", check_number("ReduceOnPlateau", "eps", self.eps, low=0, fix="e.g. 1e-8"))

    def _positions(self, total_steps: Any, steps_per_epoch: Any) -> int:
        check_whole("ReduceOnPlateau", "total_steps", total_steps, 1, "the number of optimizer steps in the run")
        if steps_per_epoch is not None:
            check_whole("ReduceOnPlateau", "steps_per_epoch", steps_per_epoch, 1, "e.g. len(train_loader)")
        return total_steps

    def _make(self, optimizer, n):
        return ReduceLROnPlateau(optimizer, mode=self.mode, factor=self.factor, patience=self.patience,
                                 threshold=self.threshold, threshold_mode=self.threshold_mode,
                                 cooldown=self.cooldown, min_lr=self.min_lr, eps=self.eps)

    def preview(self, total_steps: int, base_lr: float | None = None, steps_per_epoch: int | None = None,
                *, metrics: Sequence[float] | None = None, optimizer: str = "sgd",
                momentum: float = 0.9) -> pd.DataFrame:
        """The lr of every optimizer step when evaluations report ``metrics``.

        Args:
            total_steps, base_lr, optimizer, momentum: as for the other specs.
            metrics: the metric after each evaluation, one per epoch, in order; the lr
                stops changing when they run out. ``[1.0] * 20`` (never improving) shows
                the fastest possible decay.
            steps_per_epoch: optimizer steps between evaluations; default: the run split
                evenly into ``len(metrics)`` epochs.
        """
        base = self._default_base(base_lr)
        self._positions(total_steps, steps_per_epoch)
        if (metrics is None or isinstance(metrics, (str, bytes)) or not isinstance(metrics, Sequence)
                or len(metrics) == 0):
            raise ValueError("ReduceOnPlateau.preview: metrics: the lr follows the validation metric, so pass "
                             f"its values after each evaluation, e.g. metrics=[1.0] * 20; got {metrics!r}")
        values = [check_number("ReduceOnPlateau.preview", f"metrics[{i}]", m) for i, m in enumerate(metrics)]
        every = steps_per_epoch if steps_per_epoch is not None else math.ceil(total_steps / len(values))
        opt = throwaway_optimizer(optimizer, base, momentum)
        sched = self.build(opt, total_steps, steps_per_epoch)
        return simulate(opt, sched, total_steps, every, every, None, metrics=values)
