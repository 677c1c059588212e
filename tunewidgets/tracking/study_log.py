"""``StudyLog``: the study-level side of TensorBoard and MLflow logging, for a search.

A search calls ``start()`` once, ``sinks(trial=...)`` for every trial (the TensorBoard and
MLflow sinks of that trial, to attach to its Trainer or to feed with ``handle()``), and
``end(status)`` once:

- TensorBoard: trials go to ``<logdir>/<study>/trial-<n>``; each trial's end updates the
  study's one HParams Experiment (the union of the trials' params and metric tags) at once, so
  it is right while the search runs and after a crash; ``end()`` writes it if it is missing;
- MLflow: ``start()`` makes (or, for a resumed search, reopens) the study's parent run, with
  the search settings as params; every trial is a child run; ``end()`` sets its status.

Example:
    >>> import tempfile, tunewidgets as tw
    >>> from tunewidgets.tracking import StudyLog
    >>> log = StudyLog("demo", tensorboard=tempfile.mkdtemp())
    >>> log.start()
    >>> for trial, lr in enumerate((0.01, 0.1)):
    ...     run = tw.engine.train(tw.tasks.spirals(), tw.TrainConfig(lr=lr, epochs=1, device="cpu"),
    ...                           callbacks=log.sinks(trial=trial), trial=trial)
    >>> log.end()
    >>> sorted(p.name for p in log.tensorboard_dir.iterdir() if p.is_dir())
    ['trial-0000', 'trial-0001']
"""
from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from tunewidgets.tracking._params import flat_params, folder_name
from tunewidgets.tracking._tb_hparams import StudyExperiment
from tunewidgets.tracking.sink import Sink
from tunewidgets.tracking.tensorboard_sink import TensorBoardSink, import_tensorboardx

__all__ = ["StudyLog"]


class StudyLog:
    """TensorBoard and MLflow logging of one study (see the module doc).

    Args:
        study: the study's name (its folder under the TensorBoard logdir, its MLflow parent run).
        tensorboard: the TensorBoard logdir, or None.
        mlflow: an MLflow tracking URI, or None.
        params: the search's settings (logged on the MLflow parent run).
        experiment: the MLflow experiment's name.
        images: validation images each trial shows with its predictions (TensorBoard).
        image_shape: how one input is viewed as an image (the task's ``task.image_shape``), for
            trials whose records are fed with ``handle()`` (attached sinks read it from the Trainer).
        others: any other destination's resolved value by keyword (see
            ``tunewidgets.tracking.destinations``): each trial gets that destination's sink.
    """

    def __init__(self, study: str, *, tensorboard: str | os.PathLike[str] | None = None, mlflow: str | None = None,
                 params: Mapping[str, Any] | None = None, experiment: str | None = None, images: int = 16,
                 image_shape: tuple[int, ...] | None = None, others: Mapping[str, Any] | None = None) -> None:
        if not isinstance(study, str) or not study.strip():
            raise ValueError(f"study: expected a non-empty name such as 'digits-lr', got {study!r}")
        self.study, self.params, self.images, self.image_shape = study, dict(params or {}), images, image_shape
        self.logdir = None if tensorboard is None else Path(os.fspath(tensorboard)).expanduser()
        if self.logdir is not None:
            import_tensorboardx()
        self.mlflow_uri = mlflow
        self.others = dict(others or {})
        self.experiment = experiment
        self.mlflow_run_id: str | None = None
        self._client: Any = None
        self._experiment_id: str | None = None
        if mlflow is not None:
            from tunewidgets.tracking.mlflow_sink import DEFAULT_EXPERIMENT, client_for, experiment_id

            self.experiment = experiment or DEFAULT_EXPERIMENT
            self._client = client_for(mlflow)
            self._experiment_id = experiment_id(self._client, mlflow, self.experiment)

    @property
    def tensorboard_dir(self) -> Path | None:
        """``<logdir>/<study>``: open TensorBoard here to compare the trials in its HParams tab."""
        return None if self.logdir is None else self.logdir / folder_name(self.study)

    def start(self) -> None:
        """Make the study's folder and MLflow parent run (reopened when the study resumes)."""
        if self.tensorboard_dir is not None:
            self.tensorboard_dir.mkdir(parents=True, exist_ok=True)
        if self._client is not None:
            from mlflow.entities import Param

            from tunewidgets.tracking.mlflow_sink import _text, study_parent

            self.mlflow_run_id = study_parent(self._client, self._experiment_id, self.study, running=True)
            have = self._client.get_run(self.mlflow_run_id).data.params
            params = [Param(k[:250], _text(v)) for k, v in flat_params(self.params).items() if k not in have]
            for i in range(0, len(params), 100):
                self._client.log_batch(self.mlflow_run_id, params=params[i:i + 100])

    def sinks(self, *, trial: int | None = None, kind: str = "trial", name: str | None = None,
              params: Mapping[str, Any] | None = None) -> list[Sink]:
        """The TensorBoard and MLflow sinks of one trial (attach them, or feed them with ``handle()``)."""
        out: list[Sink] = []
        if self.logdir is not None:
            out.append(TensorBoardSink(self.logdir, study=self.study, kind=kind, name=name, params=params,
                                       images=self.images, image_shape=self.image_shape))
        if self.mlflow_uri is not None:
            from tunewidgets.tracking.mlflow_sink import MLflowSink

            if self.mlflow_run_id is None:
                self.start()
            out.append(MLflowSink(self.mlflow_uri, experiment=self.experiment, study=self.study, kind=kind,
                                  name=name, params=params, parent_run_id=self.mlflow_run_id))
        if self.others:
            from tunewidgets.tracking.destinations import DESTINATIONS

            for keyword, resolved in self.others.items():
                out.append(DESTINATIONS[keyword].sink(resolved, kind=kind, study=self.study, name=name,
                                                      params=params, task=None))
        return out

    def end(self, status: str = "finished") -> None:
        """Make sure the study's Experiment is written and end its MLflow parent run with ``status``."""
        if self.tensorboard_dir is not None and self.tensorboard_dir.exists():
            experiment = StudyExperiment(self.tensorboard_dir)
            if experiment.union()["hparams"]:
                experiment.update({}, [])
        if self._client is not None and self.mlflow_run_id is not None:
            from tunewidgets.tracking.mlflow_sink import MLFLOW_STATUS

            self._client.set_terminated(self.mlflow_run_id, MLFLOW_STATUS.get(status, "FAILED"))

    def __enter__(self) -> "StudyLog":
        self.start()
        return self

    def __exit__(self, exc_type: Any, *exc: object) -> None:
        self.end("failed" if exc_type is not None and not issubclass(exc_type, KeyboardInterrupt) else
                 "stopped" if exc_type is not None else "finished")
