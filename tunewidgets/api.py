"""The facade: ``tw.train`` and ``tw.lr_range_test`` with ``store=``, ``tensorboard=`` and ``mlflow=``.

The engine and the range test know nothing of stores: this module, above both, turns those
keywords into sinks attached to the run's events (:func:`sinks_for`), then calls the layer
below. A sink that fails while the run trains (a full disk) does not lose the run: the Run
comes back, ``run.sink_errors`` says what was not recorded.

- ``store=``: a ``tw.Store`` or a runs folder (``runs.sqlite`` inside);
- ``tensorboard=True``: event files in ``<runs folder>/tensorboard`` (or a folder of your own);
- ``mlflow=True``: MLflow's ``sqlite:///<runs folder>/mlflow.db`` (or any tracking URI).

The runs folder is the store's folder, or ``tunewidgets-runs`` when there is no store.

For drivers of many runs (a search), the contract is:

- ``sinks_for(store=..., tensorboard=..., mlflow=..., kind=..., study=..., name=..., trial=...,
  run_id=..., params=..., study_log=...)`` -> the list of sinks of one run, the store's first;
  attach them to its Trainer (``callbacks=``), or feed each one the run's records with
  ``sink.handle(event, record)``, then ``close()`` them. ``tensorboard``/``mlflow`` take the
  resolved values of :func:`tensorboard_dir` and :func:`mlflow_uri`;
- ``study_log(study, store=..., tensorboard=..., mlflow=..., params=..., task=...)`` -> a
  :class:`~tunewidgets.tracking.StudyLog` (or None when neither is on): ``start()`` before the
  first trial (MLflow parent run), ``sinks_for(..., study_log=log, trial=n)`` per trial (its
  TensorBoard folder ``<logdir>/<study>/trial-<n>``, its MLflow child run), ``end(status)``
  after the last (the study's HParams Experiment is kept up to date by every trial's end);
- a driver that adds a trial's store row itself (``run_id=``) records what repeats it by passing
  ``env={"repro": tunewidgets.tracking.records.train_record(task, config)}`` to ``start_run``;
- image grids need the Trainer's ``eval_examples``: attached sinks set it themselves; a driver
  feeding records builds its Trainer with ``eval_examples=16`` for image tasks.

Example:
    >>> import tempfile, tunewidgets as tw
    >>> folder = tempfile.mkdtemp()
    >>> run = tw.train(tw.tasks.spirals(), tw.TrainConfig(epochs=1, device="cpu"), store=folder, tensorboard=True)
    >>> with tw.Store(folder) as store:
    ...     store.run(run.run_id)["status"], store.run(run.run_id)["kind"]
    ('finished', 'train')
    >>> run.tensorboard_dir.endswith("tensorboard/train-1")
    True
"""
from __future__ import annotations

import contextlib
import os
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

from tunewidgets.engine.config import TrainConfig
from tunewidgets.engine.loop import Trainer
from tunewidgets.engine.run import Run
from tunewidgets.engine.task import Task
from tunewidgets.lr.range_test import lr_range_test as _lr_range_test
from tunewidgets.lr.result import LRRangeTestResult
from tunewidgets.tracking.sink import Sink, StoreSink
from tunewidgets.tracking.store import Store
from tunewidgets.tracking.study_log import StudyLog
from tunewidgets.tracking.tensorboard_sink import TensorBoardSink, import_tensorboardx

__all__ = ["train", "lr_range_test", "open_store", "sinks_for", "study_log", "tensorboard_dir", "mlflow_uri",
           "runs_folder", "DEFAULT_RUNS"]

DEFAULT_RUNS = "tunewidgets-runs"
_DB_SUFFIXES = (".sqlite", ".sqlite3", ".db")


