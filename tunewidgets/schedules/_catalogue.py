"""``CATALOGUE`` (name -> spec class, in display order) and ``from_dict``.

    >>> from tunewidgets.schedules import OneCycle, from_dict
    >>> from_dict(OneCycle(max_lr=0.05).to_dict())
    tw.schedules.OneCycle(max_lr=0.05)
"""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from tunewidgets.engine._values import check_nesting
from tunewidgets.schedules._base import ScheduleSpec
from tunewidgets.schedules._basic import Constant, Exponential, MultiStep, Polynomial, Step
from tunewidgets.schedules._composite import Sequential, Warmup
from tunewidgets.schedules._cosine import Cosine, CosineWarmRestarts
from tunewidgets.schedules._cyclic import Cyclic, OneCycle
from tunewidgets.schedules._plateau import ReduceOnPlateau
from tunewidgets.schedules._warmup_decay import WSD, InverseSqrt

__all__ = ["CATALOGUE", "from_dict"]

CATALOGUE: dict[str, type[ScheduleSpec]] = {
    cls.__name__: cls
    for cls in (Constant, Step, MultiStep, Exponential, Polynomial, Cosine, CosineWarmRestarts, Cyclic,
                OneCycle, Warmup, WSD, InverseSqrt, Sequential, ReduceOnPlateau)
}


def from_dict(d: Mapping[str, Any]) -> ScheduleSpec:
    """The spec that ``spec.to_dict()`` describes (nested specs included), validated.

    A dict nested deeper than ``MAX_NESTING`` levels is refused before it is read.
    """
    check_nesting("from_dict", d)
    if not isinstance(d, Mapping) or "type" not in d:
        raise TypeError(f"from_dict: expected a dict with a 'type' key such as {{'type': 'Cosine'}}, got {d!r}")
    name = d["type"]
    if name not in CATALOGUE:
        raise ValueError(f"from_dict: unknown schedule type {name!r}; known: {', '.join(CATALOGUE)}")
    cls = CATALOGUE[name]
    kinds = {c.name: c.kind for c in cls.controls()}
    unknown = sorted(set(d) - set(kinds) - {"type"})
    if unknown:
        raise ValueError(f"from_dict: {name} has no field(s) {unknown}; its fields are {list(kinds)}")
    args: dict[str, Any] = {}
    for key, value in d.items():
        if key == "type":
            continue
        if kinds[key] == "spec":
            value = from_dict(value)
        elif kinds[key] == "list[spec]":
            value = [from_dict(v) for v in value]
        args[key] = value
    return cls(**args)
