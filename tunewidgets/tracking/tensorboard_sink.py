"""``TensorBoardSink``: a run's events as TensorBoard event files (through tensorboardX).

One folder per run: ``<logdir>/<name>`` for a standalone run, ``<logdir>/<study>/<name>`` for
a run of a study, where the name is ``trial-0003`` for a search's trial (the records' ``trial``),
else the store's ``train-12`` / ``lr_range_test-13`` (``<kind>-<run_id>``), else the kind and the
time; a folder already there gets ``-2``, ``-3``... What it writes, named by
:func:`~tunewidgets.tracking.metric_rows` like the store:

- per step ``train/loss`` and ``lr`` (LOG), per epoch ``train/epoch_loss`` and the validation
  metrics ``val/loss``, ``val/<metric>`` at the step they were taken;
- at the end, the run's performance: ``perf/samples_per_sec``, ``perf/step_time`` (seconds),
  ``perf/peak_memory`` (bytes, CUDA only), ``perf/n_params``...;
- for image tasks, ``val/predictions`` each evaluation: a grid of the first validation images
  with predicted and true labels (masks for segmentation). Attached to a Trainer, the sink asks
  it for those samples (``Trainer(eval_examples=...)``); fed records by ``handle()``, it uses the
  EVAL records' ``examples`` when they have them;
- HParams (training runs and trials): the run's params (flattened: ``schedule.max_lr``) and its
  ``state`` (finished, pruned, stopped, diverged, failed) as one session, written at the end;
  in a study, the study folder's one Experiment lists the union of its runs' params and metric
  tags (see ``tunewidgets.tracking._tb_hparams``). Open TensorBoard on the study's folder to
  compare its trials: TensorBoard uses one Experiment per logdir;
- a range test: ``train/loss``, ``train/smoothed``, ``lr`` (and ``val/loss``) per step, and
  ``lr_range/loss`` and ``lr_range/smoothed`` against the lr: their step axis is
  ``1000 * log10(lr)`` (-3000 is lr 1e-3, 0 is lr 1), with a custom scalar layout
  ("LR range test") that shows loss by lr, loss by step and lr by step together.

A folder that cannot be written does not stop training: the error is kept in ``errors`` and a
warning says so once. tensorboardX is imported when the sink is made.

Example:
    >>> import tempfile, tunewidgets as tw
    >>> from tunewidgets.tracking import TensorBoardSink
    >>> sink = TensorBoardSink(tempfile.mkdtemp(), study="demo")
    >>> run = tw.engine.train(tw.tasks.spirals(), tw.TrainConfig(epochs=1, device="cpu"), callbacks=[sink], trial=3)
    >>> sink.close()
    >>> sink.run_dir.parent.name, sink.run_dir.name, any(sink.run_dir.glob("events.out.tfevents.*"))
    ('demo', 'trial-0003', True)
"""
from __future__ import annotations

import math
import os
import time
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from tunewidgets.engine.events import Events
from tunewidgets.tracking._params import flat_params, folder_name
from tunewidgets.tracking._tb_hparams import StudyExperiment, session_end, session_start
from tunewidgets.tracking._tb_images import prediction_grid
from tunewidgets.tracking.sink import Sink, metric_rows

__all__ = ["TensorBoardSink", "EventFile", "import_tensorboardx", "LR_AXIS_SCALE"]

#: the step of ``lr_range/*`` scalars is ``round(LR_AXIS_SCALE * log10(lr))``
LR_AXIS_SCALE = 1000
_LR_AXIS = (f"step = {LR_AXIS_SCALE} x log10(lr): -3000 is lr 1e-3, -1000 is lr 0.1, 0 is lr 1")
_RANGE_TEST = "lr_range_test"
_PER_STEP = ("train/loss", "lr", "train/smoothed")  # not final metrics: left out of the HParams table


def import_tensorboardx() -> Any:
    """``tensorboardX``, or an ImportError that says how to install it."""
    try:
        import tensorboardX
    except ImportError as exc:
        raise ImportError("tensorboard=: TensorBoard logging needs tensorboardX; install it with "
                          "pip install 'tunewidgets[tensorboard]' (or pip install tensorboardX)") from exc
    return tensorboardX


