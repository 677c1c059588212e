"""A fused run: K trials of one task trained side by side in one batched step, each firing its own records.

``FusedRun(task, configs).fit()`` trains ``len(configs)`` models whose parameters have the same
shapes as one stack (``torch.func`` vmap over stacked parameters and buffers, see
``engine._fused_stack``) with one batched optimizer step (``engine.batched_optim``), and returns
one ``Run`` per config. Each trial is what ``Trainer(task, config)`` would make of it alone:

- its model is built, and its first batch checked, under its own seed, as the Trainer does;
- it sees the batches it would see alone (its own generator's shuffle), gathered and stacked;
- its lr (and momentum or beta1) comes from its own schedule, stepped on a throwaway
  optimizer of its own (the torch scheduler training uses), read into the (K,) settings;
- its records (START, STEP, LOG, EPOCH, EVAL, END) go out with its own ``run_id`` and ``trial``,
  with the same fields and step numbers as a Trainer's; evaluation is the
  shared ``engine.step.evaluate``, scoring each trial from its outputs of one vmap over all
  trials per validation batch (eval mode: each trial's own BatchNorm statistics), or on a
  view of that trial alone when those outputs would take more than 256 MiB.

A trial leaves the stack as soon as it ends (its stop flag, a ``StopRun`` from one of its
handlers, a non-finite loss, an error of its own, its last step) without disturbing the others:
every per-trial quantity is a row of the stack. Dropout draws ``randomness="different"`` from
the global generator, seeded from the trials' seeds, so the same group trains the same twice.

``fused_support(config)`` says in one line why the fused path cannot run a config (None when
it can); ``group_key(config)`` is what trials of one group must share besides model shapes
(both in ``engine._fused_trial``, with ``FusedTrial``).

The group is one :class:`~tunewidgets.engine.run_base.RunBase`, as a Trainer is (through
``engine._trials_run.TrialsRun``, the part of it that fires and ends several trials): one event bus
(``on()``, ``callbacks=``), the run slot, the seeding, the failure handling, and START, LOG and
END built and fired by the base, each under the trial's ``run_id`` and ``trial``, so a sink
attached to the run sees every trial as its own run. What is a trial's own (its config, stop
flag, status, counters and rows) is a :class:`FusedTrial` (``members``); ``members[k].on()``
listens to trial ``k``'s records only. A handler's ``StopRun`` or error ends its trial only.

Example:
    >>> import tunewidgets as tw
    >>> from tunewidgets.engine.fused import FusedRun
    >>> configs = [tw.TrainConfig(lr=lr, epochs=1, device="cpu") for lr in (0.05, 0.1, 0.2)]
    >>> run = FusedRun(tw.tasks.spirals(), configs, run_ids=[4, 5, 6], trials=[0, 1, 2])
    >>> ends = []
    >>> handle = run.on("end", lambda rec: ends.append((rec["run_id"], rec["trial"], rec["status"])))
    >>> runs = run.fit()
    >>> ends, len({round(r.final["val_loss"], 6) for r in runs})
    ([(4, 0, 'finished'), (5, 1, 'finished'), (6, 2, 'finished')], 3)
    >>> alone = tw.train(tw.tasks.spirals(), configs[1])
    >>> abs(alone.final["val_loss"] - runs[1].final["val_loss"]) < 1e-5
    True
"""
from __future__ import annotations

import math
import time
import zlib
from collections.abc import Iterable, Sequence
from typing import Any

import torch

from tunewidgets.engine._fused_stack import Replay, StackedBatches, StackedModel
from tunewidgets.engine._fused_trial import (FusedTrial, FusedUnsupported, fused_support, group_key,
                                             is_out_of_memory)
from tunewidgets.engine._trials_run import TrialsRun
from tunewidgets.engine.batched_optim import BatchedOptimizer, fused_settings
from tunewidgets.engine.checks import check_lr
from tunewidgets.engine.config import TrainConfig
from tunewidgets.engine.control import StopRun
from tunewidgets.engine.devices import reset_peak_memory, resolve_device
from tunewidgets.engine.events import Events
from tunewidgets.engine.optimizers import momentum_key
from tunewidgets.engine.run import Run
from tunewidgets.engine.step import evaluate
from tunewidgets.engine.task import Task

_VAL_OUTPUTS_MAX = 256 * 2**20  # bytes of validation outputs kept to score all trials from one pass

__all__ = ["FusedRun", "FusedTrial", "FusedUnsupported", "fused_support", "group_key", "is_out_of_memory"]


