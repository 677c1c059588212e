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
"""
from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["MIN_STEPS", "MIN_DROP", "WARM_UP", "curve_problem"]

MIN_STEPS = 20  # the suggestion rules need 10 points; with under 20 a slope is a couple of them
MIN_DROP = 0.02  # the loss must fall this much (relative to its start) somewhere along the curve
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
