"""What a user trips over with LRFinder, in a real browser: before any run no lr is shown; a test
stopped early on a flat curve says so and moves neither ``lr`` nor a linked preview; while a new
run fills, the last run's chosen-lr line and suggestions are gone; re-running the cell that made
a finder stops its test, and so does Kernel > Interrupt.

After a run with another range, number of steps, smoothing or optimizer, the chosen lr is
that run's suggestion, however the page echoes the picker's slider.

Screenshots: ``lr-ui-1-before-any-run``, ``lr-ui-2-stopped-flat``, ``lr-ui-3-finished``,
``lr-ui-4-next-run-filling``, ``lr-ui-5-interrupted``.
"""

from __future__ import annotations

import re
from typing import Any

import pytest
from playwright.sync_api import expect

from support.jupyter import (
    assert_no_widget_errors,
    bokeh_plots,
    button_name,
    click_button,
    menu_command,
    open_notebook,
    run_cell,
    screenshot,
    wait_kernel_idle,
    wait_until,
)
from support.notebooks import paced_model_source, write_notebook

pytestmark = pytest.mark.browser

SETUP = (
    "import threading, time\n"
    "import torch\n"
    "import tunewidgets as tw\n"
    "torch.set_num_threads(1)\n"
    "task = tw.tasks.digits()\n"
    "\n"
    + paced_model_source("Paced", 0.02) +
    "\n"
    "def workers():\n"
    "    return sum(t.name == 'tunewidgets-worker' and t.is_alive() for t in threading.enumerate())\n"
    "made = []"
)
CELLS = [
    "# md\n# LRFinder: what a user trips over",
    SETUP,
    # a flat sweep (lrs far too small for SGD) with a linked schedule preview
    "finder = tw.widgets.LRFinder(task, model=Paced(), start_lr=1e-7, end_lr=1e-4, steps=2000, seed=0,\n"
    "                             device='cpu', interval=0.1)\n"
    "preview = tw.widgets.SchedulePreview(lr_finder=finder, total_steps=200)\n"
    "display(finder, preview)",
    # a good test, then the next one started (and left running)
    "finder.optimizer.value = 'adam'\nfinder.set_range(1e-4, 1.0)\nfinder.steps.value = 120\n"
    "finder.run()\nresult = await finder.wait_async()\nprint('lr', finder.lr)",
    "finder.set_range(1e-3, 10.0)\nfinder.steps.value = 2000\nfinder.run()",
    # a finder that runs in the background; running this cell again replaces it
    "f = tw.widgets.LRFinder(task, model=Paced(), steps=100_000, end_lr=1e-3, device='cpu', interval=0.1)\n"
    "made.append(f)\nf.run()\nf",
    # a replaced or interrupted test: wait for its end (not a fixed time), then count the threads
    "for w in made:\n"
    "    if w.session.status != 'running':\n"
    "        await w.wait_async()\n"
    "        w.session._thread.join(30)\n"
    "print('workers', workers(), 'statuses', [w.status for w in made])",
    "finder.stop()\nawait finder.wait_async()",
    # a finder whose runs change one setting each: the pick follows each run's suggestion
    "again = tw.widgets.LRFinder(task, optimizer='adam', start_lr=1e-4, end_lr=1.0, steps=100, seed=0,\n"
    "                            device='cpu', interval=0.1)\n"
    "results = []  # each run's result, as it ends\n"
    "again.observe(lambda c: results.append(c['new']) if c['new'] is not None else None, names='result')\n"
    "again",
    "again.run()\nawait again.wait_async()",
    # each setting as its control sets it; the run is started with the button
    "again.lr_range.value = (-3.3, -1.1)",  # 5e-4 to 8e-2: Bokeh's log ticker gives 2 ticks there
    "again.steps.value = 140",
    "again.smoothing.value = 0.9",
    "again.optimizer.value = 'adamw'",
    "r = again.result\nprint('lr', repr(again.lr), 'suggested', repr(r.suggested), 'method', r.method,\n"
    "      'pick', again.pick.value)",
    # the button's click reaches the kernel before this cell: it waits for the run it started
    "await again.wait_async()\nprint('runs', len(results))",
]
FINDER, GOOD_RUN, NEXT_RUN, BACKGROUND, CHECK, STOP = 2, 3, 4, 5, 6, 7
AGAIN, FIRST_RUN, NEW_RANGE, NEW_STEPS, NEW_SMOOTHING, NEW_OPTIMIZER, PICKED, RAN = range(8, 16)