class TensorBoardSink(Sink):
    """Writes a run's metrics, performance, prediction images and HParams for TensorBoard.

    A failure is recorded as every :class:`~tunewidgets.tracking.Sink` records one (``errors``).

    Args:
        logdir: the TensorBoard folder (``tensorboard --logdir <logdir>``); created if missing.
        study: file the run under ``<logdir>/<study>/`` and keep the study's HParams Experiment.
        name: the run folder's name (default: see the module doc).
        kind: "train", "trial" or "lr_range_test"; default the START record's ``kind``.
        params: hparams merged over the run's own (its config), e.g. a search's values.
        images: how many validation images to show with their predictions (0: none); only
            for image inputs (``task.image_shape``, or ``(N, C, H, W)`` tensors).
        image_shape: how to view one input as an image, e.g. ``(1, 8, 8)``; default the
            Trainer's ``task.image_shape``.
        hparams: write the HParams session (and the study's Experiment).
        flush_secs: how often the event file is flushed while the run trains.
    """

    destination = "tensorboard"

    def __init__(self, logdir: str | os.PathLike[str], *, study: str | None = None, name: str | None = None,
                 kind: str | None = None, params: Mapping[str, Any] | None = None, images: int = 16,
                 image_shape: tuple[int, ...] | None = None, hparams: bool = True, flush_secs: float = 5.0) -> None:
        super().__init__()
        if isinstance(logdir, bytes) or not isinstance(logdir, (str, os.PathLike)) or not str(logdir).strip():
            raise TypeError(f"tensorboard: expected True or a folder path such as 'runs/tensorboard', got {logdir!r}")
        for field, value in (("study", study), ("name", name), ("kind", kind)):
            if value is not None and (not isinstance(value, str) or not value.strip()):
                raise ValueError(f"{field}: expected a non-empty string or None, got {value!r}")
        if isinstance(images, bool) or not isinstance(images, int) or images < 0:
            raise ValueError(f"images: must be a whole number >= 0 (0 shows none), got {images!r}; e.g. 16")
        if params is not None and not isinstance(params, Mapping):
            raise TypeError(f"params: expected a dict or None, got {params!r}")
        import_tensorboardx()
        self.logdir = Path(os.fspath(logdir)).expanduser()
        self.study, self.name, self.kind = study, name, kind
        self.params = dict(params or {})
        self.images, self.image_shape, self.hparams = images, image_shape, bool(hparams)
        self.flush_secs = flush_secs
        self.run_dir: Path | None = None
        self._fw: EventFile | None = None
        self._summary: Any = None
        self._tags: set[str] = set()
        self._last_step = 0
        self._started = math.nan
        self._run_params: dict[str, Any] = {}
        self._run_kind = "train"

    # ------------------------------------------------------------ setup
    @property
    def study_dir(self) -> Path | None:
        """``<logdir>/<study>`` (the folder holding the study's Experiment), or None without a study."""
        return self.logdir / folder_name(self.study) if self.study else None

    def attached(self, target: Any) -> None:
        if self.trainer is None:
            return
        task = getattr(self.trainer, "task", None)
        if self.image_shape is None:
            self.image_shape = getattr(task, "image_shape", None)
        wanted = self.images if self.image_shape is not None or _maybe_images(task) else 0
        if wanted and hasattr(self.trainer, "eval_examples"):
            self.trainer.eval_examples = max(self.trainer.eval_examples, wanted)

    def _folder_name(self, record: Mapping[str, Any]) -> str:
        if self.name:
            return folder_name(self.name)
        trial, run_id = record.get("trial"), record.get("run_id")
        if isinstance(trial, int) and not isinstance(trial, bool):
            return f"trial-{trial:04d}"
        kind = self._kind(record)
        if isinstance(run_id, int) and not isinstance(run_id, bool):
            return f"{kind}-{run_id}"
        return f"{kind}-{time.strftime('%Y%m%d-%H%M%S')}"

    def _kind(self, record: Mapping[str, Any]) -> str:
        return self.kind or str(record.get("kind") or "train")

    def _open(self, record: Mapping[str, Any]) -> None:
        base = self.study_dir or self.logdir
        name = self._folder_name(record)
        folder, n = base / name, 1
        while folder.exists():
            n += 1
            folder = base / f"{name}-{n}"
        folder.mkdir(parents=True)
        self.run_dir = folder
        self._fw = EventFile(folder, flush_secs=self.flush_secs)
        from tensorboardX.proto.summary_pb2 import Summary

        self._summary = Summary

    # ------------------------------------------------------------ events
    def where(self) -> str:
        return str(self.run_dir or self.logdir)

    def on_failure(self, exc: BaseException) -> None:
        self._close_writer()

    def on_start(self, record: dict[str, Any]) -> None:
        self._close_writer()
        self._tags, self._last_step, self._started = set(), 0, time.time()
        given = record.get("params")
        self._run_params = {**(dict(given) if isinstance(given, Mapping) else {}), **self.params}
        self._run_kind = self._kind(record)
        self._open(record)
        if self._run_kind == _RANGE_TEST:
            from tensorboardX.summary import custom_scalars

            self._fw.add(custom_scalars({"LR range test": {
                "loss by lr (step = 1000 log10 lr)": ["Multiline", ["lr_range/loss", "lr_range/smoothed"]],
                "loss by step": ["Multiline", ["train/loss", "train/smoothed"]],
                "lr by step": ["Multiline", ["lr"]]}}), 0)

    def _scalars(self, step: int, values: list[tuple[str, Any]], description: str = "") -> None:
        summary, value_cls = self._summary(), self._summary.Value
        for tag, value in values:
            v = value_cls(tag=tag, simple_value=float(value))
            if description and tag not in self._tags:
                v.metadata.summary_description = description
            self._tags.add(tag)
            summary.value.append(v)
        self._fw.add(summary, int(step))
        self._last_step = max(self._last_step, int(step))

    def _rows(self, event: Events, record: Mapping[str, Any]) -> None:
        by_step: dict[int, list[tuple[str, Any]]] = {}
        for step, _epoch, name, value in metric_rows(event, record):
            if step is not None:
                by_step.setdefault(int(step), []).append((name, value))
        for step, values in by_step.items():
            self._scalars(step, values)
        self._fw.maybe_flush()

    def on_log(self, record: dict[str, Any]) -> None:
        if self._fw is None:
            return
        self._rows(Events.LOG, record)
        if self._run_kind == _RANGE_TEST:
            for row in record.get("rows") or ():
                lr = row.get("lr")
                if isinstance(lr, (int, float)) and lr > 0 and math.isfinite(lr):
                    values = [(f"lr_range/{key}", row[key]) for key in ("loss", "smoothed", "val_loss")
                              if isinstance(row.get(key), (int, float))]
                    if values:
                        self._scalars(round(LR_AXIS_SCALE * math.log10(lr)), values, _LR_AXIS)

    def on_epoch(self, record: dict[str, Any]) -> None:
        if self._fw is not None:
            self._rows(Events.EPOCH, record)

    def on_eval(self, record: dict[str, Any]) -> None:
        if self._fw is None:
            return
        self._rows(Events.EVAL, record)
        examples = record.get("examples")
        if self.images and isinstance(examples, Mapping):
            try:
                grid = prediction_grid(examples, self.image_shape, limit=self.images)
            except Exception as exc:  # noqa: BLE001 - inputs or outputs of a shape the grid cannot draw
                warnings.warn(f"tensorboard: no prediction images for this run ({type(exc).__name__}: {exc})",
                              RuntimeWarning, stacklevel=4)
                self.images, grid = 0, None
            if grid is not None:
                self._fw.add(_image_summary(self._summary, "val/predictions", grid), int(record.get("step") or 0))

    def on_end(self, record: dict[str, Any]) -> None:
        if self._fw is None:
            return
        perf = record.get("perf") if isinstance(record.get("perf"), Mapping) else {}
        values = [(f"perf/{k}", v) for k, v in perf.items()
                  if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)]
        if values:
            self._scalars(self._last_step, values)
        if self.hparams and self._run_kind != _RANGE_TEST:
            state = str(record.get("status") or "failed")
            hparams = {**flat_params(self._run_params), "state": state}
            self._fw.add(session_start(hparams, self._started), self._last_step)
            self._fw.add(session_end(state, time.time()), self._last_step)
            if self.study_dir is not None:
                metrics = sorted(t for t in self._tags if t not in _PER_STEP and not t.startswith("lr_range/"))
                StudyExperiment(self.study_dir).update(hparams, metrics)
        self._close_writer()

    # ------------------------------------------------------------ closing
    def _close_writer(self) -> None:
        writer, self._fw = self._fw, None
        if writer is not None:
            try:
                writer.close()
            except OSError as exc:  # the disk filled up at the last flush
                if not self.errors:
                    self.failed(exc)

    def close(self) -> None:
        """Detach and close the event file (flushes what is buffered)."""
        super().close()
        self._close_writer()


