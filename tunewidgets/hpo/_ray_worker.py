"""The Ray side of :class:`~tunewidgets.hpo.ray_executor.RayExecutor`: a worker that trains trials.

``TrialWorker`` is a plain class; the executor makes it a Ray actor (``ray.remote(...)`` with the
trial's CPU and GPU share), one per slot, and reuses it for trial after trial, so a trial costs
no process start and no ``import torch``. It trains with :meth:`LocalExecutor.run_trial
<tunewidgets.hpo.executors.LocalExecutor.run_trial>`, the same code as a local search.

``run`` is a streaming generator: it yields ``("hello", pid, host)`` first, then
``("record", event, record)`` for every record the trial fires, and last ``("outcome", ...)``.
After each EVAL record the trial waits for the driver's verdict (``signal(key, "verdict",
...)``): ``None`` to go on, or a status that it raises as ``StopRun`` from the EVAL handler,
exactly where a local pruner raises it. ``signal(key, "stop", ...)`` sets the trial's stop
flag at any time (the search was stopped). ``skip`` records are trained but not sent: a retried
trial replays what its dead attempt already sent.

The task arrives once per worker: ``("spec", {"name", "kwargs"})`` rebuilds a built-in task,
``("pickle", bytes)`` is a user's task in cloudpickle.

Example (in this process, without Ray):
    >>> import tunewidgets as tw
    >>> from tunewidgets.hpo._ray_worker import TrialWorker, pack_task
    >>> w = TrialWorker(threads=1)
    >>> w.load("t", pack_task(tw.tasks.spirals()))
    'spirals'
    >>> fields = {"study": "s", "trial": 0, "params": {}, "config": tw.TrainConfig(epochs=1, device="cpu"),
    ...           "run_id": None}
    >>> items = w.run("0.0", "t", None, fields, skip=0)
    >>> [next(items)[0], next(items)[1], next(items)[1], next(items)[1], next(items)[1]]
    ['hello', 'start', 'log', 'epoch', 'eval']
    >>> w.signal("0.0", "verdict")   # go on
    >>> [item[1] for item in items]   # the END record, then the outcome's status
    ['end', 'finished']
"""
from __future__ import annotations

import os
import pickle
import queue
import socket
import threading
import traceback
from collections.abc import Iterator
from typing import Any

from tunewidgets.engine.control import RunStop, StopRun

__all__ = ["TrialWorker", "pack_task", "unpack_task", "TaskNotSendable"]


class TaskNotSendable(TypeError):
    """A task that cannot be sent to Ray workers (a part of it does not pickle, or a worker cannot load it).

    Example:
        >>> import threading, tunewidgets as tw
        >>> from tunewidgets.hpo._ray_worker import pack_task
        >>> task = tw.tasks.spirals()
        >>> task.spec, task.loss_kwargs = None, {"lock": threading.Lock()}   # not built-in any more
        >>> try:
        ...     pack_task(task)
        ... except TaskNotSendable as exc:
        ...     print(str(exc).split(":")[1])
         its 'loss_kwargs' (dict) cannot be sent to the Ray workers
    """


def pack_task(task: Any) -> tuple[str, Any]:
    """What the workers get of ``task``: its spec for a built-in task, else the task in cloudpickle.

    Raises :class:`TaskNotSendable` naming the field (``train``, ``model``...) that does not pickle.
    """
    spec = getattr(task, "spec", None)
    if isinstance(spec, dict) and _is_builtin(spec):
        return ("spec", {"name": spec["name"], "kwargs": dict(spec.get("kwargs") or {})})
    dumps = _cloudpickle().dumps
    try:
        return ("pickle", dumps(task))
    except Exception as exc:  # noqa: BLE001 - name the part that failed
        whole = exc
    for name, value in vars(task).items():
        try:
            dumps(value)
        except Exception as exc:  # noqa: BLE001
            raise TaskNotSendable(
                f"task: its {name!r} ({type(value).__name__}) cannot be sent to the Ray workers: "
                f"{type(exc).__name__}: {exc}; give the task only parts that pickle (build open files, "
                "locks, connections or generators inside the model factory or the dataset, not in the "
                "driver), or use executor='local'") from exc
    raise TaskNotSendable(f"task: cannot be sent to the Ray workers: {type(whole).__name__}: {whole}; "
                          "use parts that pickle, or executor='local'") from whole


