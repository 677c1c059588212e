"""Checks of the range test's settings, run before any work; each error names field, value and fix."""
from __future__ import annotations

import itertools
import math
from collections.abc import Iterator
from typing import Any

import numpy as np

__all__ = ["MODES", "check_settings", "LRRamp", "lr_ramp"]

MODES = ("exp", "linear")


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, (bool, np.bool_))


def _whole(name: str, v: Any, low: int, fix: str) -> int:
    if isinstance(v, (bool, np.bool_)) or not isinstance(v, (int, np.integer)):
        raise TypeError(f"{name}: expected a whole number >= {low}, got {v!r}; {fix}")
    if v < low:
        raise ValueError(f"{name}: must be >= {low}, got {v}; {fix}")
    return int(v)


def check_settings(*, start_lr: Any, end_lr: Any, steps: Any, mode: Any, smoothing: Any,
                   diverge: Any, grad_accum: Any, eval_every_steps: Any, amp: Any, stop: Any,
                   on_step: Any, log_every: Any = 25) -> dict[str, Any]:
    """Validate the plain settings; returns them normalised (floats, ints)."""
    if not _is_number(start_lr) or not math.isfinite(start_lr) or start_lr <= 0:
        raise ValueError(f"start_lr: must be a finite number > 0, got {start_lr!r}; e.g. start_lr=1e-7")
    if not _is_number(end_lr) or not math.isfinite(end_lr) or end_lr <= start_lr:
        raise ValueError(f"end_lr: must be a finite number > start_lr ({start_lr!r}), got {end_lr!r}; "
                         "e.g. end_lr=1.0 (or 10 for adaptive optimizers)")
    steps = _whole("steps", steps, 2, "the ramp needs a first and a last step; e.g. steps=100")
    if mode not in MODES:
        raise ValueError(f"mode: unknown ramp {mode!r}; use 'exp' (even steps in log lr, the usual choice) "
                         "or 'linear'")
    if not _is_number(smoothing) or not 0.0 <= smoothing < 1.0:
        raise ValueError(f"smoothing: must be a number in [0, 1), got {smoothing!r}; 0.98 is usual, 0 turns "
                         "smoothing off")
    if not _is_number(diverge) or math.isnan(diverge) or diverge <= 1:
        raise ValueError(f"diverge: must be a number > 1 (stop when the smoothed loss passes diverge x the "
                         f"best), got {diverge!r}; e.g. diverge=4, or math.inf to never stop on it")
    grad_accum = _whole("grad_accum", grad_accum, 1, "e.g. grad_accum=4 to average 4 mini-batches per step")
    eval_every_steps = _whole("eval_every_steps", eval_every_steps, 1,
                              "e.g. eval_every_steps=5 to evaluate every 5th step")
    log_every = _whole("log_every", log_every, 1, "e.g. log_every=25 to send the points every 25 steps")
    if amp not in (False, True, "bf16", "fp16") or isinstance(amp, int) and not isinstance(amp, bool):
        raise ValueError(f"amp: must be False, True, 'bf16' or 'fp16', got {amp!r}")
    if stop is not None and not callable(getattr(stop, "is_set", None)):
        raise TypeError(f"stop: expected a threading.Event (anything with is_set()), got {stop!r}")
    if on_step is not None and not callable(on_step):
        raise TypeError(f"on_step: expected a callable taking one dict, got {on_step!r}")
    return {"start_lr": float(start_lr), "end_lr": float(end_lr), "steps": steps, "mode": mode,
            "smoothing": float(smoothing), "diverge": float(diverge), "grad_accum": grad_accum,
            "eval_every_steps": eval_every_steps, "log_every": log_every, "amp": amp}


class LRRamp:
    """The lr of each step of a ramp, computed as it is asked for: no array of ``steps`` values.

    ``exp``: ``start * (end/start) ** (i/(n-1))``; ``linear``: ``start + (end - start) * i/(n-1)``
    for ``i = 0..n-1`` (step ``i + 1``); the first is exactly ``start``, the last exactly ``end``.
    Iterating it gives the lrs in order; ``values(count)`` the first ``count`` as an array.

    >>> ramp = LRRamp(1e-3, 1.0, 4, "exp")
    >>> len(ramp), ramp.values().round(6).tolist()
    (4, [0.001, 0.01, 0.1, 1.0])
    >>> len(LRRamp(1e-7, 1.0, 10**12, "exp"))   # nothing allocated for the steps
    1000000000000
    """

    __slots__ = ("start", "end", "steps", "mode")

    def __init__(self, start: float, end: float, steps: int, mode: str) -> None:
        self.start, self.end, self.steps, self.mode = float(start), float(end), int(steps), mode

    def __len__(self) -> int:
        return self.steps

    def __iter__(self) -> Iterator[float]:
        start, end, last = self.start, self.end, self.steps - 1
        yield start
        if self.mode == "exp":
            ratio = end / start
            for i in range(1, last):
                yield start * ratio ** (i / last)
        else:
            span = end - start
            for i in range(1, last):
                yield start + span * (i / last)
        yield end

    def values(self, count: int | None = None) -> np.ndarray:
        """The lrs of the first ``count`` steps (all when None), the same floats iteration gives."""
        n = self.steps if count is None else min(int(count), self.steps)
        return np.fromiter(itertools.islice(iter(self), n), dtype=float, count=n)


def lr_ramp(start_lr: float, end_lr: float, steps: int, mode: str) -> LRRamp:
    """The ramp of a range test (an :class:`LRRamp`).

    >>> lr_ramp(1e-3, 1.0, 4, "exp").values().round(6).tolist()
    [0.001, 0.01, 0.1, 1.0]
    """
    return LRRamp(start_lr, end_lr, steps, mode)
