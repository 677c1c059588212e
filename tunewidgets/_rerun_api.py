"""``tw.rerun``: repeat a recorded run and say whether it gave the same curve, and if not, why.

A run recorded with ``store=`` keeps what repeats it (``env["repro"]``, see
``tunewidgets.tracking.records``): its full config, seed, versions, device, the built-in task's
name and arguments, and fingerprints of the data and of the model factory's source. ``rerun``
builds the task again (or takes ``task=`` for a custom one), trains (or range-tests) with the
recorded settings into the same store (a run named ``rerun of <id>``), then compares every
metric the two runs recorded, step by step: ``matches`` is True when all are equal (NaN equal
to NaN). On the CPU the same seed and config give the very same curve; ``mismatch`` names what
changed when it is not: a dataset, the model factory, the settings, a version, the device, or
else the first point that differs. A run that ended early (stopped, pruned, interrupted) matches
when the repeat passes through all of its recorded points.

The store is data, not instructions: a rerun logs only where its caller says
(``tensorboard=``, ``mlflow=``), never to a folder or server named in the record; of a range
test's recorded call only the settings that shape the test are taken (anything else in it is
refused, naming the key); and a store that is not there is not created.

Example:
    >>> import tempfile, tunewidgets as tw
    >>> folder = tempfile.mkdtemp()
    >>> run = tw.train(tw.tasks.spirals(), tw.TrainConfig(optimizer="adam", lr=0.01, epochs=2, device="cpu"),
    ...                store=folder)
    >>> again = tw.rerun(folder, run.run_id)
    >>> again.matches, again.mismatch, again.run_id != run.run_id
    (True, None, True)
"""
from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from typing import Any

import numpy as np

import tunewidgets.api as api
import tunewidgets.tasks as tasks
from tunewidgets.engine.config import TrainConfig
from tunewidgets.engine.run import Run
from tunewidgets.engine.status import CUT_SHORT_STATUSES
from tunewidgets.engine.task import Task
from tunewidgets.lr.range_test import current_names
from tunewidgets.lr.result import LRRangeTestResult
from tunewidgets.schedules import from_dict
from tunewidgets.tracking.records import differences
from tunewidgets.tracking.store import Store

__all__ = ["rerun"]

_TRAINING_KINDS = ("train", "trial")
# the keywords of a range test's recorded call that a rerun takes (tracking.records.range_test_record)
_CALL_KEYS = frozenset({"start_lr", "end_lr", "steps", "mode", "smoothing", "diverge", "grad_accum",
                        "eval_every_steps", "log_every", "amp", "method", "seed", "batch_size", "device",
                        "optimizer", "optimizer_kwargs", "config", "val"})
_READ_COLUMNS = ("kind", "params", "env")  # what a rerun reads from the recorded row


def rerun(store: Any, run_id: int, task: Task | None = None, *, tensorboard: Any = None,
          mlflow: Any = None) -> Run | LRRangeTestResult:
    """Repeat run ``run_id`` of ``store`` (a training run, a trial or a range test) and compare.

    Args:
        store: the ``tw.Store`` or runs folder that recorded the run; the repeat is recorded there too.
        run_id: the run to repeat.
        task: the task to train; needed for a custom task, optional for a built-in one (rebuilt
            from the record). A different task may be given on purpose: ``mismatch`` then names
            what differs (its data, its model factory).
        tensorboard, mlflow: where the repeat also logs, as in ``tw.train`` (default: nowhere
            else); never taken from the record.

    Returns:
        The new :class:`~tunewidgets.Run` (or :class:`~tunewidgets.LRRangeTestResult`) with
        ``matches`` (bool) and ``mismatch`` (None, or the reason in words).
    """
    if task is not None and not isinstance(task, Task):
        raise TypeError(f"task: expected a tw.Task (or None for a built-in task), got {type(task).__name__}")
    if store is None:
        raise TypeError("store: expected the tw.Store or runs folder that recorded the run, got None")
    api.tensorboard_dir(tensorboard, store), api.mlflow_uri(mlflow, store)  # bad values fail before anything
    with api.open_store(store, create=False) as opened:
        assert opened is not None
        row = opened.run(run_id)
        bad = [c for c in opened.unreadable_columns(row["id"]) if c in _READ_COLUMNS]
        if bad:
            raise ValueError(f"run_id: run {row['id']} of {opened.path} cannot be repeated: its stored "
                             f"{', '.join(bad)} could not be read (see store.unreadable)")
        repro = (row.get("env") or {}).get("repro")
        if repro is not None and not isinstance(repro, Mapping):
            raise ValueError(f"run_id: run {row['id']}'s stored reproducibility record is not readable (a "
                             f"{type(repro).__name__}, not a dict), so it cannot be repeated")
        if isinstance(repro, Mapping) and "error" in repro:
            raise ValueError(f"run_id: run {row['id']} was not recorded fully enough to repeat it ({repro['error']})")
        kind = row["kind"]
        if kind == "lr_range_test":
            result: Run | LRRangeTestResult = _rerun_range_test(opened, row, repro, task, tensorboard, mlflow)
        elif kind in _TRAINING_KINDS:
            result = _rerun_training(opened, row, repro, task, tensorboard, mlflow)
        else:
            raise ValueError(f"run_id: run {row['id']} is of kind {kind!r}; tw.rerun repeats training runs, "
                             "trials and LR range tests")
        now = (opened.run(result.run_id).get("env") or {}).get("repro")
        reasons = differences(repro, now) if repro else ["the run has no reproducibility record (recorded "
                                                         "without it), so only its curve is compared"]
        curve = _compare(opened, row, result.run_id)
    result.matches = curve is None
    if curve is not None:
        if reasons:
            result.mismatch = "; ".join(reasons) + f" (first difference: {curve})"
        else:
            result.mismatch = ("the curve differs although the recorded data, model factory, settings, versions "
                               f"and device are the same: {curve}")
    return result


