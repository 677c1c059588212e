from __future__ import annotations

import pytest

from tunewidgets.engine.events import EventBus, Events


def test_handlers_run_in_attach_order_and_detach():
    bus = EventBus()
    calls = []
    h1 = bus.on(Events.STEP, lambda r: calls.append(("a", r["step"])))
    bus.on("step", lambda r: calls.append(("b", r["step"])))
    bus.fire(Events.STEP, {"step": 1})
    h1.remove()
    bus.fire(Events.STEP, {"step": 2})
    assert calls == [("a", 1), ("b", 1), ("b", 2)]


def test_handle_as_context_manager_detaches_on_exit():
    bus = EventBus()
    calls = []
    with bus.on(Events.END, calls.append):
        assert bus.has(Events.END)
        bus.fire(Events.END, {"x": 1})
    assert not bus.has(Events.END)
    bus.fire(Events.END, {"x": 2})
    assert calls == [{"x": 1}]


def test_removing_twice_is_harmless():
    bus = EventBus()
    h = bus.on(Events.EPOCH, print)
    h.remove()
    h.remove()
    assert not bus.has(Events.EPOCH)


def test_unknown_event_names_the_valid_ones():
    bus = EventBus()
    with pytest.raises(ValueError, match="unknown event 'steps'.*start, step, log, epoch, eval, end"):
        bus.on("steps", print)


def test_non_callable_handler_is_rejected():
    with pytest.raises(TypeError, match="must be callable"):
        EventBus().on(Events.STEP, 3)
