"""Work a widget's first run would otherwise pay for, done once per kernel after the widget is shown.

The first run in a kernel used to spend seconds before its first point on one-time work: torch
imports its compiler stack (``torch._dynamo``, sympy) when the first optimizer is made, a search
imports Optuna and its samplers, and the first forward and backward pass sets up autograd. When a
widget is shown, :func:`warm_later` schedules that work on the kernel's loop, a moment after the
cell has ended, so that the first click finds it done. It runs on the kernel's own thread (an
import in a second thread could deadlock with one in a cell), touches no random generator (a
run's seeds stay as they were) and changes nothing a run reads. Outside a kernel it does nothing.

Parts: ``"torch"`` (an optimizer, a forward and backward pass on a fixed tensor) and ``"search"``
(Optuna, its samplers and pruners, the search driver).

Example:
    >>> from tunewidgets.widgets._warm import warm_now, warm_later
    >>> warm_later("torch")            # outside a kernel: nothing is scheduled
    False
    >>> sorted(warm_now("torch", "search"))
    ['search', 'torch']
    >>> warm_now("torch")              # once per process
    []
"""
from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

__all__ = ["PARTS", "warm_later", "warm_now"]

PARTS = ("torch", "search")
DELAY_S = 0.05  # after the cell that showed the widget has ended

_log = logging.getLogger(__name__)
_done: set[str] = set()
_scheduled: set[str] = set()
timings: dict[str, float] = {}  # seconds each part took, for benchmarks


def _warm_torch() -> None:
    import torch

    weight = torch.zeros(4, 3, requires_grad=True)  # fixed values: no random generator is drawn
    for opt in (torch.optim.SGD([weight], lr=0.1, momentum=0.9), torch.optim.Adam([weight], lr=1e-3)):
        loss = torch.nn.functional.cross_entropy(torch.ones(2, 4) @ weight, torch.tensor([0, 2]))
        loss.backward()
        opt.step()
        opt.zero_grad()


def _warm_search() -> None:
    import optuna  # noqa: F401
    import optuna.pruners  # noqa: F401
    import optuna.samplers  # noqa: F401

    import tunewidgets.hpo.driver  # noqa: F401
    import tunewidgets.hpo.executors  # noqa: F401


_WORK = {"torch": _warm_torch, "search": _warm_search}


def warm_now(*parts: str) -> list[str]:
    """Do the parts not done yet in this process, now; returns the ones it did."""
    did = []
    for part in parts:
        if part not in _WORK:
            raise ValueError(f"parts: {part!r} is not one of {', '.join(PARTS)}")
        if part in _done:
            continue
        _done.add(part)
        began = time.perf_counter()
        try:
            _WORK[part]()
        except Exception:  # noqa: BLE001 - warming is an optimisation; the run itself reports errors
            _log.debug("tunewidgets: warming %s failed", part, exc_info=True)
        timings[part] = time.perf_counter() - began
        did.append(part)
    return did


def warm_later(*parts: str) -> bool:
    """In a kernel, schedule :func:`warm_now` for the parts not done or scheduled yet, on the
    kernel's loop shortly after the running cell ends; True if something was scheduled."""
    from tunewidgets.widgets._kernel import in_kernel

    todo = [p for p in parts if p not in _done and p not in _scheduled]
    if not todo or not in_kernel():
        return False
    try:
        loop: Any = asyncio.get_event_loop_policy().get_event_loop()
    except RuntimeError:  # pragma: no cover - a kernel always has a loop
        return False
    _scheduled.update(todo)
    loop.call_later(DELAY_S, lambda: warm_now(*todo))
    return True