def unpack_task(payload: tuple[str, Any]) -> Any:
    """The task from :func:`pack_task`'s payload (on a worker)."""
    kind, body = payload
    if kind == "spec":
        import tunewidgets.tasks

        return getattr(tunewidgets.tasks, body["name"])(**body["kwargs"])
    return pickle.loads(body)


def _is_builtin(spec: dict[str, Any]) -> bool:
    import tunewidgets.tasks

    return spec.get("name") in tunewidgets.tasks.__all__


def _cloudpickle() -> Any:
    try:
        from ray import cloudpickle
    except ImportError:  # pragma: no cover - the executor imports ray first; this serves the checks
        try:
            import cloudpickle
        except ImportError:
            import pickle as cloudpickle
    return cloudpickle


class _Channel:
    """One trial attempt's way back from the driver: its stop flag and its verdicts."""

    def __init__(self) -> None:
        self.stop = RunStop()
        self.verdicts: queue.Queue[tuple[str, str, str | None] | None] = queue.Queue()


class TrialWorker:
    """Trains trials one after another in its own process; see the module docstring."""

    def __init__(self, threads: int = 1) -> None:
        import torch

        torch.set_num_threads(max(1, int(threads)))
        self._token: str | None = None
        self._task: Any = None
        self._runs: dict[str, _Channel] = {}
        self._lock = threading.Lock()

    def load(self, token: str, payload: Any) -> str:
        """Make the task ``payload`` (or a one-element list holding its Ray object ref); returns its name."""
        with self._lock:
            if self._token != token:
                if isinstance(payload, list):
                    import ray

                    payload = ray.get(payload[0])
                self._task, self._token = unpack_task(payload), token
            return self._task.name

    def pid(self) -> int:
        return os.getpid()

    def run(self, key: str, token: str, payload: Any, fields: dict[str, Any], skip: int = 0) -> Iterator[tuple]:
        """Train one trial attempt; yields hello, its records and its outcome (see the module docstring)."""
        from tunewidgets.hpo.executors import LocalExecutor, TrialSpec

        chan = _Channel()
        self._runs[key] = chan  # before the hello: the driver signals only attempts it heard from
        yield ("hello", os.getpid(), socket.gethostname())
        task = self._task if self._token == token else self._task_for(token, payload)
        items: queue.Queue[tuple] = queue.Queue()
        count = [0]

        def report(_spec: Any, event: str, record: dict[str, Any]) -> None:
            index = count[0]
            count[0] += 1
            if index < skip:
                return
            items.put(("record", event, record))
            if event == "eval":
                verdict = chan.verdicts.get()
                if verdict is not None:
                    kind, status, reason = verdict
                    if kind == "error":
                        raise RuntimeError(reason)
                    raise StopRun(status, reason)

        def train() -> None:
            try:
                ex = LocalExecutor()
                ex.open(task, report)
                o = ex.run_trial(TrialSpec(stop=chan.stop, **fields))
                items.put(("outcome", o.status, o.final, o.error, o.reason, o.perf, o.seconds))
            except BaseException as exc:  # noqa: BLE001 - whatever happens, the driver hears of it
                items.put(("outcome", "failed", {}, "".join(traceback.format_exception(exc)),
                           f"{type(exc).__name__}: {exc}", {}, 0.0))

        thread = threading.Thread(target=train, name=f"tunewidgets-trial-{key}", daemon=True)
        thread.start()
        try:
            while True:
                item = items.get()
                yield item
                if item[0] == "outcome":
                    return
        finally:  # also when the driver cancels the generator: end the trial
            chan.stop.set("stopped", "the search ended")
            chan.verdicts.put(("stop", "stopped", "the search ended"))
            self._runs.pop(key, None)

    def _task_for(self, token: str, payload: Any) -> Any:
        self.load(token, payload)
        return self._task

    def signal(self, key: str, kind: str, status: str | None = None, reason: str | None = None) -> None:
        """From the driver: ``"verdict"`` after an EVAL record (no status: go on; else ``StopRun(status)``),
        ``"error"`` (the EVAL handler raises ``reason``), or ``"stop"`` (the trial's stop flag)."""
        chan = self._runs.get(key)
        if chan is None:
            return
        if kind == "stop":
            chan.stop.set(status or "stopped", reason)
        elif kind == "error":
            chan.verdicts.put(("error", "failed", reason))
        else:
            chan.verdicts.put(None if status is None else ("stop", status, reason))
