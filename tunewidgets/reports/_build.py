"""``tw.report(store, path, study=None)``: one self-contained HTML file of a store's runs.

Example:
    >>> import tempfile, tunewidgets as tw
    >>> folder = tempfile.mkdtemp()
    >>> run = tw.train(tw.tasks.spirals(), tw.TrainConfig(epochs=1, device="cpu"), store=folder)
    >>> path = tw.report(folder, folder + "/report.html")
    >>> text = path.read_text()
    >>> "cdn.bokeh.org" in text, "Bokeh.embed.embed_items" in text, "train 1" in text
    (False, True, True)
"""
from __future__ import annotations

import math
import os
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from bokeh.embed import components
from bokeh.embed.bundle import bundle_for_objs_and_resources
from bokeh.resources import INLINE

from tunewidgets.tracking.destinations import open_store
from tunewidgets.export._output import check_output
from tunewidgets.export._runtime import escape_script, script_tag
from tunewidgets.reports import _figures as figs
from tunewidgets.reports._load import ReportData, RunData, StudyData, load
from tunewidgets.reports._page import esc, fmt, page, table

__all__ = ["report", "MIN_TRIALS_FOR_IMPORTANCE", "BEST_CURVES"]

MIN_TRIALS_FOR_IMPORTANCE = 5
BEST_CURVES = 8
_ENDED = ("finished", "pruned", "failed", "diverged")


def report(store: Any, path: str | os.PathLike[str], study: str | None = None, *,
           title: str | None = None, overwrite: bool = False) -> Path:
    """Write an HTML report of every run in ``store`` (or of the one ``study``) to ``path``.

    The file holds everything it needs (BokehJS inline, no request leaves it): open it in any
    browser, offline, without a kernel. It shows the standalone runs with their curves and lr
    schedules, the LR range tests with their suggestions, and for each study its trials table,
    the trials' metric, parallel coordinates, the best trials' curves and the parameters'
    importance, then the environments the runs ran in.

    Args:
        store: a ``tw.Store`` or a runs folder.
        path: the HTML file to write (its folder is created). A path that is a store's file (its
            database, WAL, SHM or writers folder) or any existing file that is not a page
            tunewidgets wrote is refused before anything is read, unless ``overwrite``.
        study: only this study (its trials), by name.
        title: the page's title (default: the store's file name).
        overwrite: replace an existing file that is not a tunewidgets page.

    Returns:
        The path written.
    """
    if study is not None and (not isinstance(study, str) or not study):
        raise ValueError(f"study: expected a study name such as 'digits-random-1' or None, got {study!r}")
    out = check_output(path, overwrite=overwrite, field="path", example="report.html", create_folder=True)
    with open_store(store, create=False) as opened:
        if opened is None:
            raise TypeError("store: expected a tw.Store or a runs folder such as 'tunewidgets-runs', got None")
        data = load(opened, study)
    text = render(data, title=title)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text, encoding="utf-8")
    return out


def render(data: ReportData, *, title: str | None = None) -> str:
    """The report's HTML text for loaded data."""
    plots: list[Any] = []
    sections: list[str] = []

    def plot(fig: Any) -> str:
        plots.append(fig)
        return f"\x00PLOT{len(plots) - 1}\x00"

    title = title or f"tunewidgets report: {Path(data.store_path).name}"
    trains = [r for r in data.runs if r.row["kind"] != "lr_range_test"]
    tests = [r for r in data.runs if r.row["kind"] == "lr_range_test"]
    nav = []
    if trains:
        nav.append('<a href="#runs">Runs</a>')
        sections.append(_runs_section(trains, plot))
    if tests:
        nav.append('<a href="#range-tests">LR range tests</a>')
        sections.append(_tests_section(tests, plot))
    for i, s in enumerate(data.studies):
        nav.append(f'<a href="#study-{i}">Study {esc(s.name)}</a>')
        sections.append(_study_section(s, i, plot))
    nav.append('<a href="#environment">Environment</a>')
    sections.append(_env_section(data))
    if not data.runs and not data.studies:
        sections.insert(0, '<p class="note">This store holds no runs yet.</p>')
    if data.unreadable:
        items = "".join(f"<li>{esc(u)}</li>" for u in data.unreadable)
        sections.insert(0, f'<div class="note" id="unreadable"><p>{len(data.unreadable)} stored value(s) could '
                           f'not be read and are shown empty; the rest of the store reads as usual:</p>'
                           f'<ul>{items}</ul></div>')
    header = (f"<h1>{esc(title)}</h1><p class=\"muted\">Store <code>{esc(Path(data.store_path).name)}</code>, "
              f"written {esc(time.strftime('%Y-%m-%d %H:%M:%S'))}: {len(data.runs)} standalone run(s), "
              f"{len(data.studies)} study(ies).</p><nav>{''.join(nav)}</nav>")
    body = header + "".join(sections)
    head = ""
    if plots:
        script, divs = components(plots)
        for i, div in enumerate(divs):
            body = body.replace(f"\x00PLOT{i}\x00", f'<div class="plot">{div}</div>')
        bundle = bundle_for_objs_and_resources(plots, INLINE)
        head = "\n".join([*(script_tag(js, type="text/javascript") for js in bundle.js_raw),
                          *(f"<style>\n{css}\n</style>" for css in bundle.css_raw)])
        body += "\n" + _escape_components(script)
    return page(title, body, head)


