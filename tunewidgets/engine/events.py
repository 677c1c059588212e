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
"""
from __future__ import annotations

import enum
from collections.abc import Callable
from typing import Any

__all__ = ["Events", "EventBus", "Handle"]


class Events(str, enum.Enum):
    """Events a run fires, in this order: START, (STEP* LOG? EPOCH EVAL?)*, LOG, END.

    - START: once, before the first step; record has ``config``, ``params``, ``run``.
    - STEP: after every optimizer step; record has ``step``, ``epoch``, ``lr`` and ``loss``
      as a 0-d tensor still on the device (read it only if you accept a host sync).
    - LOG: every few steps and at the end; record ``rows`` holds host-side step records
      (``step``, ``epoch``, ``lr``, ``loss``) fetched in one batch.
    - EPOCH: after each epoch; record has ``epoch``, ``step``, ``train_loss``.
    - EVAL: after each evaluation; record has ``epoch``, ``step`` and ``val_*`` metrics.
    - END: once; record has ``status`` (finished/stopped/failed/diverged), ``final``, ``error``.
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
