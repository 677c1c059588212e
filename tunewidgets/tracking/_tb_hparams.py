"""TensorBoard HParams summaries: each run's session start and end, and one Experiment per study.

What TensorBoard's HParams plugin does, and what follows here:

- a session is a run folder holding a ``session_start_info`` summary (its hparams); its
  ``session_end_info`` gives its status. TensorBoard keeps the first metadata it reads for a
  tag, so both are written once, at the run's end, when its ``state`` is known (tensorboardX's
  ``add_hparams`` would make a new sub-folder per call instead);
- TensorBoard takes the first ``experiment`` summary it finds across all runs and shows only
  the metric tags it lists, so a study has exactly one, in its own folder, listing the union of
  its trials' hparams and metric tags. It is rewritten (the old file removed) when a trial
  brings a new hparam, value or metric; ``tunewidgets-hparams.json`` beside it keeps the union;
- TensorBoard's statuses have no "pruned": the state is also the discrete hparam ``state``;
  finished, pruned and stopped runs end as successes, failed and diverged ones as failures.

The protocol buffers are tensorboardX's own (the ones its ``hparams()`` builds).
"""
from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from tunewidgets.engine.status import FAILURE_STATUSES, RUNNING, TRIAL_STATUSES

__all__ = ["STATES", "session_start", "session_end", "StudyExperiment", "EXPERIMENT_SUFFIX", "MANIFEST",
           "tb_status"]

STATES = tuple(s for s in TRIAL_STATUSES if s != RUNNING)  # how a run's HParams session may end
EXPERIMENT_SUFFIX = ".tunewidgets-experiment"
MANIFEST = "tunewidgets-hparams.json"
_PLUGIN = "hparams"
_LOCKS: dict[str, threading.Lock] = {}
_LOCKS_GUARD = threading.Lock()


def tb_status(state: str) -> str:
    """TensorBoard's status name for a run's state."""
    return "STATUS_FAILURE" if state in FAILURE_STATUSES else "STATUS_SUCCESS"


def _summary(tag: str, **plugin_data: Any) -> Any:
    from tensorboardX.proto.plugin_hparams_pb2 import HParamsPluginData
    from tensorboardX.proto.summary_pb2 import Summary, SummaryMetadata

    content = HParamsPluginData(version=0, **plugin_data).SerializeToString()
    meta = SummaryMetadata(plugin_data=SummaryMetadata.PluginData(plugin_name=_PLUGIN, content=content))
    return Summary(value=[Summary.Value(tag=tag, metadata=meta)])


def session_start(hparams: Mapping[str, Any], start_time: float) -> Any:
    """The ``_hparams_/session_start_info`` summary of one run (bools, numbers and strings)."""
    from tensorboardX.proto.plugin_hparams_pb2 import SessionStartInfo

    info = SessionStartInfo(start_time_secs=float(start_time))
    for name, value in hparams.items():
        if isinstance(value, bool):
            info.hparams[name].bool_value = value
        elif isinstance(value, (int, float)):
            info.hparams[name].number_value = float(value)
        elif value is not None:
            info.hparams[name].string_value = str(value)
    return _summary("_hparams_/session_start_info", session_start_info=info)


def session_end(state: str, end_time: float) -> Any:
    """The ``_hparams_/session_end_info`` summary: success, or failure for failed and diverged runs."""
    from tensorboardX.proto.api_pb2 import Status
    from tensorboardX.proto.plugin_hparams_pb2 import SessionEndInfo

    info = SessionEndInfo(status=Status.Value(tb_status(state)), end_time_secs=float(end_time))
    return _summary("_hparams_/session_end_info", session_end_info=info)


def _kind(value: Any) -> str:
    return "bool" if isinstance(value, bool) else "number" if isinstance(value, (int, float)) else "string"


