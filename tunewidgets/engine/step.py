"""The one training step and the one evaluation pass, shared by the train loop and the LR range test.

``TrainStep`` is about a model, an optimizer and a batch, not about the loop around it: the
loop decides which batches make a step and what happens between steps (an lr ramp, a
scheduler, events). A fused (vmap) executor plugs in here later with the same interface.

- ``step.micro(batch)``: forward and backward of one mini-batch (device move, autocast, grad
  scaler, the loss divided by ``grad_accum``); returns the loss, detached, still on the device.
- ``step.update()``: the optimizer step (unscale and clip when asked, scaler step and update),
  then ``zero_grad(set_to_none=True)``.
- ``step.steps(batches)``: the accumulation, for every loop: one optimizer step per
  ``grad_accum`` mini-batches of ``batches`` (and one for a shorter last group), yielding each
  step's loss (the mean over its mini-batches, on the device). A generator: the next step runs
  only when its loss is asked for, so a loop may change the lr (a ramp) or stop between two.
- ``step.plain``: for the common case (no accumulation, no amp, no clipping, one call per
  step) one flat function ``batch -> loss`` doing both, since every layer of calls shows in
  the time of a small model's step; None otherwise. Its loss is not detached (``.item()`` it,
  or ``.detach()`` it to keep it).

The first mini-batch runs the loss's own shape checks (``loss_fn.check``) before any update,
so a mismatch names the shapes and the fix instead of raising deep inside torch.

Example:
    >>> import torch
    >>> from tunewidgets.engine.step import TrainStep
    >>> model = torch.nn.Linear(3, 2)
    >>> opt = torch.optim.SGD(model.parameters(), lr=0.1)
    >>> step = TrainStep(model, opt, torch.nn.functional.cross_entropy, device=torch.device("cpu"))
    >>> batch = (torch.randn(4, 3), torch.tensor([0, 1, 0, 1]))
    >>> loss = step.plain(batch)
    >>> loss.shape, step.samples
    (torch.Size([]), 4)
"""
from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any

import torch
from torch import nn

from tunewidgets.engine.task import to_device, unpack_default

__all__ = ["TrainStep", "evaluate", "batch_len", "autocast_for"]


def batch_len(x: Any) -> int:
    """Samples in a batch's inputs: the first dimension of the first tensor found."""
    if isinstance(x, torch.Tensor):
        return int(x.shape[0]) if x.dim() else 1
    if isinstance(x, (tuple, list)) and x:
        return batch_len(x[0])
    if isinstance(x, Mapping) and x:
        return batch_len(next(iter(x.values())))
    return 1


def autocast_for(device: torch.device, amp_dtype: torch.dtype | None) -> Any:
    """``torch.autocast`` for ``amp_dtype`` on ``device``, or a no-op context when None."""
    if amp_dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(device.type, dtype=amp_dtype)


def _mover(device: torch.device) -> Callable[[Any], Any]:
    """``obj -> obj on device``; a tensor already there is returned as it is (no call into torch)."""
    tensor = torch.Tensor

    def move(obj: Any) -> Any:
        if obj.__class__ is tensor and obj.device == device:
            return obj
        return to_device(obj, device, True)
    return move