@contextlib.contextmanager
def open_store(store: Any, create: bool = True) -> Iterator[Store | None]:
    """``store=`` as users give it: None, a ``tw.Store`` (left open) or a folder/file path (opened, closed).

    ``create=False`` (reading a store: a report, a rerun) opens an existing store only and
    creates no folder or database where none was.
    """
    if store is None:
        yield None
        return
    if isinstance(store, Store):
        yield store
        return
    if isinstance(store, (str, os.PathLike)):
        opened = Store(store, create=create)
        try:
            yield opened
        finally:
            opened.close()
        return
    raise TypeError(f"store: expected a tw.Store or a folder path such as 'tunewidgets-runs', got "
                    f"{type(store).__name__}")


def runs_folder(store: Any = None) -> Path:
    """The folder ``tensorboard=True`` and ``mlflow=True`` write in: the store's, else ``tunewidgets-runs``."""
    if isinstance(store, Store):
        return store.folder
    if isinstance(store, (str, os.PathLike)) and not isinstance(store, bytes):
        path = Path(os.fspath(store)).expanduser()
        return path.parent if path.suffix.lower() in _DB_SUFFIXES else path
    return Path(DEFAULT_RUNS)


def tensorboard_dir(tensorboard: Any, store: Any = None) -> Path | None:
    """``tensorboard=`` resolved: None/False -> None, True -> ``<runs folder>/tensorboard``, a path -> itself."""
    if tensorboard is None or tensorboard is False:
        return None
    if tensorboard is True:
        folder = runs_folder(store) / "tensorboard"
    elif (isinstance(tensorboard, (str, os.PathLike)) and not isinstance(tensorboard, bytes)
          and str(tensorboard).strip()):
        folder = Path(os.fspath(tensorboard)).expanduser()
    else:
        raise TypeError(f"tensorboard: expected True, False or a folder such as 'runs/tensorboard', got "
                        f"{tensorboard!r}")
    import_tensorboardx()
    return folder


def mlflow_uri(mlflow: Any, store: Any = None) -> str | None:
    """``mlflow=`` resolved: None/False -> None, True -> ``sqlite:///<runs folder>/mlflow.db``, a URI -> itself."""
    if mlflow is None or mlflow is False:
        return None
    from tunewidgets.tracking.mlflow_sink import default_uri, import_mlflow

    if mlflow is True:
        uri = default_uri(runs_folder(store))
    elif isinstance(mlflow, str) and ("://" in mlflow or mlflow.startswith("databricks")):
        uri = mlflow
    else:
        raise ValueError(f"mlflow: expected True, False or a tracking URI such as 'sqlite:///runs/mlflow.db' "
                         f"or 'http://localhost:5000', got {mlflow!r}")
    import_mlflow()
    return uri