class EventFile:
    """One TensorBoard event file, written in the calling thread (tensorboardX's ``EventsWriter``).

    tensorboardX's ``SummaryWriter`` hands every event to a worker through a
    ``multiprocessing.Queue`` of ten (a pickle and often a wait per event: about a millisecond);
    writing the few small events of a LOG record directly costs tens of microseconds. The file
    is flushed (and synced) at most every ``flush_secs`` seconds and when closed.
    """

    def __init__(self, folder: str | os.PathLike[str], *, suffix: str = "", flush_secs: float = 5.0) -> None:
        from tensorboardX.event_file_writer import EventsWriter
        from tensorboardX.proto.event_pb2 import Event

        self._writer = EventsWriter(os.path.join(os.fspath(folder), "events"), suffix)
        self._event = Event
        self.flush_secs = flush_secs
        self._flushed = time.monotonic()

    def add(self, summary: Any, step: int, walltime: float | None = None) -> None:
        self._writer.write_event(self._event(summary=summary, step=int(step),
                                             wall_time=time.time() if walltime is None else walltime))

    def maybe_flush(self) -> None:
        if time.monotonic() - self._flushed >= self.flush_secs:
            self.flush()

    def flush(self) -> None:
        self._writer.flush()
        self._flushed = time.monotonic()

    def close(self) -> None:
        self._writer.close()


def _image_summary(summary: Any, tag: str, grid: Any) -> Any:
    """An image summary of an ``(H, W, 3)`` uint8 array, as a quickly compressed PNG."""
    import io

    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(grid).save(buffer, format="PNG", compress_level=3)
    image = summary.Image(height=grid.shape[0], width=grid.shape[1], colorspace=3,
                          encoded_image_string=buffer.getvalue())
    return summary(value=[summary.Value(tag=tag, image=image)])


def _maybe_images(task: Any) -> bool:
    """Whether ``task``'s validation inputs look like images ``(C, H, W)`` with 1 or 3 channels."""
    val = getattr(task, "val", None)
    tensors = getattr(getattr(val, "dataset", val), "tensors", None)
    return bool(tensors) and tensors[0].dim() == 4 and tensors[0].shape[1] in (1, 3)
