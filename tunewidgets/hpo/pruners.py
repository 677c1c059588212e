"""Pruners: stop trials that are doing worse than others, from their per-epoch metric.

Optuna's pruners, fed the search metric after every evaluation (step = epochs done, from 1):

- ``median``: ``MedianPruner``: prune a trial whose best value so far is worse than the median
  of earlier trials at the same epoch (after 3 trials have finished, from the first epoch);
- ``successive_halving``: ``SuccessiveHalvingPruner`` (asynchronous successive halving, Li et
  al. 2020): keep the best third of the trials at epochs 1, 3, 9, ...;
- ``hyperband``: ``HyperbandPruner`` (Li et al. 2018): several successive-halving brackets from
  epoch 1 to the run's last epoch, reduction factor 3.

An Optuna pruner object (``optuna.pruners.BasePruner``) is taken as it is. A pruned trial ends
with status ``pruned`` (its handler raises ``StopRun("pruned")``); the last evaluation of a run
never prunes it, since its training is done.

Example:
    >>> from tunewidgets.hpo.pruners import make_pruner
    >>> type(make_pruner("hyperband", epochs=9)).__name__, make_pruner(None, epochs=9)
    ('HyperbandPruner', None)
"""
from __future__ import annotations

import difflib
from typing import Any

__all__ = ["PRUNERS", "make_pruner"]

PRUNERS = ("median", "successive_halving", "hyperband")
_ALIASES = {"sha": "successive_halving", "asha": "successive_halving", "successive-halving": "successive_halving"}


def make_pruner(pruner: Any, *, epochs: int) -> Any:
    """The Optuna pruner for ``pruner`` (a name, an Optuna pruner, or None for no pruning)."""
    if pruner is None or pruner is False:
        return None
    from tunewidgets.hpo.strategies import _optuna

    optuna = _optuna()
    if isinstance(pruner, optuna.pruners.BasePruner):
        return pruner
    if not isinstance(pruner, str):
        raise TypeError(f"pruner: expected a name ({', '.join(PRUNERS)}), an optuna pruner or None, "
                        f"got {type(pruner).__name__} {pruner!r}")
    key = _ALIASES.get(pruner.lower(), pruner.lower())
    if key not in PRUNERS:
        close = difflib.get_close_matches(pruner.lower(), list(PRUNERS) + list(_ALIASES), n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise ValueError(f"pruner: unknown pruner {pruner!r}{hint}; use one of: {', '.join(PRUNERS)}, or None")
    if key == "median":
        return optuna.pruners.MedianPruner(n_startup_trials=3, n_warmup_steps=0)
    if key == "successive_halving":
        return optuna.pruners.SuccessiveHalvingPruner(min_resource=1, reduction_factor=3)
    return optuna.pruners.HyperbandPruner(min_resource=1, max_resource=max(int(epochs), 1), reduction_factor=3)
