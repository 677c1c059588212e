"""``callbacks=``: the one set of listener shapes ``tw.train``, ``tw.lr_range_test`` and ``tw.search`` take.

Each of them accepts, alone or in a list:

- a sink (a :class:`~tunewidgets.tracking.Sink`, or any object with ``attach(run)`` or
  ``handle(event, record)``): attached to a run, or fed a search's records;
- a dict ``{event: handler}``: ``handler(record)`` for those events (``"epoch"``, ``Events.END``...);
- a callable ``fn(event, record)``: every host-side record (START, LOG, EPOCH, EVAL, END).

:func:`run_callbacks` turns them into what a run attaches (``Trainer(callbacks=...)``, the range
test's), :func:`record_handlers` into ``fn(event, record)`` callables for a driver that feeds
records (a search). Anything else is a TypeError naming ``callbacks``, before any run.

Example:
    >>> import tunewidgets as tw
    >>> seen = []
    >>> shapes = [lambda event, record: seen.append(event), {"end": lambda record: seen.append("END")}]
    >>> run = tw.train(tw.tasks.spirals(), tw.TrainConfig(epochs=1, device="cpu"), callbacks=shapes)
    >>> seen
    ['start', 'log', 'epoch', 'eval', 'end', 'END']
    >>> handlers = record_handlers(shapes)
    >>> seen.clear(); [h("end", {}) for h in handlers] and seen
    ['end', 'END']
"""
from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

from tunewidgets.engine.events import Events, emit

__all__ = ["run_callbacks", "record_handlers", "Forward"]

Handler = Callable[[str, dict[str, Any]], Any]
_HELP = ("a sink (attach(run) or handle(event, record)), a dict {event: handler(record)} or a callable "
         "fn(event, record); e.g. callbacks=[{'epoch': print}]")


def _items(callbacks: Any) -> list[Any]:
    if callbacks is None:
        return []
    if isinstance(callbacks, (str, bytes, Mapping)) or callable(callbacks) or hasattr(callbacks, "attach") \
            or hasattr(callbacks, "handle") or not isinstance(callbacks, Iterable):
        callbacks = [callbacks]
    out = []
    for cb in callbacks:
        if isinstance(cb, Mapping):
            out.append({_event(e): _callable(h, e) for e, h in cb.items()})
        elif hasattr(cb, "attach") or callable(getattr(cb, "handle", None)) or callable(cb):
            out.append(cb)
        else:
            raise TypeError(f"callbacks: {cb!r} is not a listener; give {_HELP}")
    return out


def _event(event: Any) -> str:
    try:
        return Events(event).value
    except ValueError:
        raise ValueError(f"callbacks: unknown event {event!r}; use one of: "
                         f"{', '.join(e.value for e in Events)}") from None


def _callable(handler: Any, event: Any) -> Any:
    if not callable(handler):
        raise TypeError(f"callbacks: the handler of {event!r} is not callable, got {handler!r}; give {_HELP}")
    return handler


class Forward:
    """A callable ``fn(event, record)`` as a run's listener: ``attach(run)`` forwards the host records (``emit``)."""

    def __init__(self, fn: Handler) -> None:
        self.fn = fn

    def attach(self, run: Any) -> list[Any]:
        return emit(run, self.fn)


def run_callbacks(callbacks: Any) -> list[Any]:
    """``callbacks=`` as a run attaches them: sinks (``attach``), ``{event: handler}`` dicts, and
    callables wrapped in :class:`Forward` (a sink with only ``handle`` is forwarded to it)."""
    out: list[Any] = []
    for cb in _items(callbacks):
        if isinstance(cb, Mapping) or hasattr(cb, "attach"):
            out.append(cb)
        elif callable(getattr(cb, "handle", None)):
            out.append(Forward(cb.handle))
        else:
            out.append(Forward(cb))
    return out


def record_handlers(callbacks: Any) -> list[Handler]:
    """``callbacks=`` as ``fn(event, record)`` callables, for a driver that feeds records (a search)."""
    out: list[Handler] = []
    for cb in _items(callbacks):
        if isinstance(cb, Mapping):
            out.append(_by_event(cb))
        elif callable(getattr(cb, "handle", None)):
            out.append(cb.handle)
        elif callable(cb) and not hasattr(cb, "attach"):
            out.append(cb)
        else:
            raise TypeError(f"callbacks: {cb!r} only attaches to a run (attach(run)), and a search feeds records; "
                            "give it a handle(event, record) method, or pass fn(event, record)")
    return out


def _by_event(handlers: Mapping[str, Any]) -> Handler:
    def call(event: str, record: dict[str, Any]) -> None:
        handler = handlers.get(Events(event).value)
        if handler is not None:
            handler(record)

    return call
