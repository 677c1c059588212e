"""The dimensions of a search space: ``Uniform``, ``LogUniform``, ``Int``, ``Choice``, ``Fixed``.

Each knows its grid values, its Optuna distribution and how Optuna holds its values. Nothing is
checked when one is made: ``Space`` checks them, naming the key (see ``tunewidgets.hpo.space``).

Example:
    >>> from tunewidgets.hpo.dimensions import Choice, Int, LogUniform
    >>> LogUniform(1e-4, 1e-1, grid=4).grid_values()[1], Int(16, 256, log=True, grid=5).grid_values()
    (0.001, [16, 32, 64, 128, 256])
    >>> Choice([(0.9, 0.999), (0.9, 0.98)]).to_internal((0.9, 0.98))   # Optuna keeps plain values
    '(0.9, 0.98)'
"""
from __future__ import annotations

import math
import numbers
from collections.abc import Mapping, Sequence
from typing import Any

__all__ = ["Dimension", "Uniform", "LogUniform", "Int", "Choice", "Fixed", "SpaceError", "is_number",
           "contains", "plain_when"]

_PRIMITIVE = (str, int, float, bool, type(None))


class SpaceError(ValueError):
    """A search space that cannot be searched; the message names the key and the fix."""


class Dimension:
    """One hyperparameter's range. Subclasses: Uniform, LogUniform, Int, Choice, Fixed."""

    when: Mapping[str, Sequence[Any]] | None = None

    def _check(self, key: str) -> None:
        raise NotImplementedError

    def grid_values(self) -> list[Any]:
        """The values a grid search tries, in order."""
        raise NotImplementedError

    def distribution(self) -> Any:
        """Optuna's distribution for this dimension (values in Optuna's own form)."""
        raise NotImplementedError

    def suggest(self, trial: Any, key: str) -> Any:
        """Ask an Optuna trial for this dimension's value (in Optuna's form)."""
        raise NotImplementedError

    def extremes(self) -> list[Any]:
        """Values checked against the base config before any trial (the ends, every choice)."""
        return self.grid_values()

    def to_internal(self, value: Any) -> Any:
        """The value as Optuna stores it (a choice that is no plain value goes by its repr)."""
        return value

    def to_value(self, internal: Any) -> Any:
        """The inverse of ``to_internal``."""
        return internal

    def describe(self) -> dict[str, Any]:
        """A JSON-able description; two dimensions that search alike describe alike."""
        raise NotImplementedError

    @property
    def is_log(self) -> bool:
        return False

    def _when_repr(self) -> str:
        return "" if self.when is None else f", when={dict(self.when)!r}"


class _Numeric(Dimension):
    kind = "float"
    log = False

    def __init__(self, low: float, high: float, *, grid: int | None = None,
                 when: Mapping[str, Sequence[Any]] | None = None) -> None:
        self.low, self.high, self.grid, self.when = low, high, grid, when

    @property
    def is_log(self) -> bool:
        return self.log

    def _check(self, key: str) -> None:
        name = type(self).__name__
        for end in ("low", "high"):
            v = getattr(self, end)
            if not is_number(v) or not math.isfinite(v):
                raise SpaceError(f"{key}: {name} {end} must be a finite number, got {v!r}")
            if self.kind == "int" and float(v) != int(v):
                raise SpaceError(f"{key}: Int {end} must be a whole number, got {v!r}; use Uniform for a real range")
        if self.log and self.low <= 0:
            raise SpaceError(f"{key}: {name} needs low > 0 (a log scale has no 0 or negative values), "
                             f"got low={self.low!r}; e.g. {name}(1e-5, 1e-1)")
        if self.low >= self.high:
            raise SpaceError(f"{key}: {name} needs low < high, got low={self.low!r}, high={self.high!r}; "
                             f"swap them, or use Fixed({self.low!r}) for a single value")
        if self.grid is not None:
            if isinstance(self.grid, bool) or not isinstance(self.grid, numbers.Integral) or self.grid < 2:
                raise SpaceError(f"{key}: grid must be a whole number >= 2 (both ends are grid points), "
                                 f"got grid={self.grid!r}; use Fixed(value) for one value")

    def _points(self, n: int) -> list[float]:
        lo, hi = float(self.low), float(self.high)
        if self.log:
            a, b = math.log(lo), math.log(hi)
            pts = [math.exp(a + (b - a) * i / (n - 1)) for i in range(n)]
        else:
            pts = [lo + (hi - lo) * i / (n - 1) for i in range(n)]
        # 12 significant digits: 1e-3, not 0.0010000000000000002; exact ends
        pts = [float(f"{p:.12g}") for p in pts]
        pts[0], pts[-1] = lo, hi
        return pts

    def grid_values(self) -> list[Any]:
        if self.grid is None:
            raise SpaceError(f"{type(self).__name__}({self.low!r}, {self.high!r}) is continuous")
        return self._points(int(self.grid))

    def extremes(self) -> list[Any]:
        return [float(self.low), float(self.high)]  # what sampling gives: floats

    def suggest(self, trial: Any, key: str) -> Any:
        return trial.suggest_float(key, float(self.low), float(self.high), log=self.log)

    def distribution(self) -> Any:
        from optuna.distributions import FloatDistribution

        return FloatDistribution(float(self.low), float(self.high), log=self.log)

    def describe(self) -> dict[str, Any]:
        return {"type": type(self).__name__, "low": self.low, "high": self.high, "grid": self.grid,
                "when": plain_when(self.when)}

    def __repr__(self) -> str:
        grid = "" if self.grid is None else f", grid={self.grid!r}"
        return f"{type(self).__name__}({self.low!r}, {self.high!r}{grid}{self._when_repr()})"


