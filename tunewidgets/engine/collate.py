"""Collating dataset items into batches, with failures that name the data field and the shapes.

torch's default collate stacks the items of a batch; items of different shapes (ragged
sequences, images of several sizes) make it fail with "stack expects each tensor to be equal
size". ``Collate("train")`` is that same collate, and when it fails it raises a ValueError
that names the field, the items and their shapes. It costs nothing while it works.

Example:
    >>> import torch
    >>> collate = Collate("train")
    >>> collate([(torch.zeros(3), 0), (torch.zeros(3), 1)])[0].shape
    torch.Size([2, 3])
    >>> collate([(torch.zeros(3), 0), (torch.zeros(4), 1)])
    Traceback (most recent call last):
    ...
    ValueError: train: the items of a batch cannot be stacked into one tensor: item 0 has inputs of shape (3,) and item 1 has inputs of shape (4,); make every item the same shape (pad or crop them), or pass a DataLoader with your own collate_fn
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from torch.utils.data import default_collate

__all__ = ["Collate", "collate_error", "ragged_items", "item_shape"]

_PARTS = ("inputs", "targets")


def item_shape(item: Any) -> Any:
    """The shape of one item: a tuple for a tensor or array, "scalar" for a number, nested for
    tuples and dicts (``((3,), 'scalar')`` for ``(tensor of 3, label)``)."""
    shape = getattr(item, "shape", None)
    if shape is not None:
        return tuple(int(s) for s in shape)
    if isinstance(item, Mapping):
        return {k: item_shape(v) for k, v in item.items()}
    if isinstance(item, Sequence) and not isinstance(item, (str, bytes)):
        return tuple(item_shape(v) for v in item)
    return "scalar" if isinstance(item, (int, float, complex)) else type(item).__name__


def _part_name(key: Any, n_parts: int) -> str:
    if isinstance(key, str):
        return repr(key)
    return _PARTS[key] if n_parts == 2 and key in (0, 1) else f"part {key}"


def _first_difference(a: Any, b: Any) -> tuple[str | None, Any, Any]:
    """(which part, shape in a, shape in b) of the first part whose shapes differ."""
    if isinstance(a, dict) and isinstance(b, dict) and a.keys() == b.keys():
        for key in a:
            if a[key] != b[key]:
                return _part_name(key, len(a)), a[key], b[key]
    if (isinstance(a, tuple) and isinstance(b, tuple) and len(a) == len(b) and a
            and any(not isinstance(x, int) for x in a)):  # a tuple of parts, not a shape
        for key, (x, y) in enumerate(zip(a, b)):
            if x != y:
                return _part_name(key, len(a)), x, y
    return None, a, b


def ragged_items(items: Sequence[Any], indices: Sequence[Any] | None = None) -> str | None:
    """Words for the first two items whose shapes differ (``indices`` name them; positions by
    default), or None when all items have one shape."""
    shapes = [item_shape(item) for item in items]
    for i, s in enumerate(shapes[1:], start=1):
        if s != shapes[0]:
            part, a, b = _first_difference(shapes[0], s)
            first, other = (indices[0], indices[i]) if indices is not None else (0, i)
            what = f"{part} of shape" if part is not None else "shape"
            return f"item {first} has {what} {_fmt(a)} and item {other} has {what} {_fmt(b)}"
    return None


def _fmt(shape: Any) -> str:
    return str(shape) if not isinstance(shape, dict) else "{" + ", ".join(f"{k!r}: {v}" for k, v in shape.items()) + "}"


class Collate:
    """torch's ``default_collate``, raising a ValueError naming ``field`` and the shapes when it fails."""

    def __init__(self, field: str) -> None:
        self.field = field

    def __call__(self, items: list[Any]) -> Any:
        try:
            return default_collate(items)
        except (RuntimeError, TypeError, ValueError) as exc:
            raise collate_error(self.field, items, exc) from exc

    def __repr__(self) -> str:
        return f"Collate({self.field!r})"


def collate_error(field: str, items: Sequence[Any], exc: BaseException,
                  indices: Sequence[Any] | None = None) -> ValueError:
    """The ValueError for a batch of ``items`` that the default collate could not put together."""
    detail = ragged_items(items, indices)
    if detail is not None:
        return ValueError(f"{field}: the items of a batch cannot be stacked into one tensor: {detail}; make every "
                          "item the same shape (pad or crop them), or pass a DataLoader with your own collate_fn")
    return ValueError(f"{field}: the items of a batch could not be collated ({exc}); items look like "
                      f"{_fmt(item_shape(items[0])) if items else 'nothing'}; give items of tensors, arrays or numbers "
                      "(e.g. (input, label) pairs), or pass a DataLoader with your own collate_fn")
