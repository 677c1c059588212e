"""One place for logging destinations: checks before any run, ``logged``, a fourth destination,
one way a sink records its failure, safe study folders, and the names a store can hold."""
from __future__ import annotations

import json
import socket
import warnings

import pytest
from sink_helpers import mlflow_db, mlflow_template, mlflow_uri, one_torch_thread  # noqa: F401

import tunewidgets as tw
from tunewidgets.engine.events import EventBus, Events
from tunewidgets.tracking import Store, StoreSink, TensorBoardSink, destinations
from tunewidgets.tracking.destinations import DESTINATIONS, Destination, folder_name
from tunewidgets.tracking.mlflow_sink import MLflowSink
from tunewidgets.tracking.sink import Sink, metric_rows

CPU = tw.TrainConfig(epochs=1, device="cpu")
GRID = {"lr": tw.space.Choice([0.05])}


def closed_port() -> int:
    """A local port nothing listens on (bound, then released): a connection to it is refused at once."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def facades(tmp_path, **kwargs):
    """The three facades, each a function of its keywords (a search of one grid point, one epoch)."""
    task = tw.tasks.spirals()
    return {
        "train": lambda **kw: tw.train(task, CPU, **kwargs, **kw),
        "lr_range_test": lambda **kw: tw.lr_range_test(task, steps=10, device="cpu", **kwargs, **kw),
        "search": lambda **kw: tw.search(task, GRID, base=CPU, strategy="grid", background=False,
                                         **{"store": tmp_path / "search-runs", **kwargs, **kw}),
    }


def no_runs(folder) -> bool:
    if not (folder / "runs.sqlite").exists():
        return True
    with Store(folder) as store:
        return store.runs().empty


# ------------------------------------------------------------------ checks before any run
@pytest.mark.parametrize("facade", ["train", "lr_range_test", "search"])
def test_an_unreachable_mlflow_server_is_refused_before_any_run(tmp_path, facade):
    uri = f"http://127.0.0.1:{closed_port()}"
    run = facades(tmp_path)[facade]
    with pytest.raises(ConnectionError, match=rf"mlflow: the tracking server {uri} cannot be reached"):
        run(store=tmp_path / "search-runs", mlflow=uri)
    assert no_runs(tmp_path / "search-runs")


def test_the_reachability_check_waits_a_short_timeout(monkeypatch):
    asked = []

    def connect(address, timeout):
        asked.append((address, timeout))
        raise TimeoutError("timed out")

    monkeypatch.setattr(destinations.socket, "create_connection", connect)
    with pytest.raises(ConnectionError, match=r"mlflow: the tracking server https://mlflow\.example:8443 cannot be "
                                              r"reached \(no answer within 5 s\)"):
        destinations.resolve(mlflow="https://mlflow.example:8443")
    assert asked == [(("mlflow.example", 8443), destinations.REACH_TIMEOUT)] and destinations.REACH_TIMEOUT == 5.0


def test_a_local_mlflow_database_needs_no_server(monkeypatch, mlflow_uri):
    monkeypatch.setattr(destinations.socket, "create_connection", None)  # never called for sqlite:///
    assert destinations.resolve(mlflow=mlflow_uri)["mlflow"] == mlflow_uri


@pytest.mark.parametrize("facade", ["train", "search"])
def test_a_tensorboard_path_that_is_a_file_is_refused_before_any_run(tmp_path, facade):
    blocker = tmp_path / "events.txt"
    blocker.write_text("a file")
    with pytest.raises(ValueError, match=r"tensorboard: .*events\.txt is a file"):
        facades(tmp_path)[facade](store=tmp_path / "search-runs", tensorboard=blocker)
    assert no_runs(tmp_path / "search-runs")


def test_an_unknown_destination_keyword_is_named():
    with pytest.raises(TypeError, match=r"tensorbord: not a logging destination; use store=, tensorboard=, mlflow="):
        tw.train(tw.tasks.spirals(), CPU, tensorbord=True)


# ------------------------------------------------------------------ safe, unique study folders
def test_study_names_map_to_safe_unique_folders():
    assert folder_name("digits-lr") == "digits-lr"  # a safe name keeps its folder
    assert folder_name("x/y") != folder_name("x y") and folder_name("x/y").startswith("x-y-")
    assert folder_name("x/y") == folder_name("x/y")  # the same study: the same folder
    long = folder_name("s" * 300)
    assert len(long.encode()) <= 255 and long != folder_name("s" * 301)
    assert folder_name("bad\ud800name").startswith("bad-name-")  # even a lone surrogate has a folder


def test_searches_named_apart_log_apart(tmp_path):
    task, runs = tw.tasks.spirals(), tmp_path / "runs"
    folders = {}
    for name in ("x/y", "x y", "n" * 300):
        study = tw.search(task, GRID, base=CPU, strategy="grid", store=runs, study=name, tensorboard=True,
                          background=False)
        assert study.status == "finished"
        folders[name] = study.logged["tensorboard"]
    assert len(set(folders.values())) == 3
    for folder in folders.values():
        names = [p.name for p in (runs / "tensorboard" / folder.rsplit("/", 1)[1]).iterdir() if p.is_dir()]
        assert names == ["trial-0000"]


# ------------------------------------------------------------------ logged, and its former names
def test_results_carry_logged_and_the_old_attributes_read_it(tmp_path, mlflow_uri):
    runs = tmp_path / "runs"
    run = tw.train(tw.tasks.spirals(), CPU, store=runs, tensorboard=True, mlflow=mlflow_uri)
    assert run.logged == {"store": str(runs / "runs.sqlite"),
                          "tensorboard": str(runs / "tensorboard" / f"train-{run.run_id}"), "mlflow": mlflow_uri}
    assert run.tensorboard_dir == run.logged["tensorboard"] and run.mlflow_uri == mlflow_uri
    res = tw.lr_range_test(tw.tasks.spirals(), steps=10, device="cpu", store=runs, tensorboard=True)
    assert sorted(res.logged) == ["store", "tensorboard"] and res.mlflow_uri is None
    assert res.tensorboard_dir == str(runs / "tensorboard" / f"lr_range_test-{res.run_id}")
    study = tw.search(tw.tasks.spirals(), GRID, base=CPU, strategy="grid", store=runs, study="s",
                      tensorboard=True, background=False)
    assert study.logged == {"store": str(runs / "runs.sqlite"), "tensorboard": str(runs / "tensorboard" / "s")}
    assert study.tensorboard_dir == study.logged["tensorboard"] and study.mlflow_uri is None
    plain = tw.train(tw.tasks.spirals(), CPU)
    assert plain.logged == {} and plain.tensorboard_dir is None
    plain.mlflow_uri = "http://somewhere"  # the former attribute still sets it
    assert plain.logged == {"mlflow": "http://somewhere"}


# ------------------------------------------------------------------ a fourth destination: one entry
class JsonlSink(Sink):
    destination = "jsonl"

    def __init__(self, path, study=None):
        super().__init__()
        self.path, self.study = path, study

    def where(self):
        return str(self.path)

    def on_end(self, record):
        with open(self.path, "a") as f:
            f.write(json.dumps({"study": self.study, "trial": record.get("trial"), "status": record["status"]}) + "\n")


class Jsonl(Destination):
    keyword, label = "jsonl", "JSON lines"

    def resolve(self, value, folder):
        if value in (None, False):
            return None
        if not isinstance(value, str):
            raise TypeError(f"jsonl: expected a file name, got {value!r}")
        return folder / value

    def sink(self, resolved, *, kind, study, name, params, task, **options):
        return JsonlSink(resolved, study)


@pytest.mark.parametrize("facade", ["train", "lr_range_test", "search"])
def test_a_fourth_destination_is_one_entry(tmp_path, monkeypatch, facade):
    monkeypatch.setitem(DESTINATIONS, "jsonl", Jsonl())
    runs = tmp_path / "search-runs"
    result = facades(tmp_path)[facade](store=runs, jsonl="ends.jsonl")
    lines = [json.loads(line) for line in (runs / "ends.jsonl").read_text().splitlines()]
    assert [line["status"] for line in lines] == ["finished"]
    if facade == "search":
        assert lines[0]["trial"] == 0 and lines[0]["study"] == result.name
        assert result.logged["jsonl"] == runs / "ends.jsonl"
    else:
        assert result.logged["jsonl"] == str(runs / "ends.jsonl")
    with pytest.raises(TypeError, match="jsonl: expected a file name"):  # checked before any run
        facades(tmp_path)[facade](store=tmp_path / "other", jsonl=3)
    assert no_runs(tmp_path / "other")


def test_the_widgets_check_destinations_the_same_way(tmp_path):
    from tunewidgets.widgets._logging import Logging

    uri = f"http://127.0.0.1:{closed_port()}"
    with pytest.raises(ConnectionError, match="mlflow: the tracking server"):
        Logging(tmp_path, mlflow=uri)
    with pytest.raises(TypeError, match="store: expected a runs folder"):
        Logging(None, store_optional=False)
    assert Logging(tmp_path, tensorboard=True).kwargs() == {"store": tmp_path, "tensorboard": True}


# ------------------------------------------------------------------ one way to record a failure
def _sinks(tmp_path, mlflow_uri):
    store = Store(tmp_path / "runs")
    bus = EventBus()
    made = [StoreSink(store, kind="train"), TensorBoardSink(tmp_path / "tb"), MLflowSink(mlflow_uri, name="x")]
    for sink in made:
        sink.attach(bus)
    return store, bus, made


def test_every_sink_records_a_failure_the_same_way(tmp_path, mlflow_uri, monkeypatch):
    store, bus, sinks = _sinks(tmp_path, mlflow_uri)
    start = {"params": {}, "run_id": None, "kind": "train"}
    bus.fire(Events.START, start)
    calls = {}
    for sink in sinks:
        def broken(record, _sink=sink):
            calls[_sink.destination] = calls.get(_sink.destination, 0) + 1
            raise OSError(28, "No space left on device")

        monkeypatch.setattr(sink, "on_log", broken)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for _ in range(3):
            bus.fire(Events.LOG, {"rows": [{"step": 1, "epoch": 0, "loss": 1.0, "lr": 0.1}]})
    wheres = {"store": str(store.path), "tensorboard": str(sinks[1].run_dir), "mlflow": mlflow_uri}
    for sink in sinks:
        assert sink.errors == [f"{sink.destination}: writing {wheres[sink.destination]} failed "
                               "(OSError: [Errno 28] No space left on device)"]
    assert calls == {"store": 1, "tensorboard": 1, "mlflow": 1}  # later records are not tried again
    assert sorted(str(w.message).split(":")[0] for w in caught) == ["mlflow", "store", "tensorboard"]  # once each
    assert store.run(start["run_id"])["status"] == "failed"  # the store's row says its record is not whole
    for sink in sinks:
        sink.close()
    store.close()


def test_a_negative_step_is_refused_by_the_store_and_every_sink(tmp_path, mlflow_uri):
    with Store(tmp_path / "s") as store:
        run = store.start_run()
        with pytest.raises(ValueError, match=r"rows\[0\]\.step: must be a whole number >= 0 .* got -5"):
            store.log_metrics(run, [(-5, 0, "train/loss", 1.0)])
    with pytest.raises(ValueError, match="step: must be a whole number >= 0"):
        metric_rows("log", {"rows": [{"step": -5, "epoch": 0, "loss": 1.0}]})
    store, bus, sinks = _sinks(tmp_path, mlflow_uri)
    bus.fire(Events.START, {"params": {}, "run_id": None, "kind": "train"})
    with warnings.catch_warnings(record=True):
        warnings.simplefilter("always")
        bus.fire(Events.LOG, {"rows": [{"step": -5, "epoch": 0, "loss": 1.0, "val_loss": 2.0}]})
    for sink in sinks:
        assert len(sink.errors) == 1 and "got -5" in sink.errors[0]
        sink.close()
    assert store.metrics(sinks[0].run_id).empty
    store.close()


@pytest.mark.parametrize("field", ["study", "name"])
def test_a_lone_surrogate_in_a_name_is_named_before_any_run(tmp_path, field):
    bad = "run\ud800"
    with pytest.raises(ValueError, match=rf"{field}: 'run\\ud800' holds a character that cannot be written"):
        tw.train(tw.tasks.spirals(), CPU, store=tmp_path, **{field: bad})
    with Store(tmp_path) as store:
        with pytest.raises(ValueError, match=rf"{field}: .* a lone surrogate"):
            store.start_run(**{field: bad})
        assert store.runs().empty
    if field == "study":
        with pytest.raises(ValueError, match="study: .* a lone surrogate"):
            tw.search(tw.tasks.spirals(), GRID, base=CPU, strategy="grid", store=tmp_path, study=bad,
                      background=False)


# ------------------------------------------------------------------ one store opening
def test_one_way_opens_a_store(tmp_path):
    opened, owned = destinations.opened_store(tmp_path / "a")
    assert isinstance(opened, Store) and owned
    again, owned_again = destinations.opened_store(opened)
    assert again is opened and not owned_again
    opened.close()
    with pytest.raises(ValueError, match="is closed"):
        destinations.opened_store(opened)
    assert destinations.opened_store(None) == (None, False)
    with pytest.raises(TypeError, match="a search keeps every trial in a store"):
        destinations.opened_store(None, required=True)
    with destinations.open_store(tmp_path / "b") as store:
        assert not store.closed
    assert store.closed
