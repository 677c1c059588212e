"""The facade: ``tw.train`` and ``tw.lr_range_test`` with ``store=``, ``tensorboard=`` and ``mlflow=``.

The engine and the range test know nothing of stores: this module, above both, has
``tunewidgets.tracking.destinations`` turn those keywords into sinks attached to the run's
events (checked once, before the run), then calls the layer below. A sink that fails while the run trains (a full disk) does not lose the run: the Run
comes back, ``run.sink_errors`` says what was not recorded.

- ``store=``: a ``tw.Store`` or a runs folder (``runs.sqlite`` inside);
- ``tensorboard=True``: event files in ``<runs folder>/tensorboard`` (or a folder of your own);
- ``mlflow=True``: MLflow's ``sqlite:///<runs folder>/mlflow.db`` (or any tracking URI).

The runs folder is the store's folder, or ``tunewidgets-runs`` when there is no store. Where the
run went is in ``run.logged`` (``{"store": ..., "tensorboard": ..., "mlflow": ...}``). Any other
destination of ``tunewidgets.tracking.destinations.DESTINATIONS`` is taken by its keyword too.

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
    >>> run.logged["tensorboard"].endswith("tensorboard/train-1"), run.tensorboard_dir == run.logged["tensorboard"]
    (True, True)
"""
from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from tunewidgets.engine.config import TrainConfig
from tunewidgets.engine.loop import Trainer
from tunewidgets.engine.run import Run
from tunewidgets.engine.task import Task
from tunewidgets.lr.range_test import lr_range_test as _lr_range_test
from tunewidgets.lr.result import LRRangeTestResult
from tunewidgets.tracking import destinations as _destinations
from tunewidgets.tracking.destinations import DEFAULT_RUNS, open_store, runs_folder
from tunewidgets.tracking.listeners import run_callbacks
from tunewidgets.tracking.sink import Sink
from tunewidgets.tracking.store import Store
from tunewidgets.tracking.study_log import StudyLog

__all__ = ["train", "lr_range_test", "open_store", "sinks_for", "study_log", "tensorboard_dir", "mlflow_uri",
           "runs_folder", "DEFAULT_RUNS"]


def tensorboard_dir(tensorboard: Any, store: Any = None) -> Path | None:
    """``tensorboard=`` resolved: None/False -> None, True -> ``<runs folder>/tensorboard``, a path -> itself."""
    return _destinations.DESTINATIONS["tensorboard"].resolve(tensorboard, runs_folder(store))


def mlflow_uri(mlflow: Any, store: Any = None) -> str | None:
    """``mlflow=`` resolved: None/False -> None, True -> ``sqlite:///<runs folder>/mlflow.db``, a URI -> itself."""
    return _destinations.DESTINATIONS["mlflow"].resolve(mlflow, runs_folder(store))


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

    This is :meth:`tunewidgets.tracking.destinations.Destinations.sinks` for values already resolved.
    """
    if store is not None and not isinstance(store, Store):
        raise TypeError(f"store: sinks_for takes an open tw.Store (or None), got {type(store).__name__}; "
                        "open one with tw.Store(path) and close it after the run")
    resolved = {k: v for k, v in (("tensorboard", tensorboard), ("mlflow", mlflow)) if v is not None}
    where = _destinations.Destinations(store, resolved, resolved)
    return where.sinks(store, kind=kind, study=study, name=name, trial=trial, run_id=run_id, params=params,
                       seed=seed, repro=repro, task=task, study_log=study_log, images=images)


def study_log(study: str, *, store: Any = None, tensorboard: Any = None, mlflow: Any = None,
              params: Mapping[str, Any] | None = None, images: int = 16, task: Task | None = None) -> StudyLog | None:
    """A :class:`StudyLog` for ``tensorboard=`` and ``mlflow=`` as users give them (None when both are off).

    ``task`` (the searched task) tells TensorBoard how to draw its inputs (``task.image_shape``).
    """
    where = _destinations.resolve(store, tensorboard=tensorboard, mlflow=mlflow)
    return where.study_log(study, params=params, task=task, images=images)


def _run(start: Any, where: _destinations.Destinations, sinks_of: Any) -> Any:
    """Open the store, make the run's sinks, run ``start(sinks)``, then close them and fill ``logged``."""
    with open_store(where.store) as opened:
        before = len(opened.errors) if opened is not None else 0
        sinks = sinks_of(opened)
        try:
            result = start(sinks)
        except BaseException:
            for sink in sinks:
                sink.close()
            raise
        where.finish(result, sinks, opened, before)
    return result


