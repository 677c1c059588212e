"""The facade: ``tw.train`` and ``tw.lr_range_test`` with ``store=`` (and, later, other sinks by keyword).

The engine and the range test know nothing of stores: this module, above both, turns
``store=`` into a :class:`~tunewidgets.tracking.StoreSink` attached to the run's events, then
calls the layer below. A store that fails while the run trains (a full disk) does not lose the
run: the Run comes back, ``run.sink_errors`` says what was not recorded.

Example:
    >>> import tempfile, tunewidgets as tw
    >>> folder = tempfile.mkdtemp()
    >>> run = tw.train(tw.tasks.spirals(), tw.TrainConfig(epochs=1, device="cpu"), store=folder)
    >>> with tw.Store(folder) as store:
    ...     store.run(run.run_id)["status"], store.run(run.run_id)["kind"]
    ('finished', 'train')
"""
from __future__ import annotations

import contextlib
import os
from collections.abc import Iterable, Iterator
from typing import Any

from tunewidgets.engine.config import TrainConfig
from tunewidgets.engine.loop import Trainer
from tunewidgets.engine.run import Run
from tunewidgets.engine.task import Task
from tunewidgets.lr.range_test import lr_range_test as _lr_range_test
from tunewidgets.lr.result import LRRangeTestResult
from tunewidgets.tracking.sink import StoreSink
from tunewidgets.tracking.store import Store

__all__ = ["train", "lr_range_test", "open_store"]


@contextlib.contextmanager
def open_store(store: Any) -> Iterator[Store | None]:
    """``store=`` as users give it: None, a ``tw.Store`` (left open) or a folder/file path (opened, closed)."""
    if store is None:
        yield None
        return
    if isinstance(store, Store):
        yield store
        return
    if isinstance(store, (str, os.PathLike)):
        opened = Store(store)
        try:
            yield opened
        finally:
            opened.close()
        return
    raise TypeError(f"store: expected a tw.Store or a folder path such as 'tunewidgets-runs', got "
                    f"{type(store).__name__}")


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


def train(task: Task, config: TrainConfig | None = None, store: Any = None, callbacks: Iterable[Any] = (), *,
          stop: Any = None, run_id: int | None = None, trial: int | None = None, kind: str = "train",
          study: str | None = None, name: str | None = None) -> Run:
    """Train a fresh model of ``task`` with ``config`` and return the :class:`Run`.

    Args:
        store: a ``tw.Store`` or a runs folder: the run, its metrics while it trains, and how it
            ended are recorded there (``run.run_id`` is its id).
        callbacks: sinks (``attach(trainer)``) or ``{event: handler}`` dicts.
        stop: a parent stop (``threading.Event`` or ``RunStop``); the run halts within one step of it.
        run_id: fill this existing run of the store instead of adding one (a search's trial).
        trial: the trial number, carried on every record.
        kind, study, name: how the store files the run.

    Example:
        >>> import tunewidgets as tw
        >>> run = tw.train(tw.tasks.spirals(), tw.TrainConfig(optimizer="adam", lr=0.01, epochs=2, device="cpu"))
        >>> run.status, sorted(run.final)[:3]
        ('finished', ['epochs', 'steps', 'train_loss'])
    """
    callbacks = _as_list(callbacks)
    with open_store(store) as opened:
        sink, before = None, len(opened.errors) if opened is not None else 0
        if opened is not None:
            sink = StoreSink(opened, run_id, kind=kind, study=study, name=name)
            callbacks.insert(0, sink)
        run = Trainer(task, config, callbacks=callbacks, stop=stop, run_id=run_id, trial=trial).fit()
        run.sink_errors.extend(_store_errors(opened, before, sink))
    return run


def lr_range_test(task: Any = None, *, store: Any = None, callbacks: Iterable[Any] = (),
                  **kwargs: Any) -> LRRangeTestResult:
    """:func:`tunewidgets.lr.lr_range_test` with ``store=``: the test is recorded while it runs.

    Takes every argument of :func:`tunewidgets.lr.lr_range_test`; ``store`` is a ``tw.Store`` or
    a runs folder, and the test becomes a run of kind "lr_range_test" there (``result.run_id``).

    Example:
        >>> import tempfile, tunewidgets as tw
        >>> folder = tempfile.mkdtemp()
        >>> res = tw.lr_range_test(tw.tasks.spirals(), num_iter=30, device="cpu", store=folder)
        >>> with tw.Store(folder) as store:
        ...     len(store.metrics(res.run_id, "train/loss")) == len(res.losses)
        True
    """
    callbacks = _as_list(callbacks)
    with open_store(store) as opened:
        sink, before = None, len(opened.errors) if opened is not None else 0
        if opened is not None:
            name = getattr(task, "name", None) if task is not None else None
            sink = StoreSink(opened, kwargs.get("run_id"), kind="lr_range_test", name=name)
            callbacks.insert(0, sink)
        result = _lr_range_test(task, callbacks=callbacks, **kwargs)
        result.sink_errors = _store_errors(opened, before, sink)
    return result

