"""Field metadata for controls (``Control``) and the checks that validate spec fields.

Every check raises before any work, naming the spec, the field, the bad value and a fix:

    >>> from tunewidgets.schedules._fields import check_number
    >>> check_number("OneCycle", "pct_start", 1.5, low=0, high=1, low_open=True, high_open=True,
    ...              fix="e.g. 0.3")
    Traceback (most recent call last):
    ...
    ValueError: OneCycle.pct_start: must be in (0, 1), got 1.5; e.g. 0.3
"""
from __future__ import annotations

import math
import numbers
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

__all__ = ["Control", "KINDS", "check_whole", "check_number", "check_choice", "check_flag",
           "check_milestones"]

KINDS = ("lr", "float", "int", "choice", "bool", "spec", "list[int]", "list[spec]")


@dataclass(frozen=True)
class Control:
    """How a widget shows one field of a spec.

    Attributes:
        name: the field name (also the keyword of the spec's constructor).
        kind: "lr" (a learning rate: log slider), "float", "int", "choice", "bool",
            "spec" (a nested spec), "list[int]" (e.g. milestones) or "list[spec]".
        help: one line for a tooltip.
        default: the field's default value.
        min, max: the range a slider should offer (every value in it is valid).
        choices: the allowed values of a "choice"; for "spec" and "list[spec]", the
            names (keys of ``CATALOGUE``) of the specs allowed there.
        log: show the slider on a log scale (always true for "lr").
        optional: None is allowed; it means "the whole run".
    """

    name: str
    kind: str
    help: str
    default: Any = None
    min: float | None = None
    max: float | None = None
    choices: tuple[Any, ...] = ()
    log: bool = False
    optional: bool = False

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"Control.kind: must be one of {KINDS}, got {self.kind!r}")
        if self.kind == "lr":
            object.__setattr__(self, "log", True)


def _is_real(v: Any) -> bool:
    return isinstance(v, numbers.Real) and not isinstance(v, bool)


def _is_whole(v: Any) -> bool:
    return isinstance(v, numbers.Integral) and not isinstance(v, bool)


def check_whole(owner: str, name: str, v: Any, low: int, fix: str = "") -> int:
    """An int >= ``low`` (bools and floats refused)."""
    tail = f"; {fix}" if fix else ""
    if not _is_whole(v):
        raise TypeError(f"{owner}.{name}: expected a whole number >= {low}, got {v!r}{tail}")
    if v < low:
        raise ValueError(f"{owner}.{name}: must be >= {low}, got {v}{tail}")
    return int(v)


def _range_text(low: float | None, high: float | None, low_open: bool, high_open: bool) -> str:
    if low is not None and high is not None:
        return f"in {'(' if low_open else '['}{low:g}, {high:g}{')' if high_open else ']'}"
    if low is not None:
        return f"{'>' if low_open else '>='} {low:g}"
    if high is not None:
        return f"{'<' if high_open else '<='} {high:g}"
    return "finite"


def check_number(owner: str, name: str, v: Any, *, low: float | None = None, high: float | None = None,
                 low_open: bool = False, high_open: bool = False, fix: str = "") -> float:
    """A finite real number in the given range, returned as float."""
    tail = f"; {fix}" if fix else ""
    text = _range_text(low, high, low_open, high_open)
    if not _is_real(v):
        raise TypeError(f"{owner}.{name}: expected a number {text}, got {v!r}{tail}")
    bad = (not math.isfinite(v)
           or (low is not None and (v <= low if low_open else v < low))
           or (high is not None and (v >= high if high_open else v > high)))
    if bad:
        raise ValueError(f"{owner}.{name}: must be {text}, got {v!r}{tail}")
    return float(v)


def check_choice(owner: str, name: str, v: Any, choices: Sequence[str]) -> str:
    """One of ``choices`` (exact spelling)."""
    if v not in choices or not isinstance(v, str):
        raise ValueError(f"{owner}.{name}: must be one of {', '.join(map(repr, choices))}, got {v!r}")
    return v


def check_flag(owner: str, name: str, v: Any) -> bool:
    """A real bool (0/1 and strings refused, so a typo cannot flip a setting)."""
    if not isinstance(v, bool):
        raise TypeError(f"{owner}.{name}: expected True or False, got {v!r}")
    return v


def check_milestones(owner: str, name: str, v: Any, fix: str = "") -> tuple[int, ...]:
    """A non-empty, strictly increasing sequence of whole numbers >= 1, returned as a tuple."""
    tail = f"; {fix}" if fix else ""
    ordered = (isinstance(v, Sequence) or hasattr(v, "__array__")) and not isinstance(v, (str, bytes))
    if not ordered or len(v) == 0:
        raise TypeError(f"{owner}.{name}: expected a non-empty list of whole numbers, got {v!r}{tail}")
    for m in v:
        if not _is_whole(m):
            raise TypeError(f"{owner}.{name}: expected whole numbers, got {m!r} in {list(v)}{tail}")
    v = [int(m) for m in v]
    if min(v) < 1:
        raise ValueError(f"{owner}.{name}: must all be >= 1, got {min(v)} in {v}{tail}")
    if any(b <= a for a, b in zip(v, v[1:])):
        raise ValueError(f"{owner}.{name}: must be strictly increasing, got {v}; "
                         f"e.g. {sorted(set(v))}")
    return tuple(v)
