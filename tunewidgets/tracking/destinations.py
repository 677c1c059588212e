"""Logging destinations: ``store=``, ``tensorboard=`` and ``mlflow=`` resolved into sinks, in one place.

``tw.train``, ``tw.lr_range_test``, ``tw.search`` and the widgets all call :func:`resolve` once,
before any run: it checks every value (a bad one, a missing package, an unreachable MLflow
server, a TensorBoard folder that is a file are errors naming the keyword, before any training)
and returns :class:`Destinations`, which makes each run's sinks (:meth:`Destinations.sinks`), a
search's study-level logging (:meth:`Destinations.study_log`) and, at the end, fills the result's
``logged`` mapping and ``sink_errors`` (:meth:`Destinations.finish`).

- ``store=``: a ``tw.Store`` (left open) or a runs folder / SQLite file (opened by
  :func:`open_store`, the one way a store is opened from a user's value); the runs folder is
  the store's folder, or ``tunewidgets-runs`` without one;
- ``tensorboard=True``: ``<runs folder>/tensorboard``, or a folder of your own;
- ``mlflow=True``: ``sqlite:///<runs folder>/mlflow.db``, or any tracking URI (an ``http(s)``
  server is checked reachable within :data:`REACH_TIMEOUT` seconds).

Every other destination is a :class:`Destination` in :data:`DESTINATIONS`, so a fourth one is a
sink class and one entry there; the facades take it by its keyword (``tw.train(..., jsonl=...)``)
and ``result.logged`` says where it went:

    >>> import json, os, tempfile, tunewidgets as tw
    >>> from tunewidgets.tracking.destinations import DESTINATIONS, Destination
    >>> from tunewidgets.tracking.sink import Sink, metric_rows
    >>> class JsonlSink(Sink):
    ...     destination = "jsonl"
    ...     def __init__(self, path):
    ...         super().__init__()
    ...         self.path = path
    ...     def where(self):
    ...         return self.path
    ...     def on_eval(self, record):
    ...         with open(self.path, "a") as f:
    ...             for step, epoch, name, value in metric_rows("eval", record):
    ...                 f.write(json.dumps({"step": step, "name": name, "value": value}) + "\\n")
    >>> class Jsonl(Destination):
    ...     keyword, label = "jsonl", "a JSON lines file"
    ...     def resolve(self, value, folder):
    ...         return None if value in (None, False) else str(folder / "metrics.jsonl" if value is True else value)
    ...     def sink(self, resolved, **run):
    ...         return JsonlSink(resolved)
    >>> DESTINATIONS["jsonl"] = Jsonl()          # the one entry
    >>> folder = tempfile.mkdtemp()
    >>> run = tw.train(tw.tasks.spirals(), tw.TrainConfig(epochs=2, device="cpu"), store=folder, jsonl=True)
    >>> run.logged["jsonl"] == os.path.join(folder, "metrics.jsonl"), sorted(run.logged)
    (True, ['jsonl', 'store'])
    >>> [json.loads(line)["name"] for line in open(run.logged["jsonl"])][:2]
    ['val/loss', 'val/accuracy']
    >>> del DESTINATIONS["jsonl"]
"""
from __future__ import annotations

import contextlib
import os
import socket
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from tunewidgets.tracking._params import check_name, folder_name
from tunewidgets.tracking.sink import Sink, StoreSink
from tunewidgets.tracking.store import Store

__all__ = ["resolve", "Destinations", "Destination", "DESTINATIONS", "open_store", "opened_store", "runs_folder",
           "folder_name", "check_name", "reachable", "take_destinations", "DEFAULT_RUNS", "REACH_TIMEOUT"]

DEFAULT_RUNS = "tunewidgets-runs"
REACH_TIMEOUT = 5.0  # seconds an MLflow server has to answer before a run is refused
_DB_SUFFIXES = (".sqlite", ".sqlite3", ".db")


# ------------------------------------------------------------------ names and the store
def runs_folder(store: Any = None) -> Path:
    """The folder ``tensorboard=True`` and ``mlflow=True`` write in: the store's, else ``tunewidgets-runs``."""
    if isinstance(store, Store):
        return store.folder
    if isinstance(store, (str, os.PathLike)) and not isinstance(store, bytes):
        path = Path(os.fspath(store)).expanduser()
        return path.parent if path.suffix.lower() in _DB_SUFFIXES else path
    return Path(DEFAULT_RUNS)