class Uniform(_Numeric):
    """Real values spread evenly between ``low`` and ``high``; ``grid=n``: n evenly spaced points."""


class LogUniform(_Numeric):
    """Real values spread evenly on a log scale (learning rates, weight decay); ``low > 0``.

    ``grid=n``: n log-spaced points, both ends included (``LogUniform(1e-4, 1e-1, grid=4)``
    gives 1e-4, 1e-3, 1e-2, 1e-1).
    """

    log = True


class Int(_Numeric):
    """Whole numbers from ``low`` to ``high`` inclusive (``log=True``: spread on a log scale).

    A grid tries every whole number of the range (every ``step``-th), or ``grid=n`` points
    rounded to whole numbers (log-spaced when ``log``).
    """

    kind = "int"

    def __init__(self, low: int, high: int, *, log: bool = False, step: int = 1, grid: int | None = None,
                 when: Mapping[str, Sequence[Any]] | None = None) -> None:
        super().__init__(low, high, grid=grid, when=when)
        self.log, self.step = log, step

    def _check(self, key: str) -> None:
        if not isinstance(self.log, bool):
            raise SpaceError(f"{key}: Int log must be True or False, got {self.log!r}")
        if isinstance(self.step, bool) or not isinstance(self.step, numbers.Integral) or self.step < 1:
            raise SpaceError(f"{key}: Int step must be a whole number >= 1, got {self.step!r}")
        if self.log and self.step != 1:
            raise SpaceError(f"{key}: Int with log=True takes no step (got step={self.step!r}); drop one of them")
        super()._check(key)
        if self.grid is not None:
            count = (int(self.high) - int(self.low)) // int(self.step) + 1
            if self.grid > count:
                raise SpaceError(f"{key}: grid={self.grid} asks for more points than Int({self.low!r}, {self.high!r}) "
                                 f"has whole numbers "
                                 f"({count}); use grid <= {count}, or leave grid out to try all of them")
            if len(self.grid_values()) < self.grid:
                raise SpaceError(f"{key}: grid={self.grid} points of {self!r} round to only "
                                 f"{len(self.grid_values())} distinct whole numbers; use fewer points")

    def grid_values(self) -> list[Any]:
        lo, hi = int(self.low), int(self.high)
        if self.grid is None:
            return list(range(lo, hi + 1, int(self.step)))
        values: list[int] = []
        for p in self._points(int(self.grid)):
            v = lo + round((p - lo) / self.step) * self.step
            if v not in values:
                values.append(min(v, hi))
        return values

    def extremes(self) -> list[Any]:
        return [int(self.low), int(self.high)]

    def suggest(self, trial: Any, key: str) -> Any:
        return trial.suggest_int(key, int(self.low), int(self.high), log=self.log, step=int(self.step))

    def distribution(self) -> Any:
        from optuna.distributions import IntDistribution

        return IntDistribution(int(self.low), int(self.high), log=self.log, step=int(self.step))

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "log": self.log, "step": self.step}

    def __repr__(self) -> str:
        extra = (", log=True" if self.log else "") + ("" if self.step == 1 else f", step={self.step!r}")
        grid = "" if self.grid is None else f", grid={self.grid!r}"
        return f"Int({self.low!r}, {self.high!r}{extra}{grid}{self._when_repr()})"


