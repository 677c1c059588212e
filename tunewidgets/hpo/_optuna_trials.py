"""A trial's state as Optuna holds it: the one mapping from our trial states to Optuna's.

``finished`` with a finite metric is COMPLETE (with that value), ``pruned`` is PRUNED, every other
ended state (failed, diverged, and finished with a NaN metric) is FAIL. The driver tells its
sampler with it, a resumed study rebuilds its history with it, and ``Study.to_optuna`` exports
with it.

Example:
    >>> from tunewidgets.hpo._optuna_trials import ended_trial, optuna_state
    >>> [optuna_state(s, v).name for s, v in (("finished", 0.9), ("finished", float("nan")), ("pruned", 0.1))]
    ['COMPLETE', 'FAIL', 'PRUNED']
    >>> ended_trial("diverged", 1.0, params={}, distributions={}).state.name
    'FAIL'
"""
from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

__all__ = ["optuna_state", "ended_trial", "tell"]


def optuna_state(state: str, value: float) -> Any:
    """Optuna's ``TrialState`` for a trial that ended ``state`` with metric ``value``."""
    from optuna.trial import TrialState

    if state == "finished":
        return TrialState.COMPLETE if isinstance(value, (int, float)) and math.isfinite(value) else TrialState.FAIL
    return TrialState.PRUNED if state == "pruned" else TrialState.FAIL


def ended_trial(state: str, value: float, *, params: Mapping[str, Any], distributions: Mapping[str, Any],
                intermediate: Mapping[int, float] | None = None, system_attrs: Mapping[str, Any] | None = None,
                user_attrs: Mapping[str, Any] | None = None) -> Any:
    """A frozen Optuna trial of an ended trial, for ``optuna_study.add_trial``."""
    from optuna.trial import TrialState, create_trial

    ostate = optuna_state(state, value)
    return create_trial(state=ostate, value=float(value) if ostate is TrialState.COMPLETE else None,
                        params=dict(params), distributions=dict(distributions),
                        intermediate_values=dict(intermediate or {}), system_attrs=dict(system_attrs or {}),
                        user_attrs=dict(user_attrs or {}))


def tell(optuna_study: Any, trial: Any, state: str, value: float) -> None:
    """Tell ``optuna_study`` how ``trial`` (asked from it) ended."""
    from optuna.trial import TrialState

    ostate = optuna_state(state, value)
    if ostate is TrialState.COMPLETE:
        optuna_study.tell(trial, float(value))
    else:
        optuna_study.tell(trial, state=ostate)
