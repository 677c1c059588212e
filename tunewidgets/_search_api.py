"""``tw.search``: the facade of the hyperparameter search (it opens the store, then runs ``hpo``).

Example:
    >>> import tempfile, tunewidgets as tw
    >>> runs = tempfile.mkdtemp()
    >>> space = {"lr": tw.space.LogUniform(1e-3, 1e-1), "model.width": tw.space.Choice([16, 64])}
    >>> study = tw.search(tw.tasks.spirals(), space, base=tw.TrainConfig(optimizer="adam", epochs=2, device="cpu"),
    ...                   n_trials=3, store=runs, study="demo", seed=0, background=False)
    >>> study.trials[["trial", "state"]].values.tolist()
    [[0, 'finished'], [1, 'finished'], [2, 'finished']]
    >>> again = tw.search(tw.tasks.spirals(), space, base=tw.TrainConfig(optimizer="adam", epochs=2, device="cpu"),
    ...                   n_trials=4, store=runs, study="demo", seed=0, background=False)   # resumes: one more
    >>> len(again.trials), again.trials["lr"].tolist()[:3] == study.trials["lr"].tolist()
    (4, True)
    >>> import os
    >>> logged = tw.search(tw.tasks.spirals(), {"lr": tw.space.Choice([0.05, 0.1])}, strategy="grid",
    ...                    base=tw.TrainConfig(epochs=1, device="cpu"), store=runs, study="logged",
    ...                    tensorboard=True, background=False)   # each trial: <logdir>/<study>/trial-<n>
    >>> folder = logged.tensorboard_dir
    >>> os.path.basename(folder), sorted(e.name for e in os.scandir(folder) if e.is_dir())
    ('logged', ['trial-0000', 'trial-0001'])
"""
from __future__ import annotations

import asyncio
import os
from collections.abc import Iterable, Mapping
from typing import Any

from tunewidgets.api import study_log
from tunewidgets.engine.task import Task
from tunewidgets.hpo.driver import SearchDriver
from tunewidgets.hpo.executors import make_executor
from tunewidgets.hpo.plan import make_plan
from tunewidgets.hpo.study import Study
from tunewidgets.tracking import studies
from tunewidgets.tracking.store import Store

__all__ = ["search"]