def _escape_components(script: str) -> str:
    """The ``<script>`` Bokeh's ``components`` returns, its code run through ``escape_script``."""
    start, end = script.index(">") + 1, script.rindex("</script>")
    return script[:start] + escape_script(script[start:end]) + "</script>"


def _name(row: dict[str, Any]) -> str:
    return str(row.get("name") or f"{row['kind']} {row['id']}")


def _runs_section(runs: Sequence[RunData], plot: Any) -> str:
    parts = ['<h2 id="runs">Runs</h2>', table(
        ["run", "name", "status", "optimizer", "lr", "schedule", "epochs", "val_loss", "duration (s)"],
        [[int(r.row["id"]), _name(r.row), r.row["status"], (r.row.get("params") or {}).get("optimizer"),
          (r.row.get("params") or {}).get("lr"), _schedule_text(r.row), (r.row.get("final") or {}).get("epochs"),
          (r.row.get("final") or {}).get("val_loss"), r.row.get("duration")] for r in runs])]
    for r in runs:
        row = r.row
        parts.append(f"<h3>Run {int(row['id'])}: {esc(_name(row))} <span class=\"muted\">({esc(row['status'])})</span></h3>")
        parts.append(_final_line(row))
        if row.get("error"):
            parts.append(f"<pre>{esc(row['error'])}</pre>")
        schedule = (row.get("params") or {}).get("schedule")
        if schedule:
            parts.append(f"<p>Schedule: <code>{fmt(schedule)}</code></p>")
        for fig in figs.run_figures(r):
            parts.append(plot(fig))
        parts.append(f"<details><summary>config</summary><pre>{fmt(row.get('params'))}</pre></details>")
    return "".join(parts)


def _schedule_text(row: dict[str, Any]) -> str:
    schedule = (row.get("params") or {}).get("schedule")
    if isinstance(schedule, dict):
        return str(schedule.get("name") or schedule.get("kind") or schedule.get("type") or "custom")
    return "constant" if schedule is None else str(schedule)


def _final_line(row: dict[str, Any]) -> str:
    final = row.get("final") or {}
    shown = [(k, v) for k, v in final.items() if isinstance(v, (int, float)) and not k.startswith("suggested")]
    if not shown:
        return ""
    return "<p>" + ", ".join(f"{esc(k)} <b>{fmt(v)}</b>" for k, v in shown) + "</p>"


def _tests_section(tests: Sequence[RunData], plot: Any) -> str:
    rows = []
    for r in tests:
        final = r.row.get("final") or {}
        sug = figs.suggestions(final)
        rows.append([int(r.row["id"]), _name(r.row), r.row["status"], final.get("suggested"),
                     ", ".join(f"{m} {v:.2e}" for m, v in sorted(sug.items())), final.get("stop_reason"),
                     final.get("steps")])
    parts = ['<h2 id="range-tests">LR range tests</h2>',
             table(["run", "name", "status", "suggested lr", "by method", "stopped", "steps"], rows)]
    for r in tests:
        parts.append(f"<h3>Range test {int(r.row['id'])}: {esc(_name(r.row))}</h3>")
        if r.row.get("error"):
            parts.append(f"<pre>{esc(r.row['error'])}</pre>")
        parts.append(plot(figs.range_test_figure(r)))
    return "".join(parts)


