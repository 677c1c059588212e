"""A guard that fails on Python-level reads of tensor values (the host syncs of GPU code)."""
from __future__ import annotations

import contextlib
from collections.abc import Iterator

import pytest
import torch

_READS = ("item", "tolist", "numpy", "cpu", "__bool__", "__float__", "__int__")


@contextlib.contextmanager
def no_host_reads() -> Iterator[None]:
    """Inside, ``tensor.item()``, ``float(tensor)``, ``if tensor:`` and the like raise AssertionError."""
    def refuse(name: str):
        def read(self, *args, **kwargs):
            raise AssertionError(f"host read: Tensor.{name}() on the hot path")
        return read

    with pytest.MonkeyPatch.context() as mp:
        for name in _READS:
            mp.setattr(torch.Tensor, name, refuse(name))
        yield