def _check_store(store: Any, *, required: bool = False) -> None:
    if store is None and not required:
        return
    if isinstance(store, Store):
        if store.closed:
            raise ValueError(f"store: {store.path} is closed; open it again with tw.Store(path)")
        return
    if isinstance(store, (str, os.PathLike)) and not isinstance(store, bytes) and str(store).strip():
        return
    raise TypeError(f"store: expected {'' if required else 'None, '}a runs folder such as 'tunewidgets-runs' or a "
                    f"tw.Store, got {type(store).__name__} {store!r}"
                    + ("; a search keeps every trial in a store so it can resume" if required else ""))


def opened_store(store: Any, *, required: bool = False, create: bool = True) -> tuple[Store | None, bool]:
    """``store=`` as users give it, opened: ``(store, owned)``; ``owned`` is True when this call opened
    it (the caller closes it). None gives ``(None, False)`` unless ``required``. ``create=False``
    (reading a store: a report, a rerun) opens an existing store only and creates no folder or
    database where none was.

    >>> import tempfile
    >>> store, owned = opened_store(tempfile.mkdtemp())
    >>> owned, opened_store(store) == (store, False)
    (True, True)
    >>> store.close()
    """
    _check_store(store, required=required)
    if store is None or isinstance(store, Store):
        return store, False
    return Store(store, create=create), True


@contextlib.contextmanager
def open_store(store: Any, *, required: bool = False, create: bool = True) -> Iterator[Store | None]:
    """:func:`opened_store` as a context: a store it opened is closed at the end, a ``tw.Store`` is left open."""
    opened, owned = opened_store(store, required=required, create=create)
    try:
        yield opened
    finally:
        if owned and opened is not None:
            opened.close()


# ------------------------------------------------------------------ destinations
class Destination:
    """One kind of place runs are logged to, taken by the facades as the keyword ``keyword``.

    Subclasses set ``keyword`` and ``label`` (a few words for messages) and define
    :meth:`resolve` (the user's value -> what the sinks need, None when off; raise naming the
    keyword) and :meth:`sink` (one run's sink); :meth:`check` (what needs more than the value,
    once per call) does nothing by default, :meth:`where` (``result.logged[keyword]``) is the
    sink's ``where()``.
    """

    keyword: str = ""
    label: str = ""

    def resolve(self, value: Any, folder: Path) -> Any:
        raise NotImplementedError

    def check(self, resolved: Any) -> None:
        """Checks that need more than the value (a server that answers); raise naming the keyword."""

    def sink(self, resolved: Any, *, kind: str, study: str | None, name: str | None,
             params: Mapping[str, Any] | None, task: Any, **options: Any) -> Sink:
        """One run's sink: ``kind``, ``study``, ``name`` and ``params`` file it; ``options`` are hints a
        sink may use or ignore (``images``: validation images to draw)."""
        raise NotImplementedError

    def where(self, sink: Sink, resolved: Any) -> Any:
        return sink.where()


class TensorBoard(Destination):
    keyword, label = "tensorboard", "TensorBoard"

    def resolve(self, value: Any, folder: Path) -> Path | None:
        if value is None or value is False:
            return None
        if value is True:
            logdir = folder / "tensorboard"
        elif isinstance(value, (str, os.PathLike)) and not isinstance(value, bytes) and str(value).strip():
            logdir = Path(os.fspath(value)).expanduser()
        else:
            raise TypeError(f"tensorboard: expected True, False or a folder such as 'runs/tensorboard', got "
                            f"{value!r}")
        check_name("tensorboard", str(logdir))
        blocked = next((p for p in (logdir, *logdir.parents) if p.exists() and not p.is_dir()), None)
        if blocked is not None:
            raise ValueError(f"tensorboard: {logdir} cannot be a folder: {blocked} is a file; pass a folder "
                             "(tensorboard=True writes <runs folder>/tensorboard)")
        from tunewidgets.tracking.tensorboard_sink import import_tensorboardx

        import_tensorboardx()
        return logdir

    def sink(self, resolved: Any, *, kind: str, study: str | None, name: str | None,
             params: Mapping[str, Any] | None, task: Any, images: int = 16, **options: Any) -> Sink:
        from tunewidgets.tracking.tensorboard_sink import TensorBoardSink

        return TensorBoardSink(resolved, study=study, name=name, kind=kind, params=params, images=images,
                               image_shape=getattr(task, "image_shape", None))

    def where(self, sink: Sink, resolved: Any) -> Any:
        run_dir = getattr(sink, "run_dir", None)
        return None if run_dir is None else str(run_dir)


