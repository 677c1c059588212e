"""``executor="fused"``: same-shape trials trained side by side on one device, behind the executor interface.

``FusedExecutor(k)`` takes up to ``k`` trials (``slots = k``); ``wait`` sorts them into groups
(same model shapes and ``engine.fused.group_key``) and trains each group as one
``engine.fused.FusedRun``, forwarding every trial's records to ``report`` under its own
``run_id`` and ``trial`` as the local executor does, so the driver, the store, the sinks and the
pruner see what they see for trials run one at a time. A ``StopRun("pruned")`` from ``report``
ends that trial only; the others train on. New trials join at the next group, once ``wait`` has
returned the group's outcomes and the search loop has filled the free slots.

- ``k=None``: ``k`` from the device's free memory (``choose_k``) when the search opens.
- A group that runs out of memory before its first step is split in half and each half tried
  again (down to one trial, which then fails as it would alone).
- A trial the fused path cannot train (``engine.fused.fused_support``: an optimizer without a
  batched step, ``grad_accum > 1``, ``amp``; or a model or loss that does not run
  under ``vmap``) trains on the local executor; ``fallbacks[trial]`` says why, the trial's outcome
  ``reason`` too, and ``notes()`` has one line per reason.

Example:
    >>> import tempfile, tunewidgets as tw
    >>> space = {"lr": tw.space.Choice([0.05, 0.1, 0.2])}
    >>> study = tw.search(tw.tasks.spirals(), space, base=tw.TrainConfig(epochs=1, device="cpu"), strategy="grid",
    ...                   store=tempfile.mkdtemp(), executor=tw.hpo.FusedExecutor(k=3), background=False)
    >>> study.trials["state"].tolist()
    ['finished', 'finished', 'finished']
"""
from __future__ import annotations

import os
import sys
import time
import traceback
from collections.abc import Sequence
from typing import Any

import torch
from torch.utils.data import TensorDataset

from tunewidgets.engine.devices import resolve_device
from tunewidgets.engine.events import emit
from tunewidgets.engine.fused import FusedRun, FusedUnsupported, fused_support, group_key, is_out_of_memory
from tunewidgets.engine._fused_stack import model_signature
from tunewidgets.engine.seeding import seeded
from tunewidgets.hpo.executors import Executor, LocalExecutor, Report, TrialOutcome, TrialSpec, _free_memory

__all__ = ["FusedExecutor", "choose_k"]

K_MAX = {"cuda": 64, "cpu": 16}


