"""Store queries for search studies: the study's own row, its trials, their per-epoch curves.

A study is kept in the run store as rows of the ``runs`` table (no schema of its own):

- one row of kind ``"study"`` (``study`` and ``name`` are the study's name) whose ``params``
  hold the search settings (space, strategy, metric, direction, seed, n_trials, base config);
- one row of kind ``"trial"`` per trial attempt, ``study`` the study's name and ``name``
  ``"trial <n>"``; its ``params`` are the trial's full ``TrainConfig`` (as ``to_dict()``) plus
  ``"trial": n`` and ``"search": {key: value}`` (the values the search chose, as Optuna holds
  them). A trial interrupted by a crash and run again later has two rows; the newest counts.

Example:
    >>> import tempfile
    >>> from tunewidgets.tracking import Store
    >>> from tunewidgets.tracking import studies
    >>> store = Store(tempfile.mkdtemp())
    >>> sid = studies.create_study(store, "demo", {"strategy": "random"})
    >>> rid = studies.start_trial(store, "demo", 0, {"lr": 0.1}, config={"lr": 0.1})
    >>> store.finish_run(rid, "finished", final={"val_loss": 0.5})
    >>> studies.study_row(store, "demo")["params"], [t["trial"] for t in studies.latest_trials(store, "demo")]
    ({'strategy': 'random'}, [0])
    >>> store.close()
"""
from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from tunewidgets.tracking.store import Store

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["STUDY_KIND", "TRIAL_KIND", "create_study", "study_row", "study_names", "start_trial",
           "trial_runs", "latest_trials", "trial_metrics"]

STUDY_KIND = "study"
TRIAL_KIND = "trial"


def create_study(store: Store, name: str, settings: Mapping[str, Any]) -> int:
    """Add the study's row (status ``running``) and return its run id."""
    return store.start_run(kind=STUDY_KIND, study=name, name=name, params=dict(settings))


def study_row(store: Store, name: str) -> dict[str, Any] | None:
    """The study's own row as a dict (``params`` parsed), or None if the store has no such study."""
    runs = store.runs(name, kind=STUDY_KIND)
    if runs.empty:
        return None
    return runs.iloc[0].to_dict()


def study_names(store: Store) -> list[str]:
    """Names of the studies in the store, oldest first."""
    runs = store.runs(kind=STUDY_KIND)
    return [str(s) for s in runs["study"].tolist()]


def start_trial(store: Store, name: str, number: int, search: Mapping[str, Any], *,
                config: Mapping[str, Any], seed: int | None = None, env: Mapping[str, Any] | None = None) -> int:
    """Add a ``running`` row for attempt of trial ``number`` and return its run id.

    ``env`` is merged into the row's environment (``{"repro": ...}``: what ``tw.rerun`` repeats).
    """
    params = {**dict(config), "trial": int(number), "search": dict(search)}
    return store.start_run(kind=TRIAL_KIND, study=name, name=f"trial {int(number)}", params=params, seed=seed,
                           env=env)


def trial_runs(store: Store, name: str) -> list[dict[str, Any]]:
    """Every trial row of the study, oldest first, each with ``trial`` and ``search`` lifted out."""
    runs = store.runs(name, kind=TRIAL_KIND)
    out = []
    for record in runs.to_dict("records"):
        params = record.get("params") or {}
        record["trial"] = int(params.get("trial", -1))
        record["search"] = dict(params.get("search") or {})
        out.append(record)
    return out


def latest_trials(store: Store, name: str) -> list[dict[str, Any]]:
    """The newest row of each trial number, by trial number."""
    latest: dict[int, dict[str, Any]] = {}
    for record in trial_runs(store, name):
        latest[record["trial"]] = record  # rows come oldest first: the last one wins
    return [latest[n] for n in sorted(latest)]


def trial_metrics(store: Store, run_ids: Iterable[int], name: str | None = None) -> pd.DataFrame:
    """Metric rows (``run, step, epoch, name, value``) of the given trial runs."""
    ids = [int(r) for r in run_ids]
    if not ids:
        import pandas as pd

        return pd.DataFrame({"run": pd.Series(dtype="int64"), "step": pd.Series(dtype="int64"),
                             "epoch": pd.Series(dtype="float64"), "name": pd.Series(dtype="object"),
                             "value": pd.Series(dtype="float64")})
    return store.metrics(ids, name=name)
