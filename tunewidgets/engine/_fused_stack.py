"""The pieces of a fused run: K models stacked with ``torch.func``, and each trial's own batches stacked.

- ``StackedModel``: the K models' parameters and buffers stacked along dim 0
  (``torch.func.stack_module_state``), one skeleton on the meta device, and the loss of all K on
  their K batches in one ``vmap`` of ``functional_call`` (BatchNorm's running statistics are
  stacked buffers, updated in place per trial; dropout draws ``randomness="different"``).
  ``outputs(x)`` runs every model on the same inputs (a validation batch) in one ``vmap``;
  ``trial(k)`` is an ``nn.Module`` view of trial ``k`` alone, and ``Replay`` a stand-in model
  that hands out outputs computed beforehand, so the one evaluation pass (``engine.step.evaluate``)
  scores each trial from them.
- ``StackedBatches``: the batches each trial would draw alone, stacked to ``(K, B, ...)``. For a
  ``TensorBatches`` (a ``TensorDataset``) each trial's permutation is drawn from its own
  generator as ``TensorBatches.__iter__`` draws it, and the K batches come out of one gather;
  any other data is iterated once per trial and stacked.

Example:
    >>> import torch
    >>> from tunewidgets.engine._fused_stack import StackedModel
    >>> models = [torch.nn.Linear(3, 2) for _ in range(4)]
    >>> stacked = StackedModel(models)
    >>> x, y = torch.randn(4, 5, 3), torch.randint(0, 2, (4, 5))
    >>> stacked.losses(torch.nn.functional.cross_entropy, x, y).shape
    torch.Size([4])
    >>> alone = torch.nn.functional.cross_entropy(models[2](x[2]), y[2])
    >>> torch.allclose(stacked.trial(2)(x[2]), models[2](x[2]))
    True
"""
from __future__ import annotations

import copy
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import torch
from torch import nn
from torch.func import functional_call, stack_module_state, vmap

from tunewidgets.engine.task import TensorBatches, to_device

__all__ = ["StackedModel", "StackedBatches", "TrialView", "Replay", "model_signature"]


def model_signature(model: nn.Module) -> tuple[Any, ...]:
    """What must agree for two models to be stacked: names, shapes and dtypes of parameters and buffers."""
    return (type(model).__qualname__,
            tuple((n, tuple(p.shape), p.dtype, p.requires_grad) for n, p in model.named_parameters()),
            tuple((n, tuple(b.shape), b.dtype) for n, b in model.named_buffers()))


class StackedModel:
    """K models of one architecture as stacked tensors; see the module docstring."""

    def __init__(self, models: Sequence[nn.Module]) -> None:
        first = model_signature(models[0])
        for k, m in enumerate(models[1:], start=1):
            if model_signature(m) != first:
                raise ValueError(f"models: model {k} differs in its parameters or buffers from model 0; only "
                                 "models of the same shapes can be stacked")
        self.base = copy.deepcopy(models[0]).to("meta")
        params, buffers = stack_module_state(list(models))
        frozen = {n for n, p in models[0].named_parameters() if not p.requires_grad}
        self.params = {n: (p.detach().requires_grad_(n not in frozen)) for n, p in params.items()}
        self.buffers = buffers
        self.k = len(models)

    def train(self, mode: bool = True) -> None:
        self.base.train(mode)

    def trainable(self) -> list[torch.Tensor]:
        return [p for p in self.params.values() if p.requires_grad]

    def losses(self, loss_fn: Callable[..., torch.Tensor], x: Any, y: Any) -> torch.Tensor:
        """``(K,)`` losses of the K models, model ``k`` on ``x[k]`` against ``y[k]``."""
        base = self.base

        def one(params: dict[str, torch.Tensor], buffers: dict[str, torch.Tensor], xk: Any, yk: Any) -> torch.Tensor:
            return loss_fn(functional_call(base, (params, buffers), (xk,)), yk)
        return vmap(one, randomness="different")(self.params, self.buffers, x, y)

    @torch.no_grad()
    def outputs(self, x: Any, index: Sequence[int] | None = None) -> Any:
        """The outputs of the models at ``index`` (default: all) on the same inputs ``x``, stacked on dim 0."""
        params, buffers = self.params, self.buffers
        if index is not None and list(index) != list(range(self.k)):
            params = {n: p[list(index)] for n, p in params.items()}
            buffers = {n: b[list(index)] for n, b in buffers.items()}
        base = self.base

        def one(p: dict[str, torch.Tensor], b: dict[str, torch.Tensor], xk: Any) -> Any:
            return functional_call(base, (p, b), (xk,))
        return vmap(one, in_dims=(0, 0, None), randomness="different")(params, buffers, x)

    def outputs_on(self, batches: Any, unpack: Callable[[Any], Any], device: torch.device, index: Sequence[int],
                   max_bytes: int) -> list[torch.Tensor] | None:
        """Outputs of the models at ``index`` on every batch (eval mode), ``(len(index), B, ...)`` each.

        None when an output is not one tensor, or when they would take more than ``max_bytes``.
        """
        outs: list[torch.Tensor] = []
        size = 0
        self.train(False)
        try:
            for batch in batches:
                x, _ = unpack(batch)
                out = self.outputs(to_device(x, device, True), index)
                if not isinstance(out, torch.Tensor):
                    return None
                size += out.numel() * out.element_size()
                if size > max_bytes:
                    return None
                outs.append(out)
        finally:
            self.train(True)
        return outs

    def select(self, index: Sequence[int]) -> None:
        """Keep the models at ``index`` (in that order)."""
        some = next(iter(self.params.values()), None)
        device = some.device if some is not None else torch.device("cpu")
        where = torch.tensor(list(index), dtype=torch.long, device=device)
        self.params = {n: p.detach().index_select(0, where).requires_grad_(p.requires_grad)
                       for n, p in self.params.items()}
        self.buffers = {n: b.index_select(0, where.to(b.device)) for n, b in self.buffers.items()}
        self.k = len(where)

    def trial(self, k: int) -> "TrialView":
        """Model ``k`` alone, as a module (its forward is the same computation as the model's own)."""
        return TrialView(self, k)

    def write_to(self, k: int, model: nn.Module) -> nn.Module:
        """Copy trial ``k``'s parameters and buffers into ``model`` (one of the models stacked); returns it."""
        with torch.no_grad():
            for n, p in model.named_parameters():
                p.copy_(self.params[n][k])
            for n, b in model.named_buffers():
                b.copy_(self.buffers[n][k])
        return model

    def snapshot(self) -> dict[str, torch.Tensor]:
        """A copy of the buffers (running statistics), to put back after a trial pass."""
        return {n: b.clone() for n, b in self.buffers.items()}

    def restore(self, saved: dict[str, torch.Tensor]) -> None:
        with torch.no_grad():
            for n, b in saved.items():
                self.buffers[n].copy_(b)


