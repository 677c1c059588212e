"""``lr_range_test``: raise the learning rate step by step and watch the loss (Smith's LR range test).

Model weights, buffers, gradients, train/eval modes, optimizer state and the random number
generators are restored afterwards: after a normal end, an early stop, a stop request and an
exception alike. The saved copy lives on the CPU.

A range test is a run like any other: it fires START, LOG (host-side rows ``step``, ``lr``,
``loss``, ``smoothed`` and ``val_loss`` every few steps) and END on its own ``EventBus``, so
sinks attach the same way as to a Trainer (``callbacks=[...]``); ``tw.lr_range_test`` adds
``store=`` on top (``tunewidgets.api``). It holds the process-wide run slot while it runs.
"""
from __future__ import annotations

import math
import traceback
import warnings
from collections.abc import Callable, Iterable
from typing import Any

import numpy as np
import torch

from tunewidgets.engine.config import TrainConfig
from tunewidgets.engine.control import RunStop, StopRun, run_slot
from tunewidgets.engine.env import environment
from tunewidgets.engine.events import EventBus, Events, attach_callbacks
from tunewidgets.engine.seeding import seeded
from tunewidgets.lr._checks import check_settings, lr_ramp
from tunewidgets.lr._loop import RangeTestLoop
from tunewidgets.lr._sources import Sources, check_sources
from tunewidgets.lr._state import ModelState, OptimizerState
from tunewidgets.lr.result import LRRangeTestResult
from tunewidgets.lr.suggest import check_method, suggest

__all__ = ["lr_range_test", "RangeTest"]

_RENAMED = {"accum_steps": "grad_accum", "val_every": "eval_every"}


