"""``lr_range_test``: raise the learning rate step by step and watch the loss (Smith's LR range test).

Model weights, buffers, gradients, train/eval modes, optimizer state and the random number
generators are restored afterwards: after a normal end, an early stop, a stop request and an
exception alike. The saved copy lives on the CPU.

A range test is a run like any other, the engine's ``RunBase`` (as a Trainer is): a run whose
lr follows a ramp and which stops on divergence. It fires START, LOG (host-side rows ``step``,
``lr``, ``loss``, ``smoothed`` and ``val_loss`` every few steps; steps count from 1) and END on
its own ``EventBus``, so sinks attach the same way as to a Trainer (``callbacks=[...]``);
``tw.lr_range_test`` adds ``store=`` on top (``tunewidgets.api``). It holds the process-wide run
slot while it runs, and trains with the engine's ``TrainStep.steps`` (accumulation included).
"""
from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Iterable
from typing import Any

import numpy as np
import torch

from tunewidgets.engine.config import TrainConfig
from tunewidgets.engine.run_base import RunBase
from tunewidgets.lr._checks import LRRamp, check_settings
from tunewidgets.lr._loop import RangeTestLoop
from tunewidgets.lr._sources import Sources, check_sources
from tunewidgets.lr._state import ModelState, OptimizerState
from tunewidgets.lr.result import LRRangeTestResult
from tunewidgets.lr.suggest import check_method, suggest

__all__ = ["lr_range_test", "RangeTest", "RENAMED", "current_names"]

#: old keyword -> its name now; each old one still works, with a DeprecationWarning naming the new one
RENAMED = {"accum_steps": "grad_accum", "val_every": "eval_every_steps", "num_iter": "steps",
           "val_data": "val", "eval_every": "eval_every_steps"}
_DEFAULTS = {"grad_accum": None, "eval_every_steps": 1, "steps": 100, "val": None}
_OWN_NAMES = ("model", "optimizer", "loss", "data", "batch_loss", "unpack", "optimizer_kwargs", "batch_size",
              "device", "seed")


def lr_range_test(
    task: Any = None, *, model: Any = None, optimizer: Any = None, loss: Any = None, data: Any = None,
    start_lr: float = 1e-7, end_lr: float = 1.0, steps: int = 100, mode: str = "exp",
    smoothing: float = 0.98, diverge: float = 4.0, method: str = "valley",
    batch_loss: Callable[[Any], torch.Tensor] | None = None, unpack: Callable[[Any], Any] | None = None,
    optimizer_kwargs: dict[str, Any] | None = None, config: Any = None, batch_size: int | None = None,
    grad_accum: int | None = None, amp: bool | str | None = None, device: str | None = None,
    seed: int | None = None, val: Any = None, eval_every_steps: int = 1,
    stop: Any = None, on_step: Callable[[dict[str, Any]], Any] | None = None,
    callbacks: Iterable[Any] = (), log_every: int = 25, run_id: int | None = None, trial: int | None = None,
    **renamed: Any,
) -> LRRangeTestResult:
    """Train for ``steps`` optimizer steps while the lr rises from ``start_lr`` to ``end_lr``.

    Either from a task: a fresh model from its factory (seeded with ``seed``, default
    ``config.seed`` or 0), its training data, its loss, and an optimizer by name
    (``optimizer="sgd"``; ``momentum``, ``weight_decay``... through ``optimizer_kwargs`` or a
    ``config=tw.TrainConfig(...)``); ``model=`` tests an existing model on the task instead.
    Or from your own objects: ``model=``, ``optimizer=`` (a torch optimizer or a name),
    ``loss=`` (a name or ``fn(output, target)``) and ``data=`` (any iterable of batches).
    Batches are ``(x, y)`` pairs or dicts with usual keys (``unpack=fn`` for others), or
    ``batch_loss=fn(batch) -> loss`` computes the loss from a whole batch with your model.

    Ramp: step ``k`` (``k = 1..n``, ``n = steps``, ``i = k - 1``) uses, for ``mode="exp"``,
    ``lr = start_lr * (end_lr / start_lr) ** (i / (n - 1))``, and for ``mode="linear"``,
    ``lr = start_lr + (end_lr - start_lr) * i / (n - 1)``: the first step uses ``start_lr``
    and the last ``end_lr``; each lr is computed when its step comes (any ``steps`` costs no
    memory up front). With several param groups each keeps its lr ratio to the first.
    Data shorter than ``steps * grad_accum`` batches is iterated again
    (``result.cycled_data``, ``result.data_passes``).

    Smoothing: ``avg_k = smoothing * avg_(k-1) + (1 - smoothing) * loss_k`` (``avg_0 = 0``),
    ``smoothed_k = avg_k / (1 - smoothing ** k)`` (bias-corrected); raw losses are kept.

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
        val: a loader of validation batches (or True for the task's validation data; the name
            a Task uses): the validation loss is computed after every ``eval_every_steps``-th step
            and the last one.
            Costly (a pass over it each time); the suggestions still use the training loss.
        stop: a ``threading.Event``; setting it (from any thread, or inside ``on_step``) ends
            the test before the next step.
        on_step: called after each step with ``{"step", "lr", "loss", "smoothed"}`` (host
            floats, plus ``"val_loss"`` on validation steps; ``step`` counts from 1: the k-th
            optimizer step, with the lr it used).
        callbacks: sinks (objects with ``attach``) or ``{event: handler}`` dicts, attached to the
            test's events as to a Trainer's: START, LOG every ``log_every`` steps, END.
        store: (``tw.lr_range_test`` only) a ``tw.Store`` or a folder: records a run of kind
            "lr_range_test" with the settings as params and metrics ``train/loss``,
            ``train/smoothed``, ``lr`` (and ``val/loss``) per step, written while the test runs;
            status finished, diverged, stopped or failed.

    Old names, still accepted with a DeprecationWarning: ``num_iter`` (now ``steps``),
    ``val_data`` (``val``), ``eval_every`` (``eval_every_steps``: ``eval_every`` counts epochs
    in a TrainConfig), ``val_every`` (``eval_every_steps``), ``accum_steps`` (``grad_accum``).

    Example:
        >>> import tunewidgets as tw
        >>> res = tw.lr_range_test(tw.tasks.spirals(), optimizer="sgd", start_lr=1e-4, end_lr=10,
        ...                        steps=40, device="cpu")
        >>> len(res.lrs) == len(res.losses) == len(res.smoothed), float(res.lrs[0])
        (True, 0.0001)
        >>> res.stop_reason in ("finished", "diverged", "nonfinite")
        True
    """
    test = RangeTest(task, model=model, optimizer=optimizer, loss=loss, data=data, start_lr=start_lr,
                     end_lr=end_lr, steps=steps, mode=mode, smoothing=smoothing, diverge=diverge,
                     method=method, batch_loss=batch_loss, unpack=unpack, optimizer_kwargs=optimizer_kwargs,
                     config=config, batch_size=batch_size, grad_accum=grad_accum, amp=amp, device=device,
                     seed=seed, val=val, eval_every_steps=eval_every_steps, stop=stop, on_step=on_step,
                     callbacks=callbacks, log_every=log_every, run_id=run_id, trial=trial, **renamed)
    return test.run()


