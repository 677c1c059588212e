"""The training loop: ``Trainer(task, config).fit()`` -> ``Run``, split into small replaceable methods.

``fit -> _loop -> _run_epoch``; the step itself (device move, autocast, scaler, accumulation,
clipping) is ``engine.step.TrainStep``, shared with the LR range test, and so is the
evaluation pass. Events let sinks and live plots watch without the loop knowing them; the
engine imports nothing above it (a store or a TensorBoard writer is a sink attached from
outside, see ``tunewidgets.api``). The hot path does no per-step host sync: losses stay on the
device and are fetched every ``config.log_every`` steps in one batch.
"""
from __future__ import annotations

import math
import time
import traceback
from collections.abc import Iterable
from typing import Any

import pandas as pd
import torch

from tunewidgets.engine.checks import check_first_batch, check_lr
from tunewidgets.engine.config import TrainConfig
from tunewidgets.engine.control import RunStop, StopRun, run_slot
from tunewidgets.engine.devices import amp_mode, peak_memory, reset_peak_memory, resolve_device
from tunewidgets.engine.env import environment
from tunewidgets.engine.events import EventBus, Events, Handle, attach_callbacks
from tunewidgets.engine.optimizers import build_from_config
from tunewidgets.engine.run import Run
from tunewidgets.engine.seeding import seeded
from tunewidgets.engine.step import TrainStep, autocast_for, evaluate
from tunewidgets.engine.task import Task

__all__ = ["Trainer", "train", "check_first_batch"]


