"""What a user feels in the browser: the first point after a click, updates while a run streams,
Stop, and a cell run while a run streams. Drives a real JupyterLab in headless Chromium.

For each repeat, two fresh kernels (one notebook each): one shows an ``LRFinder`` on digits, the
other a ``Search`` on digits; nothing has run in the kernel before the first click. Measured in
the page (``performance.now()`` around a button's ``click()``, polling every few ms):

- **first point**: click (Run test / Launch) -> the first point of the new run in the browser's
  copy of the plot's data; the first click in the kernel (``--think`` seconds after the widget
  was shown: the kernel warms the first run's one-time work meanwhile) and a later one;
- **updates a second**: how often that data changed while the run streamed (over ``--window`` s);
- **1+1 while running**: run a ``1+1`` cell while the run streams -> its output in the page,
  and the same cell with nothing running (idle);
- **Stop -> stopped**: click Stop -> the status line says stopped.

Goals: first point <= 300 ms after any click (the first in a kernel included), >= 8 updates a
second while a run streams, ``1+1`` within 100 ms of idle while a run streams, Stop -> stopped
<= 300 ms. Prints one row per measure (median over repeats, and every value) and the goal.

``--baseline REV`` measures the code of a git revision too ("before", unpacked into a scratch
folder and put first on the kernel's path) against this checkout ("after"), in the same server
and browser, their kernels interleaved (before, after, after, before, ...), so that a machine's
changing load falls on both alike; it then prints each median before and after and their ratio.
The load average is printed with the figures (they mean little without it).

    python bench/ui_latency.py                 # 3 repeats
    python bench/ui_latency.py --repeats 1 --json out.json
    python bench/ui_latency.py --baseline main --repeats 3
"""
from __future__ import annotations

import argparse
import io
import json
import os
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))

from support.jupyter import JupyterLab, launch_chromium, open_notebook, run_cell  # noqa: E402
from support.notebooks import write_notebook  # noqa: E402

SETUP = "import torch\nimport tunewidgets as tw\ntorch.set_num_threads(1)\ntask = tw.tasks.digits()\n"
# the code a kernel runs: the checkout's, or a baseline's put first on the path
PATH_CELL = "import sys\nsys.path.insert(0, {path!r})\n"
FINDER_CELL = (SETUP + "finder = tw.widgets.LRFinder(task, start_lr=1e-6, end_lr=1e-3, steps=30000, device='cpu')\n"
               "finder")
SEARCH_CELL = (SETUP + "search = tw.widgets.Search(task, {'lr': tw.space.LogUniform(1e-3, 1e-1)},\n"
               "    base=tw.TrainConfig(optimizer='adam', epochs=200, device='cpu'), n_trials=50,\n"
               "    store='bench-runs')\n"
               "search")
WIDGET, ONE_PLUS_ONE = 1, 2

# how much data the named source holds in the page: rows, or points of a multi-line source
_AMOUNT_JS = r"""() => {
window.__twAmount = (name) => {
  const B = window.Bokeh;
  if (B == null || B.index == null) return 0;
  let n = 0;
  for (const v of B.index) for (const m of (v.model.document?.all_models ?? [])) {
    if (m.name !== name || m.data == null) continue;
    const ys = m.data.ys;
    const k = (ys != null && ys.length && ys[0] != null && typeof ys[0] !== 'number')
      ? Array.from(ys).reduce((s, y) => s + (y?.length ?? 0), 0) : (m.get_length?.() ?? 0);
    n = Math.max(n, k);
  }
  return n;
};
window.__twCell = (i) => window.jupyterapp.shell.currentWidget.content.widgets[i];
window.__twButton = (i, text) => [...window.__twCell(i).node.querySelectorAll('button')]
  .find((b) => b.textContent.trim() === text);
return true;
}"""

_FIRST_POINT_JS = r"""async ([cell, label, source, timeout]) => {
  const before = window.__twAmount(source);
  const button = window.__twButton(cell, label);
  if (button == null || button.disabled) return {error: `no enabled button ${label}`};
  const t0 = performance.now();
  button.click();
  while (performance.now() - t0 < timeout) {
    const n = window.__twAmount(source);
    if (n > 0 && n !== before) return {ms: performance.now() - t0};
    await new Promise((r) => setTimeout(r, 2));
  }
  return {error: `no point after ${timeout} ms`};
}"""