def outputs(page: Any) -> Any:
    return page.locator(".jp-NotebookPanel:not(.lm-mod-hidden) .jp-OutputArea-output")


def finder_output(page: Any) -> Any:
    return outputs(page).filter(has=page.locator(".tw-lr-finder")).first


def printed(page: Any, cell: int) -> str:
    return page.evaluate(f"""() => {{
      const cell = window.jupyterapp.shell.currentWidget.content.widgets[{cell}];
      return cell.outputArea.node.innerText; }}""")


def curve_length(page: Any) -> int:
    plots = [p for p in bokeh_plots(page, "lr_curve") if p["shown"]]
    return len(plots[0]["sources"]["lr_curve"]["lr"]) if plots else 0


# Major tick positions of the shown LR plots' x axes, as BokehJS laid them out.
_X_TICKS_JS = r"""() => {
  const out = [];
  const walk = (view) => {
    if (view == null) return;
    if (view.renderer_views != null && view.model.x_range != null) {
      for (const rv of view.renderer_views.values()) {
        if (rv.model.type.endsWith("Axis") && rv.dimension == 0 && rv.tick_coords != null) {
          out.push(rv.tick_coords.major[0].length);
        }
      }
    }
    for (const child of view.child_views ?? []) walk(child);
  };
  for (const root of window.Bokeh.index) walk(root);
  return out;
}"""


def finder_marks(page: Any) -> dict[str, Any]:
    (plot,) = [p for p in bokeh_plots(page, "lr_curve") if p["shown"]]
    (span,) = [s for s in plot["spans"] if s["name"] == "lr_chosen"]
    return {"span": span, "markers": len(plot["sources"]["lr_markers"]["x"])}


@pytest.fixture
def lr_page(jupyter_lab, browser_page):
    write_notebook(jupyter_lab.root_dir / "lr_ui.ipynb", CELLS)
    open_notebook(browser_page, "lr_ui.ipynb")
    run_cell(browser_page, 1)
    return browser_page


def test_a_flat_stopped_test_moves_nothing_and_a_new_run_hides_the_last_choice(lr_page):
    page = lr_page
    run_cell(page, FINDER)
    output = finder_output(page)
    expect(output.locator(".bk-Canvas").first).to_be_visible()
    # before any run: no value in the box, no slider handle, no line
    box = output.locator(".tw-chosen-lr input")
    expect(box).to_have_value("")
    expect(box).to_have_attribute("placeholder", "none yet")
    assert output.locator(".widget-hslider").evaluate_all(
        "els => els.map(e => getComputedStyle(e).visibility)")[-1] == "hidden"
    assert finder_marks(page)["span"]["visible"] is False
    code = outputs(page).locator(".tw-schedule-code").first
    expect(code).to_have_text("tw.schedules.OneCycle()")
    screenshot(page, "lr-ui-1-before-any-run", output)

    click_button(page, "Run test")
    wait_until(page, lambda: curve_length(page) >= 25, message="25 points in the curve")
    click_button(page, "Stop")
    status = output.get_by_text(re.compile(r"stopped at step \d+"))
    expect(status).to_be_visible(timeout=15_000)
    text = status.inner_text()
    # stopped near its start: it says so (or that its curve is too flat or short) and suggests nothing
    assert re.search(r"the test stopped after \d+% of its range|the curve is too (flat|short) to trust", text), text
    assert "no lr chosen" in text, text
    assert "suggested lr" not in text
    expect(box).to_have_value("")  # lr was not moved...
    expect(code).to_have_text("tw.schedules.OneCycle()")  # ...and neither was the linked preview
    assert finder_marks(page)["span"]["visible"] is False
    screenshot(page, "lr-ui-2-stopped-flat", output)
    assert_no_widget_errors(page)

    # then a good test, and while the next one fills, the last run's choice is hidden
    run_cell(page, GOOD_RUN, timeout=90_000)
    output = finder_output(page)
    lr = float(re.search(r"lr (\S+)", printed(page, GOOD_RUN)).group(1))
    marks = finder_marks(page)
    assert marks["span"]["visible"] and marks["span"]["location"] == pytest.approx(lr) and marks["markers"] > 0
    pick = output.locator("select").last
    assert pick.evaluate("e => e.options[e.selectedIndex].text").startswith("valley")
    code = outputs(page).locator(".tw-schedule-code").first
    expect(code).to_contain_text("max_lr=")  # the linked preview follows a trusted choice
    screenshot(page, "lr-ui-3-finished", output)

    run_cell(page, NEXT_RUN)
    wait_until(page, lambda: curve_length(page) >= 10, message="10 points in the curve")
    marks = finder_marks(page)
    assert marks["span"]["visible"] is False and marks["markers"] == 0  # the last run's marks are gone
    assert [o.strip() for o in pick.evaluate("e => [...e.options].map(o => o.text)")] == ["(running...)"]
    expect(pick).to_be_disabled()
    screenshot(page, "lr-ui-4-next-run-filling", output)
    run_cell(page, STOP)
    expect(output.get_by_text(re.compile(r"stopped at step \d+"))).to_be_visible(timeout=15_000)