class MLflow(Destination):
    keyword, label = "mlflow", "MLflow"

    def resolve(self, value: Any, folder: Path) -> str | None:
        if value is None or value is False:
            return None
        from tunewidgets.tracking.mlflow_sink import default_uri, import_mlflow

        if value is True:
            uri = default_uri(folder)
        elif isinstance(value, str) and ("://" in value or value.startswith("databricks")):
            uri = check_name("mlflow", value)
        else:
            raise ValueError(f"mlflow: expected True, False or a tracking URI such as 'sqlite:///runs/mlflow.db' "
                             f"or 'http://localhost:5000', got {value!r}")
        import_mlflow()
        return uri

    def check(self, resolved: Any) -> None:
        reachable(resolved)

    def sink(self, resolved: Any, *, kind: str, study: str | None, name: str | None,
             params: Mapping[str, Any] | None, task: Any, **options: Any) -> Sink:
        from tunewidgets.tracking.mlflow_sink import MLflowSink

        return MLflowSink(resolved, study=study, name=name, kind=kind, params=params)

    def where(self, sink: Sink, resolved: Any) -> Any:
        return resolved


def reachable(uri: str, timeout: float | None = None) -> None:
    """Refuse an ``http(s)`` tracking URI whose server does not accept a connection within ``timeout`` s."""
    parts = urlsplit(uri)
    if parts.scheme not in ("http", "https"):
        return
    port = parts.port or (443 if parts.scheme == "https" else 80)
    wait = REACH_TIMEOUT if timeout is None else timeout
    try:
        with socket.create_connection((parts.hostname or "localhost", port), timeout=wait):
            pass
    except OSError as exc:
        reason = f"no answer within {wait:g} s" if isinstance(exc, TimeoutError) else (exc.strerror or str(exc))
        raise ConnectionError(f"mlflow: the tracking server {uri} cannot be reached ({reason}); "
                              "start it, fix the address, or pass mlflow=True for a local MLflow database") from None


#: Where runs can be logged besides the store, by keyword; a new destination is one entry here.
DESTINATIONS: dict[str, Destination] = {"tensorboard": TensorBoard(), "mlflow": MLflow()}


