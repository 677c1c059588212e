"""Executors: where and how trials train. The search loop talks only to this interface.

The loop hands an executor :class:`TrialSpec` objects with ``submit`` (at most ``slots`` at a
time) and collects :class:`TrialOutcome` objects with ``wait``. While a trial trains, the
executor forwards its host-side records (START, LOG, EPOCH, EVAL, END, each with ``run_id`` and
``trial``) to the loop's ``report(spec, event, record)``; the loop alone writes the store and
feeds the sampler and the pruner. ``report`` may raise ``StopRun("pruned")`` (the pruner's
verdict, on an EVAL record): the executor ends that trial with that status.

- ``local`` (:class:`LocalExecutor`): one trial at a time, in the calling thread, on the
  config's device; records are forwarded as the trial fires them, so a ``StopRun`` raised by
  ``report`` propagates straight out of the trial's EVAL handler.

- ``fused`` (:class:`~tunewidgets.hpo.fused_executor.FusedExecutor`, ``FusedExecutor(k)``):
  ``slots = k``; ``submit`` collects trials and ``wait`` trains same-shape ones side by side
  (``torch.func`` vmap over stacked parameters, one device), forwarding each trial's records
  under its own ``run_id`` and dropping a trial from the stack when ``report`` prunes it.

- ``ray`` (:class:`~tunewidgets.hpo.ray_executor.RayExecutor`, ``tw.hpo.RayExecutor()``):
  ``slots`` = the CPU and GPU shares the cluster holds; ``submit`` starts the trial on a reused
  Ray actor, which streams its records back; ``wait`` hands them to ``report`` on the driver
  and turns a ``StopRun`` from it into the remote trial's stop (see that module).

Failures stay inside the trial: an exception (CUDA out-of-memory included: the memory is freed
first) makes a ``failed`` outcome with its traceback, and the search goes on.

Example:
    >>> import tunewidgets as tw
    >>> from tunewidgets.engine.control import RunStop
    >>> from tunewidgets.hpo.executors import LocalExecutor, TrialSpec
    >>> seen = []
    >>> ex = LocalExecutor()
    >>> ex.open(tw.tasks.spirals(), lambda spec, event, record: seen.append(event))
    >>> ex.submit(TrialSpec("demo", 0, {"lr": 0.05}, tw.TrainConfig(lr=0.05, epochs=1, device="cpu"),
    ...                     run_id=None, stop=RunStop()))
    >>> [o.status for o in ex.wait()], seen
    (['finished'], ['start', 'log', 'epoch', 'eval', 'end'])
"""
from __future__ import annotations

import abc
import difflib
import gc
import importlib
import sys
import time
import traceback
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar

import torch

from tunewidgets.engine.config import TrainConfig
from tunewidgets.engine.control import RunStop
from tunewidgets.engine.events import emit
from tunewidgets.engine.loop import Trainer
from tunewidgets.engine.task import Task

__all__ = ["TrialSpec", "TrialOutcome", "Report", "Executor", "LocalExecutor", "FusedExecutor", "EXECUTORS",
           "make_executor"]


@dataclass
class TrialSpec:
    """One trial to train: its number (``trial``, as in its records), values, full config, store run id
    and stop flag. ``number`` is the same number under its former name (read-only)."""

    study: str
    trial: int
    params: dict[str, Any]
    config: TrainConfig
    run_id: int | None
    stop: RunStop

    @property
    def number(self) -> int:
        """The trial's number: the former name of ``trial``."""
        return self.trial


@dataclass
class TrialOutcome:
    """How a trial ended: status (finished, pruned, failed, diverged, stopped), final metrics, error."""

    spec: TrialSpec
    status: str
    final: dict[str, Any] = field(default_factory=dict)
    error: str | None = None
    reason: str | None = None
    perf: dict[str, Any] = field(default_factory=dict)
    seconds: float = 0.0


Report = Callable[[TrialSpec, str, dict[str, Any]], None]


