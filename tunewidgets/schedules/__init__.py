"""Schedule specs: validated descriptions of an lr schedule, with exact previews.

Each spec has ``preview(total_steps, base_lr=None, steps_per_epoch=None)`` (a DataFrame of
step, epoch, lr and, where it cycles, momentum or beta1) and ``build(optimizer, total_steps,
steps_per_epoch=None)`` (the torch scheduler training steps). The preview runs that very
scheduler on a throwaway optimizer, so it is what training applies.

    >>> import tunewidgets.schedules as schedules
    >>> spec = schedules.Warmup(steps=10, then=schedules.Cosine(eta_min=1e-4))
    >>> df = spec.preview(total_steps=100, base_lr=0.1)
    >>> len(df), float(df["lr"].max()), spec.replace(steps=20).steps
    (100, 0.1, 20)

Widgets build their controls from ``Spec.controls()`` and pick specs from ``CATALOGUE``.
"""
from __future__ import annotations

from tunewidgets.schedules._base import INTERVALS, ScheduleSpec
from tunewidgets.schedules._basic import Constant, Exponential, MultiStep, Polynomial, Step
from tunewidgets.schedules._catalogue import CATALOGUE, from_dict
from tunewidgets.schedules._composite import CHAINABLE, Sequential, Warmup
from tunewidgets.schedules._cosine import Cosine, CosineWarmRestarts
from tunewidgets.schedules._cyclic import Cyclic, OneCycle
from tunewidgets.schedules._fields import KINDS, Control
from tunewidgets.schedules._phased import PhasedLR
from tunewidgets.schedules._plateau import ReduceOnPlateau
from tunewidgets.schedules._warmup_decay import WSD, InverseSqrt

__all__ = [
    "ScheduleSpec", "Control", "KINDS", "INTERVALS", "CATALOGUE", "CHAINABLE", "from_dict", "PhasedLR",
    "Constant", "Step", "MultiStep", "Exponential", "Polynomial", "Cosine", "CosineWarmRestarts",
    "Cyclic", "OneCycle", "Warmup", "WSD", "InverseSqrt", "Sequential", "ReduceOnPlateau",
]