def train(task: Task, config: TrainConfig | None = None, store: Any = None, callbacks: Iterable[Any] = (), *,
          stop: Any = None, run_id: int | None = None, trial: int | None = None, kind: str = "train",
          study: str | None = None, name: str | None = None, tensorboard: Any = None, mlflow: Any = None,
          **destinations: Any) -> Run:
    """Train a fresh model of ``task`` with ``config`` and return the :class:`Run`.

    Args:
        store: a ``tw.Store`` or a runs folder: the run, its metrics while it trains, how it
            ended, and what repeats it (``tw.rerun``) are recorded there (``run.run_id``).
        callbacks: sinks (``attach(trainer)``), ``{event: handler(record)}`` dicts or
            ``fn(event, record)`` callables (the shapes ``tw.search`` takes too).
        stop: a parent stop (``threading.Event`` or ``RunStop``); the run halts within one step of it.
        run_id: fill this existing run of the store instead of adding one (a search's trial).
        trial: the trial number, carried on every record.
        kind, study, name: how the store files the run (a study also groups it on TensorBoard and MLflow).
        tensorboard: True (``<runs folder>/tensorboard``) or a folder: TensorBoard event files
            (``run.logged["tensorboard"]``; see ``tw.tracking.TensorBoardSink``).
        mlflow: True (``sqlite:///<runs folder>/mlflow.db``) or a tracking URI: an MLflow run
            (``run.logged["mlflow"]``; see ``tw.tracking.MLflowSink``); a server is checked
            reachable before the run.
        destinations: any other destination by its keyword (see ``tunewidgets.tracking.destinations``).

    Example:
        >>> import tunewidgets as tw
        >>> run = tw.train(tw.tasks.spirals(), tw.TrainConfig(optimizer="adam", lr=0.01, epochs=2, device="cpu"))
        >>> run.status, sorted(run.final)[:3]
        ('finished', ['epochs', 'steps', 'train_loss'])
    """
    listeners = run_callbacks(callbacks)
    for field, value in (("study", study), ("name", name)):
        _destinations.check_name(field, value)
    where = _destinations.resolve(store, tensorboard=tensorboard, mlflow=mlflow, **destinations)
    return _run(lambda sinks: Trainer(task, config, callbacks=[*sinks, *listeners], stop=stop, run_id=run_id,
                                      trial=trial).fit(),
                where, lambda opened: where.sinks(opened, kind=kind, study=study, name=name, run_id=run_id))


def lr_range_test(task: Any = None, *, store: Any = None, callbacks: Iterable[Any] = (), tensorboard: Any = None,
                  mlflow: Any = None, **kwargs: Any) -> LRRangeTestResult:
    """:func:`tunewidgets.lr.lr_range_test` with ``store=``, ``tensorboard=`` and ``mlflow=``.

    Takes every argument of :func:`tunewidgets.lr.lr_range_test`; ``store`` is a ``tw.Store`` or
    a runs folder, and the test becomes a run of kind "lr_range_test" there (``result.run_id``).
    ``tensorboard``, ``mlflow`` (and any other destination) and ``callbacks`` work as in
    :func:`train`; TensorBoard also plots the loss against the lr (``lr_range/loss``, step axis
    ``1000 * log10(lr)``).

    Example:
        >>> import tempfile, tunewidgets as tw
        >>> folder = tempfile.mkdtemp()
        >>> res = tw.lr_range_test(tw.tasks.spirals(), steps=30, device="cpu", store=folder)
        >>> with tw.Store(folder) as store:
        ...     len(store.metrics(res.run_id, "train/loss")) == len(res.losses)
        True
    """
    listeners = run_callbacks(callbacks)
    where = _destinations.resolve(store, tensorboard=tensorboard, mlflow=mlflow, **_destinations.take_destinations(kwargs))
    name = getattr(task, "name", None) if task is not None else None
    return _run(lambda sinks: _lr_range_test(task, callbacks=[*sinks, *listeners], **kwargs), where,
                lambda opened: where.sinks(opened, kind="lr_range_test", store_name=name,
                                            run_id=kwargs.get("run_id")))
