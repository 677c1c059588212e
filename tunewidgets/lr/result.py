"""``LRRangeTestResult``: the curves of an LR range test, its suggestions and why it stopped."""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

__all__ = ["LRRangeTestResult", "STOP_REASONS"]

STOP_REASONS = ("finished", "diverged", "nonfinite", "stopped")


@dataclass
class LRRangeTestResult:
    """What :func:`tunewidgets.lr.lr_range_test` returns.

    Attributes:
        lrs, losses, smoothed: 1-D float arrays of the same length, one entry per optimizer
            step done: the lr of the first param group, the raw loss (averaged over
            accumulated mini-batches) and its bias-corrected moving average.
        val_losses: validation loss per step (NaN where not evaluated), or None when off.
        suggestions: ``{"valley": lr, "steepest": lr, "minimum": lr}``; a value is None where
            its rule has no answer (see ``warning``).
        suggested: the lr of the ``method`` rule (default "valley"), or of the next rule that
            has one; None when no rule has one.
        band: ``(low, high)`` spanned by the rules' lrs; a narrow band means they agree.
        stopped_early: True unless all ``num_iter`` steps ran.
        stop_reason: "finished", "diverged" (the smoothed loss rose too far above its best),
            "nonfinite" (a NaN or infinite loss) or "stopped" (the stop event was set).
        stopped_at: index of the last recorded step when the test stopped early, else None.
        warning: why suggestions are missing or doubtful; None when all is well.
        cycled_data: True when the data ran out and was iterated again; ``data_passes`` counts
            the passes started over it (1 when it was not cycled).
        settings: the settings the test ran with (start_lr, end_lr, num_iter, mode, ...).
        duration_s: wall time of the steps, in seconds.
        run_id: the store's run id when a store recorded the test.
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

    def __len__(self) -> int:
        return len(self.lrs)

    def to_frame(self) -> pd.DataFrame:
        """One row per step, indexed by ``iteration``: ``lr``, ``loss``, ``smoothed`` (and ``val_loss``)."""
        data = {"lr": self.lrs, "loss": self.losses, "smoothed": self.smoothed}
        if self.val_losses is not None:
            data["val_loss"] = self.val_losses
        frame = pd.DataFrame(data)
        frame.index.name = "iteration"
        return frame

    def plot(self, **kwargs: Any) -> Any:
        """A Bokeh figure of the curves and suggestions (imports Bokeh only now)."""
        from tunewidgets.plots.lr import lr_range_figure

        return lr_range_figure(self, **kwargs)

    def __repr__(self) -> str:
        def fmt(v: float | None) -> str:
            return "None" if v is None else f"{v:.3g}"

        rules = ", ".join(f"{k}={fmt(v)}" for k, v in self.suggestions.items())
        text = (f"LRRangeTestResult({len(self)} steps, {self.stop_reason}, suggested={fmt(self.suggested)} "
                f"({self.method}); {rules}")
        if self.warning:
            text += f"; warning: {self.warning}"
        return text + ")"
