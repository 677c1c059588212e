"""``Study``: a search's trials, its best result, its curves; running or done.

``tw.search`` returns one. While the search runs (in the background inside a kernel), every
property is a consistent snapshot: ``trials`` includes running trials (state ``running``).

Example:
    >>> import tempfile, tunewidgets as tw
    >>> study = tw.search(tw.tasks.spirals(), {"lr": tw.space.LogUniform(1e-3, 1e-1, grid=2)},
    ...                   base=tw.TrainConfig(optimizer="adam", epochs=2, device="cpu"), strategy="grid",
    ...                   store=tempfile.mkdtemp(), background=False)
    >>> list(study.trials.columns)
    ['trial', 'state', 'lr', 'val_accuracy', 'best_val_accuracy', 'epochs', 'duration', 'run_id', 'error']
    >>> study.trials["state"].tolist(), study.best["trial"] in (0, 1)
    (['finished', 'finished'], True)
    >>> study.best_config.lr == study.best["params"]["lr"]
    True
"""
from __future__ import annotations

import asyncio
import concurrent.futures
import math
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tunewidgets.engine.config import TrainConfig
from tunewidgets.engine.control import RunStop
from tunewidgets.engine.logged import Logged
from tunewidgets.engine.status import ENDED_STATUSES, TRIAL_STATUSES
from tunewidgets.hpo.targets import apply_params
from tunewidgets.tracking.metric_names import record_key

if TYPE_CHECKING:
    import pandas as pd

    from tunewidgets.hpo.plan import Plan
    from tunewidgets.tracking.store import Store

__all__ = ["Study", "TrialRecord", "ENDED_STATES", "STATES"]

STATES = TRIAL_STATUSES  # the names this module had before the statuses were defined once
ENDED_STATES = ENDED_STATUSES  # count towards n_trials: the trial ran its course
_KEYS: dict[tuple[str, ...], tuple[str, ...]] = {}


class TrialRecord:
    """What the study keeps of one trial in memory: its values and results, a few hundred bytes.

    Its curve, final metrics and model are not kept (the store has the first two).
    """

    __slots__ = ("number", "state", "_keys", "_values", "value", "best", "epochs", "duration", "run_id", "error",
                 "reason")

    def __init__(self, number: int, params: Mapping[str, Any], run_id: int | None, state: str = "running") -> None:
        self.number, self.run_id, self.state = number, run_id, state
        self.params = params
        self.value: float = math.nan
        self.best: float = math.nan
        self.epochs = 0
        self.duration: float = math.nan
        self.error: str | None = None
        self.reason: str | None = None

    @property
    def params(self) -> dict[str, Any]:
        """The trial's values by key (a key that did not apply is absent)."""
        return dict(zip(self._keys, self._values))

    @params.setter
    def params(self, params: Mapping[str, Any]) -> None:
        keys = tuple(params)
        self._keys = _KEYS.setdefault(keys, keys)  # one tuple of keys shared by all trials alike
        self._values = tuple(params.values())


