"""``RayExecutor``: a search's trials on a Ray cluster (or a local Ray), records streamed back live.

The driver (the notebook's process) keeps the Optuna study, asks and tells, prunes and alone
writes the store; this executor only moves trials out and records back:

- one Ray actor per slot (:class:`~tunewidgets.hpo._ray_worker.TrialWorker`, with
  ``cpus_per_trial`` CPUs and ``gpus_per_trial`` GPUs), made when the search starts and reused for
  trial after trial (a fresh process per trial would cost seconds of start-up and ``import torch``);
- each trial is a streaming generator on its worker: the driver receives every record as it is
  fired and hands it to the search (``report``), so the store, live plots and the pruner see
  remote trials as local ones. After an EVAL record the trial waits for the driver's verdict, so
  a pruner's ``StopRun("pruned")`` ends it at that very epoch, as it would locally;
- ``study.stop()`` reaches the workers' stop flags (a trial halts within a step); an
  interrupted cell or a search that ends with trials in flight kills their workers;
- a worker whose process dies mid-trial is replaced; the trial is trained again from its start
  on the new worker (records the dead attempt already sent are not sent twice) up to
  ``max_retries`` times, then it is ``failed`` with the reason, and the search goes on;
- the task reaches the workers once per search: a built-in task (``tw.tasks.digits()``) by its
  spec, a user's ``tw.Task`` in cloudpickle. One that cannot be pickled, or that a worker cannot
  load (a module it cannot import), is refused before any trial, naming the part or the module.

``address=None`` starts a local Ray (or uses the one this process already started); ``"auto"``
joins the cluster of this machine, ``"ray://host:port"`` a remote one through Ray Client.

Example:
    >>> import tunewidgets as tw
    >>> ex = tw.hpo.RayExecutor(cpus_per_trial=1, max_retries=1)   # doctest: +SKIP
    >>> study = tw.search(tw.tasks.digits(), {"lr": tw.space.LogUniform(1e-3, 1e-1)},
    ...                   n_trials=8, executor=ex)   # doctest: +SKIP
    >>> tw.hpo.RayExecutor(cpus_per_trial=0)
    Traceback (most recent call last):
    ...
    ValueError: cpus_per_trial: must be a number > 0, got 0; e.g. cpus_per_trial=1 (CPUs each trial's worker holds)
"""
from __future__ import annotations

import math
import time
import uuid
from dataclasses import dataclass
from typing import Any

from tunewidgets.engine.control import StopRun
from tunewidgets.engine.task import Task
from tunewidgets.hpo._ray_worker import TaskNotSendable, TrialWorker, pack_task
from tunewidgets.hpo.executors import Executor, Report, TrialOutcome, TrialSpec

__all__ = ["RayExecutor", "TaskNotSendable"]

_POLL = 0.05  # seconds between looks at the search's stop flag while waiting for records
# idle workers kept by ``keep_workers=True`` for the next search in this process:
# {(Ray job id, cpus_per_trial, gpus_per_trial): [actor, ...]}
_POOL: dict[tuple[Any, ...], list[Any]] = {}


def import_ray() -> Any:
    """``ray``, or an ImportError that says how to install it."""
    try:
        import ray
    except ImportError as exc:
        raise ImportError("RayExecutor needs Ray: pip install tunewidgets[ray] (or pip install 'ray[default]')"
                          ) from exc
    return ray


@dataclass
class _Attempt:
    """A trial on a worker: its generator, how many records it sent, how many times it was retried."""

    spec: TrialSpec
    worker: Any = None
    gen: Any = None
    key: str = ""
    pid: int | None = None
    host: str | None = None
    sent: int = 0
    tries: int = 0
    stop_sent: bool = False
    error: str | None = None  # the search's own error on one of its records (reported as failed)
    started: float = 0.0


