"""Run params as the TensorBoard and MLflow sinks write them, and safe folder/run names.

Example:
    >>> from tunewidgets.tracking._params import flat_params, safe_name
    >>> flat_params({"lr": 0.1, "betas": [0.9, 0.99], "schedule": {"type": "OneCycle", "max_lr": 0.1},
    ...              "grad_clip": None, "model_kwargs": {}, "amp": False})
    {'lr': 0.1, 'betas': '[0.9, 0.99]', 'schedule.type': 'OneCycle', 'schedule.max_lr': 0.1, 'amp': False}
    >>> safe_name("my run: <1>")
    'my-run-1'
"""
from __future__ import annotations

import json
import numbers
import re
from collections.abc import Mapping
from typing import Any

from tunewidgets.tracking._json import to_jsonable

__all__ = ["flat_params", "safe_name"]

Scalar = bool | int | float | str


def flat_params(params: Mapping[str, Any], prefix: str = "") -> dict[str, Scalar]:
    """Nested dicts as dotted keys (``schedule.max_lr``), lists as JSON text, None left out."""
    out: dict[str, Scalar] = {}
    for key, value in params.items():
        name = f"{prefix}{key}"
        if value is None:
            continue
        if isinstance(value, Mapping):
            out.update(flat_params(value, name + "."))
        elif isinstance(value, (bool, str)):
            out[name] = value
        elif isinstance(value, numbers.Integral):
            out[name] = int(value)
        elif isinstance(value, numbers.Real):
            out[name] = float(value)
        elif isinstance(value, (list, tuple)):
            out[name] = json.dumps(to_jsonable(value))
        else:
            jsonable = to_jsonable(value)
            out[name] = jsonable if isinstance(jsonable, (bool, int, float, str)) else json.dumps(jsonable)
    return out


def safe_name(text: str) -> str:
    """``text`` with anything but letters, digits, ``.``, ``_`` and ``-`` turned into ``-`` (for folder names)."""
    name = re.sub(r"[^\w.-]+", "-", str(text)).strip("-.")
    return name or "run"
