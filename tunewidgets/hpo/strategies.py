"""Strategies: which point each trial tries, with Optuna's samplers through ask and tell.

- ``grid``: Optuna's ``GridSampler`` over the distinct points of the space's grid, each once.
- ``random``: Optuna's ``RandomSampler``.
- ``bayes``: Optuna's ``TPESampler`` (tree-structured Parzen estimators; alias ``tpe``).

Seeding: trial ``n`` is sampled by a sampler seeded from ``(seed, n)`` (one sampler object,
reseeded before each trial), so the same seed gives
the same sequence of points, and a search resumed from its store continues that sequence
instead of replaying the points it already tried.

Two behaviours of ``GridSampler`` under ask and tell are handled here. After the last point is
told it calls ``study.stop()``, which raises outside ``study.optimize`` before the trial's state
is stored; this sampler does not stop the study (the search loop stops asking when the grid is
exhausted). Asked ahead of tells, it hands out a point again once every point is running; the
search never asks for more trials than the grid has points. The grid is indexed by the distinct
points of the space, not the full Cartesian product Optuna would build, so a conditional key
(``momentum`` only for sgd) does not repeat the points where it does not apply.

Example:
    >>> import optuna
    >>> from tunewidgets.hpo.space import Choice, Space
    >>> from tunewidgets.hpo.strategies import make_strategy
    >>> strategy = make_strategy("grid", Space({"batch_size": Choice([32, 64, 128])}), seed=0)
    >>> study = optuna.create_study()
    >>> seen = []
    >>> for n in range(strategy.size):
    ...     trial = strategy.ask(study, n)
    ...     seen.append(strategy.params(trial)["batch_size"])
    ...     _ = study.tell(trial, 1.0)
    >>> sorted(seen), strategy.exhausted(study)
    ([32, 64, 128], True)
"""
from __future__ import annotations

import difflib
from collections.abc import Mapping
from typing import Any

import numpy as np

from tunewidgets.hpo.space import Space

__all__ = ["STRATEGIES", "STRATEGY_ALIASES", "Strategy", "GridStrategy", "RandomStrategy", "BayesStrategy", "make_strategy",
           "trial_seed"]

STRATEGIES = ("grid", "random", "bayes")
STRATEGY_ALIASES = {"tpe": "bayes", "bayesian": "bayes"}  # other names a strategy is known by
_ALIASES = STRATEGY_ALIASES
GRID_PARAM = "grid_point"


def trial_seed(seed: int, number: int) -> int:
    """The seed of trial ``number``'s sampler: independent streams per trial from one seed."""
    return int(np.random.SeedSequence([int(seed), int(number)]).generate_state(1)[0])


_OPTUNA: list[Any] = []


def _optuna() -> Any:
    """The optuna module, imported on first use (its INFO log line per trial turned off)."""
    if not _OPTUNA:
        try:
            import optuna
        except ModuleNotFoundError:  # pragma: no cover - optuna is a dependency
            raise ImportError("tw.search needs optuna; install it with pip install 'optuna>=3.6'") from None
        optuna.logging.set_verbosity(optuna.logging.WARNING)
        _OPTUNA.append(optuna)
    return _OPTUNA[0]


def _reseed(sampler: Any, seed: int) -> bool:
    """Put ``sampler`` in the state ``type(sampler)(seed=seed)`` starts in, without building one.

    Random and TPE samplers draw from a NumPy ``RandomState`` (TPE also from its random
    sampler for its start-up trials); seeding those in place is what a new sampler does, at a
    fraction of the cost (a new TPESampler takes milliseconds). False when this Optuna keeps its
    generator elsewhere: the caller then builds a new sampler.
    """
    rngs = []
    for part in (sampler, getattr(sampler, "_random_sampler", None)):
        if part is None:
            continue
        rng = getattr(getattr(part, "_rng", None), "rng", None)
        if not isinstance(rng, np.random.RandomState):
            return False
        rngs.append(rng)
    for rng in rngs:
        rng.seed(seed)
    return True


