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

import hashlib
import json
import numbers
import re
from collections.abc import Mapping
from typing import Any

from tunewidgets.tracking._json import to_jsonable

__all__ = ["flat_params", "safe_name", "folder_name", "check_name"]

_MAX_FOLDER = 100  # characters of a name kept in a folder name (file systems allow 255 bytes)

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


def folder_name(name: str) -> str:
    """A safe, unique folder name for ``name``: letters, digits, ``.``, ``_`` and ``-`` kept; a name
    that had other characters, or was longer than 100, gets a short hash of itself, so that
    ``'x/y'`` and ``'x y'`` get two folders and a 300-character name fits the file system.

    >>> folder_name("digits-lr"), folder_name("x/y") != folder_name("x y"), len(folder_name("a" * 300))
    ('digits-lr', True, 109)
    """
    text = str(name)
    safe = safe_name(text)
    if safe == text and len(safe) <= _MAX_FOLDER:
        return safe
    digest = hashlib.sha1(text.encode("utf-8", "surrogatepass")).hexdigest()[:8]
    return f"{safe[:_MAX_FOLDER].rstrip('-.') or 'run'}-{digest}"


def check_name(field: str, value: Any) -> str | None:
    """``value`` if it is None or a string that can be written (no lone surrogate), else a ValueError naming ``field``.

    >>> check_name("study", "digits-lr")
    'digits-lr'
    >>> check_name("study", "bad\\ud800")
    Traceback (most recent call last):
    ...
    ValueError: study: 'bad\\ud800' holds a character that cannot be written ('\\ud800' at position 3, a lone surrogate); remove it or use another name
    """
    if value is None:
        return None
    if not isinstance(value, str):
        raise TypeError(f"{field}: expected a string or None, got {type(value).__name__} {value!r}")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise ValueError(f"{field}: {value!r} holds a character that cannot be written ({value[exc.start]!r} at "
                         f"position {exc.start}, a lone surrogate); remove it or use another name") from None
    return value