class Trainer:
    """Trains one model of ``task`` with ``config``; ``stop()`` may be called from any thread.

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

    Every record the run fires carries ``run_id`` and ``trial``.

    Example:
        >>> import tunewidgets as tw
        >>> trainer = tw.Trainer(tw.tasks.spirals(), tw.TrainConfig(lr=0.05, epochs=1, device="cpu"))
        >>> seen = []
        >>> handle = trainer.on("epoch", lambda rec: seen.append(rec["epoch"]))
        >>> trainer.fit().status, seen
        ('finished', [0])
    """

    kind = "train"

    def __init__(self, task: Task, config: TrainConfig | None = None, *, callbacks: Iterable[Any] = (),
                 stop: Any = None, run_id: int | None = None, trial: int | None = None,
                 eval_examples: int = 0) -> None:
        if not isinstance(task, Task):
            raise TypeError(f"task: expected a tw.Task, got {type(task).__name__}; build one with tw.Task(...)")
        config = TrainConfig() if config is None else config
        if not isinstance(config, TrainConfig):
            raise TypeError(f"config: expected a tw.TrainConfig, got {type(config).__name__}")
        for field, value in (("run_id", run_id), ("trial", trial)):
            if value is not None and (isinstance(value, bool) or not isinstance(value, int)):
                raise TypeError(f"{field}: expected a whole number or None, got {value!r}")
        if isinstance(eval_examples, bool) or not isinstance(eval_examples, int) or eval_examples < 0:
            raise ValueError(f"eval_examples: must be a whole number >= 0, got {eval_examples!r}; e.g. 16, or 0 "
                             "for none")
        self.eval_examples = eval_examples
        self.task = task
        self.config = config
        self.bus = EventBus()
        self.stop_event = RunStop(parent=stop)
        self.run_id, self.trial = run_id, trial
        self.params = dict(config.to_dict())
        self.status = "pending"
        self.reason: str | None = None
        self.step = self.epoch = 0
        attach_callbacks(self, callbacks)

    # -- public -------------------------------------------------------------------------
    def on(self, event: Events | str, handler: Any) -> Handle:
        """Attach ``handler(record)`` to an event; returns a handle with ``remove()``."""
        return self.bus.on(event, handler)

    def stop(self, status: str = "stopped", reason: str | None = None) -> None:
        """Ask the run to halt; it stops within one step with ``status`` ("stopped" or "pruned")."""
        self.stop_event.set(status, reason)

    def fit(self) -> Run:
        """Train (holding the process-wide run slot, so seeded runs repeat exactly) and return the Run."""
        with run_slot(self.stop_event) as got:
            if not got:  # stopped while another run held the slot
                self.status, self.reason = self.stop_event.status, "stopped before it started"
                return self._end(0, None, started=False)
            return self._fit()

    def _fit(self) -> Run:
        cfg = self.config
        self._device = device = resolve_device(cfg.device)
        self._model = None
        self._samples, self._train_time = 0, 0.0
        self._step_rows: list[dict[str, Any]] = []
        self._eval_rows: list[dict[str, Any]] = []
        self._last_eval: dict[str, Any] = {}
        self._example_batch: Any = None
        self._pending: list[tuple[int, int, float, torch.Tensor]] = []
        self.status = "running"
        try:
            with seeded(cfg.seed, device):
                self._amp_dtype, scaler = _amp_setup(cfg.amp, device)
                model = self._model = self.task.build_model(**cfg.model_kwargs).to(device)
                generator = torch.Generator().manual_seed(cfg.seed)
                batches = self.task.train_batches(cfg.batch_size, generator, device)
                check_first_batch(self.task, model, batches, device, self._amp_dtype)
                optimizer = build_from_config(cfg, model.parameters())
                self._setup_counts(batches)
                scheduler, self._sched_kind = _build_schedule(cfg.schedule, optimizer, self.total_steps,
                                                              self.steps_per_epoch)
                check_lr(optimizer.param_groups[0]["lr"], cfg.schedule, step=0)
                # built once: a TensorDataset moves to the device once per run, not once per evaluation
                self._val = self.task.val_batches(cfg.batch_size, device)
                on_device = getattr(batches, "device", None) == device  # TensorBatches already moved
                self._step = TrainStep(model, optimizer, self.task.loss_fn, device=device, move=not on_device,
                                       unpack=self.task.unpack_batch, amp_dtype=self._amp_dtype, scaler=scaler,
                                       grad_accum=cfg.grad_accum, grad_clip=cfg.grad_clip)
                self._opt, self._sched = optimizer, scheduler
                return self._loop(batches)
        except BaseException as exc:
            if self.status != "ended":
                self.status = "failed"
                self._end(0, "".join(traceback.format_exception(exc)))
            raise

    # -- the loop -----------------------------------------------------------------------
    def _loop(self, batches: Any) -> Run:
        cfg, model = self.config, self._model
        self.step, self.epoch = 0, 0
        n_params = sum(p.numel() for p in model.parameters())
        reset_peak_memory(self._device)
        if self.bus.has(Events.START):
            self.bus.fire(Events.START, {"config": cfg, "params": self.params, "trainer": self,
                                         "run_id": self.run_id, "trial": self.trial, "kind": self.kind,
                                         "env": environment(self._device), "total_steps": self.total_steps,
                                         "n_params": n_params})
        model.train()
        self._opt.zero_grad(set_to_none=True)
        try:
            for epoch in range(cfg.epochs):
                self.epoch = epoch
                t0 = time.perf_counter()
                epoch_loss = self._run_epoch(batches)
                self._train_time += time.perf_counter() - t0
                if self.status != "running":
                    break
                self._fire(Events.EPOCH, {"epoch": epoch, "step": self.step, "train_loss": epoch_loss})
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
            if self.status == "running":
                self.status = "finished"
        except StopRun as halt:
            self.status, self.reason = halt.status, halt.reason
        self._samples = self._step.samples
        return self._end(n_params, None)

    def _run_epoch(self, batches: Iterable[Any]) -> float:
        cfg, opt, step_fn = self.config, self._opt, self._step
        plain, micro_fn, update = step_fn.plain, step_fn.micro, step_fn.update
        accum, micro, acc_loss = cfg.grad_accum, 0, None
        first_row = len(self._step_rows) + len(self._pending)
        fire_step = self.bus.has(Events.STEP)
        n_batches = len(batches) if hasattr(batches, "__len__") else None
        sched = self._sched if self._sched_kind == "step" else None
        pending, stop, group = self._pending, self.stop_event, opt.param_groups[0]
        for i, batch in enumerate(batches):
            if plain is not None:
                acc_loss = plain(batch).detach()
            else:
                loss = micro_fn(batch)
                acc_loss = loss if acc_loss is None else acc_loss + loss
                micro += 1
                if micro < accum and not (n_batches is not None and i == n_batches - 1):
                    continue
                update()
            lr = group["lr"]
            if sched is not None:
                sched.step()
                if not group["lr"] >= 0.0:  # one compare; NaN fails it too
                    check_lr(group["lr"], cfg.schedule, step=self.step + 1)
            self.step += 1
            pending.append((self.step, self.epoch, lr, acc_loss))
            if fire_step:
                self.bus.fire(Events.STEP, {"step": self.step, "epoch": self.epoch, "lr": lr, "loss": acc_loss,
                                            "run_id": self.run_id, "trial": self.trial})
            micro, acc_loss = 0, None
            if len(pending) >= cfg.log_every:
                self._flush()
                pending = self._pending
            if stop.is_set():
                self.status, self.reason = stop.status, stop.reason
                break
            if self.status != "running" or self.step >= self.total_steps:
                break
        self._flush()
        rows = self._step_rows[first_row:]
        return float(sum(r["loss"] for r in rows) / len(rows)) if rows else math.nan

    def _fire(self, event: Events, record: dict[str, Any]) -> None:
        record["run_id"], record["trial"] = self.run_id, self.trial
        self.bus.fire(event, record)

    def _flush(self) -> None:
        """Fetch pending losses to the host in one sync and fire LOG."""
        if not self._pending:
            return
        values = torch.stack([p[3] for p in self._pending]).float().tolist()
        rows = [{"step": s, "epoch": e, "lr": lr, "loss": v}
                for (s, e, lr, _), v in zip(self._pending, values)]
        self._pending = []
        self._step_rows.extend(rows)
        if not all(math.isfinite(v) for v in values) and self.status == "running":
            self.status = "diverged"
        self._fire(Events.LOG, {"rows": rows})

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
        self._fire(Events.EVAL, fired)

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

    def _end(self, n_params: int, error: str | None, started: bool = True) -> Run:
        if started:
            try:
                self._flush()
            except Exception:  # noqa: BLE001 - the run is ending; its own error wins
                pass
        device = getattr(self, "_device", None)
        steps = max(self.step, 1)
        train_time = getattr(self, "_train_time", 0.0)
        perf = {
            "samples_per_sec": self._samples / train_time if started and train_time > 0 else math.nan,
            "step_time": train_time / steps,
            "n_params": n_params,
            "peak_memory": peak_memory(device) if device is not None else None,
            "device": str(device) if device is not None else None,
            "train_time": train_time,
        }
        last_eval = getattr(self, "_last_eval", {})
        step_rows = getattr(self, "_step_rows", [])
        final = {k: v for k, v in last_eval.items() if k not in ("epoch", "step")}
        if "train_loss" not in final and step_rows:
            final["train_loss"] = step_rows[-1]["loss"]
        final.update(epochs=self.epoch + 1 if self.status == "finished" else self.epoch, steps=self.step)
        history = _history(step_rows, getattr(self, "_eval_rows", []))
        status = self.status
        self.status = "ended"
        self.bus.fire(Events.END, {"status": status, "reason": self.reason, "final": final, "error": error,
                                   "perf": perf, "run_id": self.run_id, "trial": self.trial})
        self.status = status
        return Run(config=self.config, status=status, history=history, final=final,
                   model=getattr(self, "_model", None), perf=perf, run_id=self.run_id, error=error,
                   params=self.params, trial=self.trial, reason=self.reason)

    # -- helpers ------------------------------------------------------------------------
    def _setup_counts(self, batches: Any) -> None:
        cfg = self.config
        try:
            n_batches = len(batches)
        except TypeError:
            n_batches = None
        self.steps_per_epoch = None if n_batches is None else max(1, math.ceil(n_batches / cfg.grad_accum))
        if self.steps_per_epoch is None:
            if cfg.max_steps is None:
                raise ValueError("max_steps: the training data has no length, so set TrainConfig(max_steps=N)")
            self.total_steps = cfg.max_steps
        else:
            self.total_steps = cfg.epochs * self.steps_per_epoch
            if cfg.max_steps is not None:
                self.total_steps = min(self.total_steps, cfg.max_steps)


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


