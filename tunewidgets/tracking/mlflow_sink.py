"""``MLflowSink``: a run's events as an MLflow run (params, metrics with steps, tags, status).

Runs go to the experiment ``tunewidgets`` (``experiment=``) of a tracking URI; the default of
``tw.train(..., mlflow=True)`` is ``sqlite:///<runs folder>/mlflow.db``. A study is a parent run
(tags ``tw.kind = study``, ``tw.study``) with one child run per trial (MLflow's
``mlflow.parentRunId``); standalone runs and range tests are plain runs. Each run has:

- params: the run's params (its config, flattened: ``schedule.max_lr``) and those given;
- metrics named like the store (:func:`~tunewidgets.tracking.metric_rows`) at their steps:
  ``train/loss``, ``lr``, ``train/epoch_loss``, ``val/<metric>``, and ``perf/<key>`` at the end;
- tags ``state`` (finished, pruned, stopped, diverged, failed), ``seed``, ``tw.kind``,
  ``tw.study``, ``tw.trial``, ``tw.run_id`` (the store's id);
- status FINISHED, KILLED (stopped, pruned) or FAILED (failed, diverged).

Metrics are buffered and written in batches (when ``flush_secs`` seconds have passed since the
last batch, checked at each record, and at the end). A tracking store that cannot be written
does not stop training: the error is kept in ``errors`` and a warning says so once. MLflow is imported when the sink is made; the
light client ``mlflow-skinny`` is enough (``pip install 'tunewidgets[mlflow]'``). The MLflow UI
needs the full package: ``pip install mlflow``, then ``mlflow ui --backend-store-uri <uri>``.

Example:
    >>> import tempfile, tunewidgets as tw
    >>> from tunewidgets.tracking.mlflow_sink import MLflowSink, default_uri
    >>> uri = default_uri(tempfile.mkdtemp())
    >>> sink = MLflowSink(uri, name="spirals-demo")
    >>> run = tw.engine.train(tw.tasks.spirals(), tw.TrainConfig(epochs=2, device="cpu"), callbacks=[sink])
    >>> sink.close()
    >>> got = sink.client.get_run(sink.mlflow_run_id)
    >>> got.info.status, got.data.tags["state"], got.data.params["epochs"]
    ('FINISHED', 'finished', '2')
    >>> [m.step for m in sink.client.get_metric_history(sink.mlflow_run_id, "val/loss")]
    [13, 26]
"""
from __future__ import annotations

import logging
import math
import os
import threading
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from tunewidgets.engine.events import Events
from tunewidgets.engine.status import EARLY_STATUSES, FAILURE_STATUSES, FINISHED
from tunewidgets.tracking._params import flat_params
from tunewidgets.tracking.sink import Sink, metric_rows

__all__ = ["MLflowSink", "default_uri", "client_for", "study_parent", "import_mlflow", "DEFAULT_EXPERIMENT",
           "MLFLOW_STATUS"]

DEFAULT_EXPERIMENT = "tunewidgets"
#: MLflow's run status for each way a run ends
MLFLOW_STATUS = {FINISHED: "FINISHED", **dict.fromkeys(EARLY_STATUSES, "KILLED"),
                 **dict.fromkeys(FAILURE_STATUSES, "FAILED")}
_MAX_METRICS, _MAX_PARAMS, _MAX_VALUE = 1000, 100, 6000
_CLIENTS: dict[str, Any] = {}
_LOCK = threading.Lock()


def import_mlflow() -> Any:
    """``mlflow``, or an ImportError that says how to install it."""
    try:
        import mlflow
    except ImportError as exc:
        raise ImportError("mlflow=: MLflow logging needs MLflow; install the light client with "
                          "pip install 'tunewidgets[mlflow]' (or pip install mlflow-skinny)") from exc
    return mlflow


def default_uri(runs_folder: str | os.PathLike[str]) -> str:
    """``sqlite:///<runs folder>/mlflow.db`` (absolute), the tracking URI of ``mlflow=True``."""
    return f"sqlite:///{(Path(os.fspath(runs_folder)).expanduser().resolve() / 'mlflow.db').as_posix()}"


def client_for(uri: str) -> Any:
    """One ``MlflowClient`` per tracking URI in this process (a new SQLite database is created quietly)."""
    with _LOCK:
        client = _CLIENTS.get(uri)
        if client is not None:
            return client
        import_mlflow()
        from mlflow.tracking import MlflowClient

        if uri.startswith("sqlite:///"):
            Path(uri[len("sqlite:///"):]).parent.mkdir(parents=True, exist_ok=True)
        loggers = [logging.getLogger(n) for n in ("mlflow.store.db.utils", "alembic", "alembic.runtime.migration")]
        levels = [lg.level for lg in loggers]
        for lg in loggers:
            lg.setLevel(logging.WARNING)
        try:
            client = MlflowClient(tracking_uri=uri)
            client.search_experiments(max_results=1)  # creates or migrates the database now, not mid-run
        finally:
            for lg, level in zip(loggers, levels):
                lg.setLevel(level)
        _CLIENTS[uri] = client
        return client