class TrainStep:
    """Forward, backward and optimizer step of ``model`` on batches; see the module docstring.

    Args:
        model, optimizer: what to train.
        loss_fn: ``loss_fn(output, target) -> loss`` (may have a ``check(output, target)``
            method, run once on the first batch).
        device: where the model is; batches not already there are moved.
        move: False when every batch is known to be on ``device`` already.
        unpack: ``batch -> (inputs, targets)``.
        amp_dtype: autocast dtype, or None. scaler: a ``torch.amp.GradScaler`` or None.
        grad_accum: mini-batches per optimizer step; each loss is divided by it.
        grad_clip: max gradient norm, or None.
        batch_loss: ``batch -> loss`` computing the whole loss itself (replaces unpack, model
            and loss_fn).

    ``samples`` counts the samples of every mini-batch seen.
    """

    def __init__(self, model: nn.Module, optimizer: torch.optim.Optimizer,
                 loss_fn: Callable[..., torch.Tensor] | None, *, device: torch.device, move: bool = True,
                 unpack: Callable[[Any], Any] = unpack_default, amp_dtype: torch.dtype | None = None,
                 scaler: Any = None, grad_accum: int = 1, grad_clip: float | None = None,
                 batch_loss: Callable[[Any], torch.Tensor] | None = None) -> None:
        self.model, self.optimizer, self.loss_fn = model, optimizer, loss_fn
        self.device, self.move, self.unpack = device, move, unpack
        self.amp_dtype, self.scaler = amp_dtype, scaler
        self.grad_accum, self.grad_clip, self.batch_loss = int(grad_accum), grad_clip, batch_loss
        self._count = [0]  # samples seen, shared with the fast path's closure (which must not hold self)
        self._loss = self._checked_loss()
        self._move = _mover(device) if move else None
        self.plain: Callable[[Any], torch.Tensor] | None = (
            self._plain() if (self.grad_accum == 1 and scaler is None and amp_dtype is None
                              and grad_clip is None and batch_loss is None) else None)

    @property
    def samples(self) -> int:
        return self._count[0]

    @samples.setter
    def samples(self, value: int) -> None:
        self._count[0] = value

    # -- the loss, checked on its first call ----------------------------------------------
    def _checked_loss(self) -> list[Callable[..., torch.Tensor]]:
        """``[loss]``: the first call runs ``loss_fn.check`` and then puts the plain loss in the slot."""
        loss_fn = self.loss_fn
        check = getattr(loss_fn, "check", None)
        slot: list[Any] = [loss_fn]
        if check is not None:
            def first_call(output: Any, target: Any) -> torch.Tensor:
                check(output.detach().float() if isinstance(output, torch.Tensor) else output, target)
                slot[0] = loss_fn
                return loss_fn(output, target)
            slot[0] = first_call
        return slot

    # -- the steps of a loop -------------------------------------------------------------
    def steps(self, batches: Iterable[Any]) -> Iterator[torch.Tensor]:
        """One optimizer step per ``grad_accum`` batches (a shorter last group makes one too); yields its loss.

        The loss is the sum of the group's ``micro`` losses (each divided by ``grad_accum``: the
        mean over a full group), a 0-d tensor on the device; on the fast path (``plain``) it
        still holds its graph, so ``.item()`` or ``.detach()`` it.

        Example:
            >>> import torch
            >>> model = torch.nn.Linear(3, 2)
            >>> step = TrainStep(model, torch.optim.SGD(model.parameters(), lr=0.1),
            ...                  torch.nn.functional.cross_entropy, device=torch.device("cpu"), grad_accum=2)
            >>> batches = [(torch.randn(4, 3), torch.tensor([0, 1, 0, 1]))] * 5
            >>> len([loss.item() for loss in step.steps(batches)]), step.samples   # 2 + 2 + 1 batches
            (3, 20)
        """
        plain = self.plain
        if plain is not None:
            for batch in batches:
                yield plain(batch)
            return
        micro, update, accum = self.micro, self.update, self.grad_accum
        total: torch.Tensor | None = None
        n = 0
        for batch in batches:
            loss = micro(batch).float()
            total = loss if total is None else total + loss
            n += 1
            if n == accum:
                update()
                yield total
                total, n = None, 0
        if total is not None:
            update()
            yield total

    # -- the general path ---------------------------------------------------------------
    def micro(self, batch: Any) -> torch.Tensor:
        """Forward and backward of one mini-batch; returns ``loss / grad_accum``, detached."""
        move = self._move
        with autocast_for(self.device, self.amp_dtype):
            if self.batch_loss is not None:
                if move is not None:
                    batch = move(batch)
                loss = self.batch_loss(batch)
                self.samples += batch_len(batch)
            else:
                x, y = self.unpack(batch)
                if move is not None:
                    x, y = move(x), move(y)
                loss = self._loss[0](self.model(x), y)
                self.samples += batch_len(x)
        if self.grad_accum > 1:
            loss = loss / self.grad_accum
        (self.scaler.scale(loss) if self.scaler is not None else loss).backward()
        return loss.detach()

    def update(self) -> None:
        """Optimizer step (with the scaler and clipping when set), then clear the gradients."""
        opt, scaler, clip = self.optimizer, self.scaler, self.grad_clip
        if scaler is not None:
            if clip is not None:
                scaler.unscale_(opt)
                torch.nn.utils.clip_grad_norm_(self.model.parameters(), clip)
            scaler.step(opt)
            scaler.update()
        else:
            if clip is not None:
                torch.nn.utils.clip_grad_norm_(self.model.parameters(), clip)
            opt.step()
        opt.zero_grad(set_to_none=True)

    # -- the fast path ------------------------------------------------------------------
    def _plain(self) -> Callable[[Any], torch.Tensor]:
        model, slot, unpack = self.model, self._loss, self.unpack
        zero_grad, opt_step, move = self.optimizer.zero_grad, self.optimizer.step, self._move
        fast_pairs = unpack is unpack_default
        tensor, pair_types = torch.Tensor, (tuple, list)
        count = self._count  # not self: a closure holding its owner is a cycle that keeps the model

        def plain(batch: Any) -> torch.Tensor:
            if fast_pairs and batch.__class__ in pair_types and len(batch) == 2:
                x, y = batch
            else:
                x, y = unpack(batch)
            if move is not None:
                x, y = move(x), move(y)
            loss = slot[0](model(x), y)
            loss.backward()
            opt_step()
            zero_grad(set_to_none=True)
            count[0] += x.shape[0] if x.__class__ is tensor and x.dim() else batch_len(x)
            return loss
        return plain