class TrialView(nn.Module):
    """One trial of a ``StackedModel`` as a module: ``eval()`` and ``train()`` switch the shared skeleton."""

    def __init__(self, stacked: StackedModel, k: int) -> None:
        super().__init__()
        self.inner = stacked.base
        self._stacked, self._k = stacked, k

    def forward(self, x: Any) -> Any:
        s, k = self._stacked, self._k
        params = {n: p[k] for n, p in s.params.items()}
        buffers = {n: b[k] for n, b in s.buffers.items()}
        return functional_call(self.inner, (params, buffers), (x,))


class Replay(nn.Module):
    """A stand-in model whose calls return ``outputs`` one after another (computed beforehand, for all trials at once)."""

    def __init__(self, outputs: Sequence[Any]) -> None:
        super().__init__()
        self._outputs, self._next = list(outputs), 0

    def forward(self, x: Any) -> Any:
        out = self._outputs[self._next]
        self._next += 1
        return out


class StackedBatches:
    """The K trials' own training batches, stacked: iterate it once per epoch for ``(x, y)`` of shape ``(K, B, ...)``.

    Args:
        batches: one iterable of batches per trial (what ``task.train_batches`` gives each trial).
        unpack: ``batch -> (inputs, targets)``.
        device: where the stacked batches go.
    """

    def __init__(self, batches: Sequence[Any], unpack: Callable[[Any], Any], device: torch.device) -> None:
        self.batches, self.unpack, self.device = list(batches), unpack, device
        first = self.batches[0]
        self.gather = all(isinstance(b, TensorBatches) and b.shuffle and b.tensors == first.tensors
                          and b.batch_size == first.batch_size and b.drop_last == first.drop_last
                          and b.generator is not None for b in self.batches)
        self.tensors = tuple(t.to(device) for t in first.tensors) if self.gather else ()
        self._live = list(range(len(self.batches)))
        self._orders: torch.Tensor | None = None
        self._iters: list[Iterator[Any]] | None = None

    def __len__(self) -> int:
        return len(self.batches[0])

    def select(self, index: Sequence[int]) -> None:
        """Keep the trials at ``index`` (positions among those kept so far), also mid-epoch."""
        self._live = [self._live[i] for i in index]
        if self._orders is not None:
            self._orders = self._orders[list(index)]
        if self._iters is not None:
            self._iters = [self._iters[i] for i in index]

    def __iter__(self) -> Iterator[tuple[Any, Any]]:
        if self.gather:
            yield from self._gathered()
        else:
            yield from self._zipped()

    def _gathered(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        first = self.batches[0]
        # the draw TensorBatches.__iter__ makes: one permutation of its generator per epoch
        orders = [torch.randperm(first.n, generator=self.batches[k].generator) for k in self._live]
        self._orders = torch.stack(orders).to(self.device)
        bs, tensors = first.batch_size, self.tensors
        for i in range(len(first)):
            idx = self._orders[:, i * bs:(i + 1) * bs]  # select() may drop rows of it between steps
            yield self.unpack(tuple(t[idx] for t in tensors))

    def _zipped(self) -> Iterator[tuple[Any, Any]]:
        self._iters = [iter(self.batches[k]) for k in self._live]
        while True:
            xs, ys, ended = [], [], False
            for it in self._iters:  # select() may drop some between steps
                try:
                    batch = next(it)
                except StopIteration:
                    # every trial's iterator is run to its end, as alone: a sampler may draw from
                    # its generator when it runs out (RandomSampler does), which the next epoch sees
                    ended = True
                    continue
                x, y = self.unpack(batch)
                xs.append(to_device(x, self.device, True))
                ys.append(to_device(y, self.device, True))
            if ended:
                return
            yield torch.stack(xs), torch.stack(ys)
