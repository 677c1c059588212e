"""The steps of a range test: the lr follows the ramp, the engine's ``TrainStep.steps`` trains
(accumulation included), the loss is fetched, smoothed, and the test stops on divergence. The
only host sync per step is the loss fetch the divergence rule needs. Every ``log_every`` steps
the new points go out as one LOG record (host floats) through the run's buffer, the same
event a training run fires. Steps count from 1, as in every run.
"""
from __future__ import annotations

import functools
import math
import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import torch
from torch import nn

from tunewidgets.engine.step import TrainStep, evaluate
from tunewidgets.engine.task import TensorBatches
from tunewidgets.lr._sources import Sources

__all__ = ["RangeTestLoop"]


class _Cycle:
    """Batches of ``data`` without end: iterating it starts a new pass whenever one runs out.

    ``first`` is the first batch, drawn up front (to see where the data lives); ``passes``
    counts the passes started over the data.
    """

    def __init__(self, data: Any) -> None:
        self.data = data
        self.it: Iterator[Any] = iter(data)
        self.passes = 1
        try:
            self.first: Any = next(self.it)
        except StopIteration:
            raise ValueError("data: yields no batches; give it at least one batch") from None

    def __iter__(self) -> Iterator[Any]:
        yield self.first
        while True:
            yield from self.it
            self.it = iter(self.data)
            self.passes += 1
            try:
                batch = next(self.it)
            except StopIteration:
                raise ValueError(f"data: yielded batches on its first pass but none on pass {self.passes} (an "
                                 "iterator or generator runs out after one pass); give a DataLoader or a list "
                                 "of batches, which start again, or fewer steps (steps=)") from None
            yield batch


def _on_device(batch: Any, device: torch.device, unpack: Callable[[Any], Any]) -> bool:
    """True when the batch's inputs and targets are tensors already on ``device`` (no move needed)."""
    try:
        x, y = unpack(batch)
    except Exception:  # noqa: BLE001 - the step reports a batch it cannot split, with its own message
        return False
    return all(isinstance(t, torch.Tensor) and t.device == device for t in (x, y))


def _lr_setter(optimizer: torch.optim.Optimizer) -> Callable[[float], None]:
    """``set_lr(lr)`` for every param group, keeping each group's ratio to the first."""
    groups = optimizer.param_groups
    first = float(groups[0]["lr"])
    ratios = [float(g["lr"]) / first for g in groups]
    if len(groups) == 1 and not isinstance(groups[0]["lr"], torch.Tensor):
        return functools.partial(groups[0].__setitem__, "lr")  # one C call a step

    def set_all(lr: float) -> None:
        for g, r in zip(groups, ratios):
            if isinstance(g["lr"], torch.Tensor):
                g["lr"].fill_(lr * r)
            else:
                g["lr"] = lr * r
    return set_all


