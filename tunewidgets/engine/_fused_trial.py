"""What a fused group is made of: its trials, which configs it can train, what they must share.

- ``FusedTrial``: one trial of a fused run (``engine.fused.FusedRun``, one ``RunBase``): its config,
  stop flag, status, counters and rows; its records go out on the run's bus under its own
  ``run_id`` and ``trial``, and ``on()`` listens to its records only.
- ``fused_support(config)``: why the fused path cannot train a config (one line), or None.
- ``group_key(config)``: what the trials of one group share besides their models' shapes.
- ``is_out_of_memory(exc)``: an allocation that failed (a group to split, not a trial to fail).

Example:
    >>> import tunewidgets as tw
    >>> from tunewidgets.engine._fused_trial import group_key
    >>> group_key(tw.TrainConfig(optimizer="adam", batch_size=32, model_kwargs={"width": 8}))
    ('auto', 'adam', 32, 25, "[('width', 8)]")
"""
from __future__ import annotations

from typing import Any

import torch

from tunewidgets.engine.batched_optim import fused_settings
from tunewidgets.engine.checks import check_first_batch, check_lr
from tunewidgets.engine.config import TrainConfig
from tunewidgets.engine.control import RunStop
from tunewidgets.engine.events import Events, Handle
from tunewidgets.engine.optimizers import build_from_config
from tunewidgets.engine.plan import build_schedule, step_counts
from tunewidgets.engine.run import Run, final_metrics, perf_summary
from tunewidgets.engine.seeding import seeded
from tunewidgets.engine.task import Task, TensorBatches

__all__ = ["FusedTrial", "FusedUnsupported", "fused_support", "group_key", "is_out_of_memory"]


class FusedUnsupported(Exception):
    """The group cannot train fused (its model or loss does not run under vmap); ``reason`` says why."""

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(reason)


def fused_support(cfg: TrainConfig) -> str | None:
    """Why the fused path cannot train ``cfg`` (one line), or None when it can.

    >>> import tunewidgets as tw
    >>> fused_support(tw.TrainConfig(optimizer="adam")) is None
    True
    >>> fused_support(tw.TrainConfig(grad_accum=2))
    'grad_accum=2: the fused step makes one optimizer step per batch'
    """
    settings = fused_settings(cfg)
    if isinstance(settings, str):
        return settings
    if cfg.grad_accum > 1:
        return f"grad_accum={cfg.grad_accum}: the fused step makes one optimizer step per batch"
    if cfg.amp is not False:
        return f"amp={cfg.amp!r}: the fused step trains in full precision"
    return None


def group_key(cfg: TrainConfig) -> tuple[Any, ...]:
    """What the trials of one fused group share: device, optimizer, batch size, log interval and model.

    The model's keyword arguments are part of it: two models of the same shapes may still
    compute different things (``activation="tanh"`` or ``"relu"``), and a group runs one
    model's code on every trial's weights.
    """
    return (cfg.device, cfg.optimizer, cfg.batch_size, cfg.log_every, repr(sorted(cfg.model_kwargs.items())))


def is_out_of_memory(exc: BaseException) -> bool:
    """A device (or host) allocation that failed: CUDA's out-of-memory error, or the CPU allocator's.

    >>> is_out_of_memory(RuntimeError("DefaultCPUAllocator: can't allocate memory")), is_out_of_memory(ValueError())
    (True, False)
    """
    if isinstance(exc, (torch.OutOfMemoryError, MemoryError)):
        return True
    return isinstance(exc, RuntimeError) and ("out of memory" in str(exc) or "can't allocate memory" in str(exc))


