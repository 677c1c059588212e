"""Resuming a study: its stored settings against the new ones, and its ended trials given back.

A study's row keeps the settings it was made with (``Plan.settings()``) and the identity of its
data: the fingerprints of the task's training and validation data and of its model factory
(``tracking.records``). A search under the same name with other settings, or with a task of the
same name but other data, is refused with :class:`StudyMismatchError`, naming what differs.

:class:`History` holds what this process knows of the study's ended trials, whoever ran them:
each is in the Optuna study (so the sampler and the pruner know it) and in the ``Study`` (so
``study.trials`` shows it). ``load`` gives back the trials found when the search starts;
``sync`` adds those that other processes searching the same study ended since.

Example:
    >>> import tempfile, tunewidgets as tw
    >>> runs, space = tempfile.mkdtemp(), {"lr": tw.space.Choice([0.05, 0.1])}
    >>> base = tw.TrainConfig(epochs=1, device="cpu")
    >>> _ = tw.search(tw.tasks.spirals(n=200), space, base=base, strategy="grid", store=runs, study="s")
    >>> tw.search(tw.tasks.spirals(n=300, noise=0.3), space, base=base, strategy="grid", store=runs, study="s",
    ...           resume=True)
    Traceback (most recent call last):
    ...
    tunewidgets.hpo.resume.StudyMismatchError: study: 's' in ... was made with other data: the training data of task 'spirals' changed (160 samples then, 240 now); ...
"""
from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping
from typing import Any

from tunewidgets.engine.task import Task
from tunewidgets.hpo._optuna_trials import ended_trial
from tunewidgets.hpo.plan import Plan
from tunewidgets.hpo.study import ENDED_STATES, Study, TrialRecord, fill_record
from tunewidgets.tracking import records, studies
from tunewidgets.tracking._claims import TrialRow
from tunewidgets.tracking.sink import metric_name
from tunewidgets.tracking.store import Store

__all__ = ["StudyExistsError", "StudyMismatchError", "COMPARED", "study_settings", "data_identity", "check_same", "History"]

COMPARED = ("strategy", "metric", "direction", "pruner", "seed", "space", "base", "task")


class StudyExistsError(ValueError):
    """A study of that name exists in the store and the search was not asked to resume it."""


class StudyMismatchError(ValueError):
    """A study of that name exists in the store with other settings (or data) than the ones given."""


def data_identity(task: Task) -> dict[str, Any]:
    """Fingerprints of the task's data and model factory, as a study keeps them (JSON)."""
    identity = {"name": task.name, "train": records.fingerprint_data(task.train),
                "val": records.fingerprint_data(task.val), "model": records.fingerprint_factory(task.model)}
    return json.loads(json.dumps(identity, default=repr))


def study_settings(plan: Plan) -> dict[str, Any]:
    """What a study's row keeps: the plan's settings and the identity of its data."""
    return {**plan.settings(), "data": data_identity(plan.task)}


def check_same(name: str, path: Any, stored: Mapping[str, Any], settings: Mapping[str, Any]) -> None:
    """Raise :class:`StudyMismatchError` naming the first setting (or the data) that differs."""
    now = json.loads(json.dumps(dict(settings), default=repr))
    what = None
    for key in COMPARED:
        if stored.get(key) != now.get(key):
            if key in ("space", "base"):
                before, after = stored.get(key) or {}, now.get(key) or {}
                diff = sorted(k for k in set(before) | set(after) if before.get(k) != after.get(k))
                kind = "space (keys" if key == "space" else "base config (fields"
                what = f"a different {kind} that differ: {', '.join(diff)})"
            else:
                what = f"{key}={stored.get(key)!r} (now {now.get(key)!r})"
            break
    if what is None and stored.get("data") is not None:  # studies of older versions kept no data identity
        changed = records.differences({"task": stored["data"]}, {"task": now.get("data")})
        if changed:
            what = f"other data: {'; '.join(changed)}"
    if what is not None:
        raise StudyMismatchError(f"study: {name!r} in {path} was made with {what}; resume it with the same "
                                 "settings and data, or pass a new study= name to start another")


class History:
    """The ended trials of a study that this process has given to its Optuna study and its ``Study``."""

    def __init__(self, plan: Plan, optuna_study: Any, study: Study) -> None:
        self.plan, self.optuna_study, self.study = plan, optuna_study, study
        self.known: set[int] = set()  # run ids of the ended trials given (or told) already
        self._metric = metric_name(plan.metric)

    def load(self, store: Store, rows: Iterable[Mapping[str, Any]]) -> None:
        """Give back the ended trials among ``rows`` (run rows of ``tracking.studies``), in number order."""
        plan, strategy = self.plan, self.plan.strategy
        ended = sorted((r for r in rows if r["status"] in ENDED_STATES and int(r["id"]) not in self.known),
                       key=lambda r: r["trial"])
        ids = [int(r["id"]) for r in ended]
        curves: dict[int, list[tuple[int, float]]] = {i: [] for i in ids}
        epochs: dict[int, int] = dict.fromkeys(ids, 0)
        for row in studies.trial_metrics(store, ids, self._metric).itertuples():
            curves[row.run].append((int(row.epoch) + 1, float(row.value)))
        for row in studies.trial_metrics(store, ids, "train/epoch_loss").itertuples():
            epochs[row.run] += 1
        for r in ended:
            number, rid = int(r["trial"]), int(r["id"])
            params = plan.space.from_internal(r["search"])
            internal, dists = strategy.optuna_params(params)
            record = TrialRecord(number, params, rid, state=r["status"])
            fill_record(record, r, plan.metric)
            record.epochs = epochs[rid]
            record.best = best_of([v for _, v in curves[rid]], plan.direction)
            self.optuna_study.add_trial(ended_trial(
                r["status"], record.value, params=internal, distributions=dists,
                system_attrs=strategy.system_attrs(number, params), intermediate=dict(curves[rid])))
            self.study.keep(record)
            self.known.add(rid)

    def sync(self, store: Store, latest: Iterable[TrialRow]) -> None:
        """Give back the trials that ended since (run by other processes), given their newest rows
        (all of them, or those a claim saw change)."""
        new = [r.id for r in latest if r.status in ENDED_STATES and r.id not in self.known]
        if new:
            self.load(store, [_lifted(store.run(rid)) for rid in new])


def _lifted(row: dict[str, Any]) -> dict[str, Any]:
    """A run row with ``trial`` and ``search`` lifted out of its params, as ``studies.trial_runs`` gives."""
    params = row.get("params") or {}
    return {**row, "trial": int(params.get("trial", -1)), "search": dict(params.get("search") or {})}


def best_of(values: list[float], direction: str) -> float:
    """The best finite value of ``values`` (NaN when none is)."""
    values = [v for v in values if math.isfinite(v)]
    if not values:
        return math.nan
    return max(values) if direction == "maximize" else min(values)