class FusedRun(TrialsRun):
    """Train ``configs`` (same model shapes, same ``group_key``) side by side; ``fit()`` -> one Run each.

    Args:
        stops, run_ids, trials: per config, as ``Trainer``'s ``stop``, ``run_id`` and ``trial``.
        history: False leaves each ``Run.history`` empty (its rows went out in the LOG and EVAL
            records; a search's executor keeps only the outcome), which saves building K tables.
        callbacks: as a Trainer's (sinks, ``{event: handler}`` dicts), on the run's bus: they see
            every trial's records, each under that trial's ``run_id`` and ``trial``.

    ``members[k]`` is trial ``k``'s :class:`FusedTrial`; ``stop()`` stops every trial. ``fit``
    raises :class:`FusedUnsupported` before any record when the model or the loss does not run
    under ``vmap``, and an out-of-memory error (see :func:`is_out_of_memory`) when the group does
    not fit on its device; both before any trial has started, so the caller may run them otherwise.
    """

    def __init__(self, task: Task, configs: Sequence[TrainConfig], *, stops: Sequence[Any] | None = None,
                 run_ids: Sequence[int | None] | None = None, trials: Sequence[int | None] | None = None,
                 history: bool = True, callbacks: Iterable[Any] = ()) -> None:
        if not isinstance(task, Task):
            raise TypeError(f"task: expected a tw.Task, got {type(task).__name__}")
        configs = list(configs)
        if not configs or not all(isinstance(c, TrainConfig) for c in configs):
            raise TypeError("configs: expected one or more tw.TrainConfig")
        for c in configs:
            why = fused_support(c)
            if why is not None:
                raise ValueError(f"configs: {why}; train it with tw.train (or executor='local')")
            if group_key(c) != group_key(configs[0]):
                raise ValueError(f"configs: device, optimizer, batch_size, log_every and model_kwargs must agree in a "
                                 f"fused group, got {group_key(c)} and {group_key(configs[0])}")
        n = len(configs)
        stops, run_ids, trials = stops or [None] * n, run_ids or [None] * n, trials or [None] * n
        self.task = task
        self.live: list[FusedTrial] = []  # in the stack, in its order
        self._dev_pending: list[tuple[int, int, list[float], torch.Tensor]] = []
        self._val_outputs: dict[FusedTrial, list[Any]] = {}
        super().__init__([FusedTrial(self, c, s, r, t) for c, s, r, t in zip(configs, stops, run_ids, trials)],
                         history=history, callbacks=callbacks)

    # -- public -------------------------------------------------------------------------
    def fit(self) -> list[Run]:
        """Train every trial (holding the run slot) and return their Runs, in the order of ``configs``."""
        return self.execute()

    # -- RunBase: set-up, loop, end ---------------------------------------------------------
    def _prepare(self) -> tuple[int | None, torch.device]:
        """Every trial set up under its own seed (one that fails fails alone), then the stack, probed."""
        task, cfg0 = self.task, self.members[0].config
        self.device = device = resolve_device(cfg0.device)
        models, batches, gens = [], [], []
        try:
            for m in self.members:
                try:
                    model, data, generator = m.prepare(task, device, check=not self.live)  # one check per group
                except Exception as exc:  # noqa: BLE001 - this trial fails, the others train
                    if is_out_of_memory(exc):
                        raise
                    self._fail(m, exc)
                    continue
                models.append(model)
                batches.append(data)
                gens.append(generator)
                self.live.append(m)
            if not self.live:
                return None, device
            try:
                self.stack = StackedModel(models)
            except ValueError as exc:  # a factory whose models differ from call to call
                raise FusedUnsupported(str(exc)) from exc
            self.data = StackedBatches(batches, task.unpack_batch, device)
            self.opt = BatchedOptimizer(cfg0.optimizer, self.stack.trainable(),
                                        [fused_settings(m.config) for m in self.live])
            self._momentum = momentum_key(cfg0.optimizer)
            self._read_settings()
            self._val = task.val_batches(cfg0.batch_size, device)
            self._probe(gens)
        except Exception as exc:
            if isinstance(exc, FusedUnsupported) or is_out_of_memory(exc):
                self._handed_back = True
            raise
        return zlib.crc32(repr([m.config.seed for m in self.live]).encode()), device

    def _body(self) -> None:
        if self.live:
            self._loop()

    def _probe(self, generators: Sequence[torch.Generator]) -> None:
        """One forward and backward of the whole stack on its first batch, undone: vmap support and memory."""
        states = [g.get_state() for g in generators]
        saved = self.stack.snapshot()
        try:
            x, y = next(iter(self.data))
            losses = self.stack.losses(self.task.loss_fn, x, y)
            if losses.shape != (self.stack.k,):
                raise FusedUnsupported(f"loss: gives shape {tuple(losses.shape)} per trial under vmap, not one number")
            losses.sum().backward()
        except FusedUnsupported:
            raise
        except Exception as exc:
            if is_out_of_memory(exc):
                raise
            raise FusedUnsupported(f"the model or the loss does not run under torch.func.vmap "
                                   f"({type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''})") from exc
        finally:
            self.opt.zero_grad()
            self.stack.restore(saved)
            for g, s in zip(generators, states):
                g.set_state(s)

    def _read_settings(self) -> None:
        """Each live trial's lr (and momentum or beta1) from its own optimizer's group, into the batched step."""
        groups = [m.dummy.param_groups[0] for m in self.live]
        self._lrs = [g["lr"] for g in groups]
        self.opt.set("lr", self._lrs)
        if self._momentum == "momentum":
            self.opt.set("momentum", [g["momentum"] for g in groups])
        elif self._momentum == "betas":
            self.opt.set("betas0", [g["betas"][0] for g in groups])
            self.opt.set("betas1", [g["betas"][1] for g in groups])

    # -- the loop -----------------------------------------------------------------------
    def _loop(self) -> None:
        reset_peak_memory(self.device)
        for m in list(self.live):
            self._as(m, self.fire_start, m.total_steps, self.device, params=m.params, config=m.config,
                     n_params=m.n_params, trainer=m)
        ended = [m for m in self.live if m.status != "running" or m.exception is not None]
        for m in ended:  # a START handler that stopped or failed its trial
            if m.exception is not None:
                self._fail(m, m.exception)
            else:
                self._end(m, None)
        self._drop(ended)
        self.stack.train()
        self.step = 0
        try:
            epoch = 0
            while self.live:
                for m in self.live:
                    m.epoch, m.first_row = epoch, m.step
                self._run_epoch(epoch)
                epoch += 1
        except Exception as exc:  # noqa: BLE001 - an error of the whole stack: every trial still in it fails
            for m in list(self.live):
                self._fail(m, exc)
            self.live = []

    def _run_epoch(self, epoch: int) -> None:
        task, opt, stack = self.task, self.opt, self.stack
        t0 = time.perf_counter()
        in_epoch = list(self.live)
        scheduled = any(m.sched_kind == "step" for m in self.live)
        stepping = self.bus.has(Events.STEP)
        clipped = any(m.config.grad_clip is not None for m in self.live)
        log_every = self.live[0].config.log_every
        for x, y in self.data:
            lrs = self._lrs
            losses = stack.losses(task.loss_fn, x, y)
            losses.sum().backward()
            if clipped:
                opt.clip_grad_norm([m.config.grad_clip for m in self.live])
            opt.step()
            opt.zero_grad()
            self.step += 1
            n = int(y.shape[1]) if y.dim() > 1 else 1
            for m in self.live:
                m.samples += n
                m.step += 1
                if scheduled and m.sched_kind == "step":
                    try:
                        m.sched.step()
                        group = m.dummy.param_groups[0]
                        if not group["lr"] >= 0.0:
                            check_lr(group["lr"], m.config.schedule, step=m.step)
                    except Exception as exc:  # noqa: BLE001 - this trial's schedule failed it
                        m.exception = exc
            if scheduled:
                self._read_settings()
            loss = losses.detach()
            self._dev_pending.append((self.step, epoch, lrs, loss))
            for pos, m in enumerate(self.live if stepping else ()):
                self._as(m, self.fire, Events.STEP, {"step": m.step, "epoch": epoch, "lr": lrs[pos], "loss": loss[pos]})
            if len(self.live[0].pending) + len(self._dev_pending) >= log_every:
                for m in list(self.live):
                    self._flush(m)
            leaving = [m for m in self.live if m.exception is not None or m.stop_event.is_set()
                       or m.status != "running" or m.step >= m.total_steps]
            if leaving:
                for m in leaving:
                    m.train_time += time.perf_counter() - t0
                self._leave_epoch(leaving, epoch)
                in_epoch = [m for m in in_epoch if m not in leaving]
                if not self.live:
                    return
        for m in in_epoch:
            m.train_time += time.perf_counter() - t0
        self._leave_epoch(in_epoch, epoch)

    def _leave_epoch(self, members: list[FusedTrial], epoch: int) -> None:
        """Members whose epoch is over (or who stop now): their last rows, EPOCH, evaluation, or their end."""
        ended = []
        for m in members:
            if m.exception is None and m.stop_event.is_set() and m.status == "running":
                m.status, m.reason = m.stop_event.status, m.stop_event.reason
            if m.exception is None and m.status == "running":
                self._flush(m)
        evaluating = [m for m in members if m.exception is None and m.status == "running" and self._evaluates(m, epoch)]
        self._val_outputs = self._outputs_on_val(evaluating)
        for m in members:
            if m.exception is None and m.status == "running":
                try:
                    self._after_epoch(m, epoch)
                except StopRun as halt:
                    m.status, m.reason = halt.status, halt.reason
                except Exception as exc:  # noqa: BLE001 - a handler or schedule of this trial failed it
                    m.exception = exc
            if m.exception is not None:
                self._fail(m, m.exception)
                ended.append(m)
            elif m.status != "running":
                self._end(m, None)
                ended.append(m)
        self._val_outputs = {}
        self._drop(ended)

    def _evaluates(self, m: FusedTrial, epoch: int) -> bool:
        return (epoch + 1) % m.config.eval_every == 0 or epoch == m.config.epochs - 1 or m.step >= m.total_steps

    def _outputs_on_val(self, members: list[FusedTrial]) -> dict[FusedTrial, list[Any]]:
        """Every member's outputs on each validation batch, from one vmap per batch; {} if too big."""
        if self._val is None or not members:
            return {}
        outs = self.stack.outputs_on(self._val, self.task.unpack_batch, self.device,
                                     [self.live.index(m) for m in members], _VAL_OUTPUTS_MAX)
        return {} if outs is None else {m: [o[i] for o in outs] for i, m in enumerate(members)}

    def _after_epoch(self, m: FusedTrial, epoch: int) -> None:
        cfg = m.config
        rows = m.step_rows[m.first_row:]
        epoch_loss = float(sum(r["loss"] for r in rows) / len(rows)) if rows else math.nan
        self._as(m, self.fire, Events.EPOCH, {"epoch": epoch, "step": m.step, "train_loss": epoch_loss}, guard=False)
        last = epoch == cfg.epochs - 1 or m.step >= m.total_steps
        if (epoch + 1) % cfg.eval_every == 0 or last:
            self._evaluate(m, epoch, epoch_loss)
        if m.sched_kind == "epoch":
            m.sched.step()
            check_lr(m.dummy.param_groups[0]["lr"], cfg.schedule, step=m.step)
            self._read_settings()
        if last:
            m.status = "finished"

    def _evaluate(self, m: FusedTrial, epoch: int, train_loss: float) -> None:
        task, val = self.task, self._val
        record: dict[str, Any] = {"epoch": epoch, "step": m.step, "train_loss": train_loss}
        if val is not None:
            metrics = {name: factory() for name, factory in task.metric_fns.items()}
            outputs = self._val_outputs.get(m)
            model = Replay(outputs) if outputs is not None else self.stack.trial(self.live.index(m))
            record.update(evaluate(model, val, device=self.device, loss_fn=task.loss_fn, metrics=metrics,
                                   unpack=task.unpack_batch))
        m.eval_rows.append(record)
        m.last_eval = record
        if m.sched_kind == "metric":
            m.sched.step(record.get("val_loss", train_loss))
            self._read_settings()
        self._as(m, self.fire, Events.EVAL, dict(record), guard=False)

    # -- records (firing them is the TrialsRun's) ------------------------------------------
    def _sync(self) -> None:
        """Fetch the losses still on the device in one transfer, into each live trial's host rows."""
        if not self._dev_pending:
            return
        values = torch.stack([p[3] for p in self._dev_pending]).float().tolist()
        for pos, m in enumerate(self.live):
            m.pending.extend({"step": step, "epoch": e, "lr": lrs[pos], "loss": row[pos]}
                             for (step, e, lrs, _), row in zip(self._dev_pending, values))
        self._dev_pending = []

    def _drop(self, members: list[FusedTrial]) -> None:
        """Take ended members out of the stack (their rows fetched first: positions change)."""
        if not members:
            return
        self._sync()
        keep = [i for i, m in enumerate(self.live) if m not in members]
        self.live = [self.live[i] for i in keep]
        if not keep:
            return
        self.stack.select(keep)
        self.data.select(keep)
        self.opt.select(keep, self.stack.trainable())
        self._lrs = [self._lrs[i] for i in keep]

    def _flush(self, m: FusedTrial) -> None:
        self._sync()  # the losses still on the device first
        super()._flush(m)

    def _trial_model(self, m: FusedTrial) -> Any:
        if m.model is not None and m in self.live:
            return self.stack.write_to(self.live.index(m), m.model)
        return m.model