class FusedTrial:
    """One trial of a fused run: what is its own while the run's base (bus, slot, seeding) is shared.

    ``config``, ``params``, ``run_id``, ``trial``; ``stop_event`` (its stop, chained to the one it
    was given) and ``stop(status, reason)`` (any thread); ``status``, ``reason``, ``step``,
    ``epoch``, its step and evaluation rows; after the run, ``run`` is its ``Run`` and
    ``exception`` the error that failed it, if one did. ``on(event, handler)`` attaches
    ``handler`` to the run's bus for this trial's records only.
    """

    def __init__(self, group: Any, config: TrainConfig, stop: Any = None, run_id: int | None = None,
                 trial: int | None = None) -> None:
        self.group, self.config, self.run_id, self.trial = group, config, run_id, trial
        self.stop_event = RunStop(parent=stop)
        self.params = dict(config.to_dict())
        self.status, self.reason = "pending", None
        self.exception: BaseException | None = None
        self.run: Run | None = None
        self.step = self.epoch = 0
        self.step_rows: list[dict[str, Any]] = []
        self.eval_rows: list[dict[str, Any]] = []
        self.pending: list[dict[str, Any]] = []  # host rows fetched, not yet fired in a LOG
        self.last_eval: dict[str, Any] = {}
        self.samples, self.train_time, self.n_params = 0, 0.0, 0
        self.first_row = 0
        self.model: Any = None
        self.dummy: Any = None  # a throwaway optimizer of its own config: its schedule's lr, momentum, betas
        self.sched: Any = None
        self.sched_kind: str | None = None
        self.total_steps = 0
        self.steps_per_epoch: int | None = None

    def prepare(self, task: Task, device: torch.device, check: bool = True) -> tuple[torch.nn.Module, Any,
                                                                                     torch.Generator]:
        """Set the trial up as the Trainer does: model, batches and first-batch check under its seed; its schedule.

        The schedule steps a throwaway optimizer of the trial's own config (``dummy``), whose
        group gives the trial's lr, momentum and betas at every step. Returns the model, the
        trial's training batches and their generator. ``check=False`` skips the first-batch
        check where it draws nothing (a ``TensorBatches``), for a trial whose group has checked
        the same model on the same data.
        """
        cfg = self.config
        self.status = "running"
        with seeded(cfg.seed, device):
            model = task.build_model(**cfg.model_kwargs).to(device)
            generator = torch.Generator().manual_seed(cfg.seed)
            data = task.train_batches(cfg.batch_size, generator, None)
            if check or not isinstance(data, TensorBatches):  # a DataLoader's check draws from its generator
                check_first_batch(task, model, data, device, None)
        self.dummy = build_from_config(cfg, [torch.zeros(1, requires_grad=True)])
        self.dummy._opt_called = True  # it is never stepped: only its schedule is
        self.steps_per_epoch, self.total_steps = step_counts(cfg, data)
        self.sched, self.sched_kind = build_schedule(cfg.schedule, self.dummy, self.total_steps, self.steps_per_epoch)
        check_lr(self.dummy.param_groups[0]["lr"], cfg.schedule, step=0)
        self.model, self.n_params = model, sum(p.numel() for p in model.parameters())
        return model, data, generator

    def summary(self, started: bool, device: torch.device | None) -> tuple[dict[str, Any], dict[str, Any]]:
        """``(perf, final)`` of the trial as it stands, with the fields a Trainer's END gives."""
        perf = perf_summary(samples=self.samples, train_time=self.train_time, steps=self.step,
                            n_params=self.n_params, device=device, started=started)
        return perf, final_metrics(self.last_eval, self.step_rows, status=self.status, epoch=self.epoch,
                                   steps=self.step)

    def on(self, event: Events | str, handler: Any) -> Handle:
        """Attach ``handler(record)`` to the run's bus for this trial's records only."""
        group = self.group

        def own(record: dict[str, Any]) -> Any:
            if group.firing is self:
                return handler(record)
            return None
        return group.bus.on(event, own)

    def stop(self, status: str = "stopped", reason: str | None = None) -> None:
        """Ask this trial to halt; it leaves the group within one step."""
        self.stop_event.set(status, reason)

    def __repr__(self) -> str:
        return f"FusedTrial(trial={self.trial}, run_id={self.run_id}, status={self.status!r})"
