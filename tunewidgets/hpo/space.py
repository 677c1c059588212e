"""Search spaces: one dimension per hyperparameter, by the name it has in a ``TrainConfig``.

A space is a dict ``{key: dimension}``. Keys are ``TrainConfig`` fields (``lr``, ``momentum``,
``weight_decay``, ``batch_size``, ``optimizer``, ``epochs``...), fields of the base config's
schedule (``schedule.max_lr``, ``schedule.pct_start``; nested specs as ``schedule.then.eta_min``)
and keyword arguments of the task's model factory (``model.width``, ``model.dropout``).

Dimensions: ``Uniform``, ``LogUniform``, ``Int`` (optionally ``log=True``), ``Choice`` and
``Fixed``. For a grid search each dimension gives its values: a ``Choice`` its values, a numeric
dimension ``grid=n`` points with both ends included (log-spaced when log); an ``Int`` without
``grid`` gives every whole number of its range. A value that is not a dimension means ``Fixed``.

Conditional parameters: a parameter that does not apply to a trial is not sampled. ``momentum``
applies only to sgd and rmsprop, ``nesterov`` only to sgd, ``betas`` and ``eps`` only to adam and
adamw, ``weight_decay`` to every optimizer but rprop; ``when={"key": [values]}`` adds a condition
of your own to any dimension.

Nothing is checked when a dimension is made: ``Space(dims, base=..., task=...)`` (which
``tw.search`` calls before any trial) checks everything and names the key in each error.

Example:
    >>> import tunewidgets as tw
    >>> space = tw.space.Space({
    ...     "optimizer": tw.space.Choice(["sgd", "adam"]),
    ...     "lr": tw.space.LogUniform(1e-3, 1e-1, grid=3),
    ...     "momentum": tw.space.Choice([0.0, 0.9]),
    ... })
    >>> space.grid_size(), [round(v, 4) for v in space["lr"].grid_values()]
    (9, [0.001, 0.01, 0.1])
    >>> sorted(space.grid()[-1].items())   # adam takes no momentum, so it is not in its points
    [('lr', 0.1), ('optimizer', 'adam')]
    >>> tw.space.Space({"lr": tw.space.LogUniform(0, 1)})
    Traceback (most recent call last):
    ...
    tunewidgets.hpo.dimensions.SpaceError: lr: LogUniform needs low > 0 (a log scale has no 0 or negative values), got low=0; e.g. LogUniform(1e-5, 1e-1)
"""
from __future__ import annotations

import math
from collections.abc import Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from tunewidgets.hpo.dimensions import (Choice, Dimension, Fixed, Int, LogUniform, SpaceError, Uniform, contains,
                                        plain_when)
from tunewidgets.hpo.targets import check_target, implicit_condition

if TYPE_CHECKING:
    from tunewidgets.engine.config import TrainConfig
    from tunewidgets.engine.task import Task

__all__ = ["Dimension", "Uniform", "LogUniform", "Int", "Choice", "Fixed", "Space", "SpaceError"]