class RangeTest(RunBase):
    """One LR range test as a run: checked settings, its ``bus``, ``run()``; see :func:`lr_range_test`.

    A :class:`~tunewidgets.engine.run_base.RunBase` like a Trainer: ``bus``, ``on()``, ``stop()``,
    ``params`` (the settings), ``device``, ``run_id``, ``trial``, so sinks attach the same way.
    What is its own: the ramp (``ramp``, an :class:`~tunewidgets.lr._checks.LRRamp`), saving and
    restoring the model and optimizer, the divergence rule (``lr._loop``) and the result.
    """

    kind = "lr_range_test"

    def __init__(self, task: Any = None, *, start_lr: Any, end_lr: Any, steps: Any, mode: Any,
                 smoothing: Any, diverge: Any, method: Any, grad_accum: Any, eval_every_steps: Any, amp: Any,
                 config: Any, stop: Any, on_step: Any, callbacks: Iterable[Any], log_every: Any,
                 run_id: int | None, trial: int | None, val: Any = None, **kwargs: Any) -> None:
        named = _renamed(kwargs, {"grad_accum": grad_accum, "eval_every_steps": eval_every_steps,
                                  "steps": steps, "val": val})
        grad_accum, eval_every_steps, steps, val = (named[k] for k in ("grad_accum", "eval_every_steps", "steps",
                                                                      "val"))
        if config is not None and not isinstance(config, TrainConfig):
            raise TypeError(f"config: expected a tw.TrainConfig, got {type(config).__name__}")
        if amp is None:
            amp = config.amp if config is not None else False
        if grad_accum is None:
            grad_accum = config.grad_accum if config is not None else 1
        settings = check_settings(start_lr=start_lr, end_lr=end_lr, steps=steps, mode=mode,
                                  smoothing=smoothing, diverge=diverge, grad_accum=grad_accum,
                                  eval_every_steps=eval_every_steps, amp=amp, stop=stop, on_step=on_step,
                                  log_every=log_every)
        check_method(method)
        sources = check_sources(task, config=config, amp=amp, start_lr=settings["start_lr"], val=val, **kwargs)
        self.sources, self.settings, self.method = sources, settings, method
        self.device = sources.device
        self.ramp = LRRamp(settings["start_lr"], settings["end_lr"], settings["steps"], settings["mode"])
        self.params = _jsonable({
            **settings, "method": method, "optimizer": sources.optimizer_label,
            "optimizer_settings": dict(sources.optimizer_settings), "seed": sources.seed,
            "batch_size": sources.batch_size, "device": str(sources.device),
            "task": getattr(sources.task, "name", None), "validation": sources.val is not None})
        self.on_step = on_step
        super().__init__(callbacks=callbacks, stop=stop, run_id=run_id, trial=trial)

    def run(self) -> LRRangeTestResult:
        """Run the test (see :meth:`RunBase.execute`) and return its result."""
        settings = self.settings
        self._loop = RangeTestLoop(self.sources, self.ramp, smoothing=settings["smoothing"],
                                   diverge=settings["diverge"], grad_accum=settings["grad_accum"],
                                   eval_every_steps=settings["eval_every_steps"], stop=self.stop_event,
                                   on_step=self.on_step, pending=self.pending if self.bus.has("log") else None,
                                   flush=self.flush, log_every=settings["log_every"])
        return self.execute()

    # -- RunBase --------------------------------------------------------------------------
    def _prepare(self) -> tuple[int | None, Any]:
        return self.sources.seed, self.sources.device

    def _body(self) -> None:
        self.fire_start(self.settings["steps"], self.sources.device, params=self.params)
        _run_restoring(self._loop, self.sources, self.settings["start_lr"])
        if self._loop.stop_reason != "finished":
            self.status = self._loop.stop_reason

    def _finish(self, error: str | None, started: bool) -> LRRangeTestResult | None:
        loop = self._loop
        perf = {"duration_s": loop.duration_s, "data_passes": loop.passes}
        if error is not None:
            self.fire_end("failed", error=error, perf=perf)
            return None
        if self.status not in ("finished", loop.stop_reason):  # a StopRun, or stopped before it started
            loop.stop_reason = "stopped"
        result = _result(loop, self.ramp, self.method, self.params, self.run_id, self.sources.val is not None)
        final = {"suggested": result.suggested, **{f"suggested/{k}": v for k, v in result.suggestions.items()},
                 "steps": len(result), "stop_reason": result.stop_reason}
        self.fire_end(self.status, final=final, perf=perf)
        return result