class Choice(Dimension):
    """One of a list of values (optimizer names, batch sizes, widths, schedules...)."""

    def __init__(self, values: Sequence[Any], *, when: Mapping[str, Sequence[Any]] | None = None) -> None:
        self.values, self.when = values, when

    def _check(self, key: str) -> None:
        if isinstance(self.values, (str, bytes, Mapping)) or not isinstance(self.values, Sequence):
            raise SpaceError(f"{key}: Choice takes a list of values, got {self.values!r}; "
                             f"e.g. Choice([32, 64, 128])")
        if len(self.values) == 0:
            raise SpaceError(f"{key}: Choice has no values; give at least two, e.g. Choice([32, 64]), "
                             "or use Fixed(value) for one")
        seen: dict[Any, Any] = {}
        for v in self.values:
            same = _same(self.to_internal(v))
            if same in seen:
                again = "twice" if repr(seen[same]) == repr(v) else f"twice ({seen[same]!r} and {v!r} are one value)"
                raise SpaceError(f"{key}: Choice lists {v!r} {again}; give each value once")
            seen[same] = v

    def grid_values(self) -> list[Any]:
        return list(self.values)

    def suggest(self, trial: Any, key: str) -> Any:
        return trial.suggest_categorical(key, [self.to_internal(v) for v in self.values])

    def to_internal(self, value: Any) -> Any:
        if is_number(value) and math.isfinite(value):  # NumPy scalars too: Optuna and JSON keep plain numbers
            return int(value) if isinstance(value, numbers.Integral) else float(value)
        if isinstance(value, _PRIMITIVE) and not (isinstance(value, float) and math.isnan(value)):
            return value
        return repr(value)

    def to_value(self, internal: Any) -> Any:
        for v in self.values:
            i = self.to_internal(v)
            if i == internal and type(i) is type(internal):
                return v
        raise SpaceError(f"the value {internal!r} is not one of Choice({list(self.values)!r})")

    def distribution(self) -> Any:
        from optuna.distributions import CategoricalDistribution

        return CategoricalDistribution([self.to_internal(v) for v in self.values])

    def describe(self) -> dict[str, Any]:
        return {"type": "Choice", "values": [self.to_internal(v) for v in self.values],
                "when": plain_when(self.when)}

    def __repr__(self) -> str:
        return f"Choice({list(self.values)!r}{self._when_repr()})"


def _same(internal: Any) -> tuple[str, Any]:
    """Choices that are one value share this key: 0.1 and np.float64(0.1), 2 and 2.0 (not True and 1)."""
    if isinstance(internal, (int, float)) and not isinstance(internal, bool):
        return ("number", float(internal))
    return (type(internal).__name__, internal)


class Fixed(Dimension):
    """One value for every trial: changes the base config without searching."""

    def __init__(self, value: Any) -> None:
        self.value = value

    def _check(self, key: str) -> None:
        pass

    def grid_values(self) -> list[Any]:
        return [self.value]

    def distribution(self) -> Any:
        return None

    def describe(self) -> dict[str, Any]:
        return {"type": "Fixed", "value": Choice([self.value]).to_internal(self.value)}

    def __repr__(self) -> str:
        return f"Fixed({self.value!r})"


def is_number(v: Any) -> bool:
    """A real number that is not a bool."""
    return isinstance(v, numbers.Real) and not isinstance(v, bool)


def contains(values: Sequence[Any], v: Any) -> bool:
    """``v in values`` where 1 and True differ but 1 and 1.0 do not."""
    return any(x == v and type(x) is type(v) or (is_number(x) and is_number(v) and x == v) for x in values)


def plain_when(when: Mapping[str, Sequence[Any]] | None) -> Any:
    """A ``when=`` condition in JSON-able form (for a space's description)."""
    if when is None:
        return None
    return {k: [Choice([x]).to_internal(x) for x in v] for k, v in when.items()}
