"""What a report shows, read from a store into plain Python data (no Bokeh here).

One query per table: the run rows, then the metrics the report draws (``metric_rows``), so a
store of thousands of trials loads in well under a second. Long curves are cut down with
:func:`downsample`, which keeps each bucket's first, lowest, highest and last point, so spikes
and the curve's ends survive.

Example:
    >>> from tunewidgets.reports._load import downsample
    >>> xs, ys = downsample(list(range(10_000)), [float(i % 7) for i in range(10_000)], 400)
    >>> len(xs) <= 400, xs[0], xs[-1], max(ys), min(ys)
    (True, 0, 9999, 6.0, 0.0)
"""
from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from tunewidgets.tracking import studies
from tunewidgets.tracking.metric_names import metric_name
from tunewidgets.tracking.store import Store

__all__ = ["RunData", "StudyData", "ReportData", "load", "downsample", "env_of", "MAX_POINTS"]

MAX_POINTS = 600  # points per drawn curve at most
_EPOCH_METRICS = ("train/epoch_loss",)


@dataclass
class RunData:
    """One standalone run: per-step curves (``name -> (steps, values)``, whole) and per-epoch ones."""

    row: dict[str, Any]
    curves: dict[str, tuple[list[float], list[float]]] = field(default_factory=dict)
    epochs: dict[str, tuple[list[float], list[float]]] = field(default_factory=dict)


@dataclass
class StudyData:
    """A study: its settings row, its latest trial rows, and per-trial epoch curves of its metric."""

    name: str
    row: dict[str, Any]
    trials: list[dict[str, Any]]
    metric: str
    direction: str
    curves: dict[int, tuple[list[float], list[float]]] = field(default_factory=dict)  # trial -> (epoch, value)


@dataclass
class ReportData:
    runs: list[RunData]
    studies: list[StudyData]
    envs: list[dict[str, Any]]
    store_path: str
    unreadable: list[str] = field(default_factory=list)  # stored values that could not be read, in words


def downsample(xs: Sequence[float], ys: Sequence[float], max_points: int = MAX_POINTS) -> tuple[list, list]:
    """At most ``max_points`` points of the curve, keeping the first, lowest, highest and last of each bucket."""
    n = len(xs)
    if n <= max_points:
        return list(xs), list(ys)
    buckets = max(1, max_points // 4)
    size = n / buckets
    keep: list[int] = []
    for b in range(buckets):
        lo, hi = int(b * size), min(n, int((b + 1) * size))
        if hi <= lo:
            continue
        idx = range(lo, hi)
        finite = [i for i in idx if _finite(ys[i])]
        picks = {lo, hi - 1}
        if finite:
            picks.add(min(finite, key=lambda i: ys[i]))
            picks.add(max(finite, key=lambda i: ys[i]))
        keep.extend(sorted(picks))
    return [xs[i] for i in keep], [ys[i] for i in keep]


def _finite(v: Any) -> bool:
    return isinstance(v, (int, float)) and math.isfinite(v)


def load(store: Store, study: str | None = None) -> ReportData:
    """The report's data: every run of ``store`` (or only the study named ``study``)."""
    names = studies.study_names(store)
    if study is not None:
        if study not in names:
            raise ValueError(f"study: no study {study!r} in {store.path}; it has "
                             f"{', '.join(repr(n) for n in names) or 'none'}")
        names = [study]
    all_runs = store.runs()
    records = all_runs.to_dict("records")
    for r in records:  # pandas fills missing text with NaN
        for key in ("study", "name", "error"):
            if not isinstance(r.get(key), str):
                r[key] = None
    standalone = [] if study is not None else [
        r for r in records if r["kind"] not in (studies.STUDY_KIND, studies.TRIAL_KIND)]
    runs = [RunData(r) for r in standalone]
    by_id = {int(r.row["id"]): r for r in runs}
    if by_id:
        frame = store.metrics(list(by_id))
        for rid, step, epoch, name, value in zip(frame["run"].tolist(), frame["step"].tolist(),
                                                 frame["epoch"].tolist(), frame["name"].tolist(),
                                                 frame["value"].tolist()):
            run = by_id[rid]
            per_step = (math.isnan(epoch) or name.startswith("train/") or name == "lr") \
                and name not in _EPOCH_METRICS
            target = run.curves if per_step else run.epochs
            xs, ys = target.setdefault(name, ([], []))
            xs.append(float(step) if per_step else epoch + 1)
            ys.append(value)
    out_studies = []
    trial_rows: dict[str, list[dict[str, Any]]] = {}
    for r in records:
        if r["kind"] == studies.TRIAL_KIND and r["study"] in names:
            params = r.get("params") or {}
            r["trial"] = int(params.get("trial", -1))
            r["search"] = dict(params.get("search") or {})
            trial_rows.setdefault(r["study"], []).append(r)
    for name in names:
        row = next(r for r in records if r["kind"] == studies.STUDY_KIND and r["study"] == name)
        settings = row.get("params") or {}
        latest: dict[int, dict[str, Any]] = {}
        for r in trial_rows.get(name, []):
            latest[r["trial"]] = r
        trials = [latest[n] for n in sorted(latest)]
        metric = str(settings.get("metric") or "val_loss")
        direction = str(settings.get("direction") or "minimize")
        data = StudyData(name, row, trials, metric, direction)
        ids = {int(t["id"]): t["trial"] for t in trials}
        if ids:
            frame = store.metrics(list(ids), metric_name(metric))
            for run_id, epoch, value in zip(frame["run"].tolist(), frame["epoch"].tolist(), frame["value"].tolist()):
                xs, ys = data.curves.setdefault(ids[int(run_id)], ([], []))
                xs.append(float(epoch) + 1)
                ys.append(float(value))
        out_studies.append(data)
    shown = [r for r in records if r["kind"] != studies.STUDY_KIND and (
        study is None or r["study"] == study)]
    return ReportData(runs, out_studies, _envs(shown), str(store.path), [str(u) for u in store.unreadable])


_ENV_KEYS = ("python", "torch", "tunewidgets", "numpy", "platform", "device", "git_commit")


def env_of(row: dict[str, Any]) -> dict[str, Any]:
    """A run's environment as the report shows it (:data:`_ENV_KEYS`). A search's trials record
    numpy's version and the device only in the record of how to repeat the run (``env["repro"]``:
    ``versions``, ``device``); a value missing at the top level is taken from there.

    Example:
        >>> row = {"env": {"python": "3.11", "device": None,
        ...                "repro": {"versions": {"numpy": "2.1"}, "device": "cpu"}}}
        >>> {k: v for k, v in env_of(row).items() if v is not None}
        {'python': '3.11', 'numpy': '2.1', 'device': 'cpu'}
    """
    env = row.get("env") if isinstance(row.get("env"), dict) else {}
    repro = env.get("repro") if isinstance(env.get("repro"), dict) else {}
    versions = repro.get("versions") if isinstance(repro.get("versions"), dict) else {}
    out = {k: env.get(k) for k in _ENV_KEYS}
    for k in _ENV_KEYS:
        if out[k] is None:
            out[k] = versions.get(k) if k != "device" else repro.get("device")
    return out


def _envs(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The distinct environments the runs ran in, each with how many runs."""
    seen: dict[tuple, dict[str, Any]] = {}
    for r in rows:
        env = env_of(r)
        key = tuple(str(env.get(k)) for k in _ENV_KEYS)
        if key not in seen:
            seen[key] = {**{k: env.get(k) for k in _ENV_KEYS}, "runs": 0}
        seen[key]["runs"] += 1
    return list(seen.values())