class Study(Logged):
    """The result of ``tw.search``; see the module docstring.

    Attributes:
        name: the study's name in the store (the key for resuming it).
        store_path: the SQLite file holding its trials.
        space, base, metric, direction, strategy, n_trials: the search's settings.
    """

    def __init__(self, plan: Plan, name: str, store_path: Path) -> None:
        self.name = name
        self.store_path = Path(store_path)
        self.space = plan.space
        self.base: TrainConfig = plan.base
        self.metric = plan.metric
        self.direction = plan.direction
        self.strategy = plan.strategy.name
        self.n_trials = plan.n_trials
        self._lock = threading.RLock()
        self._records: dict[int, TrialRecord] = {}
        self._stop = RunStop()
        self._future: concurrent.futures.Future[None] = concurrent.futures.Future()
        self._thread: threading.Thread | None = None
        self._store: Store | None = None  # the search's open store while it runs
        self.status = "running"
        # where the search logged: "store", "tensorboard" (<logdir>/<study>), "mlflow" (the tracking URI)
        self.logged: dict[str, Any] = {}

    # ---------------------------------------------------------------- control
    def stop(self) -> None:
        """Stop the search: the running trial halts within a step (state ``stopped``), no new one starts.

        Finished trials are kept; the same ``tw.search(..., study=name)`` resumes the search.
        """
        self._stop.set("stopped", "the search was stopped")

    @property
    def done(self) -> bool:
        return self._future.done()

    def wait(self, timeout: float | None = None) -> "Study":
        """Block until the search has ended (or ``timeout`` seconds); returns the study.

        Raises the search's own error, if it had one (trials that fail do not end a search).
        """
        try:
            self._future.result(timeout)
        except concurrent.futures.TimeoutError:
            raise TimeoutError(f"study {self.name!r}: still running after {timeout} s") from None
        return self

    async def wait_async(self) -> "Study":
        """``await study.wait_async()``: wait without blocking the event loop (a kernel stays free)."""
        await asyncio.wrap_future(self._future)
        return self

    # ---------------------------------------------------------------- what the search's driver does
    @property
    def stop_flag(self) -> RunStop:
        """The search's stop flag (``stop()`` sets it); every trial's stop is chained to it."""
        return self._stop

    def keep(self, record: TrialRecord) -> None:
        """Add the record of trial ``record.number`` (replacing an older one of that number)."""
        with self._lock:
            self._records[record.number] = record

    def update(self, record: TrialRecord, **fields: Any) -> None:
        """Set fields of a record together, so that a snapshot never shows half of a change."""
        with self._lock:
            for name, value in fields.items():
                setattr(record, name, value)

    def records(self) -> list[TrialRecord]:
        """The trials' records, by number (the objects themselves: change them with ``update``)."""
        return self._snapshot()

    def use_store(self, store: Store | None) -> None:
        """The search's open store while it runs (None when it has closed it); reads go through it."""
        self._store = store

    def run_in_thread(self, target: Any, name: str) -> None:
        """Run the search (``target()``) in a daemon thread; ``wait()`` waits for it."""
        self._thread = threading.Thread(target=target, name=name, daemon=True)
        self._thread.start()

    def end(self, status: str, error: BaseException | None = None) -> None:
        """The search has ended with ``status``; ``wait()`` returns (or raises ``error``)."""
        self.status = status
        if error is not None:
            self._future.set_exception(error)
        else:
            self._future.set_result(None)

    @property
    def summary(self) -> str:
        """The search in one line: ``'finished, 0 of 5 trials succeeded; most common error: ...'``.

        A trial succeeded when it finished or was pruned; failed and diverged trials did not.
        The most common error is named when any trial failed (with how many had it).
        """
        records = self._snapshot()
        ended = [r for r in records if r.state in ENDED_STATES]
        ok = sum(1 for r in ended if r.state in ("finished", "pruned"))
        text = f"{self.status}, {ok} of {len(ended)} trials succeeded"
        errors = [_error_line(r) for r in ended if r.state not in ("finished", "pruned")]
        errors = [e for e in errors if e]
        if errors:
            common = max(set(errors), key=lambda e: (errors.count(e), -errors.index(e)))
            text += f"; most common error ({errors.count(common)} of {len(ended) - ok}): {common}"
        return text

    # ---------------------------------------------------------------- results
    def _snapshot(self) -> list[TrialRecord]:
        with self._lock:
            return [self._records[n] for n in sorted(self._records)]

    @property
    def trials(self) -> pd.DataFrame:
        """One row per trial: ``trial``, ``state``, one column per space key, the metric (final
        value) and ``best_<metric>``, ``epochs`` (done), ``duration`` (s), ``run_id``, ``error``."""
        import pandas as pd

        keys = list(self.space)
        m = self.metric
        columns = ["trial", "state", *keys, m, f"best_{m}", "epochs", "duration", "run_id", "error"]
        rows = []
        with self._lock:
            for r in self._snapshot():
                row: dict[str, Any] = {"trial": r.number, "state": r.state}
                params = r.params
                for k in keys:
                    row[k] = params.get(k)
                row.update({m: r.value, f"best_{m}": r.best, "epochs": r.epochs, "duration": r.duration,
                            "run_id": r.run_id, "error": r.error})
                rows.append(row)
        frame = pd.DataFrame(rows, columns=columns)
        return frame.astype({"trial": "int64", m: "float64", f"best_{m}": "float64", "epochs": "int64",
                             "duration": "float64"})

    def counts(self) -> dict[str, int]:
        """Trials by state (every state present, zeros included)."""
        out = dict.fromkeys(STATES, 0)
        for r in self._snapshot():
            out[r.state] = out.get(r.state, 0) + 1
        return out

    def _better(self, a: float, b: float) -> bool:
        return a > b if self.direction == "maximize" else a < b

    def _best_record(self) -> TrialRecord | None:
        best = None
        for r in self._snapshot():
            if r.state == "finished" and math.isfinite(r.value) and (best is None or self._better(r.value, best.value)):
                best = r
        return best

    @property
    def best(self) -> dict[str, Any] | None:
        """The best finished trial (by its final metric): ``trial``, ``params``, the metric,
        ``best_<metric>``, ``epochs``, ``run_id`` and ``final`` (all its final metrics); None before one."""
        r = self._best_record()
        if r is None:
            return None
        final = self._with_store(lambda store: store.run(r.run_id)["final"]) or {}
        return {"trial": r.number, "params": dict(r.params), self.metric: r.value, f"best_{self.metric}": r.best,
                "epochs": r.epochs, "run_id": r.run_id, "final": dict(final)}

    @property
    def best_config(self) -> TrainConfig:
        """The base config with the best trial's values: ``tw.train(task, study.best_config)``."""
        r = self._best_record()
        if r is None:
            raise ValueError(f"study {self.name!r}: no trial has finished yet, so there is no best config; "
                             "wait for one (study.wait()) or look at study.trials")
        return apply_params(self.base, r.params)

    def config(self, trial: int) -> TrainConfig:
        """The config trial ``trial`` trained with."""
        with self._lock:
            if trial not in self._records:
                raise ValueError(f"trial: study {self.name!r} has no trial {trial!r}; it has "
                                 f"{sorted(self._records)}")
            return apply_params(self.base, self._records[trial].params)

    def curves(self) -> pd.DataFrame:
        """Per-epoch metrics of every trial, long form: ``trial``, ``run_id``, ``epoch`` (0-based),
        ``step``, ``name`` (``val_loss``, ``val_<metric>``, ``train_loss``) and ``value``; read from the store."""
        from tunewidgets.tracking import studies

        records = self._snapshot()
        by_run = {r.run_id: r.number for r in records if r.run_id is not None}
        frame = self._with_store(lambda store: studies.trial_metrics(store, list(by_run)))
        frame = frame[frame["name"].str.startswith("val/") | (frame["name"] == "train/epoch_loss")]
        frame = frame.assign(trial=frame["run"].map(by_run).astype("int64"),
                             name=frame["name"].map(record_key), epoch=frame["epoch"].astype("int64"))
        frame = frame.rename(columns={"run": "run_id"})
        return frame[["trial", "run_id", "epoch", "step", "name", "value"]].sort_values(
            ["trial", "name", "epoch"], kind="stable").reset_index(drop=True)

    def _with_store(self, fn: Any) -> Any:
        """``fn(store)`` with the search's open store, or the store file opened for the call."""
        from tunewidgets.tracking.destinations import open_store

        store = self._store
        if store is not None and not store.closed:
            return fn(store)
        with open_store(self.store_path) as opened:
            return fn(opened)

    # ---------------------------------------------------------------- Optuna views
    def to_optuna(self) -> Any:
        """An in-memory ``optuna.Study`` of the ended trials with their real values (for Optuna's plots)."""
        from tunewidgets.hpo._optuna_trials import ended_trial
        from tunewidgets.hpo.strategies import _optuna

        optuna = _optuna()
        study = optuna.create_study(direction=self.direction)
        curves = self.curves()
        curves = curves[curves["name"] == self.metric]
        steps = {t: dict(zip(g["epoch"] + 1, g["value"])) for t, g in curves.groupby("trial")}
        for r in self._snapshot():
            if r.state not in ENDED_STATES:
                continue
            study.add_trial(ended_trial(
                r.state, r.value, params=self.space.to_internal(r.params),
                distributions=self.space.distributions(r.params), intermediate=steps.get(r.number, {}),
                user_attrs={"trial": r.number, "run_id": r.run_id}))
        return study

    def importance(self, evaluator: Any = None) -> dict[str, float]:
        """How much each searched key explains the metric over finished trials (Optuna's
        ``get_param_importances``; default evaluator PED-ANOVA, ``evaluator="fanova"`` needs scikit-learn).

        Keys that apply to only some trials (conditional ones) are left out, as Optuna does.
        """
        import optuna

        finished = sum(1 for r in self._snapshot() if r.state == "finished" and math.isfinite(r.value))
        if finished < 2:
            raise ValueError(f"study {self.name!r}: importance needs at least 2 finished trials, it has {finished}")
        if evaluator == "fanova":
            evaluator = optuna.importance.FanovaImportanceEvaluator(seed=0)
        elif isinstance(evaluator, str):
            raise ValueError(f"evaluator: unknown name {evaluator!r}; use 'fanova', None or an Optuna evaluator")
        return dict(optuna.importance.get_param_importances(self.to_optuna(), evaluator=evaluator))

    def __repr__(self) -> str:
        c = self.counts()
        shown = ", ".join(f"{k} {v}" for k, v in c.items() if v)
        best = self.best
        best_txt = f", best {self.metric} {best[self.metric]:.4g} (trial {best['trial']})" if best else ""
        ok = sum(c[k] for k in ("finished", "pruned"))
        ended = sum(c[k] for k in ENDED_STATES)
        failed = f"; {ok} of {ended} trials succeeded" if ended and ok < ended else ""
        return f"Study({self.name!r}, {self.status}: {shown or 'no trials'}{best_txt}{failed})"


def _error_line(record: TrialRecord) -> str | None:
    """A failed trial's error in one line: its reason, else the last line of its traceback."""
    if record.reason:
        return record.reason.strip().splitlines()[-1] if record.reason.strip() else None
    lines = [line for line in (record.error or "").strip().splitlines() if line.strip()]
    return lines[-1].strip() if lines else None


def _number(value: Any) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return math.nan


def fill_record(record: TrialRecord, row: Mapping[str, Any], metric: str) -> None:
    """Fill a record of a trial read back from the store (its run row)."""
    final = row.get("final") or {}
    record.value = _number(final.get(metric))
    record.duration = _number(row.get("duration"))
    record.error = row.get("error")