class Executor(abc.ABC):
    """Runs trials for a search; see the module docstring for the contract."""

    name: ClassVar[str] = ""
    slots: int = 1

    def open(self, task: Task, report: Report) -> None:
        """Called once before the first ``submit``: the task every trial trains, and where records go."""
        self.task, self.report = task, report

    @abc.abstractmethod
    def submit(self, spec: TrialSpec) -> None:
        """Take a trial; called only while ``free_slots() > 0``."""

    @abc.abstractmethod
    def wait(self, timeout: float | None = None) -> list[TrialOutcome]:
        """Block until at least one submitted trial has ended (or ``timeout``); return those that did."""

    @abc.abstractmethod
    def in_flight(self) -> int:
        """Trials submitted and not yet returned by ``wait``."""

    def free_slots(self) -> int:
        return self.slots - self.in_flight()

    def close(self) -> None:
        """Release workers and devices; called once when the search ends."""


class LocalExecutor(Executor):
    """One trial at a time in the calling thread (the search's thread), on the config's device."""

    name = "local"

    def __init__(self) -> None:
        self._queue: deque[TrialSpec] = deque()

    def submit(self, spec: TrialSpec) -> None:
        if self._queue:
            raise RuntimeError("LocalExecutor runs one trial at a time; call wait() before submitting another")
        self._queue.append(spec)

    def in_flight(self) -> int:
        return len(self._queue)

    def wait(self, timeout: float | None = None) -> list[TrialOutcome]:
        if not self._queue:
            return []
        spec = self._queue.popleft()
        return [self.run_trial(spec)]

    def run_trial(self, spec: TrialSpec) -> TrialOutcome:
        """Train one trial and return its outcome; exceptions become ``failed`` outcomes."""
        t0 = time.perf_counter()
        report = self.report

        def forward(event: str, record: dict[str, Any]) -> None:
            if event == "end" and record.get("status") == "failed" and isinstance(sys.exc_info()[1],
                                                                                     KeyboardInterrupt):
                # an interrupt (Ctrl-C, "interrupt kernel") stops the trial: it did not fail
                record = {**record, "status": "stopped", "reason": "interrupted (KeyboardInterrupt)"}
            report(spec, event, record)

        trainer = None
        try:
            trainer = Trainer(self.task, spec.config, stop=spec.stop, run_id=spec.run_id, trial=spec.trial)
            emit(trainer, forward)
            run = trainer.fit()
            return TrialOutcome(spec, run.status, dict(run.final), run.error, run.reason, dict(run.perf),
                                time.perf_counter() - t0)
        except Exception as exc:  # noqa: BLE001 - a failing trial never ends the search
            oom = isinstance(exc, torch.cuda.OutOfMemoryError)
            error = "".join(traceback.format_exception(exc))
            reason = "CUDA out of memory" if oom else f"{type(exc).__name__}: {exc}"
        # out of the except block, so that the exception (whose frames hold the model, optimizer
        # and activations) is no longer referenced; then collect, and empty the CUDA cache
        trainer = None
        _free_memory()
        return TrialOutcome(spec, "failed", error=error, reason=reason, seconds=time.perf_counter() - t0)


def _free_memory() -> None:
    """Drop what a failed trial left behind: its frames (model, optimizer, activations), then the CUDA cache."""
    gc.collect()
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        torch.cuda.synchronize()
        torch.cuda.empty_cache()


EXECUTORS: dict[str, type[Executor]] = {"local": LocalExecutor}
# made by name from their modules, which import their optional dependency only when one is made
_ELSEWHERE = {"ray": ("tunewidgets.hpo.ray_executor", "RayExecutor")}


def make_executor(executor: Any) -> Executor:
    """An executor from a name (``"local"``; ``"ray"``: a ``RayExecutor()`` with its defaults) or an
    :class:`Executor` instance (taken as is)."""
    if isinstance(executor, Executor):
        return executor
    if isinstance(executor, type) and issubclass(executor, Executor):
        return executor()
    if not isinstance(executor, str):
        raise TypeError(f"executor: expected a name ({', '.join(EXECUTORS)}) or an Executor, "
                        f"got {type(executor).__name__} {executor!r}")
    if executor in EXECUTORS:
        return EXECUTORS[executor]()
    if executor in _ELSEWHERE:
        module, cls = _ELSEWHERE[executor]
        return getattr(importlib.import_module(module), cls)()
    names = [*EXECUTORS, *_ELSEWHERE]
    close = difflib.get_close_matches(executor, names, n=1)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    raise ValueError(f"executor: unknown executor {executor!r}{hint}; use one of: {', '.join(names)}")


# registered here, after the names it builds on (it subclasses Executor and trains fallbacks locally)
from tunewidgets.hpo.fused_executor import FusedExecutor  # noqa: E402

EXECUTORS["fused"] = FusedExecutor
