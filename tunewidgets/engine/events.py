"""A small event system: handlers attach to named events and get a handle that detaches them.

Example:
    >>> from tunewidgets.engine.events import EventBus, Events
    >>> bus = EventBus()
    >>> seen = []
    >>> with bus.on(Events.STEP, lambda rec: seen.append(rec["step"])):
    ...     bus.fire(Events.STEP, {"step": 1})
    >>> bus.fire(Events.STEP, {"step": 2})   # detached by the with block
    >>> seen
    [1]

``emit`` forwards a run's host-side records to one callable, for consumers that follow many
runs at once (a widget's queue, a search driver, a Ray worker):

    >>> got = []
    >>> handles = emit(bus, lambda event, rec: got.append((event, rec["run_id"])))
    >>> bus.fire(Events.STEP, {"step": 3, "run_id": 7})   # device tensors: never forwarded
    >>> bus.fire(Events.EVAL, {"step": 3, "val_loss": 0.5, "run_id": 7})
    >>> got
    [('eval', 7)]
"""
from __future__ import annotations

import enum
from collections.abc import Callable, Iterable, Mapping
from typing import Any

__all__ = ["Events", "EventBus", "Handle", "emit", "attach_callbacks", "HOST_EVENTS"]


class Events(str, enum.Enum):
    """Events a run fires, in this order: START, (STEP* LOG? EPOCH EVAL?)*, LOG, END.

    Every record carries ``run_id`` (the store's id, None without a store) and ``trial`` (the
    trial number in a search, else None). Steps count from 1 in every kind of run: ``step=k``
    is the k-th optimizer step, and its ``lr`` the one that step used.

    - START: once, before the first step; record has ``config``, ``params``, ``trainer``,
      ``total_steps``, ``kind`` ("train" or "lr_range_test").
    - STEP: after every optimizer step; record has ``step``, ``epoch``, ``lr`` and ``loss``
      as a 0-d tensor still on the device (read it only if you accept a host sync).
    - LOG: every few steps and at the end; record ``rows`` holds host-side step records
      (``step``, ``epoch``, ``lr``, ``loss``) fetched in one batch.
    - EPOCH: after each epoch; record has ``epoch``, ``step``, ``train_loss``.
    - EVAL: after each evaluation; record has ``epoch``, ``step`` and ``val_*`` metrics.
    - END: once; record has ``status`` (finished/stopped/pruned/diverged/failed), ``reason``,
      ``final``, ``error``, ``perf``.
    """

    START = "start"
    STEP = "step"
    LOG = "log"
    EPOCH = "epoch"
    EVAL = "eval"
    END = "end"


Handler = Callable[[dict[str, Any]], Any]


class Handle:
    """Returned by :meth:`EventBus.on`; ``remove()`` detaches, also usable as a context manager."""

    def __init__(self, bus: "EventBus", event: Events, handler: Handler) -> None:
        self._bus = bus
        self.event = event
        self.handler = handler

    def remove(self) -> None:
        handlers = self._bus._handlers.get(self.event, [])
        if self.handler in handlers:
            handlers.remove(self.handler)

    def __enter__(self) -> "Handle":
        return self

    def __exit__(self, *exc: object) -> None:
        self.remove()


class EventBus:
    """Holds handlers per event and calls them in the order they were attached."""

    def __init__(self) -> None:
        self._handlers: dict[Events, list[Handler]] = {e: [] for e in Events}

    def on(self, event: Events | str, handler: Handler) -> Handle:
        ev = _as_event(event)
        if not callable(handler):
            raise TypeError(f"handler for {ev.value!r} must be callable, got {handler!r}")
        self._handlers[ev].append(handler)
        return Handle(self, ev, handler)

    def has(self, event: Events | str) -> bool:
        return bool(self._handlers[_as_event(event)])

    def fire(self, event: Events | str, record: dict[str, Any]) -> None:
        for handler in list(self._handlers[_as_event(event)]):
            handler(record)


def _as_event(event: Events | str) -> Events:
    try:
        return Events(event)
    except ValueError:
        valid = ", ".join(e.value for e in Events)
        raise ValueError(f"event: unknown event {event!r}; use one of: {valid}") from None


#: The events ``emit`` forwards: all but STEP, whose loss is a device tensor.
HOST_EVENTS = (Events.START, Events.LOG, Events.EPOCH, Events.EVAL, Events.END)
_NOT_FORWARDED = ("trainer", "config")


def emit(target: Any, fn: Callable[[str, dict[str, Any]], Any]) -> list[Handle]:
    """Forward a run's host-side records to ``fn(event_name, record)``; returns the handles.

    ``target`` is a Trainer (anything with a ``bus``) or an EventBus. START is forwarded as a
    copy without the trainer and config objects (``params`` holds the config as a dict); LOG,
    EPOCH, EVAL and END as they are; STEP never (its loss is still on the device).
    """
    bus = getattr(target, "bus", target)
    if not isinstance(bus, EventBus):
        raise TypeError(f"emit: expected a Trainer or an EventBus, got {type(target).__name__}")
    if not callable(fn):
        raise TypeError(f"emit: fn must be callable as fn(event, record), got {fn!r}")

    def start(record: dict[str, Any]) -> None:
        fn(Events.START.value, {k: v for k, v in record.items() if k not in _NOT_FORWARDED})

    handles = [bus.on(Events.START, start)]
    for event in HOST_EVENTS[1:]:
        name = event.value
        handles.append(bus.on(event, lambda record, _name=name: fn(_name, record)))
    return handles


def attach_callbacks(run: Any, callbacks: Any, example: str = "{'epoch': print}") -> None:
    """Attach a run's ``callbacks=``: sinks (``attach(run)``) and ``{event: handler}`` dicts.

    ``callbacks`` is one of them or an iterable of them; ``run`` has a ``bus`` (a Trainer, a range
    test). Anything else is a TypeError naming ``callbacks`` before the run starts.
    """
    if callbacks is None:
        return
    if isinstance(callbacks, (str, bytes, Mapping)) or not isinstance(callbacks, Iterable):
        callbacks = [callbacks]
    for cb in callbacks:
        if hasattr(cb, "attach"):
            cb.attach(run)
        elif isinstance(cb, Mapping):
            for event, handler in cb.items():
                run.bus.on(event, handler)
        else:
            raise TypeError(f"callbacks: {cb!r} is neither an object with attach(run) (a sink) nor a dict "
                            f"{{event: handler}}; e.g. callbacks=[{example}]")