_UPDATES_JS = r"""async ([source, seconds]) => {
  let last = window.__twAmount(source), changes = 0;
  const t0 = performance.now();
  while (performance.now() - t0 < seconds * 1000) {
    await new Promise((r) => setTimeout(r, 3));
    const n = window.__twAmount(source);
    if (n !== last) { changes += 1; last = n; }
  }
  return changes / ((performance.now() - t0) / 1000);
}"""

_STOP_JS = r"""async ([cell, timeout]) => {
  const button = window.__twButton(cell, 'Stop');
  if (button == null || button.disabled) return {error: 'no enabled Stop button'};
  const node = window.__twCell(cell).node;
  const t0 = performance.now();
  button.click();
  while (performance.now() - t0 < timeout) {
    const text = node.querySelector('.tw-status')?.textContent ?? '';
    if (/\bstopped\b/.test(text)) return {ms: performance.now() - t0};
    await new Promise((r) => setTimeout(r, 2));
  }
  return {error: `not stopped after ${timeout} ms`};
}"""

_CELL_JS = r"""async ([cell, timeout]) => {
  const panel = window.jupyterapp.shell.currentWidget;
  const model = window.__twCell(cell).model;
  const before = model.executionCount;
  panel.content.activeCellIndex = cell;
  const t0 = performance.now();
  void window.jupyterapp.commands.execute('notebook:run-cell');
  while (performance.now() - t0 < timeout) {
    const out = model.outputs;
    if (model.executionCount !== before && out.length > 0
        && JSON.stringify(out.get(0).toJSON()).includes('"2"')) return {ms: performance.now() - t0};
    await new Promise((r) => setTimeout(r, 2));
  }
  return {error: `no output after ${timeout} ms`};
}"""


def _ms(result: dict[str, Any]) -> float:
    if "error" in result:
        raise RuntimeError(result["error"])
    return float(result["ms"])


def _wait_text(page: Any, cell: int, pattern: str, timeout: float = 60.0) -> None:
    page.wait_for_function(
        "([cell, pattern]) => new RegExp(pattern).test(window.__twCell(cell).node"
        ".querySelector('.tw-status')?.textContent ?? '')",
        arg=[cell, pattern], timeout=timeout * 1000, polling=20)


def measure_kernel(page: Any, kind: str, run_label: str, source: str, window: float,
                   think: float) -> dict[str, list[float]]:
    """One fresh kernel: first click, updates, 1+1 while running, Stop; a later click and its Stop."""
    out: dict[str, list[float]] = {}
    page.evaluate(_AMOUNT_JS)
    page.wait_for_timeout(think * 1000)  # the widget is shown; a person reads it before clicking
    out[f"{kind}: first point, first click in a kernel (ms)"] = [
        _ms(page.evaluate(_FIRST_POINT_JS, [WIDGET, run_label, source, 60_000]))]
    out[f"{kind}: updates a second while streaming"] = [page.evaluate(_UPDATES_JS, [source, window])]
    out[f"{kind}: 1+1 while running (ms)"] = [_ms(page.evaluate(_CELL_JS, [ONE_PLUS_ONE, 30_000]))]
    out[f"{kind}: Stop -> stopped (ms)"] = [_ms(page.evaluate(_STOP_JS, [WIDGET, 30_000]))]
    _wait_text(page, WIDGET, r"stopped after|stopped at")
    page.wait_for_timeout(1000)
    out[f"{kind}: 1+1 idle (ms)"] = [_ms(page.evaluate(_CELL_JS, [ONE_PLUS_ONE, 30_000]))]
    page.wait_for_function(f"() => window.__twButton({WIDGET}, {json.dumps(run_label)})?.disabled === false",
                           timeout=30_000)
    out[f"{kind}: first point, later click (ms)"] = [
        _ms(page.evaluate(_FIRST_POINT_JS, [WIDGET, run_label, source, 60_000]))]
    page.wait_for_timeout(300)
    out[f"{kind}: Stop -> stopped (ms)"].append(_ms(page.evaluate(_STOP_JS, [WIDGET, 30_000])))
    _wait_text(page, WIDGET, r"stopped after|stopped at")
    return out


GOALS = {"first point": ("<=", 300.0), "updates a second": (">=", 8.0), "Stop -> stopped": ("<=", 300.0)}
KINDS = (("LRFinder", FINDER_CELL, "Run test", "lr_curve"), ("Search", SEARCH_CELL, "Launch", "search_curves"))


