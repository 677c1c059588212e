"""The training loop: ``train(task, config)`` -> ``Run``, split into small replaceable methods.

``fit -> _run_epoch -> _train_step``; events let sinks and live plots watch without the loop
knowing them. The hot path does no per-step host sync: losses stay on the device and are
fetched every ``config.log_every`` steps in one batch.
"""
from __future__ import annotations

import contextlib
import math
import threading
import time
import traceback
from collections.abc import Iterable, Mapping
from typing import Any

import pandas as pd
import torch

from tunewidgets.engine.checks import check_first_batch
from tunewidgets.engine.config import TrainConfig
from tunewidgets.engine.devices import amp_mode, peak_memory, reset_peak_memory, resolve_device
from tunewidgets.engine.env import environment
from tunewidgets.engine.events import EventBus, Events, Handle
from tunewidgets.engine.optimizers import build_from_config
from tunewidgets.engine.run import Run
from tunewidgets.engine.task import Task, to_device

__all__ = ["Trainer", "train", "check_first_batch"]


class Trainer:
    """Trains one model of ``task`` with ``config``; ``stop()`` may be called from any thread.

    Example:
        >>> import tunewidgets as tw
        >>> trainer = tw.Trainer(tw.tasks.spirals(), tw.TrainConfig(lr=0.05, epochs=1, device="cpu"))
        >>> seen = []
        >>> handle = trainer.on("epoch", lambda rec: seen.append(rec["epoch"]))
        >>> trainer.fit().status, seen
        ('finished', [0])
    """

    def __init__(self, task: Task, config: TrainConfig | None = None, *, store: Any = None,
                 callbacks: Iterable[Any] = (), stop: threading.Event | None = None,
                 kind: str = "train", study: str | None = None, name: str | None = None,
                 params: Mapping[str, Any] | None = None) -> None:
        if not isinstance(task, Task):
            raise TypeError(f"task: expected a tw.Task, got {type(task).__name__}; build one with tw.Task(...)")
        config = TrainConfig() if config is None else config
        if not isinstance(config, TrainConfig):
            raise TypeError(f"config: expected a tw.TrainConfig, got {type(config).__name__}")
        self.task = task
        self.config = config
        self.bus = EventBus()
        self.stop_event = stop if stop is not None else threading.Event()
        self.kind, self.study, self.name = kind, study, name
        self.params = dict(params) if params is not None else dict(config.to_dict())
        self.run_id: int | None = None
        for cb in callbacks:
            self._attach(cb)
        if store is not None:
            from tunewidgets.tracking import Store, attach_store

            self._owns_store = not isinstance(store, Store)
            self.store = store if isinstance(store, Store) else Store(store)
            attach_store(self.bus, self.store, kind=kind, study=study, name=name,
                         params=self.params, seed=config.seed)
        else:
            self.store, self._owns_store = None, False

    # -- public -------------------------------------------------------------------------
    def on(self, event: Events | str, handler: Any) -> Handle:
        """Attach ``handler(record)`` to an event; returns a handle with ``remove()``."""
        return self.bus.on(event, handler)

    def stop(self) -> None:
        """Ask the run to halt; it stops within one step with status "stopped"."""
        self.stop_event.set()

    def fit(self) -> Run:
        try:
            return self._fit()
        finally:
            if self._owns_store:
                self.store.close()

    def _fit(self) -> Run:
        cfg = self.config
        device = resolve_device(cfg.device)
        amp_dtype, scaler = _amp_setup(cfg.amp, device)
        forked = [device.index or 0] if device.type == "cuda" else []
        with torch.random.fork_rng(devices=forked):
            torch.manual_seed(cfg.seed)
            model = self.task.build_model(**cfg.model_kwargs).to(device)
            generator = torch.Generator().manual_seed(cfg.seed)
            batches = self.task.train_batches(cfg.batch_size, generator, device)
            check_first_batch(self.task, model, batches, device, amp_dtype)
            optimizer = build_from_config(cfg, model.parameters())
            self._setup_counts(batches)
            scheduler, self._sched_kind = _build_schedule(cfg.schedule, optimizer, self.total_steps,
                                                          self.steps_per_epoch)
            return self._loop(model, optimizer, scheduler, batches, device, amp_dtype, scaler)

    # -- the loop -----------------------------------------------------------------------
    def _loop(self, model, optimizer, scheduler, batches, device, amp_dtype, scaler) -> Run:
        cfg = self.config
        self._model, self._opt, self._sched = model, optimizer, scheduler
        self._device, self._amp_dtype, self._scaler = device, amp_dtype, scaler
        # built once: a TensorDataset moves to the device once per run, not once per evaluation
        self._val = self.task.val_batches(cfg.batch_size, device)
        self._pending: list[tuple[int, int, float, torch.Tensor]] = []
        self._step_rows: list[dict[str, Any]] = []
        self._eval_rows: list[dict[str, Any]] = []
        self.step, self.epoch, self.status = 0, 0, "running"
        self._samples, self._train_time = 0, 0.0
        self._last_eval: dict[str, Any] = {}
        n_params = sum(p.numel() for p in model.parameters())
        reset_peak_memory(device)
        start = {"config": cfg, "params": self.params, "trainer": self, "run_id": None,
                 "env": environment(device), "total_steps": self.total_steps, "n_params": n_params}
        self.bus.fire(Events.START, start)
        self.run_id = start["run_id"]
        error: str | None = None
        try:
            for epoch in range(cfg.epochs):
                self.epoch = epoch
                t0 = time.perf_counter()
                epoch_loss = self._run_epoch(batches)
                self._train_time += time.perf_counter() - t0
                if self.status != "running":
                    break
                self.bus.fire(Events.EPOCH, {"epoch": epoch, "step": self.step, "train_loss": epoch_loss})
                last = epoch == cfg.epochs - 1 or self.step >= self.total_steps
                if (epoch + 1) % cfg.eval_every == 0 or last:
                    self._evaluate(epoch, epoch_loss)
                if self._sched_kind == "epoch":
                    scheduler.step()
                if self.step >= self.total_steps:
                    break
            if self.status == "running":
                self.status = "finished"
        except BaseException as exc:
            self.status = "failed"
            error = "".join(traceback.format_exception(exc))
            self._end(n_params, error)
            raise
        return self._end(n_params, error)

    def _run_epoch(self, batches: Iterable[Any]) -> float:
        cfg, task, opt = self.config, self.task, self._opt
        model, device, scaler = self._model, self._device, self._scaler
        model.train()
        accum, micro, acc_loss = cfg.grad_accum, 0, None
        first_row = len(self._step_rows) + len(self._pending)
        fire_step = self.bus.has(Events.STEP)
        n_batches = len(batches) if hasattr(batches, "__len__") else None
        autocast = self._autocast()
        on_device = getattr(batches, "device", None) == device  # TensorBatches already moved
        unpack, loss_fn, pending = task.unpack_batch, task.loss_fn, self._pending
        for i, batch in enumerate(batches):
            x, y = unpack(batch)
            if not on_device:
                x, y = to_device(x, device, True), to_device(y, device, True)
            with autocast:
                loss = loss_fn(model(x), y)
            if accum > 1:
                loss = loss / accum
            (scaler.scale(loss) if scaler is not None else loss).backward()
            acc_loss = loss.detach() if acc_loss is None else acc_loss + loss.detach()
            self._samples += _batch_len(x)
            micro += 1
            if micro < accum and not (n_batches is not None and i == n_batches - 1):
                continue
            self._optimizer_step(opt, scaler)
            lr = opt.param_groups[0]["lr"]
            if self._sched_kind == "step":
                self._sched.step()
            self.step += 1
            pending.append((self.step, self.epoch, lr, acc_loss))
            if fire_step:
                self.bus.fire(Events.STEP, {"step": self.step, "epoch": self.epoch, "lr": lr, "loss": acc_loss})
            micro, acc_loss = 0, None
            if len(pending) >= cfg.log_every:
                self._flush()
                pending = self._pending
            if self.stop_event.is_set():
                self.status = "stopped"
                break
            if self.status != "running" or self.step >= self.total_steps:
                break
        self._flush()
        rows = self._step_rows[first_row:]
        return float(sum(r["loss"] for r in rows) / len(rows)) if rows else math.nan

    def _autocast(self) -> Any:
        if self._amp_dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(self._device.type, dtype=self._amp_dtype)

    def _optimizer_step(self, opt: torch.optim.Optimizer, scaler: Any) -> None:
        clip = self.config.grad_clip
        if scaler is not None:
            if clip is not None:
                scaler.unscale_(opt)
                torch.nn.utils.clip_grad_norm_(self._model.parameters(), clip)
            scaler.step(opt)
            scaler.update()
        else:
            if clip is not None:
                torch.nn.utils.clip_grad_norm_(self._model.parameters(), clip)
            opt.step()
        opt.zero_grad(set_to_none=True)

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
        self.bus.fire(Events.LOG, {"rows": rows})

    @torch.no_grad()
    def _evaluate(self, epoch: int, train_loss: float) -> None:
        task, model, device, val = self.task, self._model, self._device, self._val
        record: dict[str, Any] = {"epoch": epoch, "step": self.step, "train_loss": train_loss}
        if val is not None:
            model.eval()
            metrics = {name: factory() for name, factory in task.metric_fns.items()}
            total = torch.zeros((), dtype=torch.float64, device=device)
            count = 0
            autocast = self._autocast()
            for batch in val:
                x, y = task.unpack_batch(batch)
                x, y = to_device(x, device, True), to_device(y, device, True)
                with autocast:
                    out = model(x)
                    loss = task.loss_fn(out, y)
                n = _batch_len(x)
                total += loss.detach().double() * n
                count += n
                for m in metrics.values():
                    m.update(out.float(), y)
            record["val_loss"] = float(total) / max(count, 1)
            for name, m in metrics.items():
                record[f"val_{name}"] = float(m.compute())
            model.train()
        self._eval_rows.append(record)
        self._last_eval = record
        if self._sched_kind == "metric":
            value = record.get("val_loss", train_loss)
            self._sched.step(value)
        self.bus.fire(Events.EVAL, record)

    def _end(self, n_params: int, error: str | None) -> Run:
        with contextlib.suppress(Exception):
            self._flush()
        steps = max(self.step, 1)
        perf = {
            "samples_per_sec": self._samples / self._train_time if self._train_time > 0 else math.nan,
            "step_time": self._train_time / steps,
            "n_params": n_params,
            "peak_memory": peak_memory(self._device),
            "device": str(self._device),
            "train_time": self._train_time,
        }
        final = {k: v for k, v in self._last_eval.items() if k not in ("epoch", "step")}
        if "train_loss" not in final and self._step_rows:
            final["train_loss"] = self._step_rows[-1]["loss"]
        final.update(epochs=self.epoch + 1 if self.status == "finished" else self.epoch, steps=self.step)
        history = _history(self._step_rows, self._eval_rows)
        self.bus.fire(Events.END, {"status": self.status, "final": final, "error": error, "perf": perf,
                                   "run_id": self.run_id})
        return Run(config=self.config, status=self.status, history=history, final=final,
                   model=self._model, perf=perf, run_id=self.run_id, error=error, params=self.params)

    # -- helpers ------------------------------------------------------------------------
    def _attach(self, cb: Any) -> None:
        if hasattr(cb, "attach"):
            cb.attach(self)
        elif isinstance(cb, Mapping):
            for event, handler in cb.items():
                self.bus.on(event, handler)
        else:
            raise TypeError(
                f"callbacks: {cb!r} is neither an object with attach(trainer) nor a dict "
                "{event: handler}; e.g. callbacks=[{'epoch': print}]"
            )

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


