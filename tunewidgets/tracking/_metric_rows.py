"""Checks of what a caller hands the store: one metric row, a whole number (``Store.log_metrics``).

Example:
    >>> metric_row(3, (10, 0, "train/loss", 0.5), 0)
    (3, 10, 0, 'train/loss', 0.5)
    >>> metric_row(3, {"step": -5, "name": "lr", "value": 0.1}, 2)
    Traceback (most recent call last):
    ...
    ValueError: rows[2].step: must be a whole number >= 0 (steps are counted from the run's start), got -5 in {'step': -5, 'name': 'lr', 'value': 0.1}
"""
from __future__ import annotations

import operator
from collections.abc import Mapping
from typing import Any

__all__ = ["MetricRow", "ROW_HELP", "metric_row", "whole", "real"]

ROW_HELP = "each row is a (step, epoch, name, value) tuple or a dict with those keys"

MetricRow = tuple[int, int, float | None, str, float]


def whole(field: str, value: Any) -> int:
    if isinstance(value, bool):
        raise TypeError(f"{field}: expected a whole number, got {value!r}")
    try:
        return operator.index(value)
    except TypeError:
        raise TypeError(f"{field}: expected a whole number, got {type(value).__name__} {value!r}") from None


def metric_row(run_id: int, row: Any, i: int) -> MetricRow:
    if type(row) is tuple and len(row) == 4:  # the sink's rows: checked by type alone, cheaply
        step, epoch, name, value = row
        if (type(step) is int and step >= 0 and type(name) is str and name
                and type(value) is float and (epoch is None or type(epoch) is int)):
            return run_id, step, epoch, name, value
    if isinstance(row, Mapping):
        missing = [k for k in ("step", "name", "value") if k not in row]
        if missing:
            raise ValueError(f"rows[{i}]: missing {', '.join(missing)} in {row!r}; {ROW_HELP}")
        step, epoch, name, value = row["step"], row.get("epoch"), row["name"], row["value"]
    elif isinstance(row, (tuple, list)) and len(row) == 4:
        step, epoch, name, value = row
    else:
        raise TypeError(f"rows[{i}]: expected a row, got {row!r}; {ROW_HELP}")
    step = whole(f"rows[{i}].step", step)
    if step < 0:
        raise ValueError(f"rows[{i}].step: must be a whole number >= 0 (steps are counted from the run's start), "
                         f"got {step} in {row!r}")
    if epoch is not None:
        epoch = real(f"rows[{i}].epoch", epoch)
    if not isinstance(name, str) or not name:
        raise ValueError(f"rows[{i}].name: expected a non-empty metric name such as 'train/loss', got {name!r}")
    return run_id, step, epoch, name, real(f"rows[{i}].value", value)


def real(field: str, value: Any) -> float:
    if value is None or isinstance(value, (str, bytes)):
        raise TypeError(f"{field}: expected a number, got {value!r}")
    try:
        return float(value)
    except (TypeError, ValueError):
        raise TypeError(f"{field}: expected a number, got {type(value).__name__} {value!r}") from None
