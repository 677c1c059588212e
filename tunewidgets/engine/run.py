"""``Run``: what one training run produced: status, history, final metrics, model, performance."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pandas as pd
from torch import nn

from tunewidgets.engine.logged import Logged
from tunewidgets.engine.status import STATUSES

__all__ = ["Run", "STATUSES"]



@dataclass
class Run(Logged):
    """The result of :func:`tunewidgets.train`.

    Attributes:
        status: "finished", "stopped" (stop flag set), "pruned" (a pruner or ``stop("pruned")``),
            "diverged" (non-finite loss) or "failed".
        history: one row per logged step (``kind="step"``: step, epoch, lr, loss) and per
            evaluation (``kind="eval"``: step, epoch, train_loss, val_loss, val_<metric>...).
        final: the last evaluation's metrics plus ``train_loss``, ``epochs`` and ``steps`` done.
        model: the trained model (on the device it was trained on).
        perf: samples_per_sec, step_time (s), n_params, peak_memory (bytes, CUDA only), device.
        run_id: the store's run id when a store was given.
        trial: the trial number when the run is a search's trial.
        reason: why a run ended early (a pruner's or a stop's reason), else None.
        sink_errors: what sinks could not record without stopping training (a store on a full
            disk): the model and the curves here are complete, the record may not be.
        logged: where the run was logged, by destination: ``{"store": <file>, "tensorboard":
            <the run's folder>, "mlflow": <tracking URI>}`` (only those given; see ``tw.train``).
        tensorboard_dir, mlflow_uri: ``logged["tensorboard"]`` and ``logged["mlflow"]`` (None when
            not logged there), their former names.
        matches, mismatch: set by ``tw.rerun``: whether this repeat gave the recorded curve, and
            if not, why (a changed dataset, model factory, config or version); else None.
    """

    config: Any
    status: str
    history: pd.DataFrame
    final: dict[str, Any]
    model: nn.Module | None
    perf: dict[str, Any] = field(default_factory=dict)
    run_id: int | None = None
    error: str | None = None
    params: dict[str, Any] = field(default_factory=dict)
    trial: int | None = None
    reason: str | None = None
    sink_errors: list[str] = field(default_factory=list)
    logged: dict[str, Any] = field(default_factory=dict)
    matches: bool | None = None
    mismatch: str | None = None

    def steps(self) -> pd.DataFrame:
        """The per-step rows of the history (step, epoch, lr, loss)."""
        h = self.history
        return h[h["kind"] == "step"][["step", "epoch", "lr", "loss"]].reset_index(drop=True)

    def evals(self) -> pd.DataFrame:
        """The per-evaluation rows of the history, without all-empty columns."""
        h = self.history
        return h[h["kind"] == "eval"].dropna(axis=1, how="all").reset_index(drop=True)

    def __repr__(self) -> str:
        shown = ", ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in self.final.items())
        return f"Run(status={self.status!r}, {shown})"