def _experiment(hparams: Mapping[str, Mapping[str, Any]], metrics: Iterable[str]) -> Any:
    from google.protobuf.struct_pb2 import ListValue
    from tensorboardX.proto.api_pb2 import DataType, DatasetType, Experiment, HParamInfo, MetricInfo, MetricName

    types = {"bool": "DATA_TYPE_BOOL", "number": "DATA_TYPE_FLOAT64", "string": "DATA_TYPE_STRING",
             "mixed": "DATA_TYPE_UNSET"}
    infos = []
    for name in sorted(hparams, key=lambda n: (n != "state", n)):
        entry = hparams[name]
        info = HParamInfo(name=name, type=DataType.Value(types[entry["type"]]))
        if entry["type"] in ("bool", "string"):
            domain = ListValue()
            domain.extend(list(STATES) if name == "state" else sorted(entry["values"], key=str))
            info.domain_discrete.CopyFrom(domain)
        infos.append(info)
    metric_infos = []
    for tag in sorted(metrics, key=lambda t: (not t.startswith("val/"), t)):
        dataset = ("DATASET_VALIDATION" if tag.startswith("val/")
                   else "DATASET_TRAINING" if tag.startswith("train/") else "DATASET_UNKNOWN")
        metric_infos.append(MetricInfo(name=MetricName(tag=tag), dataset_type=DatasetType.Value(dataset)))
    experiment = Experiment(hparam_infos=infos, metric_infos=metric_infos, time_created_secs=time.time())
    return _summary("_hparams_/experiment", experiment=experiment)


class StudyExperiment:
    """The one HParams Experiment of a study's folder, kept as the union of its runs' hparams and metrics.

    Example:
        >>> import tempfile
        >>> from tunewidgets.tracking._tb_hparams import StudyExperiment
        >>> exp = StudyExperiment(tempfile.mkdtemp())
        >>> exp.update({"lr": 0.1, "state": "finished"}, ["val/loss"]), exp.update({"lr": 0.2}, ["val/loss"])
        (True, False)
        >>> sorted(exp.union()["hparams"]), exp.union()["metrics"]
        (['lr', 'state'], ['val/loss'])
    """

    def __init__(self, folder: str | os.PathLike[str]) -> None:
        self.folder = Path(folder)
        key = str(self.folder.resolve())
        with _LOCKS_GUARD:
            self._lock = _LOCKS.setdefault(key, threading.Lock())

    def union(self) -> dict[str, Any]:
        """``{"hparams": {name: {"type", "values"}}, "metrics": [tags]}`` recorded so far."""
        try:
            data = json.loads((self.folder / MANIFEST).read_text())
        except (OSError, ValueError):
            return {"hparams": {}, "metrics": []}
        return {"hparams": dict(data.get("hparams") or {}), "metrics": list(data.get("metrics") or [])}

    def update(self, hparams: Mapping[str, Any], metrics: Iterable[str]) -> bool:
        """Add one run's hparams and metric tags; rewrite the Experiment if that changed the union."""
        with self._lock:
            union = self.union()
            changed = False
            for name, value in hparams.items():
                if value is None:
                    continue
                kind = _kind(value)
                entry = union["hparams"].get(name)
                if entry is None:
                    entry = union["hparams"][name] = {"type": kind, "values": []}
                    changed = True
                elif entry["type"] != kind and entry["type"] != "mixed":
                    entry["type"], changed = "mixed", True
                if kind in ("bool", "string") and value not in entry["values"]:
                    entry["values"].append(value)
                    changed = True
            for tag in metrics:
                if tag not in union["metrics"]:
                    union["metrics"].append(tag)
                    changed = True
            if changed or not self._experiment_files():
                self._write(union)
            return changed

    def _experiment_files(self) -> list[Path]:
        return sorted(self.folder.glob(f"events.out.tfevents.*{EXPERIMENT_SUFFIX}"))

    def _write(self, union: dict[str, Any]) -> None:
        from tunewidgets.tracking.tensorboard_sink import EventFile

        self.folder.mkdir(parents=True, exist_ok=True)
        old = self._experiment_files()
        # a name of its own (tensorboardX names files by the second): never the name of an old one
        suffix = f".{time.time_ns()}{EXPERIMENT_SUFFIX}"
        writer = EventFile(self.folder, suffix=suffix)
        try:
            writer.add(_experiment(union["hparams"], union["metrics"]), 0)
        finally:
            writer.close()
        for path in old:  # only now: TensorBoard never sees a study without its Experiment
            if path.name.endswith(suffix):
                continue
            try:
                path.unlink()
            except FileNotFoundError:
                pass
        tmp = self.folder / (MANIFEST + ".tmp")
        tmp.write_text(json.dumps(union, indent=1, sort_keys=True))
        os.replace(tmp, self.folder / MANIFEST)