def train(task: Task, config: TrainConfig | None = None, store: Any = None,
          callbacks: Iterable[Any] = (), *, stop: threading.Event | None = None, **kwargs: Any) -> Run:
    """Train a fresh model of ``task`` with ``config`` and return the :class:`Run`.

    Example:
        >>> import tunewidgets as tw
        >>> run = tw.train(tw.tasks.spirals(), tw.TrainConfig(optimizer="adam", lr=0.01, epochs=2, device="cpu"))
        >>> run.status, sorted(run.final)[:3]
        ('finished', ['epochs', 'steps', 'train_loss'])
    """
    return Trainer(task, config, store=store, callbacks=callbacks, stop=stop, **kwargs).fit()


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


def _batch_len(x: Any) -> int:
    if isinstance(x, torch.Tensor):
        return x.shape[0] if x.dim() else 1
    if isinstance(x, (tuple, list)) and x:
        return _batch_len(x[0])
    if isinstance(x, Mapping) and x:
        return _batch_len(next(iter(x.values())))
    return 1


def _history(step_rows: list[dict[str, Any]], eval_rows: list[dict[str, Any]]) -> pd.DataFrame:
    steps = pd.DataFrame(step_rows, columns=["step", "epoch", "lr", "loss"]).assign(kind="step")
    evals = pd.DataFrame(eval_rows).assign(kind="eval") if eval_rows else None
    frames = [f for f in (steps, evals) if f is not None and len(f)]
    if not frames:
        return pd.DataFrame(columns=["kind", "step", "epoch", "lr", "loss"])
    hist = pd.concat(frames, ignore_index=True) if len(frames) > 1 else frames[0]
    cols = ["kind", "step", "epoch"] + [c for c in hist.columns if c not in ("kind", "step", "epoch")]
    return hist[cols].sort_values(["step", "kind"], kind="stable").reset_index(drop=True)
