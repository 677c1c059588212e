"""Sinks: what listens to a run's events and records them somewhere (the store, TensorBoard, MLflow).

A ``Sink`` attaches to a Trainer (or a range test, or any ``EventBus``) from outside, in the
shape of ignite's ``BaseLogger``: ``attach(trainer_or_bus)`` returns the handles,
``handle(event, record)`` is called per event (a search driver may also feed it records it
received from an executor), ``close()`` releases what the sink holds. Every sink names its
metrics with :func:`metric_rows`, so the store, TensorBoard and MLflow agree:

- LOG rows: ``loss`` -> ``train/loss``, ``lr`` -> ``lr``, ``smoothed`` -> ``train/smoothed``,
  ``val_loss`` -> ``val/loss``, any other number under its own name;
- EPOCH: ``train_loss`` -> ``train/epoch_loss``;
- EVAL: ``val_<metric>`` -> ``val/<metric>`` (``val/loss``, ``val/accuracy``).

``StoreSink`` writes a :class:`Store`. Attached to a Trainer it adds the run's row at once
(so even a run that fails on its first batch is recorded) and gives the trainer its run id.

Example:
    >>> import tempfile, tunewidgets as tw
    >>> from tunewidgets.tracking import Store, StoreSink
    >>> store = Store(tempfile.mkdtemp())
    >>> sink = StoreSink(store, study="demo")
    >>> run = tw.engine.train(tw.tasks.spirals(), tw.TrainConfig(epochs=1, device="cpu"), callbacks=[sink])
    >>> run.run_id == sink.run_id, store.run(run.run_id)["status"]
    (True, 'finished')
    >>> sorted(set(store.metrics(run.run_id)["name"]))[:3]
    ['lr', 'train/epoch_loss', 'train/loss']
    >>> store.close()
"""
from __future__ import annotations

import numbers
import warnings
from collections.abc import Mapping
from functools import partial
from typing import Any

from tunewidgets.engine.control import StopRun
from tunewidgets.engine.devices import resolve_device
from tunewidgets.engine.env import environment
from tunewidgets.engine.events import EventBus, Events, Handle, HOST_EVENTS
from tunewidgets.engine.status import FAILED, FINISHED
from tunewidgets.tracking.metric_names import EPOCH_LOSS, VAL_PREFIX, metric_name
from tunewidgets.tracking.records import repro_record
from tunewidgets.tracking.store import Store

__all__ = ["Sink", "StoreSink", "attach_store", "metric_name", "metric_rows"]

_ROW_KEYS = ("step", "epoch")
_ENGINE_ROW_KEYS = {"step", "epoch", "lr", "loss"}
_RECORD_KEYS = ("run_id", "trial")


def _is_number(value: Any) -> bool:
    if isinstance(value, bool) or value is None:
        return False
    return isinstance(value, numbers.Real) or (getattr(value, "shape", None) == ()
                                               and callable(getattr(value, "item", None)))


def metric_rows(event: Events | str, record: Mapping[str, Any]) -> list[tuple[Any, Any, str, Any]]:
    """``(step, epoch, name, value)`` for every metric ``record`` of ``event`` holds (see the module doc)."""
    event = Events(event)
    if event is Events.LOG:
        out = []
        for row in record.get("rows") or ():
            step, epoch = row.get("step"), row.get("epoch")
            if step is not None and step < 0:
                _negative(step, row)
            for key, value in row.items():
                if key not in _ROW_KEYS and (type(value) is float or _is_number(value)):
                    out.append((step, epoch, metric_name(key), value))
        return out
    if event is Events.EPOCH:
        value = record.get("train_loss")
        return [(record.get("step"), record.get("epoch"), EPOCH_LOSS, value)] if _is_number(value) else []
    if event is Events.EVAL:
        step, epoch = record.get("step"), record.get("epoch")
        if step is not None and step < 0:
            _negative(step, record)
        return [(step, epoch, metric_name(key), value) for key, value in record.items()
                if key.startswith(VAL_PREFIX) and len(key) > 4 and _is_number(value)]
    return []


def _negative(step: Any, row: Mapping[str, Any]) -> None:
    raise ValueError(f"step: must be a whole number >= 0 (steps are counted from the run's start), got {step} "
                     f"in {dict(row)!r}")


