"""``PhasedLR``: torch schedulers run one after another, each starting fresh at its milestone.

torch's ``SequentialLR`` builds every scheduler up front on the same optimizer, so schedulers
that keep their settings in the optimizer's param groups (``OneCycleLR``'s ``initial_lr``,
``max_lr``, ``min_lr``; ``CyclicLR``'s own ``base_lr``) change each other's shape: a cosine phase
before a one-cycle phase anneals from the one-cycle start, a warm-up before ``CyclicLR`` ramps to
the optimizer's lr and then jumps. ``PhasedLR`` builds each phase's scheduler only when its phase
starts, after putting back the optimizer's own lr, momentum and betas, so every phase has
exactly the shape it has alone.

    >>> import torch
    >>> from functools import partial
    >>> from torch.optim.lr_scheduler import ExponentialLR, OneCycleLR
    >>> opt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=1.0, momentum=0.9)
    >>> sched = PhasedLR(opt, [partial(ExponentialLR, gamma=0.5),
    ...                        partial(OneCycleLR, max_lr=0.1, total_steps=4, pct_start=0.5)], milestones=[2])
    >>> lrs = []
    >>> for _ in range(6):
    ...     opt.step(); lrs.append(round(opt.param_groups[0]["lr"], 4)); sched.step()
    >>> lrs
    [1.0, 0.5, 0.004, 0.1, 0.05, 0.0]
"""
from __future__ import annotations

from bisect import bisect_right
from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch.optim import Optimizer
from torch.optim.lr_scheduler import LRScheduler

__all__ = ["PhasedLR"]

PhaseFactory = Callable[[Optimizer], Any]


def _set_lr(group: dict[str, Any], value: float) -> None:
    if isinstance(group["lr"], torch.Tensor):
        group["lr"].fill_(value)
    else:
        group["lr"] = value


class PhasedLR(LRScheduler):
    """Run ``phases[k](optimizer)`` from scheduler step ``milestones[k-1]`` on.

    Args:
        optimizer: the optimizer whose lr (and momentum or betas) the phases set.
        phases: one factory per phase: ``optimizer -> torch scheduler``; called when the
            phase starts, with the optimizer's own lr, momentum and betas put back first.
        milestones: the scheduler step at which each phase after the first starts
            (strictly increasing, >= 1; one fewer than ``phases``).

    ``state_dict``/``load_state_dict`` keep the current phase and its scheduler's state;
    as with every torch scheduler, build it before loading the optimizer's state.
    """

    def __init__(self, optimizer: Optimizer, phases: Sequence[PhaseFactory], milestones: Sequence[int]) -> None:
        if not isinstance(optimizer, Optimizer):
            raise TypeError(f"PhasedLR: expected a torch optimizer, got {type(optimizer).__name__}")
        if len(phases) < 1 or len(milestones) != len(phases) - 1:
            raise ValueError(f"PhasedLR: needs one milestone fewer than phases, got {len(phases)} phases "
                             f"and milestones {list(milestones)}")
        if any(m < 1 for m in milestones) or any(b <= a for a, b in zip(milestones, milestones[1:])):
            raise ValueError(f"PhasedLR.milestones: must be strictly increasing and >= 1, got {list(milestones)}")
        self._phases = list(phases)
        self._milestones = [int(m) for m in milestones]
        self._index = -1
        self._current: Any = None
        self._own = []
        for group in optimizer.param_groups:
            lr = group.get("initial_lr", group["lr"])
            own = {"lr": float(lr)}
            if "momentum" in group:
                own["momentum"] = group["momentum"]
            if "betas" in group:
                own["betas"] = tuple(group["betas"])
            self._own.append(own)
        super().__init__(optimizer)

    @property
    def phase(self) -> int:
        """Index of the phase now running."""
        return self._index

    def _start(self, index: int) -> None:
        for group, own in zip(self.optimizer.param_groups, self._own, strict=True):
            _set_lr(group, own["lr"])
            group.pop("initial_lr", None)  # as on a fresh optimizer: the phase's scheduler sets it
            for key in ("momentum", "betas"):
                if key in own:
                    group[key] = own[key]
        self._current = self._phases[index](self.optimizer)
        self._index = index

    def step(self) -> None:  # type: ignore[override]
        """Advance one scheduler step (after ``optimizer.step()``)."""
        self._step_count += 1
        self.last_epoch += 1
        index = bisect_right(self._milestones, self.last_epoch)
        if index != self._index:
            self._start(index)
        else:
            self._current.step()
        self._last_lr = [group["lr"] for group in self.optimizer.param_groups]

    def get_lr(self) -> list[float]:
        """The lrs the current phase set (``get_last_lr`` is the usual way to read them)."""
        return [group["lr"] for group in self.optimizer.param_groups]

    def state_dict(self) -> dict[str, Any]:
        """Step counts, the current phase and its scheduler's state (no optimizer, no factories)."""
        return {"last_epoch": self.last_epoch, "_step_count": self._step_count, "_index": self._index,
                "_milestones": list(self._milestones), "_own": [dict(o) for o in self._own],
                "base_lrs": list(self.base_lrs), "_last_lr": list(self._last_lr),
                "current": self._current.state_dict()}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Restore the phase and its scheduler; the optimizer's loaded settings are kept."""
        groups = self.optimizer.param_groups
        loaded = [{k: v for k, v in g.items() if k != "params"} for g in groups]
        self._own = [dict(o) for o in state_dict["_own"]]
        self._start(state_dict["_index"])
        self._current.load_state_dict(state_dict["current"])
        for group, values in zip(groups, loaded, strict=True):
            group.update(values)
        for key in ("last_epoch", "_step_count", "_milestones", "base_lrs", "_last_lr"):
            setattr(self, key, state_dict[key])
