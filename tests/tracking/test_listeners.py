"""``callbacks=``: the same listener shapes for ``tw.train``, ``tw.lr_range_test`` and ``tw.search``."""
from __future__ import annotations

import pytest
from sink_helpers import one_torch_thread  # noqa: F401

import tunewidgets as tw
from tunewidgets.engine.events import Events
from tunewidgets.tracking.listeners import record_handlers, run_callbacks
from tunewidgets.tracking.sink import Sink

CPU = tw.TrainConfig(epochs=1, device="cpu")


def call(facade, tmp_path, callbacks):
    task = tw.tasks.spirals()
    if facade == "train":
        return tw.train(task, CPU, callbacks=callbacks)
    if facade == "lr_range_test":
        return tw.lr_range_test(task, steps=10, device="cpu", callbacks=callbacks)
    return tw.search(task, {"lr": tw.space.Choice([0.05])}, base=CPU, strategy="grid", store=tmp_path,
                     background=False, callbacks=callbacks)


class Ends(Sink):
    def __init__(self):
        super().__init__()
        self.statuses = []

    def on_end(self, record):
        self.statuses.append(record["status"])


class HandleOnly:
    def __init__(self):
        self.events = []

    def handle(self, event, record):
        self.events.append(Events(event).value)


@pytest.mark.parametrize("facade", ["train", "lr_range_test", "search"])
def test_every_facade_takes_the_same_shapes(tmp_path, facade):
    seen, ends, sink, handle_only = [], [], Ends(), HandleOnly()
    shapes = [lambda event, record: seen.append(event),  # fn(event, record)
              {"end": lambda record: ends.append(record["status"]), Events.START: lambda record: None},
              sink, handle_only]
    call(facade, tmp_path, shapes)
    assert seen[0] == "start" and seen[-1] == "end" and "log" in seen
    assert ends == ["finished"] and sink.statuses == ["finished"]
    assert handle_only.events == seen  # a sink with only handle() sees what a callable sees
    one = []
    call(facade, tmp_path / "again", lambda event, record: one.append(event))  # a single listener, unwrapped
    assert one == seen


@pytest.mark.parametrize("facade", ["train", "lr_range_test", "search"])
@pytest.mark.parametrize("bad, message", [(42, "callbacks: 42 is not a listener"),
                                          ({"finish": print}, "callbacks: unknown event 'finish'"),
                                          ({"end": 3}, "callbacks: the handler of 'end' is not callable")])
def test_a_bad_listener_is_refused_the_same_way_before_any_run(tmp_path, facade, bad, message):
    with pytest.raises((TypeError, ValueError), match=message):
        call(facade, tmp_path, [bad])
    assert not (tmp_path / "runs.sqlite").exists() or tw.Store(tmp_path).runs().empty


def test_the_two_forms():
    got = []
    fn = lambda event, record: got.append((event, record["x"]))  # noqa: E731
    handlers = record_handlers([fn, {"eval": lambda record: got.append(("dict", record["x"]))}])
    for handler in handlers:
        handler("eval", {"x": 1})
        handler("end", {"x": 2})
    assert got == [("eval", 1), ("end", 2), ("dict", 1)]
    attached = run_callbacks([fn, {"end": print}, Ends()])
    assert [hasattr(a, "attach") or isinstance(a, dict) for a in attached] == [True, True, True]
