"""The steps of a range test: set the lr, train one (accumulated) step with the engine's
``TrainStep``, fetch the loss, smooth it, stop on divergence. The only host sync per step is
the loss fetch the divergence rule needs. Every ``log_every`` steps the new points go out as
one LOG record (host floats), the same event a training run fires.
"""
from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterator
from typing import Any

import torch
from torch import nn

from tunewidgets.engine.step import TrainStep, evaluate
from tunewidgets.engine.task import TensorBatches
from tunewidgets.lr._sources import Sources

__all__ = ["RangeTestLoop"]


class _Cycle:
    """Batches of ``data`` without end: ``next_batch()``, starting a new pass when it runs out.

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
        self._pending = [self.first]

    def next_batch(self) -> Any:
        if self._pending:
            return self._pending.pop()
        try:
            return next(self.it)
        except StopIteration:
            return self.restart()

    def restart(self) -> Any:
        """Start the next pass and return its first batch."""
        self.it = iter(self.data)
        self.passes += 1
        try:
            return next(self.it)
        except StopIteration:
            raise ValueError(f"data: yielded batches on its first pass but none on pass {self.passes} (an "
                             "iterator or generator runs out after one pass); give a DataLoader or a list of "
                             "batches, which start again, or fewer steps (num_iter)") from None


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
        group = groups[0]

        def set_one(lr: float) -> None:
            group["lr"] = lr
        return set_one

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

    ``log(rows)`` gets the new points every ``log_every`` steps and at the end.
    """

    def __init__(self, sources: Sources, lrs: list[float], *, smoothing: float, diverge: float,
                 grad_accum: int, eval_every: int, stop: Any = None,
                 on_step: Callable[[dict[str, Any]], Any] | None = None,
                 log: Callable[[list[dict[str, Any]]], Any] | None = None, log_every: int = 25) -> None:
        self.sources = sources
        self.lrs = lrs
        self.beta = smoothing
        self.diverge = diverge
        self.accum = grad_accum
        self.eval_every = eval_every
        self.stop = stop
        self.on_step = on_step
        self.log = log
        self.log_every = log_every
        self.losses: list[float] = []
        self.smoothed: list[float] = []
        self.val_losses: list[float] = []
        self.stop_reason = "finished"
        self.nonfinite = False
        self.cycle: _Cycle | None = None
        self.duration_s = math.nan
        self._logged = 0

    # -- one optimizer step -------------------------------------------------------------
    def _step_fn(self, model: nn.Module, optimizer: torch.optim.Optimizer, cycle: _Cycle,
                 move: bool) -> Callable[[float], float]:
        """``step(lr)``: one optimizer step at ``lr``, returning its loss as a host float."""
        src, accum = self.sources, self.accum
        scaler = torch.amp.GradScaler(src.device.type) if src.use_scaler else None
        step = TrainStep(model, optimizer, src.loss_fn, device=src.device, move=move, unpack=src.unpack,
                         amp_dtype=src.amp_dtype, scaler=scaler, grad_accum=accum, batch_loss=src.batch_loss)
        set_lr, next_batch = _lr_setter(optimizer), cycle.next_batch
        plain = step.plain
        groups = optimizer.param_groups
        if plain is not None and len(groups) == 1 and not isinstance(groups[0]["lr"], torch.Tensor):
            group, pending, restart, it = groups[0], cycle._pending, cycle.restart, [cycle.it]

            def plain_step(lr: float) -> float:  # one flat function: every call shows at 100 us a step
                if pending:
                    batch = pending.pop()
                else:
                    try:
                        batch = next(it[0])
                    except StopIteration:
                        batch = restart()
                        it[0] = cycle.it
                group["lr"] = lr
                return plain(batch).item()
            return plain_step
        if plain is not None:
            def plain_groups(lr: float) -> float:
                set_lr(lr)
                return plain(next_batch()).item()
            return plain_groups
        micro, update = step.micro, step.update

        def general(lr: float) -> float:
            set_lr(lr)
            total = micro(next_batch()).float()
            for _ in range(accum - 1):
                total = total + micro(next_batch()).float()
            update()
            return total.item()
        return general

    def _val_loss(self, model: nn.Module, val: Any) -> float:
        src = self.sources
        return evaluate(model, val, device=src.device, loss_fn=src.loss_fn, unpack=src.unpack,
                        amp_dtype=src.amp_dtype, batch_loss=src.batch_loss, field="val_data")["val_loss"]

    def _after_step(self, i: int, lr: float, value: float, smooth: float, model: nn.Module, val: Any) -> None:
        """The validation loss (every ``eval_every`` steps and at the last), LOG and ``on_step``."""
        record = {"step": i, "lr": lr, "loss": value, "smoothed": smooth}
        if val is not None:
            v = (self._val_loss(model, val) if i % self.eval_every == 0 or i == len(self.lrs) - 1
                 else math.nan)
            self.val_losses.append(v)
            if v == v:
                record["val_loss"] = v
        if self.on_step is not None:
            self.on_step(record)
        if self.log is not None and i + 1 - self._logged >= self.log_every:
            self.flush()

    def flush(self) -> None:
        """Send the points not yet logged to ``log`` as host-side rows."""
        n = len(self.losses)
        if self.log is None or n <= self._logged:
            return
        lrs, losses, smoothed, vals = self.lrs, self.losses, self.smoothed, self.val_losses
        rows = []
        for i in range(self._logged, n):
            row = {"step": i, "lr": lrs[i], "loss": losses[i], "smoothed": smoothed[i]}
            if i < len(vals) and vals[i] == vals[i]:
                row["val_loss"] = vals[i]
            rows.append(row)
        self._logged = n
        self.log(rows)

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
        step = self._step_fn(model, optimizer, cycle, move)
        beta, one_minus_beta, beta_power, avg = self.beta, 1.0 - self.beta, 1.0, 0.0
        margin = self.diverge - 1.0
        best, scale = math.inf, 0.0
        losses, smoothed = self.losses, self.smoothed
        stop = self.stop
        hooks = self.on_step is not None or val is not None or self.log is not None
        model.train()
        model.zero_grad(set_to_none=True)
        t0 = time.perf_counter()
        try:
            for i, lr in enumerate(self.lrs):
                if stop is not None and stop.is_set():
                    self.stop_reason = "stopped"
                    break
                value = step(lr)
                avg = beta * avg + one_minus_beta * value
                beta_power *= beta
                smooth = avg / (1.0 - beta_power)
                losses.append(value)
                smoothed.append(smooth)
                if hooks:
                    self._after_step(i, lr, value, smooth, model, val)
                if not math.isfinite(smooth):
                    self.stop_reason, self.nonfinite = "diverged", True
                    break
                if i == 0:
                    scale = abs(smooth)
                if smooth < best:
                    best = smooth
                elif smooth - best > margin * (abs(best) or scale):
                    self.stop_reason = "diverged"
                    break
        finally:
            self.duration_s = time.perf_counter() - t0