def experiment_id(client: Any, uri: str, name: str = DEFAULT_EXPERIMENT) -> str:
    """The id of experiment ``name``, created if missing (artifacts beside an SQLite database)."""
    found = client.get_experiment_by_name(name)
    if found is not None:
        return found.experiment_id
    location = None
    if uri.startswith("sqlite:///"):
        location = (Path(uri[len("sqlite:///"):]).parent / "mlflow-artifacts").as_uri()
    try:
        return client.create_experiment(name, artifact_location=location)
    except Exception:  # noqa: BLE001 - made meanwhile by another client: read it back
        found = client.get_experiment_by_name(name)
        if found is None:
            raise
        return found.experiment_id


def study_parent(client: Any, exp_id: str, study: str, *, running: bool = False) -> str:
    """The id of the parent run of ``study`` in the experiment, created if missing.

    ``running=True`` (a search starting) marks it RUNNING; a parent made for runs filed under a
    study without a search (``tw.train(..., study=...)``) is FINISHED.
    """
    from mlflow.entities import ViewType

    runs = client.search_runs([exp_id], "tags.`tw.kind` = 'study'", run_view_type=ViewType.ACTIVE_ONLY,
                              max_results=50_000)
    for run in runs:
        if run.data.tags.get("tw.study") == study:
            if running and run.info.status != "RUNNING":
                client.update_run(run.info.run_id, status="RUNNING")
            return run.info.run_id
    run = client.create_run(exp_id, run_name=study, tags={"tw.kind": "study", "tw.study": study})
    if not running:
        client.set_terminated(run.info.run_id, "FINISHED")
    return run.info.run_id


def _text(value: Any) -> str:
    text = str(value)
    return text if len(text) <= _MAX_VALUE else text[:_MAX_VALUE - 3] + "..."