def test_running_the_cell_again_or_interrupting_the_kernel_stops_the_test(lr_page):
    page = lr_page
    run_cell(page, BACKGROUND)
    wait_until(page, lambda: curve_length(page) >= 5, message="5 points in the curve")
    run_cell(page, BACKGROUND)  # the cell again: a new finder replaces the one it made before
    run_cell(page, CHECK)
    assert "workers 1 statuses ['stopped', 'running']" in printed(page, CHECK)

    wait_kernel_idle(page)
    menu_command(page, "Kernel", "kernelmenu:interrupt")  # the test runs in the background: kernel idle
    output = finder_output(page)
    expect(output.get_by_text(re.compile(r"stopped at step \d+ \(Kernel > Interrupt\)"))).to_be_visible(
        timeout=15_000)
    run_cell(page, CHECK)
    assert "workers 0 statuses ['stopped', 'stopped']" in printed(page, CHECK)
    expect(output.get_by_role("button", name=re.compile(r"Run test$"))).to_be_enabled()
    screenshot(page, "lr-ui-5-interrupted", output)


def test_after_a_run_with_other_settings_the_pick_follows_its_suggestion(lr_page):
    page = lr_page
    run_cell(page, AGAIN)
    output = outputs(page).filter(has=page.locator(".tw-lr-finder")).last
    expect(output.locator(".bk-Canvas").first).to_be_visible()
    run_cell(page, FIRST_RUN, timeout=90_000)
    for runs, cell in enumerate((NEW_RANGE, NEW_STEPS, NEW_SMOOTHING, NEW_OPTIMIZER), start=2):
        run_cell(page, cell)
        output.get_by_role("button", name=button_name("Run test")).click()
        run_cell(page, RAN, timeout=90_000)
        assert f"runs {runs}" in printed(page, RAN)
        # whatever the page sends back about the picker's slider reaches the kernel before this
        page.wait_for_timeout(1500)
        run_cell(page, PICKED)
        text = printed(page, PICKED)
        found = re.search(r"lr (\S+) suggested (\S+) method (\w+) pick (\w+)", text)
        assert found, text
        lr, suggested, method, pick = found.groups()
        assert suggested != "None", text
        assert float(lr) == float(suggested), (cell, text)  # not a value one slider notch away
        assert pick == method, (cell, text)                 # "use" names the method, not "custom"
        box = output.locator(".tw-chosen-lr input")
        expect(box).to_have_value(re.compile(r"\d\.\d\de-\d"))
        assert output.locator("select").last.evaluate(
            "e => e.options[e.selectedIndex].text").startswith(method)
        if cell == NEW_RANGE:  # a range of 2.2 decades: at least 4 ticks on the lr axis
            ticks = page.evaluate(_X_TICKS_JS)
            assert ticks and min(ticks) >= 4, ticks
    screenshot(page, "lr-ui-6-picks-follow-new-runs", output)
    assert_no_widget_errors(page)