def search(task: Task, space: Mapping[str, Any], base: Any = None, strategy: str = "random",
           n_trials: int | None = None, metric: str | None = None, direction: str | None = None,
           pruner: Any = None, store: Any = "tunewidgets-runs", study: str | None = None,
           executor: Any = "local", seed: int = 0, timeout: float | None = None,
           background: bool | None = None, callbacks: Iterable[Any] = (), tensorboard: Any = None,
           mlflow: Any = None) -> Study:
    """Search hyperparameters of ``task``: train trials with values from ``space`` and keep them all.

    Args:
        task: what to train (``tw.tasks.digits()``, ``tw.Task(...)``).
        space: ``{key: dimension}`` (see ``tw.space``): keys are TrainConfig fields (``lr``),
            ``schedule.<field>`` and ``model.<kwarg>``; checked before any trial, errors name the key.
        base: the config every trial starts from: a ``tw.TrainConfig``, a preset
            (``tw.presets.get("adam")``) or a preset's name. Default ``tw.TrainConfig()``.
        strategy: ``"grid"`` (every point of the space's grid once), ``"random"`` or ``"bayes"`` (TPE).
        n_trials: trials to end (finished, pruned, failed or diverged count), in the whole study
            (several processes may search one study: each trial is claimed once); grid: the whole
            grid (None, or its number of points).
        metric: what to compare trials on, e.g. ``"accuracy"`` (= ``"val_accuracy"``) or
            ``"val_loss"``; default the task's first validation metric (or ``val_loss``).
        direction: ``"maximize"`` or ``"minimize"``; default from the metric's name.
        pruner: None, ``"median"``, ``"successive_halving"``, ``"hyperband"`` or an Optuna pruner,
            fed the metric after every epoch.
        store: a runs folder or a ``tw.Store``: every trial is recorded there while it trains.
        study: the study's name in the store; the same store and name resume the search (the
            settings and the task's data must match; ``n_trials`` may grow). Default: a new name
            such as ``"digits-random-1"``.
        executor: ``"local"`` (one trial at a time on the config's device) or an ``Executor``.
        seed: seeds the sampler: the same seed gives the same sequence of points (and, on the
            CPU, the same results, since every trial trains with the base config's seed).
        timeout: seconds after which no new trial starts (the running one finishes).
        background: True: run in a thread and return the running Study at once; False: block;
            None: in a kernel with a running event loop (Jupyter), True, else False.
        callbacks: ``fn(event, record)`` callables or sinks (objects with ``handle(event, record)``)
            that receive every trial's records (START, LOG, EPOCH, EVAL, END; each has ``run_id``
            and ``trial``), in the search's thread.
        tensorboard: True (``<runs folder>/tensorboard``) or a logdir: each trial writes
            ``<logdir>/<study>/trial-<n>``, with its params, final metrics and ``state`` in the
            HParams dashboard (``study.tensorboard_dir`` is the study's folder).
        mlflow: True (``sqlite:///<runs folder>/mlflow.db``) or a tracking URI: the study is a
            parent run, each trial a child run (``study.mlflow_uri``).

    Returns:
        The :class:`~tunewidgets.hpo.study.Study`: ``study.trials``, ``study.best``,
        ``study.best_config``, ``study.curves()``, ``study.summary``, ``study.stop()``, ``study.wait()``.

    Raises (before any training): ``SpaceError`` naming the key, also when a dimension's extreme
    cannot build its model, device or schedule; ``StudyMismatchError``. A store that cannot be
    written during the search ends it with a one-line ``StoreWriteError`` (the study resumes).
    """
    plan = make_plan(task, space, base=base, strategy=strategy, n_trials=n_trials, metric=metric,
                     direction=direction, pruner=pruner, seed=seed, timeout=timeout)
    the_executor = make_executor(executor)
    handlers = _callbacks(callbacks)
    if background is not None and not isinstance(background, bool):
        raise TypeError(f"background: expected True, False or None, got {background!r}")
    if background is None:
        background = _in_running_loop()
    if study is not None and (not isinstance(study, str) or not study.strip()):
        raise ValueError(f"study: expected a non-empty name such as 'digits-lr', got {study!r}")
    opened, owns = _open(store)
    try:
        name = study if study is not None else _fresh_name(opened, task.name, plan.strategy.name)
        result = Study(plan, name, opened.path)
        log = study_log(name, store=opened, tensorboard=tensorboard, mlflow=mlflow,
                        params=plan.settings(), task=task)
        if log is not None:
            result.tensorboard_dir = None if log.tensorboard_dir is None else str(log.tensorboard_dir)
            result.mlflow_uri = log.mlflow_uri
        driver = SearchDriver(plan, name, opened, owns, the_executor, result, handlers, log=log)
        driver.prepare()
    except BaseException:
        if owns:
            opened.close()
        raise
    if background:
        result.run_in_thread(driver.run, name=f"tunewidgets-search-{name}")
        return result
    driver.run()
    return result.wait()


def _open(store: Any) -> tuple[Store, bool]:
    if isinstance(store, Store):
        if store.closed:
            raise ValueError(f"store: {store.path} is closed; open it again with tw.Store(path)")
        return store, False
    if isinstance(store, (str, os.PathLike)):
        return Store(store), True
    raise TypeError(f"store: expected a runs folder such as 'tunewidgets-runs' or a tw.Store, got "
                    f"{type(store).__name__} {store!r}; a search keeps every trial in a store so it can resume")


def _fresh_name(store: Store, task_name: str, strategy: str) -> str:
    taken = set(studies.study_names(store))
    n = 1
    while f"{task_name}-{strategy}-{n}" in taken:
        n += 1
    return f"{task_name}-{strategy}-{n}"


def _callbacks(callbacks: Any) -> list[Any]:
    if callbacks is None:
        return []
    if callable(callbacks) or hasattr(callbacks, "handle"):
        callbacks = [callbacks]
    out = []
    for cb in callbacks:
        if hasattr(cb, "handle") and callable(cb.handle):
            out.append(cb.handle)
        elif callable(cb):
            out.append(cb)
        else:
            raise TypeError(f"callbacks: {cb!r} is neither a callable fn(event, record) nor a sink with "
                            "handle(event, record)")
    return out


def _in_running_loop() -> bool:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True