class Space(Mapping[str, Dimension]):
    """A checked search space: ``{key: dimension}`` in the order given.

    Args:
        dims: the space; plain values become ``Fixed``.
        base: the base ``TrainConfig``; with it every key is checked against the config (its
            name, and its ends and choices as values of the field).
        task: the task; with it ``model.<kwarg>`` keys are checked against the model factory.

    Raises:
        SpaceError: naming the key and the fix (also for conditions that never hold).
    """

    def __init__(self, dims: Mapping[str, Any], *, base: TrainConfig | None = None,
                 task: Task | None = None) -> None:
        if isinstance(dims, Space):
            dims = dims._dims
        if not isinstance(dims, Mapping):
            raise SpaceError(f"space: expected a dict {{key: dimension}}, e.g. "
                             f"{{'lr': tw.space.LogUniform(1e-4, 1e-1)}}, got {type(dims).__name__}")
        if not dims:
            raise SpaceError("space: is empty; give at least one key, e.g. {'lr': tw.space.LogUniform(1e-4, 1e-1)}")
        self._dims: dict[str, Dimension] = {}
        for key, dim in dims.items():
            if not isinstance(key, str) or not key:
                raise SpaceError(f"space: keys must be names such as 'lr' or 'model.width', got {key!r}")
            if isinstance(dim, type) and issubclass(dim, Dimension):
                raise SpaceError(f"{key}: got the class {dim.__name__}, not a dimension; "
                                 f"call it, e.g. {dim.__name__}(...)")
            if not isinstance(dim, Dimension):
                if isinstance(dim, (list, set, range)):
                    raise SpaceError(f"{key}: a list of values is ambiguous; use Choice({list(dim)!r}) to "
                                     f"search them or Fixed({list(dim)!r}) for one list value")
                dim = Fixed(dim)
            dim._check(key)
            self._dims[key] = dim
        self._check_conditions()
        self.order = self._sampling_order()
        if base is not None:
            for key, dim in self._dims.items():
                check_target(key, dim, self, base, task)

    # -- mapping ------------------------------------------------------------------------
    def __getitem__(self, key: str) -> Dimension:
        return self._dims[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._dims)

    def __len__(self) -> int:
        return len(self._dims)

    def __repr__(self) -> str:
        return "Space({" + ", ".join(f"{k!r}: {v!r}" for k, v in self._dims.items()) + "})"

    def searched(self) -> list[str]:
        """Keys that vary (every dimension but ``Fixed``)."""
        return [k for k, d in self._dims.items() if not isinstance(d, Fixed)]

    def describe(self) -> dict[str, Any]:
        """JSON-able description, stored with a study so that a resumed search can check it."""
        return {k: d.describe() for k, d in self._dims.items()}

    # -- conditions ---------------------------------------------------------------------
    def conditions(self, key: str) -> dict[str, tuple[Any, ...]]:
        """``{parent key: allowed values}`` that must all hold for ``key`` to apply."""
        out: dict[str, tuple[Any, ...]] = {}
        implicit = implicit_condition(key)
        if implicit is not None and implicit[0] in self._dims:
            out[implicit[0]] = implicit[1]
        for parent, allowed in (self._dims[key].when or {}).items():
            allowed = tuple(allowed)
            out[parent] = tuple(v for v in out[parent] if v in allowed) if parent in out else allowed
        return out

    def active(self, key: str, params: Mapping[str, Any]) -> bool:
        """Whether ``key`` applies given the other values of a trial (its parents' values)."""
        for parent, allowed in self.conditions(key).items():
            if parent not in params or not contains(allowed, params[parent]):
                return False
        return True

    def _check_conditions(self) -> None:
        for key, dim in self._dims.items():
            when = dim.when
            if when is None:
                continue
            if not isinstance(when, Mapping) or not when:
                raise SpaceError(f"{key}: when must be a dict {{key: [values]}}, e.g. "
                                 f"when={{'optimizer': ['sgd']}}, got {when!r}")
            for parent, allowed in when.items():
                if parent == key:
                    raise SpaceError(f"{key}: when cannot depend on {key} itself")
                if parent not in self._dims:
                    raise SpaceError(f"{key}: when names {parent!r}, which is not in the space; "
                                     f"add it as a Choice, or drop the condition (keys: {', '.join(self._dims)})")
                pdim = self._dims[parent]
                if not isinstance(pdim, (Choice, Fixed)):
                    raise SpaceError(f"{key}: when depends on {parent!r}, which must be a Choice "
                                     f"(or Fixed) to be compared with values, got {pdim!r}")
                if isinstance(allowed, (str, bytes)) or not isinstance(allowed, (Sequence, set, frozenset)):
                    raise SpaceError(f"{key}: when[{parent!r}] must be a list of values, got {allowed!r}; "
                                     f"e.g. when={{{parent!r}: [{pdim.grid_values()[0]!r}]}}")
                unknown = [v for v in allowed if not contains(pdim.grid_values(), v)]
                if unknown:
                    raise SpaceError(f"{key}: when[{parent!r}] lists {unknown!r}, which {parent} never takes; "
                                     f"its values are {pdim.grid_values()!r}")
        for key in self._dims:
            for parent, allowed in self.conditions(key).items():
                values = self._dims[parent].grid_values()
                if not any(contains(allowed, v) for v in values):
                    raise SpaceError(f"{key}: applies only when {parent} is one of {list(allowed)!r}, but "
                                     f"{parent} takes only {values!r}, so {key} would never be used; "
                                     f"drop {key} or add one of those values to {parent}")

    def _sampling_order(self) -> list[str]:
        """Keys ordered so that every parent comes before the keys that depend on it."""
        order: list[str] = []
        visiting: set[str] = set()

        def visit(key: str, chain: tuple[str, ...]) -> None:
            if key in order:
                return
            if key in visiting:
                raise SpaceError(f"{key}: its conditions form a loop ({' -> '.join(chain + (key,))}); "
                                 "make one of them unconditional")
            visiting.add(key)
            for parent in self.conditions(key):
                visit(parent, chain + (key,))
            visiting.discard(key)
            order.append(key)

        for key in self._dims:
            visit(key, ())
        return order

    # -- sampling -----------------------------------------------------------------------
    def suggest(self, trial: Any) -> dict[str, Any]:
        """The values of one Optuna trial (define-by-run: a key that does not apply is not asked)."""
        params: dict[str, Any] = {}
        for key in self.order:
            dim = self._dims[key]
            if not self.active(key, params):
                continue
            if isinstance(dim, Fixed):
                params[key] = dim.value
                continue
            params[key] = dim.to_value(dim.suggest(trial, key))
        return {k: params[k] for k in self._dims if k in params}

    def distributions(self, params: Mapping[str, Any]) -> dict[str, Any]:
        """Optuna distributions of the searched keys a trial with ``params`` used."""
        return {k: self._dims[k].distribution() for k in self.searched() if k in params}

    def to_internal(self, params: Mapping[str, Any]) -> dict[str, Any]:
        """Searched values as Optuna holds them (what a store row keeps)."""
        return {k: self._dims[k].to_internal(v) for k, v in params.items()
                if k in self._dims and not isinstance(self._dims[k], Fixed)}

    def from_internal(self, internal: Mapping[str, Any]) -> dict[str, Any]:
        """A trial's full values from their stored form (Fixed keys filled in)."""
        params: dict[str, Any] = {}
        for key in self.order:
            dim = self._dims[key]
            if not self.active(key, params):
                continue
            if isinstance(dim, Fixed):
                params[key] = dim.value
            elif key in internal:
                params[key] = dim.to_value(internal[key])
        return {k: params[k] for k in self._dims if k in params}

    # -- grid ---------------------------------------------------------------------------
    def check_grid(self) -> None:
        """Raise naming the first continuous dimension that gives no grid values."""
        for key, dim in self._dims.items():
            if isinstance(dim, (Uniform, LogUniform)) and dim.grid is None:
                name = type(dim).__name__
                raise SpaceError(f"{key}: a grid search needs the values of each dimension, but {dim!r} is "
                                 f"continuous; give it points with {name}({dim.low!r}, {dim.high!r}, grid=4), "
                                 "list them with Choice([...]), or use strategy='random'")

    def grid(self) -> list[dict[str, Any]]:
        """Every distinct point of the grid once; a key that does not apply is left out of a point."""
        self.check_grid()
        points: list[dict[str, Any]] = [{}]
        for key in self.order:
            dim = self._dims[key]
            nxt: list[dict[str, Any]] = []
            for p in points:
                if self.active(key, p):
                    nxt.extend({**p, key: v} for v in dim.grid_values())
                else:
                    nxt.append(p)
            points = nxt
        return [{k: p[k] for k in self._dims if k in p} for p in points]

    def grid_size(self) -> int:
        return len(self.grid())

    def grid_shape(self) -> str:
        """How the grid is made, for messages: 'lr 4 x momentum 3 = 12 points'."""
        self.check_grid()
        parts = [f"{k} {len(d.grid_values())}" for k, d in self._dims.items() if not isinstance(d, Fixed)]
        size = self.grid_size()
        product = math.prod(len(self._dims[k].grid_values()) for k in self.searched())
        note = "" if size == product else " (conditional keys only where they apply)"
        return f"{' x '.join(parts) or 'one point'} = {size} points{note}"
