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


@pytest.mark.parametrize("bad", [print, "end", 3, [{"end": print}, object()]])
def test_callbacks_that_are_neither_sinks_nor_dicts_are_refused_before_the_run(bad):
    """The train loop and the range test take callbacks= the same way and refuse the same things;
    the facades (tw.train, tw.lr_range_test, tw.search) also take fn(event, record) callables."""
    import tunewidgets as tw

    task = tw.tasks.spirals(n=60)
    with pytest.raises(TypeError, match=r"callbacks: .* is neither an object with attach\(run\)"):
        tw.engine.Trainer(task, tw.TrainConfig(epochs=1, device="cpu"), callbacks=bad)
    if bad is print:  # a callable fn(event, record): a listener of the facades
        return
    with pytest.raises(TypeError, match=r"callbacks: .* is not a listener"):
        tw.lr_range_test(task, steps=5, device="cpu", callbacks=bad)


def test_one_dict_or_one_sink_is_taken_as_a_list_of_one():
    import tunewidgets as tw

    ends = []
    tw.lr_range_test(tw.tasks.spirals(n=60), steps=5, device="cpu", callbacks={"end": ends.append})
    tw.train(tw.tasks.spirals(n=60), tw.TrainConfig(epochs=1, device="cpu"), callbacks={"end": ends.append})
    assert [e["status"] for e in ends] == ["finished", "finished"]
