"""Every docstring example in the package runs and shows what it says."""
from __future__ import annotations

import doctest
import importlib
import pkgutil

import pytest

import tunewidgets


def _modules() -> list[str]:
    names = []
    for info in pkgutil.walk_packages(tunewidgets.__path__, prefix="tunewidgets."):
        names.append(info.name)
    return sorted(names)


@pytest.mark.parametrize("name", _modules())
def test_docstring_examples(name, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # examples that write files write them here
    module = importlib.import_module(name)
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE,
                             verbose=False, report=True)
    assert result.failed == 0, f"{result.failed} of {result.attempted} examples failed in {name}"
