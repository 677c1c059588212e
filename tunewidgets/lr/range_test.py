"""``lr_range_test``: raise the learning rate step by step and watch the loss (Smith's LR range test).

Model weights, buffers, gradients, train/eval modes, optimizer state and the random number
generators are restored afterwards: after a normal end, an early stop, a stop request and an
exception alike. The saved copy lives on the CPU.
"""
from __future__ import annotations

import math
import os
from collections.abc import Callable
from typing import Any

import numpy as np
import torch

from tunewidgets.engine.config import TrainConfig
from tunewidgets.lr._checks import check_settings, lr_ramp
from tunewidgets.lr._loop import RangeTestLoop
from tunewidgets.lr._sources import Sources, check_sources
from tunewidgets.lr._state import ModelState, OptimizerState, RNGState
from tunewidgets.lr.result import LRRangeTestResult
from tunewidgets.lr.suggest import check_method, suggest

__all__ = ["lr_range_test"]

_STORE_STATUS = {"finished": "finished", "diverged": "diverged", "nonfinite": "diverged", "stopped": "stopped"}


def lr_range_test(
    task: Any = None, *, model: Any = None, optimizer: Any = None, loss: Any = None, data: Any = None,
    start_lr: float = 1e-7, end_lr: float = 1.0, num_iter: int = 100, mode: str = "exp",
    smoothing: float = 0.98, diverge: float = 4.0, method: str = "valley",
    batch_loss: Callable[[Any], torch.Tensor] | None = None, unpack: Callable[[Any], Any] | None = None,
    optimizer_kwargs: dict[str, Any] | None = None, config: Any = None, batch_size: int | None = None,
    accum_steps: int | None = None, amp: bool | str | None = None, device: str | None = None,
    seed: int | None = None, val_data: Any = None, val_every: int = 1,
    stop: Any = None, on_step: Callable[[dict[str, Any]], Any] | None = None, store: Any = None,
) -> LRRangeTestResult:
    """Train for ``num_iter`` optimizer steps while the lr rises from ``start_lr`` to ``end_lr``.

    Either from a task: a fresh model from its factory (seeded with ``seed``, default
    ``config.seed`` or 0), its training data, its loss, and an optimizer by name
    (``optimizer="sgd"``; ``momentum``, ``weight_decay``... through ``optimizer_kwargs`` or a
    ``config=tw.TrainConfig(...)``); ``model=`` tests an existing model on the task instead.
    Or from your own objects: ``model=``, ``optimizer=`` (a torch optimizer or a name),
    ``loss=`` (a name or ``fn(output, target)``) and ``data=`` (any iterable of batches).
    Batches are ``(x, y)`` pairs or dicts with usual keys (``unpack=fn`` for others), or
    ``batch_loss=fn(batch) -> loss`` computes the loss from a whole batch with your model.

    Ramp: step ``i`` (0-based, ``n = num_iter``) uses, for ``mode="exp"``,
    ``lr_i = start_lr * (end_lr / start_lr) ** (i / (n - 1))``, and for ``mode="linear"``,
    ``lr_i = start_lr + (end_lr - start_lr) * i / (n - 1)``: the first step uses ``start_lr``
    and the last ``end_lr``. With several param groups each keeps its lr ratio to the first.
    Data shorter than ``num_iter * accum_steps`` batches is iterated again
    (``result.cycled_data``, ``result.data_passes``).

    Smoothing: ``avg_i = smoothing * avg_(i-1) + (1 - smoothing) * loss_i`` (``avg_-1 = 0``),
    ``smoothed_i = avg_i / (1 - smoothing ** (i + 1))`` (bias-corrected); raw losses are kept.

    Stops early when a loss is not finite (``stop_reason="nonfinite"``), when
    ``smoothed - best > (diverge - 1) * |best|`` with ``best`` the lowest smoothed loss so far
    (``"diverged"``; for positive losses this is ``smoothed > diverge * best``, and it also
    works for negative losses; ``|first smoothed|`` stands in for ``|best|`` when best is 0;
    ``diverge=math.inf`` turns it off), or when ``stop.is_set()`` before a step (``"stopped"``).

    Args:
        method: the rule behind ``result.suggested``: "valley" (default), "steepest" or "minimum"
            (see ``tunewidgets.lr.suggest``).
        accum_steps: mini-batches per optimizer step (default ``config.grad_accum`` or 1); the
            recorded loss is their mean.
        amp: False, True/"bf16" (bf16 autocast, also on CPU) or "fp16" (CUDA, with a grad scaler);
            default ``config.amp`` or False.
        device: with a task, where the fresh model runs ("auto" by default); a given model stays
            on its own device.
        val_data: a loader of validation batches (or True for the task's validation data): the
            validation loss is computed after every ``val_every``-th step and the last one.
            Costly (a pass over it each time); the suggestions still use the training loss.
        stop: a ``threading.Event``; setting it (from any thread, or inside ``on_step``) ends
            the test before the next step.
        on_step: called after each step with ``{"iteration", "lr", "loss", "smoothed"}`` (host
            floats, plus ``"val_loss"`` on validation steps).
        store: a ``tw.Store`` or a folder: records a run of kind "lr_range_test" with the
            settings as params and metrics ``lr_test/loss``, ``lr_test/smoothed``, ``lr_test/lr``
            per iteration; status finished, diverged, stopped or failed.

    Example:
        >>> import tunewidgets as tw
        >>> res = tw.lr_range_test(tw.tasks.spirals(), optimizer="sgd", start_lr=1e-4, end_lr=10,
        ...                        num_iter=40, device="cpu")
        >>> len(res.lrs) == len(res.losses) == len(res.smoothed), float(res.lrs[0])
        (True, 0.0001)
        >>> res.stop_reason in ("finished", "diverged", "nonfinite")
        True
    """
    if config is not None and not isinstance(config, TrainConfig):
        raise TypeError(f"config: expected a tw.TrainConfig, got {type(config).__name__}")
    if amp is None:
        amp = config.amp if config is not None else False
    if accum_steps is None:
        accum_steps = config.grad_accum if config is not None else 1
    settings = check_settings(start_lr=start_lr, end_lr=end_lr, num_iter=num_iter, mode=mode,
                              smoothing=smoothing, diverge=diverge, accum_steps=accum_steps,
                              val_every=val_every, amp=amp, stop=stop, on_step=on_step)
    check_method(method)
    sources = check_sources(task, model=model, optimizer=optimizer, loss=loss, data=data,
                            batch_loss=batch_loss, unpack=unpack, val_data=val_data, config=config,
                            optimizer_kwargs=optimizer_kwargs, device=device, seed=seed,
                            batch_size=batch_size, amp=amp, start_lr=settings["start_lr"])
    store_obj, own_store = _open_store(store)
    lrs = lr_ramp(settings["start_lr"], settings["end_lr"], settings["num_iter"], settings["mode"])
    params = {**settings, "method": method, "optimizer": sources.optimizer_label,
              "optimizer_settings": dict(sources.optimizer_settings), "seed": sources.seed,
              "batch_size": sources.batch_size, "device": str(sources.device),
              "task": getattr(sources.task, "name", None), "validation": sources.val_data is not None}
    loop = RangeTestLoop(sources, lrs.tolist(), smoothing=settings["smoothing"], diverge=settings["diverge"],
                         accum_steps=settings["accum_steps"], val_every=settings["val_every"],
                         stop=stop, on_step=on_step)
    run_id = None
    try:
        if store_obj is not None:
            run_id = store_obj.start_run(kind="lr_range_test", name=params["task"],
                                         params=_jsonable(params), seed=sources.seed)
        try:
            _run_restoring(loop, sources, settings["start_lr"])
        except BaseException as exc:
            if store_obj is not None and run_id is not None:
                _record(store_obj, run_id, loop, "failed", error=exc)
            raise
        result = _result(loop, lrs, method, params, run_id, sources.val_data is not None)
        if store_obj is not None and run_id is not None:
            final = {"suggested": result.suggested, **{f"suggested/{k}": v for k, v in result.suggestions.items()},
                     "steps": len(result), "stop_reason": result.stop_reason}
            _record(store_obj, run_id, loop, _STORE_STATUS[loop.stop_reason], final=final)
        return result
    finally:
        if own_store and store_obj is not None:
            store_obj.close()


