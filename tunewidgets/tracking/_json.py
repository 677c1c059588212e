"""Strict JSON for the store's text columns: no pickle, and NaN/inf survive a round trip.

Standard JSON has no NaN or Infinity, so a non-finite float is written as a tagged
object ``{"$float": "nan"}`` (also ``"inf"``, ``"-inf"``) and turned back on reading.
The text stays valid JSON for any other reader (SQLite's json functions, JavaScript).

Example:
    >>> from tunewidgets.tracking._json import dumps, loads
    >>> dumps({"loss": float("nan"), "lr": 0.1})
    '{"loss": {"$float": "nan"}, "lr": 0.1}'
    >>> loads(dumps({"best": float("-inf")}))
    {'best': -inf}
"""
from __future__ import annotations

import dataclasses
import enum
import json
import math
import os
from collections.abc import Mapping
from typing import Any

__all__ = ["dumps", "loads", "to_jsonable"]

_TAG = "$float"
_NON_FINITE = {"nan": math.nan, "inf": math.inf, "-inf": -math.inf}


def _float(v: float) -> Any:
    if math.isfinite(v):
        return v
    if math.isnan(v):
        return {_TAG: "nan"}
    return {_TAG: "inf" if v > 0 else "-inf"}


def to_jsonable(obj: Any) -> Any:
    """Plain dicts, lists, strings, finite numbers, bools and None from ``obj``.

    numpy and torch scalars become Python numbers, arrays become lists, dataclasses
    and objects with ``to_dict()`` become dicts, enums their value, paths strings;
    anything else is kept as its ``repr`` so a record never fails to save.
    """
    if obj is None or isinstance(obj, (bool, str)):
        return obj
    if isinstance(obj, int):
        return int(obj)
    if isinstance(obj, float):
        return _float(float(obj))
    if isinstance(obj, enum.Enum):
        return to_jsonable(obj.value)
    if isinstance(obj, Mapping):
        return {str(k): to_jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [to_jsonable(v) for v in obj]
    if isinstance(obj, (set, frozenset)):
        items = [to_jsonable(v) for v in obj]
        try:
            return sorted(items)
        except TypeError:
            return items
    if isinstance(obj, os.PathLike):
        return os.fspath(obj)
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {f.name: to_jsonable(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    to_dict = getattr(obj, "to_dict", None)
    if callable(to_dict):
        try:
            return to_jsonable(to_dict())
        except Exception:  # an odd to_dict must not stop a run from being saved
            return repr(obj)
    # numpy / torch scalars and arrays, without importing either
    if getattr(obj, "shape", None) == () and callable(getattr(obj, "item", None)):
        return to_jsonable(obj.item())
    tolist = getattr(obj, "tolist", None)
    if callable(tolist):
        return to_jsonable(tolist())
    return repr(obj)


def dumps(obj: Any) -> str:
    """Strict JSON text (``allow_nan=False``) of :func:`to_jsonable` of ``obj``."""
    return json.dumps(to_jsonable(obj), allow_nan=False)


def _untag(d: dict[str, Any]) -> Any:
    if len(d) == 1 and _TAG in d and d[_TAG] in _NON_FINITE:
        return _NON_FINITE[d[_TAG]]
    return d


def loads(text: str | None) -> Any:
    """Parse text written by :func:`dumps`; None (an SQL NULL) stays None."""
    if text is None:
        return None
    return json.loads(text, object_hook=_untag)