def lr_range_test(
    task: Any = None, *, model: Any = None, optimizer: Any = None, loss: Any = None, data: Any = None,
    start_lr: float = 1e-7, end_lr: float = 1.0, num_iter: int = 100, mode: str = "exp",
    smoothing: float = 0.98, diverge: float = 4.0, method: str = "valley",
    batch_loss: Callable[[Any], torch.Tensor] | None = None, unpack: Callable[[Any], Any] | None = None,
    optimizer_kwargs: dict[str, Any] | None = None, config: Any = None, batch_size: int | None = None,
    grad_accum: int | None = None, amp: bool | str | None = None, device: str | None = None,
    seed: int | None = None, val_data: Any = None, eval_every: int = 1,
    stop: Any = None, on_step: Callable[[dict[str, Any]], Any] | None = None,
    callbacks: Iterable[Any] = (), log_every: int = 25, run_id: int | None = None, trial: int | None = None,
    **renamed: Any,
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
    Data shorter than ``num_iter * grad_accum`` batches is iterated again
    (``result.cycled_data``, ``result.data_passes``).

    Smoothing: ``avg_i = smoothing * avg_(i-1) + (1 - smoothing) * loss_i`` (``avg_-1 = 0``),
    ``smoothed_i = avg_i / (1 - smoothing ** (i + 1))`` (bias-corrected); raw losses are kept.

    Stops early when a loss is not finite (``stop_reason="diverged"``, and the warning says so), when
    ``smoothed - best > (diverge - 1) * |best|`` with ``best`` the lowest smoothed loss so far
    (``"diverged"``; for positive losses this is ``smoothed > diverge * best``, and it also
    works for negative losses; ``|first smoothed|`` stands in for ``|best|`` when best is 0;
    ``diverge=math.inf`` turns it off), or when ``stop.is_set()`` before a step (``"stopped"``).

    Args:
        method: the rule behind ``result.suggested``: "valley" (default), "steepest" or "minimum"
            (see ``tunewidgets.lr.suggest``).
        grad_accum: mini-batches per optimizer step (default ``config.grad_accum`` or 1); the
            recorded loss is their mean. (``accum_steps`` is the old name, still accepted.)
        amp: False, True/"bf16" (bf16 autocast, also on CPU) or "fp16" (CUDA, with a grad scaler);
            default ``config.amp`` or False.
        device: with a task, where the fresh model runs ("auto" by default); a given model stays
            on its own device.
        val_data: a loader of validation batches (or True for the task's validation data): the
            validation loss is computed after every ``eval_every``-th step and the last one
            (``val_every`` is the old name, still accepted).
            Costly (a pass over it each time); the suggestions still use the training loss.
        stop: a ``threading.Event``; setting it (from any thread, or inside ``on_step``) ends
            the test before the next step.
        on_step: called after each step with ``{"step", "lr", "loss", "smoothed"}`` (host
            floats, plus ``"val_loss"`` on validation steps; ``step`` counts from 0).
        callbacks: sinks (objects with ``attach``) or ``{event: handler}`` dicts, attached to the
            test's events as to a Trainer's: START, LOG every ``log_every`` steps, END.
        store: (``tw.lr_range_test`` only) a ``tw.Store`` or a folder: records a run of kind
            "lr_range_test" with the settings as params and metrics ``train/loss``,
            ``train/smoothed``, ``lr`` (and ``val/loss``) per step, written while the test runs;
            status finished, diverged, stopped or failed.

    Example:
        >>> import tunewidgets as tw
        >>> res = tw.lr_range_test(tw.tasks.spirals(), optimizer="sgd", start_lr=1e-4, end_lr=10,
        ...                        num_iter=40, device="cpu")
        >>> len(res.lrs) == len(res.losses) == len(res.smoothed), float(res.lrs[0])
        (True, 0.0001)
        >>> res.stop_reason in ("finished", "diverged", "nonfinite")
        True
    """
    test = RangeTest(task, model=model, optimizer=optimizer, loss=loss, data=data, start_lr=start_lr,
                     end_lr=end_lr, num_iter=num_iter, mode=mode, smoothing=smoothing, diverge=diverge,
                     method=method, batch_loss=batch_loss, unpack=unpack, optimizer_kwargs=optimizer_kwargs,
                     config=config, batch_size=batch_size, grad_accum=grad_accum, amp=amp, device=device,
                     seed=seed, val_data=val_data, eval_every=eval_every, stop=stop, on_step=on_step,
                     callbacks=callbacks, log_every=log_every, run_id=run_id, trial=trial, **renamed)
    return test.run()


class RangeTest:
    """One LR range test as a run: checked settings, its ``bus``, ``run()``; see :func:`lr_range_test`.

    Like a Trainer it has ``bus``, ``params`` (the settings), ``device``, ``run_id``, ``trial``
    and ``stop()``, so sinks attach to it the same way.
    """

    kind = "lr_range_test"

    def __init__(self, task: Any = None, *, start_lr: Any, end_lr: Any, num_iter: Any, mode: Any,
                 smoothing: Any, diverge: Any, method: Any, grad_accum: Any, eval_every: Any, amp: Any,
                 config: Any, stop: Any, on_step: Any, callbacks: Iterable[Any], log_every: Any,
                 run_id: int | None, trial: int | None, **kwargs: Any) -> None:
        grad_accum, eval_every = _renamed(kwargs, grad_accum, eval_every)
        if config is not None and not isinstance(config, TrainConfig):
            raise TypeError(f"config: expected a tw.TrainConfig, got {type(config).__name__}")
        if amp is None:
            amp = config.amp if config is not None else False
        if grad_accum is None:
            grad_accum = config.grad_accum if config is not None else 1
        settings = check_settings(start_lr=start_lr, end_lr=end_lr, num_iter=num_iter, mode=mode,
                                  smoothing=smoothing, diverge=diverge, grad_accum=grad_accum,
                                  eval_every=eval_every, amp=amp, stop=stop, on_step=on_step,
                                  log_every=log_every)
        check_method(method)
        sources = check_sources(task, config=config, amp=amp, start_lr=settings["start_lr"], **kwargs)
        self.sources, self.settings, self.method = sources, settings, method
        self.device = sources.device
        self.lrs = lr_ramp(settings["start_lr"], settings["end_lr"], settings["num_iter"], settings["mode"])
        self.params = _jsonable({
            **settings, "method": method, "optimizer": sources.optimizer_label,
            "optimizer_settings": dict(sources.optimizer_settings), "seed": sources.seed,
            "batch_size": sources.batch_size, "device": str(sources.device),
            "task": getattr(sources.task, "name", None), "validation": sources.val_data is not None})
        self.bus = EventBus()
        self.stop_event = RunStop(parent=stop)
        self.run_id, self.trial = run_id, trial
        self.on_step = on_step
        self.reason: str | None = None  # why a handler's StopRun ended it
        self._halted: str | None = None  # the status that StopRun asked for ("pruned", "stopped"...)
        attach_callbacks(self, callbacks, "{'end': print}")

    def stop(self, status: str = "stopped", reason: str | None = None) -> None:
        """Ask the test to halt before its next step."""
        self.stop_event.set(status, reason)

    def _fire(self, event: Events, record: dict[str, Any]) -> None:
        record["run_id"], record["trial"] = self.run_id, self.trial
        self.bus.fire(event, record)

    def run(self) -> LRRangeTestResult:
        settings, sources = self.settings, self.sources
        log = ((lambda rows: self._fire(Events.LOG, {"rows": rows})) if self.bus.has(Events.LOG) else None)
        loop = RangeTestLoop(sources, self.lrs.tolist(), smoothing=settings["smoothing"],
                             diverge=settings["diverge"], grad_accum=settings["grad_accum"],
                             eval_every=settings["eval_every"], stop=self.stop_event, on_step=self.on_step,
                             log=log, log_every=settings["log_every"])
        with run_slot(self.stop_event) as got:
            try:
                if got:
                    if self.bus.has(Events.START):
                        self._fire(Events.START, {"params": self.params, "kind": self.kind, "trainer": self,
                                                  "total_steps": settings["num_iter"],
                                                  "env": environment(sources.device)})
                    try:
                        _run_restoring(loop, sources, settings["start_lr"])
                    except StopRun as halt:
                        loop.stop_reason, self.reason, self._halted = "stopped", halt.reason, halt.status
                    loop.flush()
                else:
                    loop.stop_reason = "stopped"
            except BaseException as exc:
                try:
                    loop.flush()
                finally:
                    self._end(loop, "failed", error="".join(traceback.format_exception(exc)))
                raise
        result = _result(loop, self.lrs, self.method, self.params, self.run_id, sources.val_data is not None)
        final = {"suggested": result.suggested, **{f"suggested/{k}": v for k, v in result.suggestions.items()},
                 "steps": len(result), "stop_reason": result.stop_reason}
        self._end(loop, self._halted or result.stop_reason, final=final)
        return result

    def _end(self, loop: RangeTestLoop, status: str, *, final: dict[str, Any] | None = None,
             error: str | None = None) -> None:
        self._fire(Events.END, {"status": status, "reason": self.reason, "final": final or {},
                                "error": error, "perf": {"duration_s": loop.duration_s, "data_passes": loop.passes}})


def _renamed(kwargs: dict[str, Any], grad_accum: Any, eval_every: Any) -> tuple[Any, Any]:
    """Take the old keyword names (``accum_steps``, ``val_every``) with a deprecation warning."""
    for old, new in _RENAMED.items():
        if old not in kwargs:
            continue
        value = kwargs.pop(old)
        warnings.warn(f"lr_range_test: {old}= is now {new}= (the name TrainConfig uses); {old} will be removed",
                      DeprecationWarning, stacklevel=4)
        if new == "grad_accum":
            grad_accum = value if grad_accum is None else grad_accum
        elif eval_every == 1:
            eval_every = value
    allowed = {"model", "optimizer", "loss", "data", "batch_loss", "unpack", "optimizer_kwargs", "batch_size",
               "device", "seed", "val_data"}
    unknown = sorted(set(kwargs) - allowed)
    if unknown:
        raise TypeError(f"lr_range_test: unknown argument(s) {', '.join(unknown)}")
    return grad_accum, eval_every


def _run_restoring(loop: RangeTestLoop, sources: Sources, start_lr: float) -> None:
    """Save state, run the loop, restore in ``finally`` (also after an exception or a stop)."""
    model_state = optimizer_state = None
    with seeded(sources.seed, sources.device):
        try:
            if sources.model is not None:
                extra = ([p for g in sources.optimizer.param_groups for p in g["params"]]
                         if sources.optimizer is not None else [])
                model_state = ModelState(sources.model, extra)
            if sources.optimizer is not None:
                optimizer_state = OptimizerState(sources.optimizer)
            model, optimizer, data, val = sources.build(start_lr)
            loop.run(model, optimizer, data, val)
        finally:
            if optimizer_state is not None:
                optimizer_state.restore()
            if model_state is not None:
                model_state.restore()


def _result(loop: RangeTestLoop, lrs: np.ndarray, method: str, params: dict[str, Any],
            run_id: int | None, with_val: bool) -> LRRangeTestResult:
    n = len(loop.losses)
    lr_done = np.array(lrs[:n], dtype=float)
    smoothed = np.array(loop.smoothed, dtype=float)
    found = suggest(lr_done, smoothed, method)
    warning = found.warning
    if loop.nonfinite and n:
        note = f"the loss became non-finite at step {n - 1} (lr {lr_done[-1]:.3g})"
        warning = note if warning is None else f"{note}; {warning}"
    return LRRangeTestResult(
        lrs=lr_done, losses=np.array(loop.losses, dtype=float), smoothed=smoothed,
        val_losses=np.array(loop.val_losses, dtype=float) if with_val else None,
        suggestions=dict(found.values), suggested=found.suggested, method=method, band=found.band,
        stopped_early=loop.stop_reason != "finished", stop_reason=loop.stop_reason,
        stopped_at=(n - 1 if n else None) if loop.stop_reason != "finished" else None,
        warning=warning, cycled_data=loop.passes > 1, data_passes=max(loop.passes, 1),
        settings=params, duration_s=loop.duration_s, run_id=run_id, nonfinite=loop.nonfinite)


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
