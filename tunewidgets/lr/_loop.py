"""The steps of a range test: set the lr, train one (accumulated) step, fetch the loss, smooth it,
stop on divergence. The only host sync per step is the loss fetch the divergence rule needs.
"""
from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Callable, Iterator
from typing import Any

import torch
from torch import nn

from tunewidgets.engine.task import TensorBatches, to_device, unpack_default
from tunewidgets.lr._sources import Sources

__all__ = ["RangeTestLoop"]


class _Cycle:
    """Batches of ``data`` without end: ``next(cycle.it)``, and ``cycle.restart()`` when it runs out.

    ``passes`` counts the passes started over the data.
    """

    def __init__(self, data: Any) -> None:
        self.data = data
        self.it: Iterator[Any] = iter(data)
        self.passes = 1

    def restart(self) -> Any:
        """Start the next pass and return its first batch."""
        self.it = iter(self.data)
        self.passes += 1
        try:
            return next(self.it)
        except StopIteration:
            raise ValueError("data: yields no batches; give it at least one batch") from None

    def next_batch(self) -> Any:
        """The next batch, starting a new pass when the data runs out."""
        try:
            return next(self.it)
        except StopIteration:
            return self.restart()


def _batch_len(x: Any) -> int:
    if isinstance(x, torch.Tensor):
        return int(x.shape[0]) if x.dim() else 1
    if isinstance(x, (tuple, list)) and x:
        return _batch_len(x[0])
    if isinstance(x, dict) and x:
        return _batch_len(next(iter(x.values())))
    return 1