class Destinations:
    """Where a call's runs are logged, checked: made by :func:`resolve`.

    Attributes:
        store: ``store=`` as given (None, a path or a ``tw.Store``); ``folder`` the runs folder.
        given: every destination's value as given (``{"tensorboard": True}``).
        resolved: the destinations that are on, resolved (``{"tensorboard": Path(...)}``).
    """

    def __init__(self, store: Any, given: Mapping[str, Any], resolved: Mapping[str, Any]) -> None:
        self.store, self.given, self.resolved = store, dict(given), dict(resolved)
        self.folder = runs_folder(store)

    def __getitem__(self, keyword: str) -> Any:
        """The resolved value of a destination (None when off)."""
        return self.resolved.get(keyword)

    def kwargs(self) -> dict[str, Any]:
        """``store=`` and the destinations as given, only the ones set (for a facade call)."""
        out = {"store": self.store, **self.given}
        return {k: v for k, v in out.items() if v is not None and v is not False}

    def sinks(self, store: Store | None = None, *, kind: str = "train", study: str | None = None,
              name: str | None = None, trial: int | None = None, run_id: int | None = None,
              params: Mapping[str, Any] | None = None, seed: int | None = None,
              repro: Mapping[str, Any] | None = None, task: Any = None, study_log: Any = None,
              images: int = 16, store_name: str | None = None) -> list[Sink]:
        """The sinks of one run: a :class:`StoreSink` on ``store`` (open; None: no store), then one per
        destination that is on (a search's trial: the ``study_log``'s). ``name`` names the run
        everywhere, ``store_name`` in the store only."""
        out: list[Sink] = []
        if store is not None:
            out.append(StoreSink(store, run_id, kind=kind, study=study, name=name if store_name is None else store_name,
                                 params=params, seed=seed, repro=repro))
        run_name = name if name is not None or trial is None else f"trial-{int(trial):04d}"
        if study_log is not None:
            out.extend(study_log.sinks(trial=trial, kind=kind, name=run_name, params=params))
            return out
        for keyword, resolved in self.resolved.items():
            out.append(DESTINATIONS[keyword].sink(resolved, kind=kind, study=study, name=run_name, params=params,
                                                  task=task, images=images))
        return out

    def study_log(self, study: str, *, params: Mapping[str, Any] | None = None, task: Any = None,
                  images: int = 16) -> Any:
        """A search's :class:`~tunewidgets.tracking.StudyLog` (None when no destination is on)."""
        if not self.resolved:
            return None
        from tunewidgets.tracking.study_log import StudyLog

        others = {k: v for k, v in self.resolved.items() if k not in ("tensorboard", "mlflow")}
        return StudyLog(study, tensorboard=self.resolved.get("tensorboard"), mlflow=self.resolved.get("mlflow"),
                        params=params, images=images, image_shape=getattr(task, "image_shape", None), others=others)

    def finish(self, result: Any, sinks: list[Sink], store: Store | None = None, before: int = 0) -> None:
        """Close ``sinks``; fill ``result.logged`` (where the run went) and ``result.sink_errors``
        (what a sink, or the store, could not record)."""
        errors: list[str] = []
        logged: dict[str, Any] = {}
        if store is not None:
            logged["store"] = str(store.path)
        for sink in sinks:
            sink.close()
            errors.extend(sink.errors)
            if isinstance(sink, StoreSink):
                continue
            keyword = sink.destination
            if keyword in self.resolved and keyword in DESTINATIONS:
                logged[keyword] = DESTINATIONS[keyword].where(sink, self.resolved[keyword])
        if store is not None:
            for failure in store.errors[before:]:
                if not failure.resolved:
                    errors.append(f"store: {failure.op} of {failure.path} failed ({failure.error}); kept in memory "
                                  "and retried until the store is closed")
        result.logged.update(logged)
        result.sink_errors.extend(errors)

    def __repr__(self) -> str:
        shown = ", ".join(f"{k}={v!r}" for k, v in self.kwargs().items())
        return f"Destinations({shown})"


def resolve(store: Any = None, *, store_required: bool = False, **given: Any) -> Destinations:
    """Check ``store=`` and every destination's value (``tensorboard=True``, ``mlflow=uri``...) now.

    Raises (naming the keyword) before any run: a value of the wrong kind, a missing package, a
    TensorBoard folder that is a file, an MLflow server that does not answer, an unknown keyword.

    >>> import tempfile
    >>> d = resolve(tempfile.mkdtemp(), tensorboard=True, mlflow=None)
    >>> sorted(d.resolved), d["tensorboard"].name
    (['tensorboard'], 'tensorboard')
    >>> resolve(mlflow="http://127.0.0.1:1")
    Traceback (most recent call last):
    ...
    ConnectionError: mlflow: the tracking server http://127.0.0.1:1 cannot be reached (...); start it, ...
    """
    _check_store(store, required=store_required)
    unknown = sorted(set(given) - set(DESTINATIONS))
    if unknown:
        raise TypeError(f"{unknown[0]}: not a logging destination; use store=, "
                        f"{', '.join(k + '=' for k in DESTINATIONS)}")
    folder = runs_folder(store)
    resolved = {}
    for keyword, value in given.items():
        destination = DESTINATIONS[keyword]
        out = destination.resolve(value, folder)
        if out is not None:
            destination.check(out)
            resolved[keyword] = out
    return Destinations(store, given, resolved)


def take_destinations(kwargs: dict[str, Any]) -> dict[str, Any]:
    """Take the destinations' keywords out of a facade's other ``kwargs`` (for ``tw.lr_range_test``).

    >>> kwargs = {"steps": 50, "mlflow": None}
    >>> take_destinations(kwargs), kwargs
    ({'mlflow': None}, {'steps': 50})
    """
    return {k: kwargs.pop(k) for k in list(kwargs) if k in DESTINATIONS}
