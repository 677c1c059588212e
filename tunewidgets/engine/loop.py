"""The training loop: ``Trainer(task, config).fit()`` -> ``Run``, split into small replaceable methods.

``fit -> _loop -> _run_epoch``; what every run does (events, stop, run slot, seeding, START/END,
LOG) is ``engine.run_base.RunBase``, and the step itself (device move, autocast, scaler,
accumulation, clipping) is ``engine.step.TrainStep``: both shared with the LR range test, and so
is the evaluation pass. Events let sinks and live plots watch without the loop knowing them; the
engine imports nothing above it (a store or a TensorBoard writer is a sink attached from
outside, see ``tunewidgets.api``). The hot path does no per-step host sync: losses stay on the
device and are fetched every ``config.log_every`` steps in one batch.
"""
from __future__ import annotations

import math
import time
from collections.abc import Iterable
from typing import Any

import torch

from tunewidgets.engine.checks import check_first_batch, check_lr
from tunewidgets.engine.config import TrainConfig
from tunewidgets.engine.devices import amp_mode, reset_peak_memory, resolve_device
from tunewidgets.engine.events import Events
from tunewidgets.engine.optimizers import build_from_config
from tunewidgets.engine.plan import build_schedule, step_counts
from tunewidgets.engine.run import Run, final_metrics, history_frame, perf_summary
from tunewidgets.engine.run_base import RunBase
from tunewidgets.engine.step import TrainStep, autocast_for, evaluate
from tunewidgets.engine.task import Task

__all__ = ["Trainer", "train", "check_first_batch"]