@torch.no_grad()
def evaluate(model: nn.Module, batches: Iterable[Any], *, device: torch.device,
             loss_fn: Callable[..., torch.Tensor] | None, metrics: Mapping[str, Any] | None = None,
             unpack: Callable[[Any], Any] = unpack_default, amp_dtype: torch.dtype | None = None,
             batch_loss: Callable[[Any], torch.Tensor] | None = None, field: str = "val") -> dict[str, float]:
    """One pass over ``batches`` in eval mode: ``{"val_loss": mean loss per sample, "val_<m>": ...}``.

    ``metrics`` maps names to fresh metric objects (``update(output, target)``, ``compute()``).
    The model's train/eval mode is put back afterwards. Raises ValueError naming ``field``
    when ``batches`` yields nothing (a mean over no samples would read as a perfect 0).
    """
    was_training = model.training
    model.eval()
    metrics = dict(metrics or {})
    total = torch.zeros((), dtype=torch.float64, device=device)
    count: Any = 0  # samples, or a device tensor of counted targets (a loss that skips labels)
    batches_seen = 0
    counted = getattr(loss_fn, "counted", None) if batch_loss is None else None
    move = _mover(device)
    try:
        with autocast_for(device, amp_dtype):
            for batch in batches:
                if batch_loss is not None:
                    batch = move(batch)
                    loss = batch_loss(batch)
                    n = batch_len(batch)
                else:
                    x, y = unpack(batch)
                    x, y = move(x), move(y)
                    out = model(x)
                    loss = loss_fn(out, y)
                    n = batch_len(x)
                    for m in metrics.values():
                        m.update(out.float(), y)
                    k = counted(out, y) if counted is not None else None
                    if k is not None:  # weigh by the targets the mean ran over (none: adds nothing)
                        total += torch.where(k > 0, loss.detach().double() * k, 0.0)
                        count = count + k
                        batches_seen += 1
                        continue
                total += loss.detach().double() * n
                count += n
                batches_seen += 1
    finally:
        model.train(was_training)
    seen = float(count)
    if batches_seen == 0 or (seen == 0 and not isinstance(count, torch.Tensor)):
        raise ValueError(f"{field}: the validation data yields no batches; give it at least one sample, "
                         f"or leave it out (None) to train without validation")
    if seen == 0:
        raise ValueError(f"{field}: every target of the validation data is a label the loss skips "
                         f"(-100), so there is nothing to validate; give it labelled samples")
    record = {"val_loss": float(total) / seen}
    for name, m in metrics.items():
        record[f"val_{name}"] = float(m.compute())
    return record