def _build_schedule(schedule: Any, optimizer: torch.optim.Optimizer, total_steps: int,
                    steps_per_epoch: int | None) -> tuple[Any, str | None]:
    if schedule is None:
        return None, None
    if hasattr(schedule, "build"):
        sched = schedule.build(optimizer, total_steps, steps_per_epoch=steps_per_epoch)
        if getattr(schedule, "metric_driven", False):
            return sched, "metric"
        return sched, "epoch" if getattr(schedule, "interval", "step") == "epoch" else "step"
    return torch.optim.lr_scheduler.LambdaLR(optimizer, schedule), "step"


def _history(step_rows: list[dict[str, Any]], eval_rows: list[dict[str, Any]]) -> pd.DataFrame:
    steps = pd.DataFrame(step_rows, columns=["step", "epoch", "lr", "loss"]).assign(kind="step")
    evals = pd.DataFrame(eval_rows).assign(kind="eval") if eval_rows else None
    frames = [f for f in (steps, evals) if f is not None and len(f)]
    if not frames:
        return pd.DataFrame(columns=["kind", "step", "epoch", "lr", "loss"])
    hist = pd.concat(frames, ignore_index=True) if len(frames) > 1 else frames[0]
    cols = ["kind", "step", "epoch"] + [c for c in hist.columns if c not in ("kind", "step", "epoch")]
    return hist[cols].sort_values(["step", "kind"], kind="stable").reset_index(drop=True)
