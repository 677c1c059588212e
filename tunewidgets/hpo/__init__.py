"""Hyperparameter search: spaces, presets, strategies, pruners, executors and studies.

``tw.search`` (in ``tunewidgets._search_api``) runs a search; ``tw.space`` is
:mod:`tunewidgets.hpo.space` and ``tw.presets`` is :mod:`tunewidgets.hpo.presets`. The package is
named ``hpo``, not ``search``: ``import tunewidgets.search`` would replace the function
``tw.search`` with a module. ``tw.hpo.RayExecutor`` (trials on a Ray cluster) loads its module
when first named; Ray itself is imported only when one is made.

Example:
    >>> import tunewidgets as tw
    >>> from tunewidgets import hpo
    >>> hpo.space is tw.space, hpo.presets is tw.presets, tw.hpo.FusedExecutor is hpo.FusedExecutor
    (True, True, True)
    >>> tw.hpo.RayExecutor.name
    'ray'
"""
from __future__ import annotations

import importlib
from typing import Any

from tunewidgets.hpo import presets, space
from tunewidgets.hpo.executors import Executor, FusedExecutor, LocalExecutor
from tunewidgets.hpo.space import Choice, Fixed, Int, LogUniform, Space, SpaceError, Uniform

__all__ = ["space", "presets", "Space", "SpaceError", "Uniform", "LogUniform", "Int", "Choice", "Fixed",
           "Executor", "LocalExecutor", "FusedExecutor", "RayExecutor"]

_LAZY = {"RayExecutor": "tunewidgets.hpo.ray_executor"}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'tunewidgets.hpo' has no attribute {name!r}")
