"""Plain value checks shared by ``TrainConfig``, ``Task`` and the optimizer builder.

One rule everywhere: a flag is a real boolean (``True``/``False`` or a NumPy bool), never a
string, a number or None, so ``nesterov="no"`` cannot turn Nesterov on; a number is any real
number, NumPy scalars included (``np.float32(0.1)``, ``np.int64(64)``), never a bool. Values
come back as plain Python ``bool``, ``int`` and ``float``, so configs stay JSON-able.

Example:
    >>> import numpy as np
    >>> flag("nesterov", np.bool_(True)), whole("epochs", np.int64(3), 1), real("lr", np.float32(0.5))
    (True, 3, 0.5)
    >>> flag("nesterov", "no")
    Traceback (most recent call last):
    ...
    TypeError: nesterov: expected True or False, got 'no'
"""
from __future__ import annotations

import math
import numbers
from typing import Any

import numpy as np

__all__ = ["is_flag", "is_real", "is_whole", "flag", "whole", "real", "check_nesting", "MAX_NESTING"]

#: dicts and lists in a setting may nest this deep (a deeper one is refused before any recursion)
MAX_NESTING = 32


def is_flag(v: Any) -> bool:
    """A Python or NumPy bool."""
    return isinstance(v, (bool, np.bool_))


def is_real(v: Any) -> bool:
    """A real number (Python or NumPy), not a bool."""
    return isinstance(v, numbers.Real) and not is_flag(v)


def is_whole(v: Any) -> bool:
    """A whole number (Python or NumPy int), not a bool."""
    return isinstance(v, numbers.Integral) and not is_flag(v)


def _tail(fix: str) -> str:
    return f"; {fix}" if fix else ""


def flag(name: str, v: Any, fix: str = "") -> bool:
    """``v`` as a bool; TypeError for anything but True/False (0/1, strings and None refused)."""
    if not is_flag(v):
        raise TypeError(f"{name}: expected True or False, got {v!r}{_tail(fix)}")
    return bool(v)


def whole(name: str, v: Any, low: int, high: int | None = None, fix: str = "") -> int:
    """``v`` as an int in ``[low, high]``; TypeError if not a whole number, ValueError if out of range."""
    span = f">= {low}" if high is None else f"in [{low}, {high}]"
    if not is_whole(v):
        raise TypeError(f"{name}: expected a whole number {span}, got {v!r}{_tail(fix)}")
    if v < low or (high is not None and v > high):
        raise ValueError(f"{name}: must be {'>=' if high is None else 'in'} "
                         f"{low if high is None else f'[{low}, {high}]'}, got {int(v)}{_tail(fix)}")
    return int(v)


def real(name: str, v: Any, fix: str = "", *, positive: bool = False) -> float:
    """``v`` as a finite float (``> 0`` with ``positive``); ValueError otherwise."""
    ok = is_real(v) and math.isfinite(v) and (not positive or v > 0)
    if not ok:
        what = "a finite number > 0" if positive else "a finite number"
        raise ValueError(f"{name}: must be {what}, got {v!r}{_tail(fix)}")
    return float(v)


def check_nesting(field: str, value: Any, limit: int = MAX_NESTING) -> None:
    """Raise ValueError naming ``field`` when dicts/lists in ``value`` nest deeper than ``limit``.

    Walks without recursion, so a 3,000-level dict is refused with a clear message, not a
    ``RecursionError`` from whatever reads it next.

    >>> check_nesting("model_kwargs", {"a": {"b": [1, 2]}})
    >>> deep = {}
    >>> for _ in range(40):
    ...     deep = {"a": deep}
    >>> check_nesting("model_kwargs", deep)
    Traceback (most recent call last):
    ...
    ValueError: model_kwargs: dicts and lists nest more than 32 levels deep (at ['a']['a']['a']...); give plain values or a shallow dict of them
    """
    stack: list[tuple[Any, int, str]] = [(value, 0, "")]
    while stack:
        obj, depth, path = stack.pop()
        if isinstance(obj, dict) or (hasattr(obj, "items") and hasattr(obj, "keys")):
            children = [(v, f"[{k!r}]" if isinstance(k, (str, int)) else "[...]") for k, v in obj.items()]
        elif isinstance(obj, (list, tuple)):
            children = [(v, f"[{i}]") for i, v in enumerate(obj)]
        else:
            continue
        if depth >= limit:
            raise ValueError(f"{field}: dicts and lists nest more than {limit} levels deep (at {path[:48]}...); "
                             "give plain values or a shallow dict of them")
        stack.extend((v, depth + 1, path + step if len(path) < 48 else path) for v, step in children)

