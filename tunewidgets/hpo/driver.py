"""The search loop: claim trials, hand them to the executor, record what comes back.

The driver alone writes the store and tells the sampler; executors only train and forward
records (``report``). With a ``StudyLog`` (``tensorboard=``, ``mlflow=``), each trial's TensorBoard
and MLflow sinks get the same records as its store row, and the log ends with the search. One
trial's life:

1. the trial is *claimed* in the store (``Store.claim_trial``, one transaction): a trial that was
   interrupted or stopped, with its own values, else the next number, whose values the strategy
   asks for inside that transaction (the trial's number picks its sampler seed); its row is
   added (``running``) in the same transaction, so that processes searching one study never
   train the same trial;
2. the executor trains it and forwards its records: each goes to the trial's ``StoreSink``
   (metrics as they come), to the search's callbacks, and EVAL records to the pruner, whose
   verdict raises ``StopRun("pruned")`` inside the trial;
3. its outcome is told to the sampler (``_optuna_trials``): finished (COMPLETE with the final
   metric), pruned (PRUNED), failed, diverged or stopped (FAIL).

``n_trials`` counts trials that ended (finished, pruned, failed, diverged) in the whole study,
whichever process ran them; when the rest are being trained by other live processes, the search
waits for them (one may still die, and its trial must run again). Resuming, and the settings a
study is compared on, are ``hpo.resume``'s. A study the store already holds is resumed only when asked
(``resume=True``, ``tw.search``'s ``resume=``); otherwise its name is refused with
``StudyExistsError`` before any trial.

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
    tunewidgets.hpo.resume.StudyMismatchError: study: 's' in ... was made with strategy='grid' (now 'random'); resume it with the same settings and data, or pass a new study= name to start another
"""
from __future__ import annotations

import math
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from tunewidgets.engine.control import RunStop, StopRun
from tunewidgets.hpo import _optuna_trials
from tunewidgets.hpo._trial_logs import close_sinks, feed_sinks, trial_sinks
from tunewidgets.hpo.executors import Executor, TrialOutcome, TrialSpec
from tunewidgets.hpo.plan import Plan
from tunewidgets.hpo.resume import (History, StudyExistsError, StudyMismatchError, best_of, check_same,
                                   study_settings)
from tunewidgets.hpo.strategies import GridStrategy, _optuna
from tunewidgets.hpo.study import ENDED_STATES, Study, TrialRecord
from tunewidgets.hpo.targets import apply_params
from tunewidgets.tracking import records, studies
from tunewidgets.tracking._claims import Claim
from tunewidgets.tracking._writer import write_failure_text
from tunewidgets.tracking.metric_names import metric_name
from tunewidgets.tracking.sink import StoreSink
from tunewidgets.tracking.store import Store, StoreWriteError

__all__ = ["SearchDriver", "StudyExistsError", "StudyMismatchError", "StoreWriteError"]

Callback = Callable[[str, dict[str, Any]], Any]

# studies being searched in this process: (store file, study name)
_ACTIVE: set[tuple[str, str]] = set()
_ACTIVE_LOCK = threading.Lock()
_NO_TASK: Any = None  # train_record without the task part (the driver keeps that part once)
POLL = 0.5  # seconds between claims while only other processes' trials are left


@dataclass
class _Live:
    spec: TrialSpec
    otrial: Any
    sink: StoreSink
    record: TrialRecord
    ended: bool = False
    extra: list[Any] = field(default_factory=list)  # the trial's TensorBoard/MLflow sinks
    started: float = math.nan  # perf_counter at the trial's START


@dataclass
class _Asked:
    """The trial a claim's transaction chose values for: its Optuna trial, values and config."""

    otrial: Any
    params: dict[str, Any]
    config: Any
    problem: str | None