# ------------------------------------------------------------------ rebuilding
def _task(row: Mapping[str, Any], repro: Mapping[str, Any] | None, task: Task | None) -> Task:
    if task is not None:
        return task
    recorded = (repro or {}).get("task") or {}
    spec = recorded.get("spec")
    if isinstance(spec, Mapping) and spec.get("name") in tasks.__all__:
        return getattr(tasks, spec["name"])(**dict(spec.get("kwargs") or {}))
    name = recorded.get("name") or "unknown"
    raise ValueError(f"task: run {row['id']} trained on a custom task ({name!r}) that cannot be rebuilt from "
                     f"the store; pass it again: tw.rerun(store, {row['id']}, task=your_task)")


def _config(row: Mapping[str, Any], repro: Mapping[str, Any] | None) -> TrainConfig:
    fields = {f.name for f in dataclasses.fields(TrainConfig)}
    recorded = (repro or {}).get("config")
    values = dict(recorded) if isinstance(recorded, Mapping) else {
        k: v for k, v in (row.get("params") or {}).items() if k in fields}
    unknown = sorted(set(values) - fields)
    if unknown:
        raise ValueError(f"run_id: run {row['id']} has settings this tunewidgets does not know ({', '.join(unknown)}); "
                         "repeat it with the tunewidgets version that recorded it")
    schedule = values.get("schedule")
    if isinstance(schedule, Mapping):
        values["schedule"] = from_dict(dict(schedule))
    elif schedule is not None:
        raise ValueError(f"run_id: run {row['id']} used a schedule given as a function ({schedule}), which the "
                         "store cannot rebuild; train it again with tw.train(task, config)")
    return TrainConfig(**values)


def _rerun_training(store: Store, row: Mapping[str, Any], repro: Mapping[str, Any] | None,
                    task: Task | None, tensorboard: Any, mlflow: Any) -> Run:
    config = _config(row, repro)
    return api.train(_task(row, repro, task), config, store=store, kind="train", name=f"rerun of {row['id']}",
                     tensorboard=tensorboard, mlflow=mlflow)


def _rerun_range_test(store: Store, row: Mapping[str, Any], repro: Mapping[str, Any] | None,
                      task: Task | None, tensorboard: Any, mlflow: Any) -> LRRangeTestResult:
    if not repro or "call" not in repro:
        raise ValueError(f"run_id: range test {row['id']} was recorded without the settings that repeat it")
    own = list(repro.get("own_objects") or ())
    if own:
        raise ValueError(f"run_id: range test {row['id']} ran on objects of your own ({', '.join(own)}), which the "
                         "store does not keep; repeat it with tw.lr_range_test and the same objects")
    if not isinstance(repro["call"], Mapping):
        raise ValueError(f"run_id: range test {row['id']} has an unreadable recorded call ({repro['call']!r})")
    call = current_names(dict(repro["call"]))  # a store from before a keyword was renamed
    foreign = sorted(str(k) for k in set(call) - _CALL_KEYS)
    if foreign:
        raise ValueError(f"run_id: range test {row['id']}'s recorded call holds {', '.join(map(repr, foreign))}, "
                         "which is not a setting a rerun takes from a store; a rerun logs only where you say "
                         "(tw.rerun(store, run_id, tensorboard=..., mlflow=...))")
    if "config" in call:
        if not isinstance(call["config"], Mapping):
            raise ValueError(f"run_id: range test {row['id']}'s recorded config is not readable "
                             f"({call['config']!r:.60})")
        call["config"] = TrainConfig(**call["config"])
    return api.lr_range_test(_task(row, repro, task), store=store, tensorboard=tensorboard, mlflow=mlflow, **call)


# ------------------------------------------------------------------ comparing
def _compare(store: Store, row: Mapping[str, Any], new_id: int) -> str | None:
    """None when the new run recorded the same metric values at the same steps, else the first difference."""
    old, new = store.metrics(row["id"]), store.metrics(new_id)
    early = row.get("status") in CUT_SHORT_STATUSES
    if old.empty:
        return None if new.empty or early else f"run {row['id']} recorded no metrics to compare with"
    first: tuple[int, str] | None = None  # (step, description) of the earliest difference
    for name in sorted(set(old["name"]) | set(new["name"])):
        a, b = old[old["name"] == name], new[new["name"] == name]
        n = len(a)
        if len(b) < n or (len(b) > n and not early):
            return f"{name}: {n} points recorded, {len(b)} now"
        steps_a, steps_b = a["step"].to_numpy(), b["step"].to_numpy()[:n]
        va, vb = a["value"].to_numpy(), b["value"].to_numpy()[:n]
        same = (steps_a == steps_b) & ((va == vb) | (np.isnan(va) & np.isnan(vb)))
        if not same.all():
            i = int(np.argmin(same))
            if first is None or int(steps_a[i]) < first[0]:
                first = (int(steps_a[i]), f"{name} at step {int(steps_a[i])}: {_fmt(va[i])} recorded, "
                                          f"{_fmt(vb[i])} now")
    return None if first is None else first[1]


def _fmt(v: float) -> str:
    return repr(float(v)) if math.isfinite(v) else str(v)