class RangeTestLoop:
    """Runs the ramp ``lrs`` on a model; fills ``losses``, ``smoothed``, ``val_losses`` and ``stop_reason``.

    Divergence: with ``best`` the lowest smoothed loss so far, the test stops when
    ``smoothed - best > (diverge - 1) * |best|``, which for a positive ``best`` is the usual
    ``smoothed > diverge * best`` and stays meaningful for negative losses. When ``best`` is
    exactly 0, ``|first smoothed loss|`` takes the place of ``|best|``.
    """

    def __init__(self, sources: Sources, lrs: list[float], *, smoothing: float, diverge: float,
                 accum_steps: int, val_every: int, stop: Any = None,
                 on_step: Callable[[dict[str, Any]], Any] | None = None) -> None:
        self.sources = sources
        self.lrs = lrs
        self.beta = smoothing
        self.diverge = diverge
        self.accum = accum_steps
        self.val_every = val_every
        self.stop = stop
        self.on_step = on_step
        self.losses: list[float] = []
        self.smoothed: list[float] = []
        self.val_losses: list[float] = []
        self.stop_reason = "finished"
        self.cycle: _Cycle | None = None
        self.duration_s = math.nan

    # -- one optimizer step -------------------------------------------------------------
    def _lr_setter(self, optimizer: torch.optim.Optimizer) -> Callable[[float], None]:
        groups = optimizer.param_groups
        first = float(groups[0]["lr"])
        ratios = [float(g["lr"]) / first for g in groups]

        def set_all(lr: float) -> None:
            for g, r in zip(groups, ratios):
                if isinstance(g["lr"], torch.Tensor):
                    g["lr"].fill_(lr * r)
                else:
                    g["lr"] = lr * r
        return set_all

    def _loss_slot(self) -> list[Callable[..., torch.Tensor]]:
        """``[loss_fn]``: the loss to call. Its first call runs the loss's own shape checks on the first
        batch (before any update), so that a mismatch names the shapes and the fix; it then puts the
        plain loss in the slot."""
        loss_fn = self.sources.loss_fn
        check = getattr(loss_fn, "check", None)
        slot = [loss_fn]
        if check is not None:
            def first_call(output: Any, target: Any) -> torch.Tensor:
                check(output.detach().float() if isinstance(output, torch.Tensor) else output, target)
                slot[0] = loss_fn
                return loss_fn(output, target)
            slot[0] = first_call
        return slot

    def _loss_fn(self, model: nn.Module, move: bool) -> Callable[[Any], torch.Tensor]:
        """``batch -> loss``: through ``batch_loss``, or unpack, move to the device, model, loss."""
        src = self.sources
        device, unpack, batch_loss = src.device, src.unpack, src.batch_loss
        if batch_loss is not None:
            if not move:
                return batch_loss
            return lambda batch: batch_loss(to_device(batch, device, True))
        slot = self._loss_slot()
        if not move:
            def loss_of(batch: Any) -> torch.Tensor:
                x, y = unpack(batch)
                return slot[0](model(x), y)
            return loss_of

        def moved_loss_of(batch: Any) -> torch.Tensor:
            x, y = unpack(batch)
            return slot[0](model(to_device(x, device, True)), to_device(y, device, True))
        return moved_loss_of

    def _step_fn(self, model: nn.Module, optimizer: torch.optim.Optimizer, cycle: _Cycle,
                 move: bool) -> Callable[[float], float]:
        """``step(lr)``: one optimizer step at ``lr``, returning its loss as a host float."""
        src, accum = self.sources, self.accum
        groups = optimizer.param_groups
        if (accum == 1 and not src.use_scaler and src.amp_dtype is None and src.batch_loss is None
                and len(groups) == 1 and not isinstance(groups[0]["lr"], torch.Tensor)):
            return self._plain_step_fn(model, optimizer, cycle, move)
        next_batch = cycle.next_batch
        loss_of = self._loss_fn(model, move)
        set_lr = self._lr_setter(optimizer)
        scaler = torch.amp.GradScaler(src.device.type) if src.use_scaler else None

        autocast = (torch.autocast(src.device.type, dtype=src.amp_dtype) if src.amp_dtype is not None
                    else contextlib.nullcontext())

        def general(lr: float) -> float:
            set_lr(lr)
            optimizer.zero_grad(set_to_none=True)
            total = None
            for _ in range(accum):
                with autocast:
                    loss = loss_of(next_batch())
                if accum > 1:
                    loss = loss / accum
                (scaler.scale(loss) if scaler is not None else loss).backward()
                total = loss.detach().float() if total is None else total + loss.detach().float()
            if scaler is not None:
                scaler.step(optimizer)
                scaler.update()
            else:
                optimizer.step()
            return total.item()
        return general

    def _plain_step_fn(self, model: nn.Module, optimizer: torch.optim.Optimizer, cycle: _Cycle,
                       move: bool) -> Callable[[float], float]:
        """The common case in one flat function (one param group, no accumulation, no amp):
        every layer of calls shows in the time of a small model's step."""
        src = self.sources
        group, unpack, device = optimizer.param_groups[0], src.unpack, src.device
        slot = self._loss_slot()
        fast_pairs = unpack is unpack_default  # (x, y) tuples need no call

        zero_grad, opt_step, it = optimizer.zero_grad, optimizer.step, [cycle.it]

        def plain(lr: float) -> float:
            try:
                batch = next(it[0])
            except StopIteration:
                batch = cycle.restart()
                it[0] = cycle.it
            group["lr"] = lr
            zero_grad(set_to_none=True)
            x, y = batch if fast_pairs and batch.__class__ is tuple and len(batch) == 2 else unpack(batch)
            if move:
                x, y = to_device(x, device, True), to_device(y, device, True)
            loss = slot[0](model(x), y)
            loss.backward()
            opt_step()
            return loss.item()
        return plain

    @torch.no_grad()
    def _val_loss(self, model: nn.Module, val: Any) -> float:
        src = self.sources
        autocast = (torch.autocast(src.device.type, dtype=src.amp_dtype) if src.amp_dtype is not None
                    else contextlib.nullcontext())
        model.eval()
        try:
            total = torch.zeros((), dtype=torch.float64, device=src.device)
            count = 0
            for batch in val:
                if src.batch_loss is not None:
                    batch = to_device(batch, src.device, True)
                    n = _batch_len(batch)
                    with autocast:
                        loss = src.batch_loss(batch)
                else:
                    x, y = src.unpack(batch)
                    x, y = to_device(x, src.device, True), to_device(y, src.device, True)
                    n = _batch_len(x)
                    with autocast:
                        loss = src.loss_fn(model(x), y)
                total += loss.detach().double() * n
                count += n
        finally:
            model.train()
        if count == 0:
            raise ValueError("val_data: yields no batches; give it at least one batch or leave it None")
        return float(total) / count

    def _after_step(self, i: int, lr: float, value: float, smooth: float, model: nn.Module, val: Any) -> None:
        """The validation loss (every ``val_every`` steps and at the last) and the ``on_step`` call."""
        record = {"iteration": i, "lr": lr, "loss": value, "smoothed": smooth}
        if val is not None:
            v = (self._val_loss(model, val) if i % self.val_every == 0 or i == len(self.lrs) - 1
                 else math.nan)
            self.val_losses.append(v)
            if v == v:
                record["val_loss"] = v
        if self.on_step is not None:
            self.on_step(record)

    @property
    def passes(self) -> int:
        """Passes started over the training data (0 before the test starts)."""
        return self.cycle.passes if self.cycle is not None else 0

    # -- the test -----------------------------------------------------------------------
    def run(self, model: nn.Module, optimizer: torch.optim.Optimizer, data: Any, val: Any) -> None:
        src = self.sources
        move = not (isinstance(data, TensorBatches) and data.tensors[0].device == src.device)
        cycle = self.cycle = _Cycle(data)
        step = self._step_fn(model, optimizer, cycle, move)
        beta, one_minus_beta, beta_power, avg = self.beta, 1.0 - self.beta, 1.0, 0.0
        margin = self.diverge - 1.0
        best, scale = math.inf, 0.0
        losses, smoothed = self.losses, self.smoothed
        stop, on_step = self.stop, self.on_step
        hooks = on_step is not None or val is not None
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
                    self.stop_reason = "nonfinite"
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
