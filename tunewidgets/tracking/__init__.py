"""Experiment tracking: the embedded SQLite run store and the sinks that feed it.

Example:
    >>> import tempfile
    >>> from tunewidgets.tracking import Store
    >>> with Store(tempfile.mkdtemp()) as store:
    ...     run = store.start_run(kind="lr_range_test", params={"start_lr": 1e-7})
    ...     store.finish_run(run, "finished")
    ...     store.runs()[["id", "kind", "status"]].values.tolist()
    [[1, 'lr_range_test', 'finished']]
"""
from __future__ import annotations

from tunewidgets.engine.env import collect_env
from tunewidgets.tracking._schema import SCHEMA_VERSION, StoreVersionError
from tunewidgets.tracking.sink import Sink, StoreSink, attach_store, metric_name, metric_rows
from tunewidgets.tracking.store import FINAL_STATUSES, STATUSES, Store, StoreWarning, StoreWriteError, WriteFailure
from tunewidgets.tracking.tensorboard_sink import TensorBoardSink

__all__ = [
    "Store", "StoreWarning", "StoreWriteError", "WriteFailure", "Sink", "StoreSink", "attach_store", "metric_name", "metric_rows", "StoreVersionError", "STATUSES", "FINAL_STATUSES",
    "SCHEMA_VERSION", "collect_env",
    "TensorBoardSink", "MLflowSink", "StudyLog",
]


def __getattr__(name: str) -> object:
    # MLflow is imported only when an MLflow sink is made; these names load their modules lazily
    if name == "MLflowSink":
        from tunewidgets.tracking.mlflow_sink import MLflowSink

        return MLflowSink
    if name == "StudyLog":
        from tunewidgets.tracking.study_log import StudyLog

        return StudyLog
    raise AttributeError(f"module 'tunewidgets.tracking' has no attribute {name!r}")
