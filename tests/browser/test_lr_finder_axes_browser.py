"""LRFinder's axes in a real browser follow the data: run after run (with different ranges, and to
divergence) and while points stream in, the ranges the page shows cover the curve the page holds
and the curve fills most of each axis. A user's pan survives a re-render, the reset tool goes
back to the fit, and the next run fits again. While the curve streams the page sends the kernel
nothing back (no echo of the patches it applies, no ranges after each draw); a pan sends its
``rangesupdate``, which is what the kernel keeps the pan from.

Screenshots (see ``support.lab_page.screenshots_dir``): ``lr-axes-0-before``, ``-1-first-run``,
``-2-second-run``, ``-3-panned``, ``-4-reset``, ``-5-diverged``.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import Any

import pytest
from playwright.sync_api import expect

from support.jupyter import (
    assert_no_widget_errors,
    bokeh_plots,
    open_notebook,
    run_cell,
    screenshot,
    wait_kernel_idle,
    wait_until,
)
from support.kernel_frames import KernelTraffic
from support.notebooks import paced_model_source, write_notebook

pytestmark = pytest.mark.browser

STEPS = 200
CELLS = [
    "# md\n# LRFinder: axes that follow the data",
    "import time\n"
    "import torch\n"
    "import tunewidgets as tw\n"
    "torch.set_num_threads(1)\n"
    "task = tw.tasks.digits()\n"
    "\n"
    + paced_model_source("Paced", 0.008) +
    "\n"
    f"finder = tw.widgets.LRFinder(task, model=Paced(), optimizer='sgd', start_lr=1e-6, end_lr=1e-3,\n"
    f"                             steps={STEPS}, seed=0, device='cpu', interval=0.1)\n"
    "finder",
    "finder.run()\nresult = await finder.wait_async()\nprint(len(result), result.stop_reason)",
    "finder.set_range(1e-3, 1.0)\nfinder.run()\nresult = await finder.wait_async()\n"
    "print(len(result), result.stop_reason)",
    "finder.lr = 0.02",
    "finder.set_range(1e-2, 1e3)\nfinder.run()\nresult = await finder.wait_async()\n"
    "print(len(result), result.stop_reason)",
]
SETUP, RUN_1, RUN_2, PICK, RUN_3 = 1, 2, 3, 4, 5

# True once the plot drawing 'lr_curve' shows ranges that cover its curve (given as [lo, hi] pairs
# of what it covers), with at least ``n`` points: the page redraws its ranges after new data.
_FITS_JS = r"""(n) => {
  for (const view of window.Bokeh?.index ?? []) {
    const doc = view.model.document;
    if (doc == null || !view.el?.isConnected) continue;
    for (const m of doc.all_models) {
      if (m.x_range == null || m.renderers == null) continue;
      const source = m.renderers.map((r) => r.data_source).find((s) => s?.name === 'lr_curve');
      if (source == null) continue;
      const ok = (v) => Number.isFinite(v);
      const lr = Array.from(source.data.lr).filter(ok), sm = Array.from(source.data.smoothed).filter(ok);
      if (lr.length < n || sm.length === 0) return false;
      const [x0, x1, y0, y1] = [m.x_range.start, m.x_range.end, m.y_range.start, m.y_range.end];
      return x0 <= Math.min(...lr) && x1 >= Math.max(...lr) && y0 <= Math.min(...sm) && y1 >= Math.max(...sm);
    }
  }
  return false;
}"""


def finder_plot(page: Any) -> dict[str, Any]:
    plots = [p for p in bokeh_plots(page, "lr_curve") if p["shown"]]
    assert len(plots) == 1, f"expected the finder's plot once in the page, found {len(plots)}"
    return plots[0]


def curve(plot: dict[str, Any]) -> tuple[list[float], list[float]]:
    data = plot["sources"]["lr_curve"]
    return ([v for v in data["lr"] if v is not None], [v for v in data["smoothed"] if v is not None])


def assert_fits(plot: dict[str, Any], *, fill: float = 0.8) -> None:
    """The axes cover the curve, and the curve fills most of each (log x, linear y)."""
    lr, smoothed = curve(plot)
    (x0, x1), (y0, y1) = plot["x_range"], plot["y_range"]
    assert x0 <= min(lr) and x1 >= max(lr), (plot["x_range"], min(lr), max(lr))
    assert y0 <= min(smoothed) and y1 >= max(smoothed), (plot["y_range"], min(smoothed), max(smoothed))
    x_fill = math.log10(max(lr) / min(lr)) / math.log10(x1 / x0)
    y_fill = (max(smoothed) - min(smoothed)) / (y1 - y0)
    assert x_fill > fill and y_fill > fill, (x_fill, y_fill, plot["x_range"], min(lr), max(lr), len(lr))


def covers(plot: dict[str, Any]) -> bool:
    lr, smoothed = curve(plot)
    (x0, x1), (y0, y1) = plot["x_range"], plot["y_range"]
    return x0 <= min(lr) and x1 >= max(lr) and y0 <= min(smoothed) and y1 >= max(smoothed)


def wait_fitted(page: Any, points: int, timeout: float = 15_000) -> dict[str, Any]:
    """The plot once the page shows ranges that fit its curve, checked in full on one snapshot.

    While points stream in, the page can take a new batch between the wait and the snapshot and
    not have redrawn its ranges yet; such a snapshot is taken again (the page must fit again
    within the timeout), never passed.
    """
    deadline = time.monotonic() + timeout / 1000
    while True:
        left = max(deadline - time.monotonic(), 0.5) * 1000
        page.wait_for_function(_FITS_JS, arg=points, timeout=left, polling=50)
        plot = finder_plot(page)
        if covers(plot) or time.monotonic() > deadline:
            break
    assert_fits(plot)
    return plot


def plot_once(page: Any, ok: Callable[[dict[str, Any]], bool], what: str) -> dict[str, Any]:
    """The finder's plot as soon as ``ok(plot)`` holds (a wait on that state, not a fixed time)."""
    def ready() -> dict[str, Any] | None:
        plot = finder_plot(page)
        return plot if ok(plot) else None
    return wait_until(page, ready, timeout=15_000, message=f"waiting until {what}")