def _run_restoring(loop: RangeTestLoop, sources: Sources, start_lr: float) -> None:
    """Save state, run the loop, restore in ``finally`` (also after an exception or a stop)."""
    rng = RNGState(sources.device)
    model_state = optimizer_state = None
    try:
        if sources.model is not None:
            extra = ([p for g in sources.optimizer.param_groups for p in g["params"]]
                     if sources.optimizer is not None else [])
            model_state = ModelState(sources.model, extra)
        if sources.optimizer is not None:
            optimizer_state = OptimizerState(sources.optimizer)
        if sources.seed is not None:
            torch.random.default_generator.manual_seed(sources.seed)
            if sources.device.type == "cuda":
                torch.cuda.manual_seed_all(sources.seed)
        model, optimizer, data, val = sources.build(start_lr)
        loop.run(model, optimizer, data, val)
    finally:
        try:
            if optimizer_state is not None:
                optimizer_state.restore()
            if model_state is not None:
                model_state.restore()
        finally:
            rng.restore()


def _result(loop: RangeTestLoop, lrs: np.ndarray, method: str, params: dict[str, Any],
            run_id: int | None, with_val: bool) -> LRRangeTestResult:
    n = len(loop.losses)
    lr_done = np.array(lrs[:n], dtype=float)
    smoothed = np.array(loop.smoothed, dtype=float)
    found = suggest(lr_done, smoothed, method)
    warning = found.warning
    if loop.stop_reason == "nonfinite" and n:
        note = f"the loss became non-finite at iteration {n - 1} (lr {lr_done[-1]:.3g})"
        warning = note if warning is None else f"{note}; {warning}"
    return LRRangeTestResult(
        lrs=lr_done, losses=np.array(loop.losses, dtype=float), smoothed=smoothed,
        val_losses=np.array(loop.val_losses, dtype=float) if with_val else None,
        suggestions=dict(found.values), suggested=found.suggested, method=method, band=found.band,
        stopped_early=loop.stop_reason != "finished", stop_reason=loop.stop_reason,
        stopped_at=(n - 1 if n else None) if loop.stop_reason != "finished" else None,
        warning=warning, cycled_data=loop.passes > 1, data_passes=max(loop.passes, 1),
        settings=params, duration_s=loop.duration_s, run_id=run_id)


