"""The search loop: ask the strategy for points, hand trials to the executor, record what comes back.

The driver alone writes the store and tells the sampler; executors only train and forward
records (``report``). With a ``StudyLog`` (``tensorboard=``, ``mlflow=``), each trial's TensorBoard
and MLflow sinks get the same records as its store row, and the log ends with the search. One
trial's life:

1. ``ask`` the strategy (the trial's number picks its sampler seed) and apply the values to the
   base config; add the trial's row to the store (``running``);
2. the executor trains it and forwards its records: each goes to the trial's ``StoreSink``
   (metrics as they come), to the search's callbacks, and EVAL records to the pruner, whose
   verdict raises ``StopRun("pruned")`` inside the trial;
3. its outcome is told to the sampler: finished (COMPLETE with the final metric), pruned
   (PRUNED), failed, diverged or stopped (FAIL).

Resuming: trials already in the store under the study's name are given back to a fresh Optuna
study in their numbers' order (ended ones with their values and per-epoch metric, so the sampler
and the pruner know them); trials that were interrupted or stopped wait at their own number
with their own values and run first. New trials continue the numbering, so a seeded sampler
does not replay earlier points. ``n_trials`` counts trials that ended (finished, pruned, failed,
diverged). The settings a study was made with are stored with it; others under the same name
are refused. The driver resumes only when asked (``resume=True``, ``tw.search``'s ``resume=``);
otherwise a name the store already holds is refused with ``StudyExistsError``.

Example:
    >>> import tempfile, tunewidgets as tw
    >>> runs, base = tempfile.mkdtemp(), tw.TrainConfig(epochs=1, device="cpu")
    >>> space = {"lr": tw.space.Choice([0.05, 0.1])}
    >>> tw.search(tw.tasks.spirals(), space, base=base, strategy="grid", store=runs, study="s").status
    'finished'
    >>> tw.search(tw.tasks.spirals(), space, base=base, strategy="random", n_trials=2, store=runs, study="s",
    ...           resume=True)
    Traceback (most recent call last):
    ...
    tunewidgets.hpo.driver.StudyMismatchError: study: 's' in ... was made with strategy='grid' (now 'random'); resume it with the same settings, or pass a new study= name to start another
"""
from __future__ import annotations

import json
import math
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from tunewidgets.engine.control import RunStop, StopRun
from tunewidgets.hpo._trial_logs import close_sinks, feed_sinks, trial_sinks
from tunewidgets.hpo.executors import Executor, TrialOutcome, TrialSpec
from tunewidgets.hpo.plan import Plan
from tunewidgets.hpo.strategies import GridStrategy, _optuna
from tunewidgets.hpo.study import ENDED_STATES, Study, TrialRecord, fill_record
from tunewidgets.hpo.targets import apply_params
from tunewidgets.tracking import records, studies
from tunewidgets.tracking.metric_names import metric_name
from tunewidgets.tracking.sink import StoreSink
from tunewidgets.tracking.store import Store

__all__ = ["SearchDriver", "StudyExistsError", "StudyMismatchError"]

Callback = Callable[[str, dict[str, Any]], Any]

# studies being searched in this process: (store file, study name)
_ACTIVE: set[tuple[str, str]] = set()
_ACTIVE_LOCK = threading.Lock()
_COMPARED = ("strategy", "metric", "direction", "pruner", "seed", "space", "base", "task")
_NO_TASK: Any = None  # train_record without the task part (the driver keeps that part once)


class StudyMismatchError(ValueError):
    """A study of that name exists in the store with other settings than the ones given."""


class StudyExistsError(ValueError):
    """A study of that name exists in the store and the search was not asked to resume it."""


@dataclass
class _Live:
    spec: TrialSpec
    otrial: Any
    sink: StoreSink
    record: TrialRecord
    ended: bool = False
    extra: list[Any] = field(default_factory=list)  # the trial's TensorBoard/MLflow sinks
    started: float = math.nan  # perf_counter at the trial's START