class SearchDriver:
    """Runs one search: ``prepare()`` (checks, resume; raises before any training) then ``run()``."""

    def __init__(self, plan: Plan, name: str, store: Store, owns_store: bool, executor: Executor, study: Study,
                 callbacks: Iterable[Callback] = (), log: Any = None, resume: bool = True) -> None:
        self.plan, self.name, self.store, self.owns_store = plan, name, store, owns_store
        self.resume = resume  # False: a study of this name in the store is refused, not resumed
        self.log = log  # a StudyLog (TensorBoard/MLflow of the study), or None
        self.executor, self.study = executor, study
        self.callbacks = list(callbacks)
        self.stop = study.stop_flag
        self._running: dict[int, _Live] = {}
        self._others = 0  # trials other processes were training at the last claim
        self._asked: _Asked | None = None
        self._key = (str(store.path), name)
        self._repro_base: dict[str, Any] | None = None
        self.study_run: int | None = None

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
            # named as the study is: Hyperband assigns a trial's bracket from a hash of the Optuna
            # study's name, and an unnamed one gets a random name (the same search, other prunes)
            self.ostudy = optuna.create_study(study_name=self.name, direction=plan.direction, pruner=pruner,
                                              sampler=plan.strategy.sampler(0))
            self.history = History(plan, self.ostudy, self.study)
            settings = study_settings(plan)
            try:
                self.study_run, stored = self.store.open_study(self.name, settings)
                if stored is not None:
                    if not self.resume:
                        ended = sum(r["status"] in ENDED_STATES for r in studies.latest_trials(self.store, self.name))
                        raise StudyExistsError(
                            f"study: {self.name!r} already exists in {self.store.path} ({ended} trials ended); pass "
                            "resume=True to continue it, or another study= name (or none, for a new one) to start "
                            "afresh")
                    check_same(self.name, self.store.path, stored, settings)
                    self.history.load(self.store, studies.latest_trials(self.store, self.name))
                    self.store.set_status(self.study_run, "running")
            except sqlite3.Error as exc:
                raise self._store_error(exc, []) from None
        except BaseException:
            with _ACTIVE_LOCK:
                _ACTIVE.discard(self._key)
            raise

    # ------------------------------------------------------------------ the loop
    def run(self) -> None:
        status, error = "failed", None
        self.study.use_store(self.store)
        t0 = time.monotonic()
        try:
            if self.log is not None:
                self.log.start()
            self.executor.open(self.plan.task, self._report)
            while True:
                self._fill(t0)
                if self.executor.in_flight() == 0:
                    if self._others and self._may_start(t0):  # one of theirs may still die and run again here
                        self.stop.wait(POLL)
                        continue
                    break
                for outcome in self.executor.wait():
                    self._finish(outcome)
            self.history.sync(self.store, self._stored(self.store.trial_rows, self.name))  # what others ended last
            status = "stopped" if self.stop.is_set() else "finished"
        except KeyboardInterrupt as exc:
            status, error = "stopped", exc
        except BaseException as exc:  # noqa: BLE001 - handed to study.wait()
            error = exc
        finally:
            self._close(status)
        self.study.end(status, error)

    def _may_start(self, t0: float) -> bool:
        if self.stop.is_set():
            return False
        timeout = self.plan.timeout
        return timeout is None or time.monotonic() - t0 < timeout

    def _fill(self, t0: float) -> None:
        plan = self.plan
        limit = plan.strategy.size if isinstance(plan.strategy, GridStrategy) else None
        while self.executor.free_slots() > 0 and self._may_start(t0):
            claim = self._stored(self.store.claim_trial, self.name, self._ask, n_trials=plan.n_trials, limit=limit,
                                 ended=ENDED_STATES)
            self._others = claim.others
            self.history.sync(self.store, claim.changed)  # trials other processes ended: sampler and Study
            if claim.number is None:
                return
            self._start(claim)

    def _stored(self, call: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """``call(*args, **kwargs)`` on the store; a store that cannot be written (a full disk) ends
        the search with one line naming it, not SQLite's error."""
        try:
            return call(*args, **kwargs)
        except sqlite3.Error as exc:
            raise self._store_error(exc, self._unrecorded()) from None

    def _ask(self, number: int, search: dict[str, Any] | None) -> tuple[dict[str, Any], int, dict[str, Any] | None]:
        """Inside the claim's transaction: the values of trial ``number`` (its stored ``search``
        values when it runs again), its config, and its row's params, seed and environment."""
        from optuna.trial import TrialState, create_trial

        plan, strategy, space = self.plan, self.plan.strategy, self.plan.space
        attrs: dict[str, Any] = {}
        if search is not None:  # runs again with its own values
            fixed = space.from_internal(search)
            attrs = {"fixed_params": strategy.optuna_params(fixed)[0], **strategy.system_attrs(number, fixed)}
        elif isinstance(strategy, GridStrategy):  # the grid's point of this number
            attrs = strategy.system_attrs(number, {})
        if attrs:
            self.ostudy.add_trial(create_trial(state=TrialState.WAITING, system_attrs=attrs))
        otrial = strategy.ask(self.ostudy, number)  # the waiting trial just added, else a new one
        params = strategy.params(otrial)
        config, problem, repro = None, None, None
        try:
            config = apply_params(plan.base, params)
        except (ValueError, TypeError) as exc:  # a combination of values the config rejects
            problem = f"{type(exc).__name__}: {exc}"
        if config is not None:
            try:
                repro = {"repro": self._repro(config)}
            except Exception as exc:  # noqa: BLE001 - the trial still trains; tw.rerun says why it cannot
                repro = {"repro": {"error": f"{type(exc).__name__}: {exc}"}}
        self._asked = _Asked(otrial, params, config, problem)
        used = config or plan.base
        return {**used.to_dict(), "search": space.to_internal(params)}, used.seed, repro

    def _start(self, claim: Claim) -> None:
        asked, self._asked = self._asked, None
        assert asked is not None and claim.number is not None and claim.run_id is not None
        number, run_id, params, config, problem = claim.number, claim.run_id, asked.params, asked.config, asked.problem
        record = TrialRecord(number, params, run_id)
        self.study.keep(record)
        extra = trial_sinks(self.log, number, params)
        if config is None:
            self.store.finish_run(run_id, "failed", error=problem)
            self._ended_record(record, "failed", {}, problem, 0.0)
            self.study.update(record, reason=problem)
            end = {"status": "failed", "error": problem, "final": {}, "run_id": run_id, "trial": number}
            feed_sinks(extra, "start", {"run_id": run_id, "trial": number, "study": self.name, "params": params})
            feed_sinks(extra, "end", end)
            close_sinks(extra)
            _optuna_trials.tell(self.ostudy, asked.otrial, "failed", math.nan)
            self.history.known.add(run_id)
            self._call("end", {**end, "reason": problem})
            return
        spec = TrialSpec(self.name, number, params, config, run_id, RunStop(parent=self.stop))
        self._running[number] = _Live(spec, asked.otrial, StoreSink(self.store, run_id, kind="trial", study=self.name),
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
            self.study.update(rec, epochs=rec.epochs + 1)
        elif event == "eval":
            value = record.get(self.plan.metric)
            if isinstance(value, (int, float)) and math.isfinite(value):
                self.study.update(rec, value=float(value), best=best_of([rec.best, float(value)], self.plan.direction))
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
        value = final.get(self.plan.metric)
        self.study.update(rec, state=status, value=float(value) if isinstance(value, (int, float)) else math.nan,
                          error=error, duration=seconds)

    def _call(self, event: str, record: dict[str, Any]) -> None:
        for cb in self.callbacks:
            cb(event, record)

    # ------------------------------------------------------------------ outcomes
    def _finish(self, outcome: TrialOutcome) -> None:
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
        error = outcome.error if (status == "failed" and outcome.error) or not rec.error else rec.error
        self.study.update(rec, reason=outcome.reason, error=error)
        _optuna_trials.tell(self.ostudy, live.otrial, status, rec.value)
        self.history.known.add(outcome.spec.run_id)

    def _unrecorded(self) -> list[int]:
        """Trials whose end the store could not write: marked so in the Study; their numbers."""
        pending = {f.run_id for f in self.store.errors if f.op == "finish_run" and not f.resolved}
        marked = [r for r in self.study.records() if r.run_id in pending]
        for record in marked:
            self.study.update(record, state="stopped", reason="not recorded: the store could not be written; "
                                                              "it runs again when the study is resumed")
        return [r.number for r in marked]

    def _store_error(self, exc: BaseException, unrecorded: list[int]) -> StoreWriteError:
        lost = (f"; trial {', '.join(map(str, unrecorded))} could not be recorded and runs again"
                if unrecorded else "")
        return StoreWriteError(f"search {self.name!r} ended: {write_failure_text(self.store.path, exc)}; the "
                               f"trials that ended are kept{lost}: free disk space (or fix the file), then "
                               f"call tw.search again with study={self.name!r}, resume=True to resume")

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
                self._end_study_row(status)
                if self.log is not None:
                    try:
                        self.log.end(status)
                    except Exception:  # noqa: BLE001 - the store holds the study; logging is a copy
                        pass
        finally:
            self.study.status = status
            if self.owns_store:
                self.study.use_store(None)
                self.store.close()
            with _ACTIVE_LOCK:
                _ACTIVE.discard(self._key)

    def _end_study_row(self, status: str) -> None:
        """The study's row: its status, how many trials ended and succeeded; the summary when none did."""
        if self.study_run is None:
            return
        counts = self.study.counts()
        ended = sum(counts[s] for s in ENDED_STATES)
        ok = counts["finished"] + counts["pruned"]
        self.study.status = status
        error = self.study.summary if ended and not ok else None
        try:
            self.store.finish_run(self.study_run, status, final={"ended": ended, "succeeded": ok}, error=error)
        except Exception:  # noqa: BLE001 - the store may be what failed
            pass