def sinks_for(*, store: Store | None = None, tensorboard: str | os.PathLike[str] | None = None,
              mlflow: str | None = None, kind: str = "train", study: str | None = None, name: str | None = None,
              trial: int | None = None, run_id: int | None = None, params: Mapping[str, Any] | None = None,
              seed: int | None = None, repro: Mapping[str, Any] | None = None, study_log: StudyLog | None = None,
              images: int = 16, task: Task | None = None) -> list[Sink]:
    """The sinks of one run: a :class:`StoreSink` (with ``store``), then TensorBoard and MLflow ones.

    Args:
        store: an open ``tw.Store`` (the caller closes it), or None.
        tensorboard: a TensorBoard logdir (see :func:`tensorboard_dir`), or None.
        mlflow: an MLflow tracking URI (see :func:`mlflow_uri`), or None.
        kind, study, name, params, seed: how the run is filed (the store's columns; the
            TensorBoard folder and MLflow run are named from ``name`` or ``trial``).
        trial: the trial number (names the folder ``trial-<n>`` even when records lack it).
        run_id: an existing store row to fill (a trial the driver added).
        repro: the record that repeats the run (default: made by the StoreSink at attach).
        study_log: a search's :class:`StudyLog`: its TensorBoard folder and MLflow parent are used
            (``tensorboard`` and ``mlflow`` are then taken from it).
        images: validation images with predictions per evaluation on TensorBoard (0: none).
        task: the run's task: its ``image_shape`` tells TensorBoard how to draw its inputs when
            the sinks are fed records with ``handle()`` (attached sinks read it from the Trainer).
    """
    if store is not None and not isinstance(store, Store):
        raise TypeError(f"store: sinks_for takes an open tw.Store (or None), got {type(store).__name__}; "
                        "open one with tw.Store(path) and close it after the run")
    out: list[Sink] = []
    if store is not None:
        out.append(StoreSink(store, run_id, kind=kind, study=study, name=name, params=params, seed=seed,
                             repro=repro))
    run_name = name if name is not None or trial is None else f"trial-{int(trial):04d}"
    if study_log is not None:
        out.extend(study_log.sinks(trial=trial, kind=kind, name=run_name, params=params))
        return out
    if tensorboard is not None:
        out.append(TensorBoardSink(tensorboard, study=study, name=run_name, kind=kind, params=params, images=images,
                                   image_shape=getattr(task, "image_shape", None)))
    if mlflow is not None:
        from tunewidgets.tracking.mlflow_sink import MLflowSink

        out.append(MLflowSink(mlflow, study=study, name=run_name, kind=kind, params=params))
    return out


def study_log(study: str, *, store: Any = None, tensorboard: Any = None, mlflow: Any = None,
              params: Mapping[str, Any] | None = None, images: int = 16, task: Task | None = None) -> StudyLog | None:
    """A :class:`StudyLog` for ``tensorboard=`` and ``mlflow=`` as users give them (None when both are off).

    ``task`` (the searched task) tells TensorBoard how to draw its inputs (``task.image_shape``).
    """
    tb, uri = tensorboard_dir(tensorboard, store), mlflow_uri(mlflow, store)
    if tb is None and uri is None:
        return None
    return StudyLog(study, tensorboard=tb, mlflow=uri, params=params, images=images,
                    image_shape=getattr(task, "image_shape", None))


def _as_list(callbacks: Any) -> list[Any]:
    if callbacks is None:
        return []
    if isinstance(callbacks, (dict, str, bytes)) or not isinstance(callbacks, Iterable):
        return [callbacks]
    return list(callbacks)


def _store_errors(store: Store | None, before: int, sink: StoreSink | None) -> list[str]:
    """What could not be written while the run trained: the sink's own errors and the store's unresolved writes."""
    if store is None:
        return []
    found = list(sink.errors) if sink is not None else []
    for failure in store.errors[before:]:
        if not failure.resolved:
            found.append(f"store: {failure.op} of {failure.path} failed ({failure.error}); kept in memory and "
                         "retried until the store is closed")
    return found


def _finish(result: Any, sinks: list[Sink], uri: str | None, store: Store | None, before: int) -> None:
    """Close the sinks; put what they could not record in ``sink_errors``, and where they logged."""
    store_sink = next((s for s in sinks if isinstance(s, StoreSink)), None)
    errors = _store_errors(store, before, store_sink)
    for sink in sinks:
        sink.close()
        if sink is not store_sink:
            errors.extend(getattr(sink, "errors", ()))
        if isinstance(sink, TensorBoardSink) and sink.run_dir is not None:
            result.tensorboard_dir = str(sink.run_dir)
    result.sink_errors.extend(errors)
    result.mlflow_uri = uri