class RayExecutor(Executor):
    """Trials on Ray workers, as many at once as the cluster has shares; see the module docstring.

    Args:
        address: None (a local Ray, started if this process has none), ``"auto"`` (the running
            cluster of this machine) or ``"ray://host:port"``.
        cpus_per_trial, gpus_per_trial: each worker's share (fractions are allowed, e.g. 0.5 GPU).
        max_retries: times a trial whose worker died is trained again before it counts as failed.
        workers: at most this many trials at once (default: as many as the cluster's CPUs and
            GPUs hold shares).
        keep_workers: when the search ends, keep its idle workers for the next ``RayExecutor`` of
            the same shares in this process (no start-up, no ``import torch`` again); they hold
            their CPUs and GPUs until then, or until :meth:`release` or ``ray.shutdown()``.

    The settings are checked before Ray is imported or started:

    >>> import tunewidgets as tw
    >>> tw.hpo.RayExecutor(max_retries=-1)
    Traceback (most recent call last):
    ...
    ValueError: max_retries: must be a whole number >= 0, got -1; e.g. max_retries=1
    """

    name = "ray"

    def __init__(self, address: str | None = None, cpus_per_trial: float = 1, gpus_per_trial: float = 0,
                 max_retries: int = 1, workers: int | None = None, keep_workers: bool = False) -> None:
        self.address = _check_address(address)
        self.cpus_per_trial = _check_share("cpus_per_trial", cpus_per_trial, 1, "CPUs each trial's worker holds",
                                           low_ok=False)
        self.gpus_per_trial = _check_share("gpus_per_trial", gpus_per_trial, 1, "GPUs each trial's worker holds")
        self.max_retries = _check_count("max_retries", max_retries, 0, 1)
        self.workers = None if workers is None else _check_count("workers", workers, 1, 2)
        if not isinstance(keep_workers, bool):
            raise ValueError(f"keep_workers: expected True or False, got {keep_workers!r}")
        self.keep_workers = keep_workers
        self._ray = import_ray()
        self._idle: list[Any] = []
        self._running: dict[int, _Attempt] = {}
        self._done: list[TrialOutcome] = []
        self._actors: list[Any] = []
        self._token = ""
        self._closed = False

    def __repr__(self) -> str:
        return (f"RayExecutor(address={self.address!r}, cpus_per_trial={self.cpus_per_trial}, "
                f"gpus_per_trial={self.gpus_per_trial}, max_retries={self.max_retries}, workers={self.workers}, "
                f"keep_workers={self.keep_workers})")

    # ------------------------------------------------------------------ setup
    def open(self, task: Task, report: Report) -> None:
        super().open(task, report)
        payload = pack_task(task)  # refused here, before Ray starts, when a part does not pickle
        self._closed, self._running, self._done = False, {}, []  # the same executor may serve another search
        ray = self._ray
        if not ray.is_initialized():
            if self.address is None:
                ray.init(include_dashboard=False, logging_level="WARNING")
            else:
                ray.init(address=self.address, logging_level="WARNING")
        self.slots = self._count_slots()
        self._token = uuid.uuid4().hex
        self._payload = [ray.put(payload)]
        self._actor_class = ray.remote(TrialWorker).options(
            num_cpus=self.cpus_per_trial, num_gpus=self.gpus_per_trial, max_concurrency=4, max_restarts=0)
        self._pool_key = (ray.get_runtime_context().get_job_id(), self.cpus_per_trial, self.gpus_per_trial)
        kept = _POOL.pop(self._pool_key, [])
        RayExecutor.release()  # kept workers of other shares would hold the CPUs these need
        if kept[self.slots:]:  # more than this search uses (workers=): left for the next one
            _POOL[self._pool_key] = kept[self.slots:]
        self._actors = kept[:self.slots]
        fresh = [self._new_worker() for _ in range(self.slots - len(self._actors))]  # also added to _actors
        self._idle = [*kept[:self.slots], *fresh]
        self._check_loads(task)

    def _count_slots(self) -> int:
        res = self._ray.cluster_resources()
        cpus, gpus = float(res.get("CPU", 0)), float(res.get("GPU", 0))
        n = math.floor(cpus / self.cpus_per_trial + 1e-9)
        if self.gpus_per_trial:
            n = min(n, math.floor(gpus / self.gpus_per_trial + 1e-9))
        if n < 1:
            raise ValueError(f"RayExecutor: the cluster has {cpus:g} CPU(s) and {gpus:g} GPU(s), not enough for one "
                             f"trial of cpus_per_trial={self.cpus_per_trial:g}, gpus_per_trial="
                             f"{self.gpus_per_trial:g}; ask for a smaller share or add nodes")
        return n if self.workers is None else min(n, self.workers)

    def _new_worker(self) -> Any:
        actor = self._actor_class.remote(threads=max(1, round(self.cpus_per_trial)))
        self._actors.append(actor)
        return actor

    def _check_loads(self, task: Task) -> None:
        """Every worker makes the task once now: one it cannot load fails the search before any trial."""
        ray = self._ray
        try:
            ray.get([w.load.remote(self._token, self._payload) for w in self._idle])
        except ray.exceptions.RayTaskError as exc:
            cause = getattr(exc, "cause", None) or exc
            self.close()
            module = getattr(cause, "name", None)
            hint = (f"the workers cannot import {module!r}: put it on their PYTHONPATH, send it with "
                    f"ray.init(runtime_env={{'py_modules': [...]}}), or call "
                    f"ray.cloudpickle.register_pickle_by_value({module}) before the search"
                    if isinstance(cause, ModuleNotFoundError) and module else "check that it loads on every node")
            raise TaskNotSendable(f"task: the Ray workers could not load {task.name!r}: "
                                  f"{type(cause).__name__}: {cause}; {hint}") from None

    # ------------------------------------------------------------------ the interface
    def submit(self, spec: TrialSpec) -> None:
        if self._closed:
            raise RuntimeError("RayExecutor: closed (its search ended); pass it to tw.search to start another")
        if not self._idle:
            raise RuntimeError(f"RayExecutor: all {self.slots} workers are busy; call wait() before submitting")
        self._launch(_Attempt(spec, started=time.perf_counter()), self._idle.pop())

    def in_flight(self) -> int:
        return len(self._running) + len(self._done)

    def wait(self, timeout: float | None = None) -> list[TrialOutcome]:
        ray = self._ray
        deadline = None if timeout is None else time.monotonic() + timeout
        while not self._done and self._running:
            self._forward_stops()
            by_gen = {a.gen: a for a in self._running.values()}
            wait_for = _POLL if deadline is None else max(0.0, min(_POLL, deadline - time.monotonic()))
            ready, _ = ray.wait(list(by_gen), num_returns=1, timeout=wait_for)
            for gen in ready:
                self._take(by_gen[gen])
            if deadline is not None and time.monotonic() >= deadline:
                break
        done, self._done = self._done, []
        return done

    def close(self) -> None:
        """Cancel what still runs and end the workers (an interrupted or failed search leaves none behind)."""
        self._closed = True
        ray = self._ray
        for attempt in self._running.values():
            try:
                ray.cancel(attempt.gen)
            except Exception:  # noqa: BLE001 - the worker is killed next anyway
                pass
        keep = self._idle if self.keep_workers else []
        for actor in self._actors:
            if not any(actor is k for k in keep):
                _kill(ray, actor)
        if keep:
            _POOL.setdefault(self._pool_key, []).extend(keep)
        self._running.clear()
        self._idle.clear()
        self._actors.clear()

    @staticmethod
    def release() -> None:
        """End the idle workers that ``keep_workers=True`` kept in this process (their CPUs and GPUs free up)."""
        if not _POOL:
            return
        ray = import_ray()
        for actors in _POOL.values():
            for actor in actors:
                _kill(ray, actor)
        _POOL.clear()

    def worker_pid(self, number: int) -> int | None:
        """The process id of the worker training trial ``number`` now (None when it is not running)."""
        attempt = self._running.get(number)
        return None if attempt is None else attempt.pid

    # ------------------------------------------------------------------ one trial's stream
    def _launch(self, attempt: _Attempt, worker: Any) -> None:
        spec = attempt.spec
        attempt.worker, attempt.pid, attempt.host, attempt.stop_sent = worker, None, None, False
        attempt.key = f"{spec.number}.{attempt.tries}"
        fields = {"study": spec.study, "trial": spec.trial, "params": spec.params, "config": spec.config,
                  "run_id": spec.run_id}
        attempt.gen = worker.run.options(num_returns="streaming").remote(
            attempt.key, self._token, self._payload, fields, attempt.sent)
        self._running[spec.number] = attempt

    def _forward_stops(self) -> None:
        for a in self._running.values():
            if a.pid is not None and not a.stop_sent and a.spec.stop.is_set():
                a.worker.signal.remote(a.key, "stop", a.spec.stop.status, a.spec.stop.reason)
                a.stop_sent = True

    def _take(self, attempt: _Attempt) -> None:
        """Take the next item of an attempt's stream: hello, a record, its outcome, or the worker's death."""
        ray = self._ray
        try:
            item = ray.get(next(attempt.gen))
        except StopIteration:  # pragma: no cover - an outcome always comes last
            item = ("outcome", "failed", {}, "the worker's stream ended without an outcome", "no outcome", {}, 0.0)
        except ray.exceptions.RayTaskError as exc:  # the worker's own code raised, outside the trial
            item = ("outcome", "failed", {}, str(exc), f"{type(exc).__name__} on the Ray worker", {}, 0.0)
        except ray.exceptions.RayError as exc:  # its process died (killed, out of memory, node lost)
            self._died(attempt, exc)
            return
        kind = item[0]
        if kind == "hello":
            attempt.pid, attempt.host = item[1], item[2]
        elif kind == "record":
            attempt.sent += 1
            self._forward(attempt, item[1], item[2])
        else:
            self._ended(attempt, item)

    def _forward(self, attempt: _Attempt, event: str, record: dict[str, Any]) -> None:
        """Hand a record to the search; after an EVAL, send the trial its verdict."""
        verdict: tuple[str, str | None, str | None] = ("verdict", None, None)
        try:
            self.report(attempt.spec, event, record)
        except StopRun as stop:  # the pruner's verdict (or a callback's)
            verdict = ("verdict", stop.status, stop.reason)
        except Exception as exc:  # noqa: BLE001 - a failing callback fails the trial, as it would locally
            attempt.error = f"{type(exc).__name__}: {exc}"
            verdict = ("error", None, attempt.error)
        stop = attempt.spec.stop
        if verdict[1] is None and verdict[0] == "verdict" and stop.is_set():
            verdict = ("verdict", stop.status, stop.reason)  # stopped by a callback on this very record
            attempt.stop_sent = True
        if event == "eval":
            attempt.worker.signal.remote(attempt.key, *verdict)
        elif verdict[1] is not None or verdict[0] == "error":
            attempt.worker.signal.remote(attempt.key, "stop", verdict[1] or "stopped", verdict[2])
            attempt.stop_sent = True

    def _ended(self, attempt: _Attempt, item: tuple) -> None:
        _, status, final, error, reason, perf, seconds = item
        if attempt.error is not None and status != "failed":
            status, error, reason = "failed", attempt.error, attempt.error
        spec = attempt.spec
        self._running.pop(spec.number, None)
        self._idle.append(attempt.worker)
        self._done.append(TrialOutcome(spec, status, dict(final or {}), error, reason, dict(perf or {}),
                                       time.perf_counter() - attempt.started))

    def _died(self, attempt: _Attempt, exc: BaseException) -> None:
        """The attempt's worker process is gone: replace it; train the trial again, or fail it."""
        ray, spec = self._ray, attempt.spec
        _kill(ray, attempt.worker)
        if attempt.worker in self._actors:
            self._actors.remove(attempt.worker)
        worker = self._new_worker()
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        where = "before it started" if attempt.pid is None else f"pid {attempt.pid}"
        where += f" on {attempt.host}" if attempt.host else ""
        if attempt.tries < self.max_retries and not spec.stop.is_set():
            attempt.tries += 1
            self._launch(attempt, worker)
            return
        self._running.pop(spec.number, None)
        self._idle.append(worker)
        reason = f"its Ray worker ({where}) died: {type(exc).__name__}"
        seconds = time.perf_counter() - attempt.started
        if spec.stop.is_set():  # the search was being stopped: the trial did not fail, it was stopped
            self._done.append(TrialOutcome(spec, "stopped", reason=f"stopped; {reason}", seconds=seconds))
            return
        tried = f" (tried {attempt.tries + 1} times, max_retries={self.max_retries})"
        self._done.append(TrialOutcome(spec, "failed", error=f"trial {spec.number}: {reason}{tried}: {first}",
                                       reason=reason, seconds=seconds))


def _kill(ray: Any, actor: Any) -> None:
    try:
        ray.kill(actor, no_restart=True)
    except Exception:  # noqa: BLE001 - it is dead already
        pass


def _check_address(address: Any) -> str | None:
    if address is None:
        return None
    if not isinstance(address, str) or not address.strip():
        raise ValueError(f"address: expected None (a local Ray), 'auto' or 'ray://host:port', got {address!r}")
    return address


def _check_share(name: str, value: Any, example: float, what: str, low_ok: bool = True) -> float:
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    if not ok or value < 0 or (value == 0 and not low_ok):
        bound = ">= 0" if low_ok else "> 0"
        raise ValueError(f"{name}: must be a number {bound}, got {value!r}; e.g. {name}={example} ({what})")
    return float(value) if not float(value).is_integer() else int(value)


def _check_count(name: str, value: Any, low: int, example: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise ValueError(f"{name}: must be a whole number >= {low}, got {value!r}; e.g. {name}={example}")
    return value
