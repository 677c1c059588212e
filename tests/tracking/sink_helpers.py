"""Helpers for the TensorBoard and MLflow sink tests: TensorBoard's own readers, an MLflow database.

- ``read_events(folder)``: TensorBoard's ``EventAccumulator`` over one run folder, everything kept;
- ``session_groups(folder)``: what TensorBoard's HParams dashboard lists for a logdir, through
  the plugin's own request handlers (``ListSessionGroups``, ``GetExperiment``) over its
  multiplexer and data provider;
- the ``mlflow_uri`` fixture: a fresh, already migrated MLflow SQLite database per test (a copy
  of one made once per session: creating one runs MLflow's migrations, several seconds).
"""
from __future__ import annotations

import io
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch


@pytest.fixture(autouse=True)
def one_torch_thread():
    """Tiny models train fastest on one thread (and the machine is shared)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def read_events(folder: str | Path) -> Any:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(folder), size_guidance={"scalars": 0, "images": 0, "tensors": 0})
    acc.Reload()
    return acc


def scalars(acc: Any, tag: str) -> tuple[list[int], np.ndarray]:
    events = acc.Scalars(tag)
    return [e.step for e in events], np.array([e.value for e in events], dtype=np.float32)


def decode_png(encoded: bytes) -> np.ndarray:
    from PIL import Image

    return np.asarray(Image.open(io.BytesIO(encoded)).convert("RGB"))


def hparams_tags(acc: Any) -> set[str]:
    """The HParams plugin's tags in a run (session start/end info, experiment)."""
    try:
        return set(acc.PluginTagToContent("hparams"))
    except KeyError:
        return set()


def hparams_plugin_data(acc: Any, tag: str) -> Any:
    """The parsed HParams plugin content of ``tag`` in a run (TensorBoard's own parsers)."""
    from tensorboard.plugins.hparams import metadata

    content = acc.SummaryMetadata(tag).plugin_data.content
    parse = {metadata.EXPERIMENT_TAG: metadata.parse_experiment_plugin_data,
             metadata.SESSION_START_INFO_TAG: metadata.parse_session_start_info_plugin_data,
             metadata.SESSION_END_INFO_TAG: metadata.parse_session_end_info_plugin_data}[tag]
    return parse(content)


def session_groups(logdir: str | Path) -> tuple[Any, Any]:
    """``(experiment, session_groups)`` as TensorBoard's HParams dashboard gets them for ``logdir``."""
    from tensorboard import context
    from tensorboard.backend.event_processing import data_provider, plugin_event_multiplexer
    from tensorboard.plugins import base_plugin
    from tensorboard.plugins.hparams import api_pb2, backend_context, get_experiment, list_session_groups

    mux = plugin_event_multiplexer.EventMultiplexer()
    mux.AddRunsFromDirectory(str(logdir))
    mux.Reload()
    provider = data_provider.MultiplexerDataProvider(mux, str(logdir))
    ctx = backend_context.Context(base_plugin.TBContext(logdir=str(logdir), multiplexer=mux,
                                                        data_provider=provider))
    request = api_pb2.ListSessionGroupsRequest(allowed_statuses=[0, 1, 2, 3], start_index=0, slice_size=1000)
    groups = list_session_groups.Handler(context.RequestContext(), ctx, "", request).run().session_groups
    experiment = get_experiment.Handler(context.RequestContext(), ctx, "", api_pb2.GetExperimentRequest()).run()
    return experiment, list(groups)


def hparam_value(value: Any) -> Any:
    """A ``google.protobuf.Value`` as a Python value."""
    kind = value.WhichOneof("kind")
    return {"number_value": value.number_value, "string_value": value.string_value,
            "bool_value": value.bool_value}.get(kind)


@pytest.fixture(scope="session")
def mlflow_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from tunewidgets.tracking.mlflow_sink import client_for

    db = tmp_path_factory.mktemp("mlflow-template") / "mlflow.db"
    client_for(f"sqlite:///{db}")  # creates and migrates the database
    return db


@pytest.fixture
def mlflow_db(mlflow_template: Path, tmp_path: Path) -> Path:
    """``<tmp_path>/runs/mlflow.db``: an empty, migrated MLflow database where ``mlflow=True`` looks."""
    db = tmp_path / "runs" / "mlflow.db"
    db.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(mlflow_template, db)
    return db


@pytest.fixture
def mlflow_uri(mlflow_db: Path) -> str:
    return f"sqlite:///{mlflow_db}"
