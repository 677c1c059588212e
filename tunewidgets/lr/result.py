"""``LRRangeTestResult``: the curves of an LR range test, its suggestions and why it stopped."""
from __future__ import annotations

import importlib
import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from tunewidgets.engine.logged import Logged
from tunewidgets.engine.status import RANGE_TEST_STATUSES

__all__ = ["LRRangeTestResult", "STOP_REASONS", "PLOT_HOOK"]

#: The one way from the core up to the plots layer: ``LRRangeTestResult.plot()`` imports this
#: ``"module:function"`` when it is called (tests/test_import_boundary.py allows no other).
PLOT_HOOK = "tunewidgets.plots.lr:lr_range_figure"

STOP_REASONS = RANGE_TEST_STATUSES


@dataclass
class LRRangeTestResult(Logged):
    """What :func:`tunewidgets.lr.lr_range_test` returns.

    Attributes:
        lrs, losses, smoothed: 1-D float arrays of the same length, one entry per optimizer
            step done (entry ``i`` is step ``i + 1``): the lr of the first param group, the raw
            loss (averaged over accumulated mini-batches) and its bias-corrected moving average.
        val_losses: validation loss per step (NaN where not evaluated), or None when off.
        suggestions: ``{"valley": lr, "steepest": lr, "minimum": lr}``; a value is None where
            its rule has no answer (see ``warning``).
        suggested: the lr of the ``method`` rule (default "valley"), or of the next rule that
            has one; None when no rule has one.
        band: ``(low, high)`` spanned by the rules' lrs; a narrow band means they agree.
        stopped_early: True unless all ``steps`` steps ran.
        stop_reason: "finished", "diverged" (the smoothed loss rose too far above its best, or
            a loss was NaN or infinite: then ``nonfinite`` is True) or "stopped" (the stop event
            was set).
        stopped_at: the step (counted from 1, so ``len(result)``) of the last recorded step when the
            test stopped early, else None.
        warning: why suggestions are missing or doubtful; None when all is well.
        cycled_data: True when the data ran out and was iterated again; ``data_passes`` counts
            the passes started over it (1 when it was not cycled).
        settings: the settings the test ran with (start_lr, end_lr, steps, mode, ...).
        duration_s: wall time of the steps, in seconds.
        run_id: the store's run id when a store recorded the test.
        nonfinite: True when the test stopped on a NaN or infinite loss.
        sink_errors: what sinks could not record (a store on a full disk); the curves here are complete.
        logged: where the test was logged, by destination (``"store"``, ``"tensorboard"``, ``"mlflow"``).
        tensorboard_dir, mlflow_uri: ``logged["tensorboard"]`` and ``logged["mlflow"]`` (else None).
        matches, mismatch: set by ``tw.rerun``: whether this repeat gave the recorded curve, and
            if not, why; else None.
    """

    lrs: np.ndarray
    losses: np.ndarray
    smoothed: np.ndarray
    val_losses: np.ndarray | None = None
    suggestions: dict[str, float | None] = field(default_factory=dict)
    suggested: float | None = None
    method: str = "valley"
    band: tuple[float, float] | None = None
    stopped_early: bool = False
    stop_reason: str = "finished"
    stopped_at: int | None = None
    warning: str | None = None
    cycled_data: bool = False
    data_passes: int = 1
    settings: dict[str, Any] = field(default_factory=dict)
    duration_s: float = math.nan
    run_id: int | None = None
    nonfinite: bool = False
    sink_errors: list[str] = field(default_factory=list)
    logged: dict[str, Any] = field(default_factory=dict)
    matches: bool | None = None
    mismatch: str | None = None

    def __len__(self) -> int:
        return len(self.lrs)

    def to_frame(self) -> pd.DataFrame:
        """One row per step, indexed by ``step`` (from 1, as in the store): ``lr``, ``loss``, ``smoothed``
        (and ``val_loss``)."""
        data = {"lr": self.lrs, "loss": self.losses, "smoothed": self.smoothed}
        if self.val_losses is not None:
            data["val_loss"] = self.val_losses
        frame = pd.DataFrame(data, index=pd.RangeIndex(1, len(self.lrs) + 1))
        frame.index.name = "step"
        return frame

    def plot(self, **kwargs: Any) -> Any:
        """A Bokeh figure of the curves and suggestions, drawn by the plots layer (Bokeh is imported only now).

        The core never imports the plots layer; this method resolves :data:`PLOT_HOOK` when called.
        """
        module, name = PLOT_HOOK.split(":")
        return getattr(importlib.import_module(module), name)(self, **kwargs)

    def __repr__(self) -> str:
        def fmt(v: float | None) -> str:
            return "None" if v is None else f"{v:.3g}"

        rules = ", ".join(f"{k}={fmt(v)}" for k, v in self.suggestions.items())
        text = (f"LRRangeTestResult({len(self)} steps, {self.stop_reason}, suggested={fmt(self.suggested)} "
                f"({self.method}); {rules}")
        if self.warning:
            text += f"; warning: {self.warning}"
        return text + ")"