def test_ranges_follow_each_run_and_the_stream_and_reset_returns_to_the_fit(jupyter_lab, browser_page):
    page = browser_page
    began = time.monotonic()
    write_notebook(jupyter_lab.root_dir / "lr_axes.ipynb", CELLS)
    traffic = KernelTraffic(page)
    open_notebook(page, "lr_axes.ipynb")
    run_cell(page, SETUP)
    output = page.locator(".jp-NotebookPanel:not(.lm-mod-hidden) .jp-OutputArea-output").filter(
        has=page.locator(".tw-lr-finder")).first
    expect(output.locator(".bk-Canvas").first).to_be_visible()
    screenshot(page, "lr-axes-0-before", output)

    # first run, 1e-6 .. 1e-3: the axes fit while points stream in, and at the end
    started = traffic.mark()
    run_cell(page, RUN_1, wait=False)
    streamed = []
    for points in (30, 90, 150):
        plot = wait_fitted(page, points)
        streamed.append(len(curve(plot)[0]))
    wait_kernel_idle(page, timeout=60_000)
    first = wait_fitted(page, STEPS)
    assert min(streamed) < STEPS, f"the curve was never checked while it grew: {streamed}"
    during = traffic.since(started)
    patches = [f for f in during if not f.sent and f.msg_type == "comm_msg"]
    assert len(patches) >= 3 * 3, f"the run streamed in only {len(patches)} comm messages"
    # what the page sends of its own (its layout's sizes) still goes; nothing it was sent comes back
    echoes = [f for f in traffic.jsevents(during) if f.jsevent in ("ColumnsStreamed", "ColumnsPatched",
              "ColumnDataChanged") or f.attr in ("data", "start", "end")]
    assert echoes == [], f"the page sent the kernel's changes back while the curve streamed: {echoes[:5]}"
    screenshot(page, "lr-axes-1-first-run", output)

    # second run over another range: the axes move with it (not the first run's ranges)
    run_cell(page, RUN_2, timeout=90_000)
    second = wait_fitted(page, 10)
    lr, _ = curve(second)
    assert min(lr) == pytest.approx(1e-3) and second["x_range"][0] > first["x_range"][1] / 10
    screenshot(page, "lr-axes-2-second-run", output)

    # a pan by hand is kept when the plot re-renders (a pick in a cell), reset goes back to the fit
    canvas = output.locator(".bk-Canvas").first
    box = canvas.bounding_box()
    cx, cy = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
    before_pan = traffic.mark()
    page.mouse.move(cx, cy)
    page.mouse.down()
    page.mouse.move(cx + 120, cy + 40, steps=8)
    page.mouse.up()
    panned = plot_once(page, lambda p: p["x_range"][0] < second["x_range"][0] / 2, "the pan moved the x range")
    wait_until(page, lambda: any(f.event == "rangesupdate" for f in traffic.jsevents(traffic.since(before_pan))),
               timeout=10_000, message="waiting for the pan's rangesupdate to reach the kernel")
    page.evaluate("""() => { window.__tw_docs = new Set([...Bokeh.index].map((v) => v.model.document)); }""")
    run_cell(page, PICK)
    # the pick re-renders the plot in a new document: wait until its view has finished rendering
    # (Bokeh's has_finished) rather than a fixed time, then read the ranges it shows
    page.wait_for_function("""() => [...Bokeh.index].some((v) => v.model.document != null
        && !window.__tw_docs.has(v.model.document) && v.el?.isConnected && v.has_finished()
        && [...v.model.document.all_models].some((m) => m.name === 'lr_chosen' && m.location === 0.02))""",
                           timeout=15_000)
    kept = finder_plot(page)
    assert kept["x_range"] == pytest.approx(panned["x_range"], rel=1e-6)
    assert kept["y_range"] == pytest.approx(panned["y_range"], rel=1e-6)
    screenshot(page, "lr-axes-3-panned", output)
    output.locator(".bk-tool-icon-reset").first.click()
    assert_fits(plot_once(page, lambda p: p["x_range"] != kept["x_range"], "the reset tool changed the ranges"))
    screenshot(page, "lr-axes-4-reset", output)

    # a run to divergence: the loss blows up, the axes still show the whole smoothed curve
    run_cell(page, RUN_3, timeout=90_000)
    expect(output.get_by_text("loss diverged").or_(output.get_by_text("loss not finite"))).to_be_visible()
    diverged = wait_fitted(page, 10)
    lr, smoothed = curve(diverged)
    assert max(smoothed) > 2 * min(smoothed) and max(lr) < 1e3  # it blew up before the end
    screenshot(page, "lr-axes-5-diverged", output)
    assert_no_widget_errors(page)
    print(f"\nLR axes in the browser: streamed checks at {streamed} points, {time.monotonic() - began:.1f} s")