class MLflowSink(Sink):
    """Logs one run (or trial) to MLflow: params at the start, metrics as it trains, state at the end.

    Args:
        tracking_uri: where to log, e.g. ``sqlite:///runs/mlflow.db`` or ``http://host:5000``.
        experiment: the MLflow experiment's name.
        study: make the run a child of the study's parent run (created if missing).
        parent_run_id: the parent run's MLflow id (a search's, see ``StudyLog``); overrides ``study``'s lookup.
        name: the run's name (default ``trial-0003``, ``train-12``, ``lr_range_test-13``).
        kind: "train", "trial" or "lr_range_test"; default the START record's ``kind``.
        params, tags: params and tags added to the run's own.
        flush_secs: buffered metrics are written at least this often.
    """

    destination = "mlflow"

    def __init__(self, tracking_uri: str, *, experiment: str = DEFAULT_EXPERIMENT, study: str | None = None,
                 parent_run_id: str | None = None, name: str | None = None, kind: str | None = None,
                 params: Mapping[str, Any] | None = None, tags: Mapping[str, Any] | None = None,
                 flush_secs: float = 5.0) -> None:
        super().__init__()
        if not isinstance(tracking_uri, str) or ("://" not in tracking_uri
                                                 and not tracking_uri.startswith(("databricks", "file:"))):
            raise ValueError(f"mlflow: expected True or a tracking URI such as 'sqlite:///runs/mlflow.db' or "
                             f"'http://localhost:5000', got {tracking_uri!r}")
        for field, value in (("experiment", experiment), ("study", study), ("name", name), ("kind", kind)):
            if value is not None and (not isinstance(value, str) or not value.strip()):
                raise ValueError(f"{field}: expected a non-empty string or None, got {value!r}")
        self.tracking_uri, self.experiment = tracking_uri, experiment
        self.study, self.parent_run_id, self.name, self.kind = study, parent_run_id, name, kind
        self.params, self.tags = dict(params or {}), {k: str(v) for k, v in (tags or {}).items()}
        self.flush_secs = float(flush_secs)
        self.client = client_for(tracking_uri)
        self.experiment_id = experiment_id(self.client, tracking_uri, experiment)
        self.mlflow_run_id: str | None = None
        self._buffer: list[Any] = []
        self._last_flush = time.monotonic()
        self._last_step = 0
        from mlflow.entities import Metric, Param, RunTag

        self._metric, self._param, self._tag = Metric, Param, RunTag

    # ------------------------------------------------------------ events
    def where(self) -> str:
        return self.tracking_uri

    def on_failure(self, exc: BaseException) -> None:
        self._buffer = []

    def _run_name(self, record: Mapping[str, Any]) -> str:
        if self.name:
            return self.name
        trial, run_id = record.get("trial"), record.get("run_id")
        if isinstance(trial, int) and not isinstance(trial, bool):
            return f"trial-{trial:04d}"
        kind = self.kind or str(record.get("kind") or "train")
        return f"{kind}-{run_id}" if isinstance(run_id, int) and not isinstance(run_id, bool) else kind

    def on_start(self, record: dict[str, Any]) -> None:
        given = record.get("params")
        params = {**(dict(given) if isinstance(given, Mapping) else {}), **self.params}
        kind = self.kind or str(record.get("kind") or "train")
        tags = {"tw.kind": kind, **self.tags}
        for key in ("run_id", "trial"):
            if record.get(key) is not None:
                tags[f"tw.{key}"] = str(record[key])
        if params.get("seed") is not None:
            tags["seed"] = str(params["seed"])
        parent = self.parent_run_id
        if self.study:
            tags["tw.study"] = self.study
            if parent is None:
                parent = self.parent_run_id = study_parent(self.client, self.experiment_id, self.study)
        if parent is not None:
            tags["mlflow.parentRunId"] = parent
        run = self.client.create_run(self.experiment_id, run_name=self._run_name(record), tags=tags)
        self.mlflow_run_id = run.info.run_id
        flat = [self._param(k[:250], _text(v)) for k, v in flat_params(params).items()]
        for i in range(0, len(flat), _MAX_PARAMS):
            self.client.log_batch(self.mlflow_run_id, params=flat[i:i + _MAX_PARAMS])
        self._buffer, self._last_step, self._last_flush = [], 0, time.monotonic()

    def _add(self, event: Events, record: Mapping[str, Any]) -> None:
        if self.mlflow_run_id is None:
            return
        now = int(time.time() * 1000)
        metric, buffer = self._metric, self._buffer
        for step, _epoch, name, value in metric_rows(event, record):
            step = int(step or 0)
            buffer.append(metric(name, float(value), now, step))
            self._last_step = max(self._last_step, step)
        if len(buffer) >= _MAX_METRICS or time.monotonic() - self._last_flush >= self.flush_secs:
            self.flush()

    def flush(self) -> None:
        """Write the buffered metrics now."""
        buffer, self._buffer = self._buffer, []
        self._last_flush = time.monotonic()
        if self.mlflow_run_id is None or not buffer:
            return
        for i in range(0, len(buffer), _MAX_METRICS):
            self.client.log_batch(self.mlflow_run_id, metrics=buffer[i:i + _MAX_METRICS])

    def on_log(self, record: dict[str, Any]) -> None:
        self._add(Events.LOG, record)

    def on_epoch(self, record: dict[str, Any]) -> None:
        self._add(Events.EPOCH, record)

    def on_eval(self, record: dict[str, Any]) -> None:
        self._add(Events.EVAL, record)

    def on_end(self, record: dict[str, Any]) -> None:
        if self.mlflow_run_id is None:
            return
        now = int(time.time() * 1000)
        perf = record.get("perf") if isinstance(record.get("perf"), Mapping) else {}
        self._buffer.extend(self._metric(f"perf/{k}", float(v), now, self._last_step) for k, v in perf.items()
                            if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v))
        state = str(record.get("status") or "failed")
        tags = [self._tag("state", state)]
        for key in ("reason", "error"):
            if record.get(key):
                tags.append(self._tag(f"tw.{key}", _text(record[key])))
        buffer, self._buffer = self._buffer, []
        size = _MAX_METRICS - len(tags)
        chunks = [buffer[i:i + size] for i in range(0, len(buffer), size)] or [[]]
        for chunk in chunks[:-1]:
            self.client.log_batch(self.mlflow_run_id, metrics=chunk)
        self.client.log_batch(self.mlflow_run_id, metrics=chunks[-1], tags=tags)  # one write: the last metrics and tags
        self.client.set_terminated(self.mlflow_run_id, MLFLOW_STATUS.get(state, "FAILED"))

    def close(self) -> None:
        """Detach and write what is still buffered."""
        super().close()
        if not self.errors:
            try:
                self.flush()
            except Exception as exc:  # noqa: BLE001 - MLflow's own errors (sqlalchemy, HTTP)
                self.failed(exc)