class Trainer(RunBase):
    """Trains one model of ``task`` with ``config``; ``stop()`` may be called from any thread.

    A :class:`~tunewidgets.engine.run_base.RunBase`: the event bus, the stop flag, the run slot,
    seeding, START/END and LOG records come from there; this class is the epochs, the
    scheduler and the evaluations.

    Args:
        callbacks: objects with ``attach(trainer)`` (sinks such as ``tw.tracking.StoreSink``)
            or dicts ``{event: handler}``.
        stop: a parent stop (a ``threading.Event`` or a ``RunStop``, e.g. a search's): the run
            halts within one step of it or of its own ``stop()``.
        run_id: the id this run has in a store (a sink attached to the trainer may set it).
        trial: the trial number when the run is a search's trial.
        eval_examples: put the first this many validation samples, with the model's outputs,
            on every EVAL record as ``record["examples"]`` (``inputs``, ``outputs``, ``targets``:
            CPU tensors, the same samples each time), for sinks that show predictions (a
            TensorBoard image grid). 0 (default): none; a sink may raise it when it attaches.
            Costs one forward pass of that many samples per evaluation.

    Every record the run fires carries ``run_id`` and ``trial``; steps count from 1.

    Example:
        >>> import tunewidgets as tw
        >>> trainer = tw.Trainer(tw.tasks.spirals(), tw.TrainConfig(lr=0.05, epochs=1, device="cpu"))
        >>> seen = []
        >>> handle = trainer.on("epoch", lambda rec: seen.append(rec["epoch"]))
        >>> trainer.fit().status, seen
        ('finished', [0])
    """

    kind = "train"
    _callbacks_example = "{'epoch': print}"

    def __init__(self, task: Task, config: TrainConfig | None = None, *, callbacks: Iterable[Any] = (),
                 stop: Any = None, run_id: int | None = None, trial: int | None = None,
                 eval_examples: int = 0) -> None:
        if not isinstance(task, Task):
            raise TypeError(f"task: expected a tw.Task, got {type(task).__name__}; build one with tw.Task(...)")
        config = TrainConfig() if config is None else config
        if not isinstance(config, TrainConfig):
            raise TypeError(f"config: expected a tw.TrainConfig, got {type(config).__name__}")
        if isinstance(eval_examples, bool) or not isinstance(eval_examples, int) or eval_examples < 0:
            raise ValueError(f"eval_examples: must be a whole number >= 0, got {eval_examples!r}; e.g. 16, or 0 "
                             "for none")
        self.eval_examples = eval_examples
        self.task = task
        self.config = config
        self.params = dict(config.to_dict())
        self.step = self.epoch = 0
        self._n_params = 0
        super().__init__(callbacks=callbacks, stop=stop, run_id=run_id, trial=trial)

    # -- public -------------------------------------------------------------------------
    def fit(self) -> Run:
        """Train (holding the process-wide run slot, so seeded runs repeat exactly) and return the Run."""
        return self.execute()

    # -- RunBase --------------------------------------------------------------------------
    def _prepare(self) -> tuple[int | None, torch.device]:
        self._device = resolve_device(self.config.device)
        self._model = None
        self._samples, self._train_time = 0, 0.0
        self._step_rows: list[dict[str, Any]] = []
        self._eval_rows: list[dict[str, Any]] = []
        self._last_eval: dict[str, Any] = {}
        self._example_batch: Any = None
        return self.config.seed, self._device

    def _body(self) -> None:
        cfg, device = self.config, self._device
        self._amp_dtype, scaler = _amp_setup(cfg.amp, device)
        model = self._model = self.task.build_model(**cfg.model_kwargs).to(device)
        generator = torch.Generator().manual_seed(cfg.seed)
        batches = self.task.train_batches(cfg.batch_size, generator, device)
        check_first_batch(self.task, model, batches, device, self._amp_dtype)
        optimizer = build_from_config(cfg, model.parameters())
        self.steps_per_epoch, self.total_steps = step_counts(cfg, batches)
        scheduler, self._sched_kind = build_schedule(cfg.schedule, optimizer, self.total_steps,
                                                     self.steps_per_epoch)
        check_lr(optimizer.param_groups[0]["lr"], cfg.schedule, step=0)
        # built once: a TensorDataset moves to the device once per run, not once per evaluation
        self._val = self.task.val_batches(cfg.batch_size, device)
        on_device = getattr(batches, "device", None) == device  # TensorBatches already moved
        self._step = TrainStep(model, optimizer, self.task.loss_fn, device=device, move=not on_device,
                               unpack=self.task.unpack_batch, amp_dtype=self._amp_dtype, scaler=scaler,
                               grad_accum=cfg.grad_accum, grad_clip=cfg.grad_clip)
        self._opt, self._sched = optimizer, scheduler
        try:
            self._loop(batches)
        finally:
            self._samples = self._step.samples

    # -- the loop -----------------------------------------------------------------------
    def _loop(self, batches: Any) -> None:
        cfg, model = self.config, self._model
        self.step, self.epoch = 0, 0
        self._n_params = sum(p.numel() for p in model.parameters())
        reset_peak_memory(self._device)
        self.fire_start(self.total_steps, self._device, params=self.params, config=cfg, n_params=self._n_params)
        model.train()
        self._opt.zero_grad(set_to_none=True)
        for epoch in range(cfg.epochs):
            self.epoch = epoch
            t0 = time.perf_counter()
            epoch_loss = self._run_epoch(batches)
            self._train_time += time.perf_counter() - t0
            if self.status != "running":
                break
            self.fire(Events.EPOCH, {"epoch": epoch, "step": self.step, "train_loss": epoch_loss})
            last = epoch == cfg.epochs - 1 or self.step >= self.total_steps
            if (epoch + 1) % cfg.eval_every == 0 or last:
                self._evaluate(epoch, epoch_loss)
                if self.status != "running":  # a NaN validation loss: diverged
                    break
            if self._sched_kind == "epoch":
                self._sched.step()
                check_lr(self._opt.param_groups[0]["lr"], cfg.schedule, step=self.step)
            if self.step >= self.total_steps:
                break

    def _run_epoch(self, batches: Iterable[Any]) -> float:
        """One pass over ``batches``; the accumulation is ``TrainStep.steps``."""
        cfg = self.config
        first_row = len(self._step_rows) + len(self.pending)
        fire_step = self.bus.has(Events.STEP)
        sched = self._sched if self._sched_kind == "step" else None
        pending, stop, group, log_every = self.pending, self.stop_event, self._opt.param_groups[0], cfg.log_every
        for loss in self._step.steps(batches):
            lr = group["lr"]  # the lr this step used
            if sched is not None:
                sched.step()
                if not group["lr"] >= 0.0:  # one compare; NaN fails it too
                    check_lr(group["lr"], cfg.schedule, step=self.step + 1)
            self.step += 1
            loss = loss.detach()
            pending.append({"step": self.step, "epoch": self.epoch, "lr": lr, "loss": loss})
            if fire_step:
                self.fire(Events.STEP, {"step": self.step, "epoch": self.epoch, "lr": lr, "loss": loss})
            if len(pending) >= log_every:
                self.flush()
            if stop.is_set():
                self.status, self.reason = stop.status, stop.reason
                break
            if self.status != "running" or self.step >= self.total_steps:
                break
        self.flush()
        rows = self._step_rows[first_row:]
        return float(sum(r["loss"] for r in rows) / len(rows)) if rows else math.nan

    def _logged(self, rows: list[dict[str, Any]]) -> None:
        self._step_rows.extend(rows)
        if self.status == "running" and not all(math.isfinite(r["loss"]) for r in rows):
            self.status = "diverged"

    def _evaluate(self, epoch: int, train_loss: float) -> None:
        task, val = self.task, self._val
        record: dict[str, Any] = {"epoch": epoch, "step": self.step, "train_loss": train_loss}
        if val is not None:
            metrics = {name: factory() for name, factory in task.metric_fns.items()}
            record.update(evaluate(self._model, val, device=self._device, loss_fn=task.loss_fn, metrics=metrics,
                                   unpack=task.unpack_batch, amp_dtype=self._amp_dtype))
            val_loss = record.get("val_loss")
            if isinstance(val_loss, float) and not math.isfinite(val_loss) and self.status == "running":
                self.status = "diverged"  # never a finished run with a NaN metric
                self.reason = f"val_loss is {val_loss} at epoch {epoch}" + (
                    " while the training loss is finite: check the validation data (val) for NaN or inf "
                    "inputs or targets" if math.isfinite(train_loss) else "")
        self._eval_rows.append(record)
        self._last_eval = record
        if self._sched_kind == "metric":
            self._sched.step(record.get("val_loss", train_loss))
        fired = dict(record)
        if self.eval_examples and val is not None:
            examples = self._examples()
            if examples is not None:
                fired["examples"] = examples
        self.fire(Events.EVAL, fired)

    def _examples(self) -> dict[str, torch.Tensor] | None:
        """The first ``eval_examples`` validation samples and the model's outputs on them, on the CPU."""
        if self._example_batch is None:  # taken once per run: the same samples at every evaluation
            x, y = self.task.unpack_batch(next(iter(self._val)))
            tensors = isinstance(x, torch.Tensor) and isinstance(y, torch.Tensor) and x.dim() > 0
            k = self.eval_examples
            self._example_batch = (x[:k].to(self._device), y[:k].detach().cpu()) if tensors else False
        if self._example_batch is False:  # inputs that are not one tensor: nothing to show
            return None
        x, y = self._example_batch
        model, was_training = self._model, self._model.training
        model.eval()
        try:
            with torch.no_grad(), autocast_for(self._device, self._amp_dtype):
                out = model(x)
        finally:
            model.train(was_training)
        if not isinstance(out, torch.Tensor):
            return None
        return {"inputs": x.detach().cpu(), "outputs": out.detach().float().cpu(), "targets": y}

    def _finish(self, error: str | None, started: bool) -> Run:
        device = getattr(self, "_device", None)
        perf = perf_summary(samples=getattr(self, "_samples", 0), train_time=getattr(self, "_train_time", 0.0),
                            steps=self.step, n_params=self._n_params if error is None else 0, device=device,
                            started=started)
        step_rows = getattr(self, "_step_rows", [])
        final = final_metrics(getattr(self, "_last_eval", {}), step_rows, status=self.status, epoch=self.epoch,
                              steps=self.step)
        history = history_frame(step_rows, getattr(self, "_eval_rows", []))
        self.fire_end(self.status, final=final, error=error, perf=perf)
        return Run(config=self.config, status=self.status, history=history, final=final,
                   model=getattr(self, "_model", None), perf=perf, run_id=self.run_id, error=error,
                   params=self.params, trial=self.trial, reason=self.reason)


def train(task: Task, config: TrainConfig | None = None, callbacks: Iterable[Any] = (), *,
          stop: Any = None, run_id: int | None = None, trial: int | None = None) -> Run:
    """Train a fresh model of ``task`` with ``config`` and return the :class:`Run` (no store).

    ``tw.train`` (``tunewidgets.api.train``) is this plus ``store=`` and the other sinks.

    Example:
        >>> from tunewidgets.engine import train
        >>> import tunewidgets as tw
        >>> run = train(tw.tasks.spirals(), tw.TrainConfig(optimizer="adam", lr=0.01, epochs=2, device="cpu"))
        >>> run.status, sorted(run.final)[:3]
        ('finished', ['epochs', 'steps', 'train_loss'])
    """
    return Trainer(task, config, callbacks=callbacks, stop=stop, run_id=run_id, trial=trial).fit()


def _amp_setup(amp: bool | str, device: torch.device) -> tuple[torch.dtype | None, Any]:
    dtype, scaled = amp_mode(amp, device)
    return dtype, (torch.amp.GradScaler("cuda") if scaled else None)