def train(task: Task, config: TrainConfig | None = None, store: Any = None, callbacks: Iterable[Any] = (), *,
          stop: Any = None, run_id: int | None = None, trial: int | None = None, kind: str = "train",
          study: str | None = None, name: str | None = None, tensorboard: Any = None, mlflow: Any = None) -> Run:
    """Train a fresh model of ``task`` with ``config`` and return the :class:`Run`.

    Args:
        store: a ``tw.Store`` or a runs folder: the run, its metrics while it trains, how it
            ended, and what repeats it (``tw.rerun``) are recorded there (``run.run_id``).
        callbacks: sinks (``attach(trainer)``) or ``{event: handler}`` dicts.
        stop: a parent stop (``threading.Event`` or ``RunStop``); the run halts within one step of it.
        run_id: fill this existing run of the store instead of adding one (a search's trial).
        trial: the trial number, carried on every record.
        kind, study, name: how the store files the run (a study also groups it on TensorBoard and MLflow).
        tensorboard: True (``<runs folder>/tensorboard``) or a folder: TensorBoard event files
            (``run.tensorboard_dir``; see ``tw.tracking.TensorBoardSink``).
        mlflow: True (``sqlite:///<runs folder>/mlflow.db``) or a tracking URI: an MLflow run
            (``run.mlflow_uri``; see ``tw.tracking.MLflowSink``).

    Example:
        >>> import tunewidgets as tw
        >>> run = tw.train(tw.tasks.spirals(), tw.TrainConfig(optimizer="adam", lr=0.01, epochs=2, device="cpu"))
        >>> run.status, sorted(run.final)[:3]
        ('finished', ['epochs', 'steps', 'train_loss'])
    """
    callbacks = _as_list(callbacks)
    tb, uri = tensorboard_dir(tensorboard, store), mlflow_uri(mlflow, store)  # bad values fail before training
    with open_store(store) as opened:
        before = len(opened.errors) if opened is not None else 0
        sinks = sinks_for(store=opened, tensorboard=tb, mlflow=uri, kind=kind, study=study, name=name,
                          run_id=run_id)
        try:
            run = Trainer(task, config, callbacks=[*sinks, *callbacks], stop=stop, run_id=run_id, trial=trial).fit()
        except BaseException:
            for sink in sinks:
                sink.close()
            raise
        _finish(run, sinks, uri, opened, before)
    return run


def lr_range_test(task: Any = None, *, store: Any = None, callbacks: Iterable[Any] = (), tensorboard: Any = None,
                  mlflow: Any = None, **kwargs: Any) -> LRRangeTestResult:
    """:func:`tunewidgets.lr.lr_range_test` with ``store=``, ``tensorboard=`` and ``mlflow=``.

    Takes every argument of :func:`tunewidgets.lr.lr_range_test`; ``store`` is a ``tw.Store`` or
    a runs folder, and the test becomes a run of kind "lr_range_test" there (``result.run_id``).
    ``tensorboard`` and ``mlflow`` work as in :func:`train`; TensorBoard also plots the loss
    against the lr (``lr_range/loss``, step axis ``1000 * log10(lr)``).

    Example:
        >>> import tempfile, tunewidgets as tw
        >>> folder = tempfile.mkdtemp()
        >>> res = tw.lr_range_test(tw.tasks.spirals(), num_iter=30, device="cpu", store=folder)
        >>> with tw.Store(folder) as store:
        ...     len(store.metrics(res.run_id, "train/loss")) == len(res.losses)
        True
    """
    callbacks = _as_list(callbacks)
    tb, uri = tensorboard_dir(tensorboard, store), mlflow_uri(mlflow, store)
    with open_store(store) as opened:
        before = len(opened.errors) if opened is not None else 0
        sinks: list[Sink] = []
        if opened is not None:
            name = getattr(task, "name", None) if task is not None else None
            sinks.append(StoreSink(opened, kwargs.get("run_id"), kind="lr_range_test", name=name))
        sinks.extend(sinks_for(tensorboard=tb, mlflow=uri, kind="lr_range_test"))
        try:
            result = _lr_range_test(task, callbacks=[*sinks, *callbacks], **kwargs)
        except BaseException:
            for sink in sinks:
                sink.close()
            raise
        _finish(result, sinks, uri, opened, before)
    return result