class Strategy:
    """How a search picks the points of its trials (one Optuna sampler per trial)."""

    name = ""
    size: int | None = None  # points in a finite strategy (grid); None: unbounded

    def __init__(self, space: Space, seed: int) -> None:
        self.space, self.seed = space, seed

    def sampler(self, number: int) -> Any:
        """The sampler for trial ``number`` (one object, reseeded for each trial)."""
        seed = trial_seed(self.seed, number)
        current = getattr(self, "_current", None)
        if current is None or not _reseed(current, seed):
            current = self._current = self._make(seed)
        return current

    def _make(self, seed: int) -> Any:
        raise NotImplementedError

    def ask(self, study: Any, number: int) -> Any:
        """A new Optuna trial (number ``number``) from ``study``, sampled by this strategy."""
        sampler = self.sampler(number)
        if study.sampler is not sampler:
            study.sampler = sampler
        return study.ask()

    def params(self, trial: Any) -> dict[str, Any]:
        """The trial's values, by space key (a key that does not apply is absent)."""
        return self.space.suggest(trial)

    def optuna_params(self, params: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
        """``(params, distributions)`` as this strategy's Optuna trials hold them."""
        return self.space.to_internal(params), self.space.distributions(params)

    def system_attrs(self, number: int, params: Mapping[str, Any]) -> dict[str, Any]:
        """Sampler bookkeeping a trial rebuilt from the store needs (grid: which point it was)."""
        return {}

    def exhausted(self, study: Any) -> bool:
        return False


class RandomStrategy(Strategy):
    name = "random"

    def _make(self, seed: int) -> Any:
        return _optuna().samplers.RandomSampler(seed=seed)


class BayesStrategy(Strategy):
    name = "bayes"

    def __init__(self, space: Space, seed: int, **tpe: Any) -> None:
        super().__init__(space, seed)
        self.tpe = tpe

    def _make(self, seed: int) -> Any:
        return _optuna().samplers.TPESampler(seed=seed, **self.tpe)


class _AskTellGridSampler:
    """Optuna's GridSampler without the ``study.stop()`` after the last point (see the module)."""

    @staticmethod
    def make(search_space: dict[str, list[Any]], seed: int) -> Any:
        optuna = _optuna()

        class GridSampler(optuna.samplers.GridSampler):
            def after_trial(self, study: Any, trial: Any, state: Any, values: Any) -> None:
                pass  # exhaustion is the search loop's to decide; stop() raises outside optimize()

        return GridSampler(search_space, seed=seed)


class GridStrategy(Strategy):
    name = "grid"

    def __init__(self, space: Space, seed: int) -> None:
        super().__init__(space, seed)
        self.points = space.grid()
        self.size = len(self.points)
        self._keys = [tuple(sorted((k, repr(v)) for k, v in p.items())) for p in self.points]
        self._index = {key: i for i, key in enumerate(self._keys)}
        self._search_space = {GRID_PARAM: list(range(self.size))}
        self._sampler = _AskTellGridSampler.make(self._search_space, seed)

    def sampler(self, number: int) -> Any:
        if number >= self.size:
            raise RuntimeError(f"grid: trial {number} asked for, but the grid has {self.size} points "
                               "(GridSampler would repeat one); this is a bug in the search loop")
        return self._sampler

    def params(self, trial: Any) -> dict[str, Any]:
        index = trial.suggest_categorical(GRID_PARAM, self._search_space[GRID_PARAM])
        return dict(self.points[int(index)])

    def index_of(self, params: Mapping[str, Any]) -> int:
        key = tuple(sorted((k, repr(v)) for k, v in params.items()))
        if key not in self._index:
            raise ValueError(f"grid: {dict(params)!r} is not a point of this grid")
        return self._index[key]

    def optuna_params(self, params: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
        dist = _optuna().distributions.CategoricalDistribution(self._search_space[GRID_PARAM])
        return {GRID_PARAM: self.index_of(params)}, {GRID_PARAM: dist}

    def system_attrs(self, number: int, params: Mapping[str, Any]) -> dict[str, Any]:
        # GridSampler gives trial n the n-th point of its shuffled grid; a rebuilt trial says so
        return {"grid_id": number, "search_space": self._search_space}

    def exhausted(self, study: Any) -> bool:
        return self._sampler.is_exhausted(study)


def make_strategy(name: Any, space: Space, seed: int) -> Strategy:
    """The strategy called ``name`` (``grid``, ``random``, ``bayes``/``tpe``) over ``space``."""
    if not isinstance(name, str):
        raise TypeError(f"strategy: expected a name ({', '.join(STRATEGIES)}), got {type(name).__name__} {name!r}")
    key = _ALIASES.get(name.lower(), name.lower())
    if key not in STRATEGIES:
        close = difflib.get_close_matches(name.lower(), list(STRATEGIES) + list(_ALIASES), n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise ValueError(f"strategy: unknown strategy {name!r}{hint}; use one of: {', '.join(STRATEGIES)} "
                         "('bayes' is TPE)")
    if key == "grid":
        return GridStrategy(space, seed)
    if key == "random":
        return RandomStrategy(space, seed)
    return BayesStrategy(space, seed)
