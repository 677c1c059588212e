"""``tw.search``: the facade of the hyperparameter search (it opens the store, then runs ``hpo``).

Example:
    >>> import tempfile, tunewidgets as tw
    >>> runs = tempfile.mkdtemp()
    >>> space = {"lr": tw.space.LogUniform(1e-3, 1e-1), "model.width": tw.space.Choice([16, 64])}
    >>> study = tw.search(tw.tasks.spirals(), space, base=tw.TrainConfig(optimizer="adam", epochs=2, device="cpu"),
    ...                   n_trials=3, store=runs, study="demo", seed=0, background=False)
    >>> study.trials[["trial", "state"]].values.tolist()
    [[0, 'finished'], [1, 'finished'], [2, 'finished']]
    >>> tw.search(tw.tasks.spirals(), space, n_trials=4, store=runs, study="demo")   # an existing name is refused
    Traceback (most recent call last):
    ...
    tunewidgets.hpo.resume.StudyExistsError: study: 'demo' already exists in ... (3 trials ended); pass resume=True to continue it, or another study= name (or none, for a new one) to start afresh
    >>> again = tw.search(tw.tasks.spirals(), space, base=tw.TrainConfig(optimizer="adam", epochs=2, device="cpu"),
    ...                   n_trials=4, store=runs, study="demo", seed=0, background=False, resume=True)  # one more
    >>> len(again.trials), again.trials["lr"].tolist()[:3] == study.trials["lr"].tolist()
    (4, True)
    >>> import os
    >>> logged = tw.search(tw.tasks.spirals(), {"lr": tw.space.Choice([0.05, 0.1])}, strategy="grid",
    ...                    base=tw.TrainConfig(epochs=1, device="cpu"), store=runs, study="logged",
    ...                    tensorboard=True, background=False)   # each trial: <logdir>/<study>/trial-<n>
    >>> folder = logged.logged["tensorboard"]
    >>> os.path.basename(folder), sorted(e.name for e in os.scandir(folder) if e.is_dir())
    ('logged', ['trial-0000', 'trial-0001'])
    >>> logged.tensorboard_dir == folder   # its former name
    True
"""
from __future__ import annotations

import asyncio
from collections.abc import Iterable, Mapping
from typing import Any

from tunewidgets.engine.task import Task
from tunewidgets.hpo.driver import SearchDriver
from tunewidgets.hpo.executors import make_executor
from tunewidgets.hpo.plan import make_plan
from tunewidgets.hpo.study import Study
from tunewidgets.tracking import destinations, studies
from tunewidgets.tracking.listeners import record_handlers
from tunewidgets.tracking.store import Store

__all__ = ["search"]


def search(task: Task, space: Mapping[str, Any], base: Any = None, strategy: str = "random",
           n_trials: int | None = None, metric: str | None = None, direction: str | None = None,
           pruner: Any = None, store: Any = "tunewidgets-runs", study: str | None = None,
           executor: Any = "local", seed: int = 0, timeout: float | None = None,
           background: bool | None = None, callbacks: Iterable[Any] = (), tensorboard: Any = None,
           mlflow: Any = None, resume: bool = False, **more: Any) -> Study:
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
        study: the study's name in the store. A name the store already holds is refused
            (``StudyExistsError``) unless ``resume=True``, so that running the same cell or
            script twice never continues an old search silently; a resumed study's settings and
            its task's data must match (``StudyMismatchError``), and ``n_trials`` may grow.
            Default: a new name such as ``"digits-random-1"``.
        executor: ``"local"`` (one trial at a time on the config's device) or an ``Executor``.
        seed: seeds the sampler: the same seed gives the same sequence of points (and, on the
            CPU, the same results, since every trial trains with the base config's seed).
        timeout: seconds after which no new trial starts (the running one finishes).
        background: True: run in a thread and return the running Study at once; False: block;
            None: in a kernel with a running event loop (Jupyter), True, else False.
        callbacks: ``fn(event, record)`` callables, ``{event: handler(record)}`` dicts or sinks
            (objects with ``handle(event, record)``), the shapes ``tw.train`` takes too: they
            receive every trial's records (START, LOG, EPOCH, EVAL, END; each has ``run_id`` and
            ``trial``), in the search's thread.
        tensorboard: True (``<runs folder>/tensorboard``) or a logdir: each trial writes
            ``<logdir>/<study>/trial-<n>``, with its params, final metrics and ``state`` in the
            HParams dashboard (``study.logged["tensorboard"]`` is the study's folder; the study's
            name is made a safe folder name, with a short hash when it had to be changed).
        mlflow: True (``sqlite:///<runs folder>/mlflow.db``) or a tracking URI: the study is a
            parent run, each trial a child run (``study.logged["mlflow"]``); a server is checked
            reachable before any trial.
        more: any other logging destination by its keyword (``tunewidgets.tracking.destinations``).
        resume: True: continue the study of that name if the store has it (its settings must
            match, else ``StudyMismatchError``; ``n_trials`` may grow; interrupted and stopped
            trials run again first), or start it if not. False (the default): only start a new
            study, like Optuna's ``create_study(load_if_exists=False)``.

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
    handlers = record_handlers(callbacks)
    if background is not None and not isinstance(background, bool):
        raise TypeError(f"background: expected True, False or None, got {background!r}")
    if background is None:
        background = _in_running_loop()
    if not isinstance(resume, bool):
        raise TypeError(f"resume: expected True or False, got {resume!r}")
    if study is not None and (not isinstance(study, str) or not study.strip()):
        raise ValueError(f"study: expected a non-empty name such as 'digits-lr', got {study!r}")
    destinations.check_name("study", study)
    where = destinations.resolve(store, store_required=True, tensorboard=tensorboard, mlflow=mlflow, **more)
    opened, owns = destinations.opened_store(store, required=True)
    assert opened is not None
    try:
        name = study if study is not None else _fresh_name(opened, task.name, plan.strategy.name)
        result = Study(plan, name, opened.path)
        result.logged["store"] = str(opened.path)
        log = where.study_log(name, params=plan.settings(), task=task)
        if log is not None:
            if log.tensorboard_dir is not None:
                result.logged["tensorboard"] = str(log.tensorboard_dir)
            result.logged.update({k: v for k, v in where.resolved.items() if k != "tensorboard"})
        driver = SearchDriver(plan, name, opened, owns, the_executor, result, handlers, log=log, resume=resume)
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


def _fresh_name(store: Store, task_name: str, strategy: str) -> str:
    taken = set(studies.study_names(store))
    n = 1
    while f"{task_name}-{strategy}-{n}" in taken:
        n += 1
    return f"{task_name}-{strategy}-{n}"


def _in_running_loop() -> bool:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True
