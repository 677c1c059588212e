"""Whether an LR range test's curve can be trusted enough to pick a learning rate by itself.

The suggestion rules always find something in a curve with enough points, even in the noise of
a flat one (a test stopped before the loss started to fall, or a sweep that never reached
learning rates that teach the network anything). :func:`curve_problem` says when a curve is
too short or too flat for that; the widget then keeps its chosen lr and says why.

Example:
    >>> import numpy as np
    >>> from tunewidgets.widgets._lr_trust import curve_problem
    >>> flat = np.full(40, 2.30) + 0.001 * np.sin(np.arange(40))
    >>> curve_problem(flat)
    'too flat to trust: the smoothed loss fell by at most 0.1% of its start, under 2%'
    >>> falling = np.linspace(2.3, 0.5, 40)
    >>> curve_problem(falling) is None, curve_problem(falling[:12])
    (True, 'too short to trust: 12 steps, fewer than 20')
    >>> coverage_problem([3.1e-6, 4.1e-6], 3.16e-6, 1e-2)   # a test stopped early
    'stopped after 3% of its range (up to 4.1e-06 of 3.16e-06 to 0.01)'
    >>> coverage_problem([1e-6, 2e-3], 1e-6, 1e-2) is None
    True
"""
from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["MIN_COVERAGE", "MIN_STEPS", "MIN_DROP", "WARM_UP", "coverage_problem", "curve_problem"]

MIN_STEPS = 20  # the suggestion rules need 10 points; with under 20 a slope is a couple of them
MIN_DROP = 0.02  # the loss must fall this much (relative to its start) somewhere along the curve
MIN_COVERAGE = 0.5  # a stopped test must have swept this share of its range to suggest an lr
WARM_UP = 10  # points at the start where the moving average still swings with single losses


def curve_problem(smoothed: Any) -> str | None:
    """Why the smoothed loss curve ``smoothed`` is not worth picking an lr from, or None.

    Too short: fewer than :data:`MIN_STEPS` finite points. Too flat: nowhere does the loss fall
    more than :data:`MIN_DROP` (2%) of its starting value below the highest point before it. The
    first points (a quarter, at most :data:`WARM_UP`) are left out of that: a moving average of a
    few noisy losses swings by more than that on any curve.
    """
    s = np.asarray(smoothed, dtype=float)
    s = s[: int(np.argmin(np.isfinite(s)))] if not np.isfinite(s).all() else s
    if len(s) < MIN_STEPS:
        return f"too short to trust: {len(s)} steps, fewer than {MIN_STEPS}"
    scale = abs(float(s[0])) or 1.0
    settled = s[min(WARM_UP, len(s) // 4):]
    drop = float((np.maximum.accumulate(settled) - settled).max()) / scale
    if drop < MIN_DROP:
        return (f"too flat to trust: the smoothed loss fell by at most {drop:.1%} of its start, "
                f"under {MIN_DROP:.0%}")
    return None


def coverage_problem(lrs: Any, start_lr: float, end_lr: float, mode: str = "exp") -> str | None:
    """Why a stopped test's sweep ``lrs`` is too small a part of ``start_lr`` to ``end_lr`` to
    suggest an lr (under :data:`MIN_COVERAGE` of it, on a log scale for ``mode="exp"``), or None.
    A suggestion from the start of a range says nothing about the rest of it."""
    lrs = np.asarray(lrs, dtype=float)
    lrs = lrs[np.isfinite(lrs) & (lrs > 0)]
    if not (start_lr > 0 and end_lr > start_lr):
        return None
    if len(lrs) == 0:
        return "stopped before its first step"
    top = float(lrs.max())
    if mode == "exp":
        share = (np.log(top) - np.log(start_lr)) / (np.log(end_lr) - np.log(start_lr))
    else:
        share = (top - start_lr) / (end_lr - start_lr)
    share = max(0.0, float(share))
    if share >= MIN_COVERAGE:
        return None
    return f"stopped after {share:.0%} of its range (up to {top:.2g} of {start_lr:.3g} to {end_lr:.3g})"
