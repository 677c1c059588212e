"""``Run``: what one training run produced: status, history, final metrics, model, performance.

A training run (a ``Trainer``, or one trial of a fused run) builds its ``Run`` from its rows with
``history_frame(step_rows, eval_rows)``, ``final_metrics(...)`` and ``perf_summary(...)``, so
every kind of training run gives the same tables and fields.

Example:
    >>> rows = [{"step": 1, "epoch": 0, "lr": 0.1, "loss": 2.0}, {"step": 2, "epoch": 0, "lr": 0.1, "loss": 1.5}]
    >>> evals = [{"epoch": 0, "step": 2, "train_loss": 1.75, "val_loss": 1.6}]
    >>> history_frame(rows, evals)[["kind", "step", "loss"]].values.tolist()
    [['step', 1, 2.0], ['eval', 2, nan], ['step', 2, 1.5]]
    >>> final_metrics(evals[-1], rows, status="finished", epoch=0, steps=2)
    {'train_loss': 1.75, 'val_loss': 1.6, 'epochs': 1, 'steps': 2}
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import pandas as pd
import torch
from torch import nn

from tunewidgets.engine.devices import peak_memory
from tunewidgets.engine.logged import Logged
from tunewidgets.engine.status import STATUSES

__all__ = ["Run", "STATUSES", "history_frame", "final_metrics", "perf_summary", "HISTORY_COLUMNS"]

#: the columns of an empty ``Run.history``
HISTORY_COLUMNS = ["kind", "step", "epoch", "lr", "loss"]



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


def history_frame(step_rows: list[dict[str, Any]], eval_rows: list[dict[str, Any]]) -> pd.DataFrame:
    """``Run.history`` from a run's host-side step rows and evaluation records, in step order."""
    steps = pd.DataFrame(step_rows, columns=["step", "epoch", "lr", "loss"]).assign(kind="step")
    evals = pd.DataFrame(eval_rows).assign(kind="eval") if eval_rows else None
    frames = [f for f in (steps, evals) if f is not None and len(f)]
    if not frames:
        return pd.DataFrame(columns=HISTORY_COLUMNS)
    hist = pd.concat(frames, ignore_index=True) if len(frames) > 1 else frames[0]
    cols = ["kind", "step", "epoch"] + [c for c in hist.columns if c not in ("kind", "step", "epoch")]
    return hist[cols].sort_values(["step", "kind"], kind="stable").reset_index(drop=True)


def final_metrics(last_eval: dict[str, Any], step_rows: list[dict[str, Any]], *, status: str, epoch: int,
                  steps: int) -> dict[str, Any]:
    """``Run.final``: the last evaluation's metrics (else the last step's loss as ``train_loss``),
    ``epochs`` done (the one under way counts when the run finished) and ``steps``."""
    final = {k: v for k, v in last_eval.items() if k not in ("epoch", "step")}
    if "train_loss" not in final and step_rows:
        final["train_loss"] = step_rows[-1]["loss"]
    final.update(epochs=epoch + 1 if status == "finished" else epoch, steps=steps)
    return final


def perf_summary(*, samples: int, train_time: float, steps: int, n_params: int, device: torch.device | None,
                 started: bool) -> dict[str, Any]:
    """``Run.perf``: samples_per_sec (NaN for a run that never started), step_time, n_params,
    peak_memory (CUDA), device and train_time."""
    return {
        "samples_per_sec": samples / train_time if started and train_time > 0 else math.nan,
        "step_time": train_time / max(steps, 1),
        "n_params": n_params,
        "peak_memory": peak_memory(device) if device is not None else None,
        "device": str(device) if device is not None else None,
        "train_time": train_time,
    }
