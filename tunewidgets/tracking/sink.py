"""``StoreSink``: writes a run's events (see ``tunewidgets.engine.events``) into a :class:`Store`.

Events and what they write:

- START: adds the run (params from ``record["params"]``, merged with the sink's own;
  env from ``record["env"]``) and puts its id into ``record["run_id"]``.
- LOG: each row of ``record["rows"]``: ``loss`` as ``train/loss``, ``lr`` as ``lr``
  (any other number in a row under its own name).
- EPOCH: ``train_loss`` as ``train/epoch_loss``.
- EVAL: each ``val_<metric>`` as ``val/<metric>`` (``val/loss``, ``val/accuracy``).
- END: ``finish_run(status, final=..., error=..., perf=...)``.

Example:
    >>> import tempfile
    >>> from tunewidgets.engine.events import EventBus, Events
    >>> from tunewidgets.tracking import Store, attach_store
    >>> store, bus = Store(tempfile.mkdtemp()), EventBus()
    >>> with attach_store(bus, store, kind="train", study="demo") as sink:
    ...     start = {"params": {"lr": 0.1}, "run_id": None}
    ...     bus.fire(Events.START, start)
    ...     bus.fire(Events.LOG, {"rows": [{"step": 1, "epoch": 0, "lr": 0.1, "loss": 2.0}]})
    ...     bus.fire(Events.END, {"status": "finished", "final": {"train_loss": 2.0}})
    >>> start["run_id"] == sink.run_id, store.run(sink.run_id)["status"]
    (True, 'finished')
    >>> sorted(store.metrics(sink.run_id)["name"])
    ['lr', 'train/loss']
    >>> store.close()
"""
from __future__ import annotations

import numbers
from collections.abc import Mapping
from typing import Any

from tunewidgets.engine.events import EventBus, Events, Handle
from tunewidgets.tracking.store import Store

__all__ = ["StoreSink", "attach_store"]

_ROW_KEYS = ("step", "epoch")
_ROW_NAMES = {"loss": "train/loss", "lr": "lr"}
_ENGINE_ROW_KEYS = {"step", "epoch", "lr", "loss"}


class StoreSink:
    """Listens to a run's events and records them in ``store``.

    Args:
        store: the :class:`Store` to write.
        run_id: an existing run to fill (e.g. a trial the search already added); by
            default START adds a new run, and every later START another one.
        kind, study, name, params, seed: fields of the run START adds; ``params`` are
            merged over the record's params, ``seed`` defaults to ``params["seed"]``.
    """

    def __init__(self, store: Store, run_id: int | None = None, *, kind: str = "train",
                 study: str | None = None, name: str | None = None,
                 params: Mapping[str, Any] | None = None, seed: int | None = None) -> None:
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
        self.handles: list[Handle] = []
        self._preset = run_id
        self._active = run_id is not None

    # ------------------------------------------------------------ attaching
    def attach(self, bus: EventBus) -> "StoreSink":
        """Listen to ``bus``; ``remove()`` (or leaving a ``with`` block) detaches."""
        if not isinstance(bus, EventBus):
            raise TypeError(f"bus: expected an EventBus, got {type(bus).__name__}")
        for event, handler in ((Events.START, self.on_start), (Events.LOG, self.on_log),
                               (Events.EPOCH, self.on_epoch), (Events.EVAL, self.on_eval),
                               (Events.END, self.on_end)):
            self.handles.append(bus.on(event, handler))
        return self

    def remove(self) -> None:
        for handle in self.handles:
            handle.remove()
        self.handles.clear()

    def __enter__(self) -> "StoreSink":
        return self

    def __exit__(self, *exc: object) -> None:
        self.remove()

    # ------------------------------------------------------------ handlers
    def on_start(self, record: dict[str, Any]) -> None:
        if self._preset is not None:
            self.run_id, self._preset = self._preset, None
        else:
            given = record.get("params")
            params = {**(dict(given) if isinstance(given, Mapping) else {}), **self.params}
            seed = self.seed if self.seed is not None else params.get("seed")
            if isinstance(seed, bool) or not isinstance(seed, numbers.Integral):
                seed = None
            env = record.get("env")
            self.run_id = self.store.start_run(
                kind=self.kind, study=self.study, name=self.name, params=params, seed=seed,
                env=env if isinstance(env, Mapping) else None)
        self._active = True
        record["run_id"] = self.run_id

    def on_log(self, record: dict[str, Any]) -> None:
        if not self._active:
            return
        rows = record.get("rows") or ()
        if rows and all(_ENGINE_ROW_KEYS == r.keys() for r in rows):
            # the engine's own rows: two metrics each, built without per-value checks
            run = self.run_id
            self.store._log_clean(run, [(run, r["step"], r["epoch"], "train/loss", float(r["loss"]))
                                        for r in rows]
                                  + [(run, r["step"], r["epoch"], "lr", float(r["lr"])) for r in rows])
            return
        out = []
        for row in rows:
            step, epoch = row.get("step"), row.get("epoch")
            for key, value in row.items():
                if key not in _ROW_KEYS and (type(value) is float or _is_number(value)):
                    out.append((step, epoch, _ROW_NAMES.get(key, key), value))
        self._write(out)

    def on_epoch(self, record: dict[str, Any]) -> None:
        if not self._active:
            return
        value = record.get("train_loss")
        if _is_number(value):
            self._write([(record.get("step"), record.get("epoch"), "train/epoch_loss", value)])

    def on_eval(self, record: dict[str, Any]) -> None:
        if not self._active:
            return
        step, epoch = record.get("step"), record.get("epoch")
        self._write([(step, epoch, "val/" + key[len("val_"):], value) for key, value in record.items()
                     if key.startswith("val_") and len(key) > len("val_") and _is_number(value)])

    def on_end(self, record: dict[str, Any]) -> None:
        if not self._active or self.run_id is None:
            return
        self._active = False
        final, perf = record.get("final"), record.get("perf")
        self.store.finish_run(
            self.run_id, record.get("status", "finished"),
            final=final if isinstance(final, Mapping) else None,
            error=record.get("error"),
            perf=perf if isinstance(perf, Mapping) else None)

    def _write(self, rows: list[tuple[Any, Any, str, Any]]) -> None:
        if rows and self.run_id is not None:
            self.store.log_metrics(self.run_id, rows)


def _is_number(value: Any) -> bool:
    if isinstance(value, bool) or value is None:
        return False
    return isinstance(value, numbers.Real) or (getattr(value, "shape", None) == ()
                                               and callable(getattr(value, "item", None)))


def attach_store(bus: EventBus, store: Store, *, kind: str = "train", study: str | None = None,
                 name: str | None = None, params: Mapping[str, Any] | None = None,
                 seed: int | None = None, run_id: int | None = None) -> StoreSink:
    """A :class:`StoreSink` listening to ``bus``; its ``handles`` detach it, so does ``remove()``."""
    return StoreSink(store, run_id, kind=kind, study=study, name=name, params=params,
                     seed=seed).attach(bus)