def unpack(rev: str, into: Path) -> Path:
    """The package as it is at git revision ``rev``, unpacked under ``into``."""
    archive = subprocess.run(["git", "-C", str(REPO), "archive", "--format=tar", rev, "tunewidgets"],
                             check=True, capture_output=True).stdout
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        tar.extractall(into, filter="data")
    return into


def _goal(key: str, idle: dict[str, float]) -> str:
    if "1+1 while running" in key:
        return f"<= {idle[key.split(':')[0]] + 100:.0f}"
    return next((f"{op} {limit:g}" for word, (op, limit) in GOALS.items() if word in key), "")


def _values(values: list[float]) -> str:
    return ", ".join(f"{v:.0f}" if v > 20 else f"{v:.1f}" for v in values)


def report(results: dict[str, dict[str, list[float]]], loads: list[float]) -> None:
    """One row per measure: the median of each variant, after/before, the goal (last), the values."""
    variants = list(results)
    after = results[variants[-1]]
    idle = {k.split(":")[0]: statistics.median(v) for k, v in after.items() if k.endswith("1+1 idle (ms)")}
    print(f"load average (1 min) during the runs: {', '.join(f'{x:.1f}' for x in loads)}")
    heads = "".join(f" {v:>9}" for v in variants) + ("   ratio" if len(variants) > 1 else "")
    print(f"{'measure (median)':52}{heads}  goal       values ({' | '.join(variants)})")
    for key in after:
        meds = [statistics.median(results[v].get(key) or [float("nan")]) for v in variants]
        ratio = f" {meds[-1] / meds[0]:7.2f}" if len(variants) > 1 and meds[0] else ""
        cells = "".join(f" {m:9.1f}" for m in meds)
        values = " | ".join(_values(results[v].get(key, [])) for v in variants)
        print(f"{key:52}{cells}{ratio}  {_goal(key, idle):10} {values}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=3, help="fresh kernels per widget (default 3)")
    parser.add_argument("--window", type=float, default=3.0, help="seconds over which updates are counted")
    parser.add_argument("--think", type=float, default=3.0,
                        help="seconds from the widget shown to the first click (default 3)")
    parser.add_argument("--baseline", default=None, metavar="REV",
                        help="also measure the package at this git revision, interleaved (e.g. main)")
    parser.add_argument("--revision", default=None, metavar="REV",
                        help="measure this git revision as 'after' (default: the checkout as it is)")
    parser.add_argument("--json", type=Path, default=None, help="also write the values here")
    args = parser.parse_args()
    from playwright.sync_api import sync_playwright

    results: dict[str, dict[str, list[float]]] = {}
    loads: list[float] = []
    with tempfile.TemporaryDirectory(prefix="tw-ui-latency-") as scratch:
        after = REPO if args.revision is None else unpack(args.revision, Path(scratch) / "revision")
        variants = {"after": after}
        if args.baseline is not None:
            variants = {"before": unpack(args.baseline, Path(scratch) / "baseline"), "after": after}
        results = {name: {} for name in variants}
        root = Path(scratch) / "notebooks"
        root.mkdir()
        lab = JupyterLab.start(root, home=Path(scratch) / "home")
        try:
            with sync_playwright() as pw:
                browser = launch_chromium(pw)
                context = browser.new_context(base_url=lab.url, viewport={"width": 1400, "height": 1000})
                page = context.new_page()
                page.goto(f"/api/status?token={lab.token}")
                names = list(variants)
                for rep in range(args.repeats):
                    for k, (kind, cell, label, source) in enumerate(KINDS):
                        # before, after; then after, before: each variant as often first as second
                        order = names if (rep + k) % 2 == 0 else names[::-1]
                        for variant in order:
                            name = f"{kind.lower()}-{variant}-{rep}.ipynb"
                            code = PATH_CELL.format(path=str(variants[variant])) + cell
                            write_notebook(root / name, ["# md\n# latency", code, "1+1"])
                            open_notebook(page, name)
                            run_cell(page, WIDGET, timeout=120_000)
                            for key, values in measure_kernel(page, kind, label, source, args.window,
                                                              args.think).items():
                                results[variant].setdefault(key, []).extend(values)
                            lab.shutdown_kernels()
                            loads.append(os.getloadavg()[0])
                            print(f"repeat {rep + 1}/{args.repeats}: {kind} ({variant}) done", file=sys.stderr)
                context.close()
                browser.close()
        finally:
            lab.stop()

    report(results, loads)
    if args.json is not None:
        args.json.write_text(json.dumps({"loads": loads, **results}, indent=1))


if __name__ == "__main__":
    main()