def choose_k(task: Any, device: Any = "auto", free_bytes: int | None = None, k_max: int | None = None) -> int:
    """How many trials of ``task``'s default model fit side by side in ``free_bytes`` (default: what is free).

    Per trial: its parameters four times (weights, gradients, two optimizer states) plus twice the
    activations of one training batch (forward and backward), measured on the meta device; half the
    free memory is used. At most ``k_max`` (64 on CUDA, 16 elsewhere), at least 1.

    >>> import tunewidgets as tw
    >>> choose_k(tw.tasks.digits(), "cpu", free_bytes=10**9), choose_k(tw.tasks.digits(), "cpu", free_bytes=10**6)
    (16, 1)
    """
    dev = resolve_device(device)
    per_trial = _trial_bytes(task)
    if free_bytes is None:
        free_bytes = _free_memory_bytes(dev)
    cap = k_max if k_max is not None else K_MAX.get(dev.type, 16)
    return max(1, min(cap, int(0.5 * free_bytes // max(per_trial, 1))))


def _trial_bytes(task: Any) -> int:
    with torch.device("meta"):
        model = task.build_model()
    params = sum(p.numel() * p.element_size() for p in model.parameters())
    acts = [0]

    def count(_module: Any, _inputs: Any, output: Any) -> None:
        if isinstance(output, torch.Tensor):
            acts[0] += output.numel() * output.element_size()

    handles = [m.register_forward_hook(count) for m in model.modules()]
    try:
        if isinstance(task.train, TensorDataset):
            x = task.train.tensors[0][:task.batch_size]
        else:
            x = torch.as_tensor(task.unpack_batch(task.train[0])[0]).unsqueeze(0)
            x = x.expand(task.batch_size, *x.shape[1:])
        model(x.to("meta"))
    except Exception:  # noqa: BLE001 - data or a model that cannot run on meta: count the parameters only
        acts[0] = 0
    finally:
        for h in handles:
            h.remove()
    return 4 * params + 2 * acts[0]


def _free_memory_bytes(device: torch.device) -> int:
    if device.type == "cuda":
        return int(torch.cuda.mem_get_info(device)[0])
    try:
        return int(os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"))
    except (ValueError, OSError, AttributeError):  # pragma: no cover - not a POSIX system
        return 2**31


class FusedExecutor(Executor):
    """Trains up to ``k`` same-shape trials at once with ``torch.func`` on one device; see the module docstring.

    Args:
        k: trials per group, or None to choose it from the device's free memory.

    Attributes:
        fallbacks: ``{trial number: why it trained on the local executor}``.
        groups: the trial numbers of every group trained fused, in order (a split group shows
            as its halves).
    """

    name = "fused"

    def __init__(self, k: int | None = None) -> None:
        if k is not None and (isinstance(k, bool) or not isinstance(k, int) or k < 1):
            raise ValueError(f"k: trials per fused group must be a whole number >= 1 or None (chosen from the "
                             f"device's free memory), got {k!r}; e.g. FusedExecutor(k=8)")
        self.k = k
        self.slots = k or 1
        self._queue: list[TrialSpec] = []
        self._local = LocalExecutor()
        self.fallbacks: dict[int, str] = {}
        self.groups: list[list[int]] = []
        self._signatures: dict[str, tuple[Any, ...]] = {}

    def open(self, task: Any, report: Report) -> None:
        super().open(task, report)
        self._local.open(task, report)
        if self.k is None:
            self.slots = choose_k(task)

    def submit(self, spec: TrialSpec) -> None:
        if len(self._queue) >= self.slots:
            raise RuntimeError(f"FusedExecutor holds {self.slots} trials at a time; call wait() before submitting more")
        self._queue.append(spec)

    def in_flight(self) -> int:
        return len(self._queue)

    def notes(self) -> list[str]:
        """One line per reason a trial trained on the local executor, naming those trials."""
        by_reason: dict[str, list[int]] = {}
        for number, why in self.fallbacks.items():
            by_reason.setdefault(why, []).append(number)
        return [f"trial{'s' if len(n) > 1 else ''} {', '.join(map(str, sorted(n)))} trained on the local executor: "
                f"{why}" for why, n in by_reason.items()]

    def wait(self, timeout: float | None = None) -> list[TrialOutcome]:
        specs, self._queue = self._queue, []
        outcomes: list[TrialOutcome] = []
        groups: dict[tuple[Any, ...], list[TrialSpec]] = {}
        alone: list[tuple[TrialSpec, str]] = []
        for spec in specs:
            why = fused_support(spec.config)
            if why is None:
                groups.setdefault(self._shape_key(spec), []).append(spec)
            else:
                alone.append((spec, why))
        for group in groups.values():
            outcomes.extend(self._run_group(group, alone))
        for spec, why in alone:
            outcomes.append(self._run_local(spec, why))
        return outcomes

    # -- groups -------------------------------------------------------------------------
    def _shape_key(self, spec: TrialSpec) -> tuple[Any, ...]:
        """The trial's group: its ``group_key`` and its model's shapes (built once per ``model_kwargs``, on meta)."""
        cfg = spec.config
        kwargs = repr(sorted(cfg.model_kwargs.items()))
        signature = self._signatures.get(kwargs)
        if signature is None:
            try:
                with seeded(cfg.seed), torch.device("meta"):
                    signature = model_signature(self.task.build_model(**cfg.model_kwargs))
            except Exception:  # noqa: BLE001 - the trial's own run reports a factory that fails
                signature = ("model_kwargs", kwargs)
            self._signatures[kwargs] = signature
        return (group_key(cfg), signature)

    def _run_group(self, specs: Sequence[TrialSpec], alone: list[tuple[TrialSpec, str]]) -> list[TrialOutcome]:
        t0 = time.perf_counter()
        run = FusedRun(self.task, [s.config for s in specs], stops=[s.stop for s in specs],
                       run_ids=[s.run_id for s in specs], trials=[s.number for s in specs], history=False)
        emit(run, self._forward({s.number: s for s in specs}))  # each record under its trial's number
        try:
            run.fit()
        except FusedUnsupported as exc:
            ended = [(s, m) for s, m in zip(specs, run.members) if m.run is not None]
            alone.extend((s, exc.reason) for s, m in zip(specs, run.members) if m.run is None)
            return [self._outcome(s, m, t0) for s, m in ended]
        except Exception as exc:  # noqa: BLE001
            if not is_out_of_memory(exc):
                raise
            ended = [(s, m) for s, m in zip(specs, run.members) if m.run is not None]
            rest = [s for s, m in zip(specs, run.members) if m.run is None]
            run = None
            del exc
            _free_memory()
            outcomes = [self._outcome(s, m, t0) for s, m in ended]
            if len(rest) == 1:
                outcomes.append(self._run_local(rest[0], None))
                return outcomes
            half = (len(rest) + 1) // 2
            return outcomes + self._run_group(rest[:half], alone) + self._run_group(rest[half:], alone)
        self.groups.append([s.number for s in specs])
        return [self._outcome(s, m, t0) for s, m in zip(specs, run.members)]

    def _forward(self, specs: dict[int, TrialSpec]) -> Any:
        report = self.report

        def forward(event: str, record: dict[str, Any]) -> None:
            if event == "end" and record.get("status") == "failed" and isinstance(sys.exc_info()[1],
                                                                                     KeyboardInterrupt):
                record = {**record, "status": "stopped", "reason": "interrupted (KeyboardInterrupt)"}
            report(specs[record["trial"]], event, record)
        return forward

    @staticmethod
    def _outcome(spec: TrialSpec, member: Any, t0: float) -> TrialOutcome:
        run, seconds = member.run, time.perf_counter() - t0
        exc = member.exception
        if exc is not None:
            oom = is_out_of_memory(exc)
            return TrialOutcome(spec, "failed", dict(run.final), run.error or "".join(traceback.format_exception(exc)),
                                "CUDA out of memory" if oom else f"{type(exc).__name__}: {exc}", dict(run.perf),
                                seconds)
        return TrialOutcome(spec, run.status, dict(run.final), run.error, run.reason, dict(run.perf), seconds)

    def _run_local(self, spec: TrialSpec, why: str | None) -> TrialOutcome:
        if why is not None:
            self.fallbacks[spec.number] = why
        outcome = self._local.run_trial(spec)
        if why is not None:
            note = f"trained on the local executor: {why}"
            outcome.reason = note if outcome.reason is None else f"{outcome.reason}; {note}"
        return outcome