def _renamed(kwargs: dict[str, Any], named: dict[str, Any]) -> dict[str, Any]:
    """Take the old keyword names (:data:`RENAMED`) with a deprecation warning naming the new one."""
    for old, new in RENAMED.items():
        if old not in kwargs:
            continue
        value = kwargs.pop(old)
        warnings.warn(f"lr_range_test: {old}= is now {new}= ({_WHY[new]}); {old} will be removed",
                      DeprecationWarning, stacklevel=4)
        if named[new] == _DEFAULTS[new]:
            named[new] = value
    unknown = sorted(set(kwargs) - set(_OWN_NAMES))
    if unknown:
        raise TypeError(f"lr_range_test: unknown argument(s) {', '.join(unknown)}")
    return named


_WHY = {"grad_accum": "the name TrainConfig uses", "steps": "optimizer steps, as in TrainConfig.max_steps",
        "val": "the name a Task uses", "eval_every_steps": "TrainConfig.eval_every counts epochs"}


def current_names(call: dict[str, Any]) -> dict[str, Any]:
    """``call`` (keyword arguments of ``lr_range_test``) with every old name replaced by its new one.

    >>> current_names({"num_iter": 50, "val_data": True, "start_lr": 1e-5})
    {'steps': 50, 'val': True, 'start_lr': 1e-05}
    """
    return {RENAMED.get(k, k): v for k, v in call.items()}


def _run_restoring(loop: RangeTestLoop, sources: Sources, start_lr: float) -> None:
    """Save state, run the loop, restore in ``finally`` (also after an exception or a stop; the
    run base seeds and restores the random number generators around it)."""
    model_state = optimizer_state = None
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


def _result(loop: RangeTestLoop, ramp: LRRamp, method: str, params: dict[str, Any],
            run_id: int | None, with_val: bool) -> LRRangeTestResult:
    n = len(loop.losses)
    lr_done = ramp.values(n)
    smoothed = np.array(loop.smoothed, dtype=float)
    found = suggest(lr_done, smoothed, method)
    warning = found.warning
    if loop.nonfinite and n:
        note = f"the loss became non-finite at step {n} (lr {lr_done[-1]:.3g})"
        warning = note if warning is None else f"{note}; {warning}"
    return LRRangeTestResult(
        lrs=lr_done, losses=np.array(loop.losses, dtype=float), smoothed=smoothed,
        val_losses=np.array(loop.val_losses, dtype=float) if with_val else None,
        suggestions=dict(found.values), suggested=found.suggested, method=method, band=found.band,
        stopped_early=loop.stop_reason != "finished", stop_reason=loop.stop_reason,
        stopped_at=(n if n else None) if loop.stop_reason != "finished" else None,
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
