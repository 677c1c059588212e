"""Notebook 00's Dashboard in a real JupyterLab: the notebook runs clean, the range test run from the
dashboard's button fills its plot (the axes cover the new data), the schedule tab's hand-off line
names the range test's new lr, and the search tab's best-config panel copies its code into the box
and trains the best config again beside the search's curve. Any page error fails the test.

Screenshot: ``dashboard`` (the dashboard output, for the README).
"""
from __future__ import annotations

import re
from typing import Any

import pytest
from playwright.sync_api import expect

from support.lab_page import wait_until
from support.jupyter import (
    assert_no_widget_errors,
    bokeh_plots,
    button_name,
    notebook_errors,
    open_notebook,
    run_all,
    screenshot,
)

pytestmark = pytest.mark.browser

NOTEBOOK = "00_start_here.ipynb"
STEPS = 150  # typed into the range test's steps box: the new run is told apart from the notebook's


def shown(page: Any, source: str) -> dict[str, Any]:
    plots = [p for p in bokeh_plots(page, source) if p["shown"]]
    assert len(plots) == 1, f"expected one plot drawing {source!r}, found {len(plots)}"
    return plots[0]


_CURVE_FILLED_JS = r"""(n) => {
  for (const view of window.Bokeh?.index ?? []) {
    const doc = view.model.document;
    if (doc == null || !view.el?.isConnected) continue;
    for (const m of doc.all_models) {
      if (m.x_range == null || m.renderers == null) continue;
      const s = m.renderers.map((r) => r.data_source).find((d) => d?.name === 'lr_curve');
      if (s == null) continue;
      const lr = Array.from(s.data.lr).filter(Number.isFinite);
      const sm = Array.from(s.data.smoothed).filter(Number.isFinite);
      if (lr.length < n || sm.length === 0) return false;
      return m.x_range.start <= Math.min(...lr) && m.x_range.end >= Math.max(...lr)
          && m.y_range.start <= Math.min(...sm) && m.y_range.end >= Math.max(...sm);
    }
  }
  return false;
}"""


def test_the_dashboard_hands_the_range_tests_lr_on_and_trains_the_best_config_again(jupyter_lab, browser_page):
    page = browser_page
    open_notebook(page, NOTEBOOK)
    run_all(page, timeout=180_000)
    assert notebook_errors(page) == []
    outputs = page.locator(".jp-NotebookPanel:not(.lm-mod-hidden) .jp-OutputArea-output")
    dash = outputs.filter(has=page.locator(".tw-dashboard")).first
    expect(dash.locator(".tw-lr-finder .bk-Canvas").first).to_be_visible()
    assert_no_widget_errors(page)

    # tab 1: a range test of another length, run from the dashboard's button, fills the plot
    finder = dash.locator(".tw-lr-finder")
    steps = finder.locator(".widget-inline-hbox", has_text="steps").locator("input")
    steps.fill(str(STEPS))
    steps.press("Enter")
    finder.get_by_role("button", name=button_name("Run test")).click()
    page.wait_for_function(_CURVE_FILLED_JS, arg=STEPS, timeout=90_000, polling=100)
    expect(finder.locator(".tw-status")).to_contain_text(f"{STEPS} steps in", timeout=60_000)
    plot = shown(page, "lr_curve")
    lrs = [v for v in plot["sources"]["lr_curve"]["lr"] if v is not None]
    assert len(lrs) == STEPS
    (x0, x1), (y0, y1) = plot["x_range"], plot["y_range"]
    losses = [v for v in plot["sources"]["lr_curve"]["smoothed"] if v is not None]
    assert x0 <= min(lrs) and x1 >= max(lrs) and y0 <= min(losses) and y1 >= max(losses)
    chosen = finder.locator(".tw-chosen-lr input").input_value()
    assert re.fullmatch(r"\d\.\d\de-\d+", chosen), chosen
    screenshot(page, "dashboard", dash)

    # tab 2: the hand-off line names the lr the range test just chose
    dash.locator(".lm-TabBar-tab", has_text="2. Schedule").click()
    line = dash.locator(".tw-handoff").first
    expect(line).to_be_visible()
    expect(line).to_have_text(f"lr {chosen} from the range test (the schedule's max_lr)")
    expect(dash.locator(".tw-schedule-code")).to_contain_text(f"max_lr={chosen}")

    # tab 3: the best config's code in the box, and the best config trained again beside its curve
    dash.locator(".lm-TabBar-tab", has_text="3. Search").click()
    panel = dash.locator(".tw-search-best")
    expect(panel).to_be_visible()
    panel.get_by_role("button", name=button_name("Copy code")).click()
    box = panel.locator(".tw-best-code textarea")
    expect(box).to_have_value(re.compile(r"^tw\.TrainConfig\(optimizer='adam', lr=.*schedule=tw\.schedules\.OneCycle\("))
    expect(panel).to_contain_text("Ctrl+A and Ctrl+C")
    panel.get_by_role("button", name=button_name("Train best")).click()
    status = dash.locator(".tw-search > .tw-status")
    expect(status).to_contain_text("trained again", timeout=90_000)
    # the status comes first, the curve's last points a moment later (the end status is sent first)
    again = wait_until(page, lambda: (lambda p: p if p["sources"]["best_again_curve"]["epoch"] == [1, 2, 3] else None)(
        shown(page, "best_again_curve")), timeout=60_000, message=lambda: f"the curve trained again: "
        f"{shown(page, 'best_again_curve')['sources']['best_again_curve']['epoch']}")
    search = shown(page, "best_search_curve")
    assert again["sources"]["best_again_curve"]["value"] == pytest.approx(
        search["sources"]["best_search_curve"]["value"], rel=1e-6)
    assert_no_widget_errors(page)
    assert notebook_errors(page) == []
