"""The LRFinder widget in a real browser: notebook 01 renders its plots with suggestion markers,
and a long test streams points into the page while it runs and halts when Stop is clicked.

The Stop test runs its range test while a later cell awaits ``finder.wait_async()``: it also
shows that the kernel handles the click while a cell awaits (a blocking cell would not).
"""

from __future__ import annotations

import re
import time
from typing import Any

import pytest
from playwright.sync_api import expect

from support.jupyter import (
    assert_no_widget_errors,
    screenshot,
    bokeh_source_lengths,
    button_name,
    click_button,
    kernel_execute,
    notebook_errors,
    open_notebook,
    run_all,
    wait_kernel_idle,
    wait_until,
)
from support.notebooks import paced_model_source, write_notebook

pytestmark = pytest.mark.browser

NUM_ITER = 3000
SLOW_FINDER_CELLS = [
    "# md\n# LRFinder: streaming and Stop",
    "import time\n"
    "import torch\n"
    "import tunewidgets as tw\n"
    "torch.set_num_threads(1)\n"
    "task = tw.tasks.digits()\n"
    "\n"
    + paced_model_source("SlowModel", 0.02) +
    "\n"
    f"finder = tw.widgets.LRFinder(task, model=SlowModel(), start_lr=1e-6, end_lr=1e-3, steps={NUM_ITER},\n"
    "                             device='cpu', interval=0.1)\n"
    "finder.run()\n"
    "finder",
    "result = await finder.wait_async()\n"
    "print('status', finder.status, 'steps', len(result))",
]


# Polled in the page: each length of the finder's curve seen so far; truthy (that list) once three
# lengths between 0 and ``total`` were seen.
_GROWING_JS = r"""(total) => {
  const seen = (window.__tw_seen ??= []);
  for (const view of window.Bokeh?.index ?? []) {
    for (const m of view.model.document?.all_models ?? []) {
      if (m.name === 'lr_curve' && typeof m.get_length === 'function') {
        const n = m.get_length() ?? 0;
        if (seen.length === 0 || seen[seen.length - 1] !== n) seen.push(n);
      }
    }
  }
  return new Set(seen.filter((n) => n > 0 && n < total)).size >= 3 ? seen : false;
}"""


def _lengths(page: Any, name: str) -> list[int]:
    return [s["length"] for s in bokeh_source_lengths(page) if s["name"] == name]


def _curve_length(page: Any) -> int:
    (length,) = _lengths(page, "lr_curve")
    return length


def test_notebook_01_renders_its_plots_and_the_finder_shows_suggestions(jupyter_lab, browser_page):
    page = browser_page
    began = time.monotonic()
    open_notebook(page, "01_lr_range_test.ipynb")
    run_all(page)

    expect(page.locator(".bk-Canvas").first).to_be_visible()
    assert page.locator(".bk-Canvas").count() >= 4  # three losses, the finder, two spirals tests
    assert_no_widget_errors(page)
    assert notebook_errors(page) == []

    # the finder's plot and both spirals plots: a curve and a marker per suggestion, in the browser
    curves, markers = _lengths(page, "lr_curve"), _lengths(page, "lr_markers")
    assert len(curves) == len(markers) == 3
    assert all(n > 10 for n in curves) and all(n > 0 for n in markers), (curves, markers)

    output = page.locator(".jp-NotebookPanel:not(.lm-mod-hidden) .jp-OutputArea-output")
    expect(output.get_by_text(re.compile(r"\d+ steps(; ended early \(loss diverged\))? in [\d.]+ s; "
                                         r"suggested lr \d"))).to_be_visible()
    # the picker still holds the suggestion once the page has shown it (sliders snap what they show)
    chosen = output.locator("select").evaluate_all(
        "els => els.map(e => (e.options[e.selectedIndex]?.text ?? '').replace(/\\s/g, ' '))")
    assert [t for t in chosen if re.fullmatch(r"valley \(\d\.\d\de-\d\)", t)] != [], chosen
    finder = output.filter(has=page.locator(".tw-lr-finder")).first
    screenshot(page, "nb01-finder-after-run-all", finder)
    print(f"\nnotebook 01 in the browser: opened and ran in {time.monotonic() - began:.1f} s")


def test_finder_streams_points_while_running_and_stop_halts_it(jupyter_lab, browser_page):
    page = browser_page
    began = time.monotonic()
    write_notebook(jupyter_lab.root_dir / "slow_finder.ipynb", SLOW_FINDER_CELLS)
    open_notebook(page, "slow_finder.ipynb")
    run_all(page, wait=False)  # the last cell awaits the test: act while it runs

    expect(page.locator(".bk-Canvas").first).to_be_visible(timeout=60_000)
    page.wait_for_function("() => window.Bokeh != null", timeout=30_000)

    # points stream in: the page itself notes each length its copy of the curve reaches (every
    # 50 ms) until it has seen three lengths between 0 and the end
    seen = page.wait_for_function(_GROWING_JS, arg=NUM_ITER, timeout=45_000, polling=50).json_value()
    growing = sorted({n for n in seen if 0 < n < NUM_ITER})
    assert len(growing) >= 3, f"the curve did not grow while the test ran: lengths seen {seen}"
    assert seen == sorted(seen), f"the curve shrank while streaming: {seen}"
    expect(page.get_by_text(re.compile(rf"^\d+ / {NUM_ITER} · lr"))).to_be_visible()

    # Stop halts it: the status says so and the curve stops growing, well before the end
    click_button(page, "Stop")
    status = page.get_by_text(re.compile(r"stopped at step \d+"))
    expect(status).to_be_visible(timeout=15_000)
    stopped_at = int(re.search(r"stopped at step (\d+)", status.inner_text()).group(1))
    wait_kernel_idle(page, timeout=30_000)  # the awaiting cell returned
    # No more points after Stop, without a fixed wait: the kernel says its run is over and how
    # many points its figure holds; its reply comes after every update it sent, so the page
    # must show that many (and never more) once the reply is in.
    kernel_says = kernel_execute(page, "print(finder.session.running, len(finder.figure.select_one("
                                       "{'name': 'lr_curve'}).data['lr']))").split()
    assert kernel_says[0] == "False", kernel_says
    in_kernel = int(kernel_says[1])
    after_stop = wait_until(page, lambda: _curve_length(page) == in_kernel and in_kernel, timeout=15_000,
                            message=lambda: f"the page shows {_curve_length(page)} points, the kernel {in_kernel}")
    # the final plot, re-sent from the kernel's figure, holds exactly one point per step done
    assert growing[-1] <= after_stop == stopped_at < NUM_ITER
    expect(page.get_by_text(f"status stopped steps {stopped_at}")).to_be_visible()
    expect(page.get_by_role("button", name=button_name("Run test"))).to_be_enabled()
    expect(page.get_by_role("button", name=button_name("Stop"))).to_be_disabled()
    assert_no_widget_errors(page)
    assert notebook_errors(page) == []
    print(f"\nstreaming and Stop: curve lengths {growing[:6]}..., stopped at step {stopped_at}, "
          f"{time.monotonic() - began:.1f} s")