class Sink:
    """Base of every sink: attach to a run's events, ``handle`` each, ``close`` at the end.

    Subclasses override ``on_start``, ``on_log``, ``on_epoch``, ``on_eval``, ``on_end``;
    ``attached(target)`` is called once per attach. Sinks see host-side records only (never
    STEP, whose loss is still on the device).

    A sink that fails never stops the run, and every sink records its failure the same way:
    ``handle`` catches the error, keeps ``"<destination>: writing <where()> failed (...)"`` in
    ``errors``, warns once (``RuntimeWarning``), calls ``on_failure(exc)`` (release what it
    holds) and ignores the run's later records. ``destination`` names where the sink writes
    (``store``, ``tensorboard``, ``mlflow``), ``where()`` the file, folder or URI.

    Example:
        >>> import warnings
        >>> class Broken(Sink):
        ...     destination = "demo"
        ...     def on_log(self, record):
        ...         raise OSError(28, "No space left on device")
        >>> sink = Broken()
        >>> with warnings.catch_warnings(record=True):
        ...     sink.handle("log", {"rows": []}); sink.handle("log", {"rows": []})
        >>> sink.errors
        ['demo: writing demo failed (OSError: [Errno 28] No space left on device)']
    """

    events: tuple[Events, ...] = HOST_EVENTS
    destination: str = "sink"

    def __init__(self) -> None:
        self.handles: list[Handle] = []
        self.trainer: Any = None
        self.errors: list[str] = []

    def where(self) -> str:
        """The file, folder or URI this sink writes (named in its errors)."""
        return self.destination

    def attach(self, target: Any) -> list[Handle]:
        """Listen to ``target`` (a Trainer, anything with a ``bus``, or an EventBus); returns the handles."""
        bus = getattr(target, "bus", target)
        if not isinstance(bus, EventBus):
            raise TypeError(f"{type(self).__name__}.attach: expected a Trainer or an EventBus, got "
                            f"{type(target).__name__}")
        self.trainer = target if target is not bus else None
        handles = [bus.on(event, partial(self.handle, event)) for event in self.events]
        self.handles.extend(handles)
        self.attached(target)
        return handles

    def attached(self, target: Any) -> None:
        """Called after ``attach``; a sink that gives the run its id does it here."""

    def handle(self, event: Events | str, record: dict[str, Any]) -> None:
        """Hand one record to ``on_<event>``; a failure is recorded (see the class doc), never raised."""
        if self.errors:
            return
        try:
            method = getattr(self, "on_" + Events(event).value, None)
            if method is not None:
                method(record)
        except StopRun:  # a sink may end the run on purpose (a user's own)
            raise
        except Exception as exc:  # noqa: BLE001 - a sink must not end the run it records
            self.failed(exc)

    def failed(self, exc: BaseException) -> None:
        """Record that writing failed with ``exc`` (kept in ``errors``, warned once) and call ``on_failure``."""
        message = f"{self.destination}: writing {self.where()} failed ({type(exc).__name__}: {exc})"
        if not self.errors:
            warnings.warn(f"{message}; the run goes on, but is not fully recorded there", RuntimeWarning,
                          stacklevel=3)
        self.errors.append(message)
        try:
            self.on_failure(exc)
        except Exception:  # noqa: BLE001 - the destination itself is broken; nothing more to do
            pass

    def on_failure(self, exc: BaseException) -> None:
        """Called once writing has failed: release what the sink holds (a writer, a buffer)."""

    def remove(self) -> None:
        """Detach from every bus (the sink stays usable: attach it again)."""
        for handle in self.handles:
            handle.remove()
        self.handles.clear()

    def close(self) -> None:
        """Detach and release what the sink holds (files, clients)."""
        self.remove()

    def __enter__(self) -> "Sink":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class StoreSink(Sink):
    """Records a run's events in ``store``.

    Args:
        store: the :class:`Store` to write.
        run_id: an existing run to fill (a trial the search already added); by default the
            run is added when the sink is attached to a Trainer, or at START on a bare bus
            (every later START on that bus adds another one).
        kind, study, name, params, seed: fields of the run it adds; ``params`` are merged over
            the run's own (its config), ``seed`` defaults to the config's seed.
        repro: what the run needs to be repeated (see ``tunewidgets.tracking.records``), kept in
            the run's ``env["repro"]``; by default made from the Trainer or range test the sink is
            attached to (its config, seed, versions, device, data and model fingerprints).

    A store that cannot be written (a full disk, a read-only file) does not stop training: the
    error is kept in ``errors``, a warning says so once, and the sink stops writing that run
    (marked ``failed`` where the store still takes that), as every :class:`Sink` does.
    """

    destination = "store"

    def __init__(self, store: Store, run_id: int | None = None, *, kind: str = "train",
                 study: str | None = None, name: str | None = None,
                 params: Mapping[str, Any] | None = None, seed: int | None = None,
                 repro: Mapping[str, Any] | None = None) -> None:
        super().__init__()
        if not isinstance(store, Store):
            raise TypeError(f"store: expected a tunewidgets Store, got {type(store).__name__}; "
                            "open one with tw.Store('tunewidgets-runs')")
        if params is not None and not isinstance(params, Mapping):
            raise TypeError(f"params: expected a dict or None, got {params!r}")
        if not isinstance(kind, str) or not kind.strip():
            raise ValueError(f"kind: must be a non-empty string such as 'train' or 'trial', got {kind!r}")
        if run_id is not None:
            run_id = store.run(run_id)["id"]  # checks it exists
        self.store = store
        self.run_id: int | None = run_id
        self.kind, self.study, self.name, self.seed = kind, study, name, seed
        self.params = dict(params or {})
        self.repro = dict(repro) if repro is not None else None
        self._preset = run_id
        self._active = run_id is not None

    # ------------------------------------------------------------ run id
    def attached(self, target: Any) -> None:
        if self.trainer is None:
            return
        trainer = self.trainer
        if self.run_id is None and getattr(trainer, "run_id", None) is not None:
            self.run_id = self._preset = self.store.run(trainer.run_id)["id"]
        if self.run_id is None:
            params = {**dict(getattr(trainer, "params", None) or {}), **self.params}
            device = getattr(trainer, "device", None)
            if device is None:
                device = getattr(getattr(trainer, "config", None), "device", None)
                device = resolve_device(device) if isinstance(device, str) else None
            env = environment(device) if device is not None else None
            if self.repro is None:
                self.repro = _repro_of(trainer)
            self.run_id = self._preset = self._add_run(params, params.get("seed"), env)
        trainer.run_id = self.run_id
        self._active = True

    def _add_run(self, params: dict[str, Any], seed: Any, env: Any) -> int:
        seed = self.seed if self.seed is not None else seed
        if isinstance(seed, bool) or not isinstance(seed, numbers.Integral):
            seed = None
        env = dict(env) if isinstance(env, Mapping) else {}
        if self.repro is not None:
            env["numpy"] = (self.repro.get("versions") or {}).get("numpy")
            env["repro"] = self.repro
        return self.store.start_run(kind=self.kind, study=self.study, name=self.name, params=params,
                                    seed=seed, env=env or None)

    # ------------------------------------------------------------ events
    def where(self) -> str:
        return str(self.store.path)

    def on_failure(self, exc: BaseException) -> None:
        self._active = False
        if self.run_id is not None:
            self.store.set_status(self.run_id, FAILED)

    def on_start(self, record: dict[str, Any]) -> None:
        if self._preset is not None:
            self.run_id, self._preset = self._preset, None
        else:
            given = record.get("params")
            params = {**(dict(given) if isinstance(given, Mapping) else {}), **self.params}
            self.run_id = self._add_run(params, params.get("seed"), record.get("env"))
        self._active = True
        record["run_id"] = self.run_id

    def on_log(self, record: dict[str, Any]) -> None:
        if not self._active:
            return
        rows = record.get("rows") or ()
        if rows and all(_ENGINE_ROW_KEYS == r.keys() for r in rows):
            # the engine's own rows: two metrics each, built without per-value checks
            run = self.run_id
            self.store.log_checked(run, [(run, r["step"], r["epoch"], "train/loss", float(r["loss"]))
                                        for r in rows]
                                   + [(run, r["step"], r["epoch"], "lr", float(r["lr"])) for r in rows])
            return
        self._write(metric_rows(Events.LOG, record))

    def on_epoch(self, record: dict[str, Any]) -> None:
        if self._active:
            self._write(metric_rows(Events.EPOCH, record))

    def on_eval(self, record: dict[str, Any]) -> None:
        if self._active:
            self._write(metric_rows(Events.EVAL, record))

    def on_end(self, record: dict[str, Any]) -> None:
        if not self._active or self.run_id is None:
            return
        self._active = False
        final, perf = record.get("final"), record.get("perf")
        self.store.finish_run(
            self.run_id, record.get("status", FINISHED),
            final=final if isinstance(final, Mapping) else None,
            error=record.get("error"),
            perf=perf if isinstance(perf, Mapping) else None)

    def _write(self, rows: list[tuple[Any, Any, str, Any]]) -> None:
        if rows and self.run_id is not None:
            self.store.log_metrics(self.run_id, rows)


def _repro_of(target: Any) -> dict[str, Any] | None:
    """The repro record of a Trainer or range test; a fingerprint that fails is recorded, not raised."""
    try:
        return repro_record(target)
    except Exception as exc:  # noqa: BLE001 - an odd dataset must not stop the run from training
        return {"error": f"could not describe the run for repeating it: {type(exc).__name__}: {exc}"}


def attach_store(bus: EventBus, store: Store, *, kind: str = "train", study: str | None = None,
                 name: str | None = None, params: Mapping[str, Any] | None = None,
                 seed: int | None = None, run_id: int | None = None) -> StoreSink:
    """A :class:`StoreSink` listening to ``bus``; ``remove()`` (or leaving a ``with`` block) detaches it."""
    sink = StoreSink(store, run_id, kind=kind, study=study, name=name, params=params, seed=seed)
    sink.attach(bus)
    return sink