class RangeTestLoop:
    """Runs the ramp ``lrs`` on a model; fills ``losses``, ``smoothed``, ``val_losses`` and ``stop_reason``.

    Divergence: with ``best`` the lowest smoothed loss so far, the test stops when
    ``smoothed - best > (diverge - 1) * |best|``, which for a positive ``best`` is the usual
    ``smoothed > diverge * best`` and stays meaningful for negative losses. When ``best`` is
    exactly 0, ``|first smoothed loss|`` takes the place of ``|best|``. A loss that is not
    finite stops it too (``stop_reason="diverged"``, ``nonfinite=True``).

    ``pending`` (a run's buffer) gets one row a step, and ``flush()`` is called when it holds
    ``log_every`` rows; ``on_step(record)`` sees each step's record. Steps count from 1.
    """

    def __init__(self, sources: Sources, lrs: Iterable[float], *, smoothing: float, diverge: float,
                 grad_accum: int, eval_every_steps: int, stop: Any = None,
                 on_step: Callable[[dict[str, Any]], Any] | None = None,
                 pending: list[dict[str, Any]] | None = None, flush: Callable[[], Any] | None = None,
                 log_every: int = 25) -> None:
        self.sources = sources
        self.lrs = lrs
        self.n = len(lrs)  # type: ignore[arg-type]
        self.beta = smoothing
        self.diverge = diverge
        self.accum = grad_accum
        self.eval_every_steps = eval_every_steps
        self.stop = stop
        self.on_step = on_step
        self.pending = pending
        self.flush = flush
        self.log_every = log_every
        self.losses: list[float] = []
        self.smoothed: list[float] = []
        self.val_losses: list[float] = []
        self.stop_reason = "finished"
        self.nonfinite = False
        self.cycle: _Cycle | None = None
        self.duration_s = math.nan

    def _val_loss(self, model: nn.Module, val: Any) -> float:
        src = self.sources
        return evaluate(model, val, device=src.device, loss_fn=src.loss_fn, unpack=src.unpack,
                        amp_dtype=src.amp_dtype, batch_loss=src.batch_loss, field="val")["val_loss"]

    def _after_step(self, k: int, lr: float, value: float, smooth: float, model: nn.Module, val: Any) -> None:
        """Step ``k``'s validation loss (every ``eval_every_steps`` steps and at the last), row and ``on_step``."""
        record = {"step": k, "lr": lr, "loss": value, "smoothed": smooth}
        if val is not None:
            v = self._val_loss(model, val) if k % self.eval_every_steps == 0 or k == self.n else math.nan
            self.val_losses.append(v)
            if v == v:
                record["val_loss"] = v
        if self.on_step is not None:
            self.on_step(record)
        pending = self.pending
        if pending is not None:
            pending.append(dict(record))
            if len(pending) >= self.log_every and self.flush is not None:
                self.flush()

    @property
    def passes(self) -> int:
        """Passes started over the training data (0 before the test starts)."""
        return self.cycle.passes if self.cycle is not None else 0

    # -- the test -----------------------------------------------------------------------
    def run(self, model: nn.Module, optimizer: torch.optim.Optimizer, data: Any, val: Any) -> None:
        src = self.sources
        cycle = self.cycle = _Cycle(data)
        move = not (isinstance(data, TensorBatches) and data.tensors[0].device == src.device)
        if move and src.batch_loss is None and _on_device(cycle.first, src.device, src.unpack):
            move = False  # a loader already on the model's device: no per-step move
        scaler = torch.amp.GradScaler(src.device.type) if src.use_scaler else None
        train_step = TrainStep(model, optimizer, src.loss_fn, device=src.device, move=move, unpack=src.unpack,
                               amp_dtype=src.amp_dtype, scaler=scaler, grad_accum=self.accum,
                               batch_loss=src.batch_loss)
        next_loss = train_step.steps(cycle).__next__  # runs one optimizer step when called
        set_lr = _lr_setter(optimizer)
        beta, one_minus_beta, beta_power, avg = self.beta, 1.0 - self.beta, 1.0, 0.0
        margin = self.diverge - 1.0
        best, scale = math.inf, 0.0
        losses, smoothed = self.losses, self.smoothed
        stop = self.stop
        hooks = self.on_step is not None or val is not None or self.pending is not None
        model.train()
        model.zero_grad(set_to_none=True)
        t0 = time.perf_counter()
        try:
            for k, lr in enumerate(self.lrs, 1):
                if stop is not None and stop.is_set():
                    self.stop_reason = "stopped"
                    break
                set_lr(lr)
                value = next_loss().item()
                avg = beta * avg + one_minus_beta * value
                beta_power *= beta
                smooth = avg / (1.0 - beta_power)
                losses.append(value)
                smoothed.append(smooth)
                if hooks:
                    self._after_step(k, lr, value, smooth, model, val)
                if not math.isfinite(smooth):
                    self.stop_reason, self.nonfinite = "diverged", True
                    break
                if k == 1:
                    scale = abs(smooth)
                if smooth < best:
                    best = smooth
                elif smooth - best > margin * (abs(best) or scale):
                    self.stop_reason = "diverged"
                    break
        finally:
            self.duration_s = time.perf_counter() - t0