def _study_section(s: StudyData, index: int, plot: Any) -> str:
    settings = s.row.get("params") or {}
    keys = list((settings.get("space") or {}).keys()) or sorted({k for t in s.trials for k in t["search"]})
    m = s.metric
    sign = 1.0 if s.direction == "maximize" else -1.0

    def value(t: dict[str, Any]) -> float:
        v = (t.get("final") or {}).get(m)
        return float(v) if isinstance(v, (int, float)) and math.isfinite(v) else math.nan

    finished = [t for t in s.trials if t["status"] == "finished" and math.isfinite(value(t))]
    ranked = sorted(finished, key=lambda t: -sign * value(t))
    best = ranked[0] if ranked else None
    counts: dict[str, int] = {}
    for t in s.trials:
        counts[t["status"]] = counts.get(t["status"], 0) + 1
    parts = [f'<h2 id="study-{index}">Study {esc(s.name)}</h2>',
             f"<p>Strategy <b>{esc(settings.get('strategy'))}</b>, task <b>{esc(settings.get('task'))}</b>, "
             f"metric <b>{esc(m)}</b> ({esc(s.direction)}), pruner <b>{esc(settings.get('pruner') or 'none')}</b>; "
             f"{len(s.trials)} trial(s): {esc(', '.join(f'{k} {v}' for k, v in sorted(counts.items())))}.</p>"]
    if best is not None:
        params = ", ".join(f"{esc(k)} = {fmt(best['search'].get(k))}" for k in keys)
        parts.append(f"<p>Best: trial <b>{int(best['trial'])}</b> (run {int(best['id'])}), {esc(m)} "
                     f"<b>{fmt(value(best))}</b>; {params}.</p>")
    if s.trials:
        parts.append(plot(figs.history_figure([t["trial"] for t in s.trials], [value(t) for t in s.trials],
                                              [t["status"] for t in s.trials], m)))
    ended = [t for t in s.trials if t["status"] in _ENDED]
    if ended and keys:
        parts.append(plot(figs.parallel_figure([*keys, m], [[*(t["search"].get(k) for k in keys), value(t)]
                                                            for t in ended], [value(t) for t in ended], m)))
    top = [t["trial"] for t in ranked[:BEST_CURVES]]
    curves = {n: s.curves[n] for n in top if n in s.curves}
    if curves:
        parts.append(plot(figs.curves_figure(curves, m, f"best {len(curves)} trial(s): {m} per epoch")))
    parts.append("<h3>Importance</h3>")
    imp, note = importance(s, keys, finished, value)
    if imp:
        parts.append(plot(figs.importance_figure(imp)))
    if note:
        parts.append(f'<p class="note">{esc(note)}</p>')
    parts.append("<h3>Trials</h3>")
    header = ["trial", "state", *keys, m, "epochs", "duration (s)", "run", "error"]
    rows, classes = [], []
    for t in s.trials:
        error = (t.get("error") or "").strip().splitlines()
        rows.append([int(t["trial"]), t["status"], *(t["search"].get(k) for k in keys), value(t),
                     (t.get("final") or {}).get("epochs"), t.get("duration"), int(t["id"]),
                     error[-1] if error else ""])
        classes.append("best" if best is not None and t is best else "")
    parts.append(table(header, rows, css="scroll", row_classes=classes))
    return "".join(parts)


def importance(s: StudyData, keys: Sequence[str], finished: Sequence[dict[str, Any]],
               value: Any) -> tuple[dict[str, float], str | None]:
    """Optuna's importance (PED-ANOVA) of the keys over finished trials, rebuilt from the stored
    values; ``({}, why)`` when there are too few trials or nothing varies."""
    if len(finished) < MIN_TRIALS_FOR_IMPORTANCE:
        return {}, (f"Importance is left out: it needs at least {MIN_TRIALS_FOR_IMPORTANCE} finished trials, "
                    f"this study has {len(finished)}.")
    import optuna
    from optuna.distributions import CategoricalDistribution, FloatDistribution
    from optuna.trial import TrialState, create_trial

    dists: dict[str, Any] = {}
    for k in keys:
        col = [t["search"].get(k) for t in finished]
        if any(v is None for v in col):
            continue  # a conditional key: left out, as Optuna does
        if all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in col):
            lo, hi = float(min(col)), float(max(col))
            if lo == hi:
                continue
            dists[k] = FloatDistribution(lo, hi, log=lo > 0 and hi / lo > 20)
        else:
            cats = sorted({str(v) for v in col})
            if len(cats) > 1:
                dists[k] = CategoricalDistribution(cats)
    if not dists:
        return {}, "Importance is left out: no searched key varies over the finished trials."
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(direction=s.direction)
    for t in finished:
        params = {k: (float(t["search"][k]) if isinstance(d, FloatDistribution) else str(t["search"][k]))
                  for k, d in dists.items()}
        study.add_trial(create_trial(state=TrialState.COMPLETE, value=value(t), params=params, distributions=dists))
    try:
        found = optuna.importance.get_param_importances(study)
    except Exception as exc:  # noqa: BLE001 - the report is still useful without it
        return {}, f"Importance could not be computed: {type(exc).__name__}: {exc}"
    return {k: float(v) for k, v in found.items()}, None


def _env_section(data: ReportData) -> str:
    keys = ["python", "torch", "tunewidgets", "numpy", "platform", "device", "git_commit", "runs"]
    return ('<h2 id="environment">Environment</h2>'
            + table(keys, [[e.get(k) for k in keys] for e in data.envs]))
