"""SchedulePreview in a real browser: the plot renders offline, a control typed into in the page
redraws the browser's copy of the data, a nested selector switches shape, and a bad value shows
its error in the page next to the control while the plotted data stays as it was."""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import pytest
from playwright.sync_api import expect

import tunewidgets as tw
from support.jupyter import (
    assert_no_widget_errors,
    bokeh_plots,
    kernel_execute,
    notebook_errors,
    open_notebook,
    run_all,
    screenshot,
)
from support.notebooks import write_notebook

pytestmark = pytest.mark.browser

TOTAL, PER_EPOCH = 1000, 100
CELLS = [
    "# md\n# SchedulePreview in the browser",
    "import tunewidgets as tw\n"
    "w = tw.widgets.SchedulePreview(tw.schedules.Warmup(steps=100, then=tw.schedules.Cosine()),\n"
    f"                               total_steps={TOTAL}, steps_per_epoch={PER_EPOCH}, base_lr=0.1)\n"
    "w",
]

# The browser's copy of the schedule source: {"lr": [...], "momentum": [...]}, or null.
_SOURCE_JS = r"""() => {
  if (window.Bokeh == null) return null;
  for (const view of window.Bokeh.index) {
    for (const m of view.model.document?.all_models ?? []) {  // a re-rendered view's old document is gone
      if (m.name === 'schedule_lr')
        return {lr: Array.from(m.data.lr), momentum: Array.from(m.data.momentum, v => v ?? NaN)};
    }
  }
  return null;
}"""

# True once the browser's lr at ``index`` is within 1e-9 of ``value``.
_LR_AT_JS = r"""([index, value]) => {
  for (const view of window.Bokeh?.index ?? []) {
    for (const m of view.model.document?.all_models ?? []) {  // a re-rendered view's old document is gone
      if (m.name === 'schedule_lr') return Math.abs(m.data.lr[index] - value) < 1e-9;
    }
  }
  return false;
}"""


def browser_source(page: Any) -> dict[str, np.ndarray]:
    data = page.evaluate(_SOURCE_JS)
    assert data is not None, "no 'schedule_lr' data source in the page"
    return {k: np.asarray(v, dtype=float) for k, v in data.items()}


def expected_lr(spec: Any) -> np.ndarray:
    return spec.preview(TOTAL, 0.1, PER_EPOCH)["lr"].to_numpy()


def type_into(page: Any, field: str, text: str) -> None:
    """Type into a slider's number (its readout) and press Enter, as a person would."""
    readout = page.locator(f".tw-field-{field} .widget-readout").first
    readout.click()
    readout.fill(text)
    readout.press("Enter")


def wait_lr(page: Any, index: int, value: float) -> None:
    page.wait_for_function(_LR_AT_JS, arg=[index, float(value)], timeout=15_000)


def test_controls_redraw_the_plot_in_the_browser_and_errors_show_inline(jupyter_lab, browser_page):
    page = browser_page
    began = time.monotonic()
    write_notebook(jupyter_lab.root_dir / "schedule_preview.ipynb", CELLS)
    open_notebook(page, "schedule_preview.ipynb")
    run_all(page)

    expect(page.locator(".bk-Canvas").first).to_be_visible()
    assert_no_widget_errors(page)
    assert notebook_errors(page) == []
    first = tw.schedules.Warmup(steps=100, then=tw.schedules.Cosine())
    np.testing.assert_allclose(browser_source(page)["lr"], expected_lr(first), rtol=1e-12)
    code = page.locator(".tw-schedule-code")
    expect(code).to_have_text("tw.schedules.Warmup()")
    preview = page.locator(".jp-OutputArea-output").filter(has=page.locator(".tw-schedule-preview")).first
    screenshot(page, "schedule-1-first-render", preview)

    # move a control in the page: a 300-step warm-up, redrawn in the browser's data
    type_into(page, "Warmup-steps", "300")
    longer = tw.schedules.Warmup(steps=300, then=tw.schedules.Cosine())
    wait_lr(page, 150, expected_lr(longer)[150])
    np.testing.assert_allclose(browser_source(page)["lr"], expected_lr(longer), rtol=1e-12)
    expect(code).to_have_text("tw.schedules.Warmup(steps=300)")

    # a nested selector: the shape after the warm-up becomes one-cycle; momentum now cycles
    page.locator(".tw-field-Warmup-then select").first.select_option("OneCycle")
    one_cycle = tw.schedules.Warmup(steps=300, then=tw.schedules.OneCycle())
    expect(code).to_have_text("tw.schedules.Warmup(steps=300, then=tw.schedules.OneCycle())")
    wait_lr(page, 600, expected_lr(one_cycle)[600])
    good = browser_source(page)
    assert np.nanmax(good["momentum"]) == pytest.approx(0.95) and np.nanmin(good["momentum"]) < 0.9
    assert_no_widget_errors(page)

    # a bad value: a warm-up longer than the run; the error shows next to the control, data stays
    type_into(page, "Warmup-steps", "2000")
    error = page.locator(".tw-field-Warmup-steps .tw-error")
    expect(error).to_be_visible()
    expect(error).to_contain_text("Warmup.steps: the warm-up (2000 steps) must be shorter than the run "
                                  "(1000 steps)")
    expect(page.get_by_text("The plot and the code show the last valid schedule")).to_be_visible()
    # nothing else arrives: the kernel answers a request after it has handled the typed value, and
    # its reply comes after every update that handling sent (a marker, not a fixed wait)
    kernel_execute(page, "None")
    np.testing.assert_array_equal(browser_source(page)["lr"], good["lr"])
    expect(code).to_have_text("tw.schedules.Warmup(steps=300, then=tw.schedules.OneCycle())")

    # fixing it clears the error and redraws
    type_into(page, "Warmup-steps", "200")
    expect(error).to_be_hidden()
    fixed = tw.schedules.Warmup(steps=200, then=tw.schedules.OneCycle())
    wait_lr(page, 100, expected_lr(fixed)[100])
    assert_no_widget_errors(page)
    screenshot(page, "schedule-2-after-changes", preview)
    print(f"\nschedule preview in the browser: {time.monotonic() - began:.1f} s")


def test_notebook_02_runs_in_the_browser_without_errors(jupyter_lab, browser_page):
    page = browser_page
    began = time.monotonic()
    open_notebook(page, "02_schedules.ipynb")
    run_all(page, timeout=180_000)
    assert notebook_errors(page) == []
    assert_no_widget_errors(page)
    expect(page.locator(".bk-Canvas").first).to_be_visible()
    # the preview the notebook drives from code shows what it prints: cyclic over a pinned one-cycle
    (plot,) = [p for p in bokeh_plots(page, "schedule_lr") if p["shown"]]
    assert max(v for v in plot["sources"]["schedule_lr"]["lr"] if v is not None) == pytest.approx(0.4)
    assert max(v for v in plot["sources"]["schedule_pinned"]["lr"] if v is not None) == pytest.approx(0.4, rel=1e-3)
    preview = page.locator(".jp-OutputArea-output").filter(has=page.locator(".tw-schedule-preview")).first
    screenshot(page, "schedule-3-notebook-02", preview)
    print(f"\nnotebook 02 in the browser: {time.monotonic() - began:.1f} s")  # page errors: checked after