class SearchDriver:
    """Runs one search: ``prepare()`` (checks, resume; raises before any training) then ``run()``."""

    def __init__(self, plan: Plan, name: str, store: Store, owns_store: bool, executor: Executor, study: Study,
                 callbacks: Iterable[Callback] = (), log: Any = None, resume: bool = True) -> None:
        self.plan, self.name, self.store, self.owns_store = plan, name, store, owns_store
        self.resume = resume  # False: a study of this name in the store is refused, not resumed
        self.log = log  # a StudyLog (TensorBoard/MLflow of the study), or None
        self.executor, self.study = executor, study
        self.callbacks = list(callbacks)
        self.stop = study._stop
        self._running: dict[int, _Live] = {}
        self._waiting: deque[int] = deque()
        self.next_number = 0
        self.ended = 0
        self._key = (str(store.path), name)
        self._metric_store_name = metric_name(plan.metric)
        self._repro_base: dict[str, Any] | None = None

    # ------------------------------------------------------------------ prepare
    def prepare(self) -> None:
        optuna = _optuna()
        plan = self.plan
        with _ACTIVE_LOCK:
            if self._key in _ACTIVE:
                raise RuntimeError(f"study {self.name!r} in {self.store.path} is already being searched in this "
                                   "process; stop it (study.stop()) and wait for it, or pick another study= name")
            _ACTIVE.add(self._key)
        try:
            pruner = plan.pruner if plan.pruner is not None else optuna.pruners.NopPruner()
            self.ostudy = optuna.create_study(direction=plan.direction, pruner=pruner,
                                              sampler=plan.strategy.sampler(0))
            settings = plan.settings()
            row = studies.study_row(self.store, self.name)
            if row is None:
                self.study_run = studies.create_study(self.store, self.name, settings)
            elif not self.resume:
                ended = sum(r["status"] in ENDED_STATES for r in studies.latest_trials(self.store, self.name))
                raise StudyExistsError(
                    f"study: {self.name!r} already exists in {self.store.path} ({ended} trials ended); pass "
                    "resume=True to continue it, or another study= name (or none, for a new one) to start afresh")
            else:
                self._check_same(row, settings)
                self.study_run = int(row["id"])
                self._resume()
                self.store.set_status(self.study_run, "running")
        except BaseException:
            with _ACTIVE_LOCK:
                _ACTIVE.discard(self._key)
            raise

    def _check_same(self, row: dict[str, Any], settings: dict[str, Any]) -> None:
        stored = row.get("params") or {}
        now = json.loads(json.dumps(settings, default=repr))
        for key in _COMPARED:
            if stored.get(key) != now.get(key):
                if key == "space":
                    before, after = stored.get(key) or {}, now.get(key) or {}
                    diff = sorted(k for k in set(before) | set(after) if before.get(k) != after.get(k))
                    what = f"a different space (keys that differ: {', '.join(diff)})"
                elif key == "base":
                    before, after = stored.get(key) or {}, now.get(key) or {}
                    diff = sorted(k for k in set(before) | set(after) if before.get(k) != after.get(k))
                    what = f"a different base config (fields that differ: {', '.join(diff)})"
                else:
                    what = f"{key}={stored.get(key)!r} (now {now.get(key)!r})"
                raise StudyMismatchError(
                    f"study: {self.name!r} in {self.store.path} was made with {what}; resume it with the same "
                    "settings, or pass a new study= name to start another")

    def _resume(self) -> None:
        from optuna.trial import TrialState, create_trial

        plan, space, strategy = self.plan, self.plan.space, self.plan.strategy
        latest = studies.latest_trials(self.store, self.name)
        running = [r for r in latest if r["status"] == "running"]
        if running:
            raise RuntimeError(f"study {self.name!r}: trial {running[0]['trial']} is marked running by another "
                               f"process writing {self.store.path}; let that search end first")
        ended_ids = [int(r["id"]) for r in latest if r["status"] in ENDED_STATES]
        curves: dict[int, list[tuple[int, float]]] = {i: [] for i in ended_ids}
        epochs: dict[int, int] = dict.fromkeys(ended_ids, 0)
        for row in studies.trial_metrics(self.store, ended_ids, self._metric_store_name).itertuples():
            curves[row.run].append((int(row.epoch) + 1, float(row.value)))
        for row in studies.trial_metrics(self.store, ended_ids, "train/epoch_loss").itertuples():
            epochs[row.run] += 1
        by_number = {r["trial"]: r for r in latest}
        states = {"finished": TrialState.COMPLETE, "pruned": TrialState.PRUNED}
        for number in range(max(by_number, default=-1) + 1):
            r = by_number.get(number)
            if r is None:  # asked, but killed before its row was written: sample it afresh
                self.ostudy.add_trial(create_trial(state=TrialState.WAITING))
                self._waiting.append(number)
                continue
            params = space.from_internal(r["search"])
            internal, dists = strategy.optuna_params(params)
            attrs = strategy.system_attrs(number, params)
            if r["status"] not in ENDED_STATES:  # interrupted or stopped: run again with the same values
                self.ostudy.add_trial(create_trial(state=TrialState.WAITING,
                                                   system_attrs={"fixed_params": internal, **attrs}))
                self._waiting.append(number)
                continue
            record = TrialRecord(number, params, int(r["id"]), state=r["status"])
            fill_record(record, r, plan.metric)
            curve = curves[int(r["id"])]
            record.epochs = epochs[int(r["id"])]
            record.best = _best([v for _, v in curve], plan.direction)
            state = states.get(r["status"], TrialState.FAIL)
            if state is TrialState.COMPLETE and not math.isfinite(record.value):
                state = TrialState.FAIL
            self.ostudy.add_trial(create_trial(
                state=state, value=record.value if state is TrialState.COMPLETE else None,
                params=internal, distributions=dists, system_attrs=attrs,
                intermediate_values=dict(curve)))
            with self.study._lock:
                self.study._records[number] = record
            self.ended += 1
        self.next_number = max(by_number, default=-1) + 1

    # ------------------------------------------------------------------ the loop
    def run(self) -> None:
        study, status, error = self.study, "failed", None
        study._store = self.store
        t0 = time.monotonic()
        try:
            if self.log is not None:
                self.log.start()
            self.executor.open(self.plan.task, self._report)
            while True:
                self._fill(t0)
                if self.executor.in_flight() == 0:
                    break
                for outcome in self.executor.wait():
                    self._finish(outcome)
            status = "stopped" if self.stop.is_set() else "finished"
        except KeyboardInterrupt as exc:
            status, error = "stopped", exc
        except BaseException as exc:  # noqa: BLE001 - handed to study.wait()
            error = exc
        finally:
            self._close(status)
        if error is not None:
            study._future.set_exception(error)
        else:
            study._future.set_result(None)

    def _budget_left(self, t0: float) -> bool:
        plan = self.plan
        if self.stop.is_set():
            return False
        if plan.n_trials is not None and self.ended + self.executor.in_flight() >= plan.n_trials:
            return False
        if plan.timeout is not None and time.monotonic() - t0 >= plan.timeout:
            return False
        strategy = plan.strategy
        if isinstance(strategy, GridStrategy) and not self._waiting and self.next_number >= (strategy.size or 0):
            return False
        return True

    def _fill(self, t0: float) -> None:
        while self.executor.free_slots() > 0 and self._budget_left(t0):
            number = self._waiting[0] if self._waiting else self.next_number
            otrial = self.plan.strategy.ask(self.ostudy, number)
            if otrial.number != number:  # pragma: no cover - the numbering is this module's invariant
                raise RuntimeError(f"search: Optuna gave trial {otrial.number}, expected {number}")
            if self._waiting:
                self._waiting.popleft()
            else:
                self.next_number += 1
            self._start(number, otrial)

    def _start(self, number: int, otrial: Any) -> None:
        plan, space = self.plan, self.plan.space
        params = plan.strategy.params(otrial)
        record = TrialRecord(number, params, None)
        try:
            config = apply_params(plan.base, params)
        except (ValueError, TypeError) as exc:  # a combination of values the config rejects
            config, problem = None, f"{type(exc).__name__}: {exc}"
        repro = None
        if config is not None:
            try:
                repro = {"repro": self._repro(config)}
            except Exception as exc:  # noqa: BLE001 - the trial still trains; tw.rerun says why it cannot
                repro = {"repro": {"error": f"{type(exc).__name__}: {exc}"}}
        run_id = studies.start_trial(self.store, self.name, number, space.to_internal(params),
                                     config=(config or plan.base).to_dict(), seed=(config or plan.base).seed,
                                     env=repro)
        record.run_id = run_id
        with self.study._lock:
            self.study._records[number] = record
        extra = trial_sinks(self.log, number, params)
        if config is None:
            self.store.finish_run(run_id, "failed", error=problem)
            self._ended_record(record, "failed", {}, problem, 0.0)
            end = {"status": "failed", "error": problem, "final": {}, "run_id": run_id, "trial": number}
            feed_sinks(extra, "start", {"run_id": run_id, "trial": number, "study": self.name, "params": params})
            feed_sinks(extra, "end", end)
            close_sinks(extra)
            self.ostudy.tell(otrial, state=_optuna().trial.TrialState.FAIL)
            self._call("end", {"status": "failed", "error": problem, "final": {}, "run_id": run_id,
                               "trial": number, "reason": problem})
            return
        spec = TrialSpec(self.name, number, params, config, run_id, RunStop(parent=self.stop))
        self._running[number] = _Live(spec, otrial, StoreSink(self.store, run_id, kind="trial", study=self.name),
                                      record, extra=extra)
        self.executor.submit(spec)

    def _repro(self, config: Any) -> dict[str, Any]:
        """``records.train_record(task, config)``, its task and version parts made once per search.

        They are the same for every trial (the task's data and model fingerprints cost about a
        millisecond to make); the config, its seed and its device are the trial's own.
        """
        if self._repro_base is None:
            self._repro_base = records.train_record(self.plan.task, config)
            return self._repro_base
        own = records.train_record(_NO_TASK, config)
        return {**self._repro_base, **{k: own[k] for k in ("kind", "config", "seed", "device")}}

    # ------------------------------------------------------------------ records
    def _report(self, spec: TrialSpec, event: str, record: dict[str, Any]) -> None:
        live = self._running[spec.number]
        live.sink.handle(event, record)
        feed_sinks(live.extra, event, record)
        if event == "end":
            close_sinks(live.extra)
        rec = live.record
        if event == "epoch":
            rec.epochs += 1
        elif event == "eval":
            value = record.get(self.plan.metric)
            if isinstance(value, (int, float)) and math.isfinite(value):
                with self.study._lock:
                    rec.value = float(value)
                    rec.best = _best([rec.best, rec.value], self.plan.direction)
            self._call(event, record)
            self._prune(live, value, record)
            return
        elif event == "end":
            live.ended = True
            seconds = time.perf_counter() - live.started if math.isfinite(live.started) else 0.0
            self._ended_record(rec, record.get("status", "failed"), record.get("final") or {},
                               record.get("error"), seconds)
        elif event == "start":
            live.started = time.perf_counter()
        self._call(event, record)

    def _prune(self, live: _Live, value: Any, record: dict[str, Any]) -> None:
        if self.plan.pruner is None or not isinstance(value, (int, float)) or not math.isfinite(value):
            return
        done = live.record.epochs
        if done >= live.spec.config.epochs:
            return  # its training is over: nothing left to save
        live.otrial.report(float(value), step=done)
        if live.otrial.should_prune():
            raise StopRun("pruned", f"{self.plan.metric} {value:.4g} after {done} epoch(s): "
                                    f"{self.plan.pruner_name} pruner")

    def _ended_record(self, rec: TrialRecord, status: str, final: dict[str, Any], error: str | None,
                      seconds: float) -> None:
        with self.study._lock:
            rec.state = status
            value = final.get(self.plan.metric)
            rec.value = float(value) if isinstance(value, (int, float)) else math.nan
            rec.error = error
            rec.duration = seconds

    def _call(self, event: str, record: dict[str, Any]) -> None:
        for cb in self.callbacks:
            cb(event, record)

    # ------------------------------------------------------------------ outcomes
    def _finish(self, outcome: TrialOutcome) -> None:
        TrialState = _optuna().trial.TrialState
        live = self._running.pop(outcome.spec.number)
        rec, status = live.record, outcome.status
        if not live.ended:  # no END came back (the executor failed around the trial)
            self.store.finish_run(outcome.spec.run_id, status, final=outcome.final or None, error=outcome.error)
            self._ended_record(rec, status, outcome.final, outcome.error, outcome.seconds)
            end = {"status": status, "error": outcome.error, "final": outcome.final,
                   "run_id": outcome.spec.run_id, "trial": outcome.spec.number, "reason": outcome.reason}
            feed_sinks(live.extra, "end", end)
            close_sinks(live.extra)
            self._call("end", end)
        elif outcome.error and not rec.error:
            with self.study._lock:
                rec.error = outcome.error
        with self.study._lock:
            rec.reason = outcome.reason
            if status == "failed" and outcome.error:
                rec.error = outcome.error
        if status == "finished" and math.isfinite(rec.value):
            self.ostudy.tell(live.otrial, rec.value)
        elif status == "pruned":
            self.ostudy.tell(live.otrial, state=TrialState.PRUNED)
        else:
            self.ostudy.tell(live.otrial, state=TrialState.FAIL)
        if status in ENDED_STATES:
            self.ended += 1

    def _close(self, status: str) -> None:
        try:
            for live in list(self._running.values()):  # trials left in flight by an error
                live.spec.stop.set("stopped", "the search ended")
                if not live.ended:
                    try:
                        self.store.finish_run(live.spec.run_id, "stopped", error="the search ended before it")
                    except Exception:  # noqa: BLE001 - the store may be what failed
                        pass
                    self._ended_record(live.record, "stopped", {}, None, math.nan)
                    feed_sinks(live.extra, "end", {"status": "stopped", "error": None, "final": {},
                                                   "run_id": live.spec.run_id, "trial": live.spec.number})
                close_sinks(live.extra)
            self._running.clear()
            try:
                self.executor.close()
            finally:
                try:
                    self.store.finish_run(self.study_run, status)
                except Exception:  # noqa: BLE001
                    pass
                if self.log is not None:
                    try:
                        self.log.end(status)
                    except Exception:  # noqa: BLE001 - the store holds the study; logging is a copy
                        pass
        finally:
            self.study.status = status
            if self.owns_store:
                self.study._store = None
                self.store.close()
            with _ACTIVE_LOCK:
                _ACTIVE.discard(self._key)


def _best(values: list[float], direction: str) -> float:
    values = [v for v in values if math.isfinite(v)]
    if not values:
        return math.nan
    return max(values) if direction == "maximize" else min(values)