# -- store ------------------------------------------------------------------------------
def _open_store(store: Any) -> tuple[Any, bool]:
    if store is None:
        return None, False
    from tunewidgets.tracking import Store

    if isinstance(store, Store):
        return store, False
    if isinstance(store, (str, os.PathLike)):
        return Store(store), True
    raise TypeError(f"store: expected a tw.Store or a folder path, got {type(store).__name__}")


def _jsonable(params: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in params.items():
        if isinstance(v, float) and not math.isfinite(v):
            v = str(v)
        elif isinstance(v, dict):
            v = _jsonable(v)
        elif isinstance(v, tuple):
            v = list(v)
        out[k] = v
    return out


def _record(store: Any, run_id: int, loop: RangeTestLoop, status: str, *, final: dict[str, Any] | None = None,
            error: BaseException | None = None) -> None:
    n = len(loop.losses)
    rows = []
    for i in range(n):
        rows.append((i, None, "lr_test/lr", loop.lrs[i]))
        rows.append((i, None, "lr_test/loss", loop.losses[i]))
        rows.append((i, None, "lr_test/smoothed", loop.smoothed[i]))
        if loop.val_losses and i < len(loop.val_losses) and loop.val_losses[i] == loop.val_losses[i]:
            rows.append((i, None, "lr_test/val_loss", loop.val_losses[i]))
    if rows:
        store.log_metrics(run_id, rows)
    store.finish_run(run_id, status, final=final, error=error,
                     perf={"duration_s": loop.duration_s, "data_passes": loop.passes})
