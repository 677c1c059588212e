"""The Search widget in a real browser: Launch starts trials, the running trial's curve grows in the
page, Stop halts the search, the table shows the trials' states, clicking a row highlights its
curve and hiding pruned trials works.

What the page holds is read from BokehJS (the browser's copy of each data source, and the live
ranges of the curves plot), not from the kernel. Trials are slowed a little (a sleep in forward)
so that a curve grows over several polls; the search is stopped long before its 200 trials end.
"""
from __future__ import annotations

import math
import re
import time
from typing import Any

import pytest
from playwright.sync_api import expect

from support.jupyter import (
    assert_no_widget_errors,
    button_name,
    click_button,
    kernel_execute,
    notebook_errors,
    open_notebook,
    run_all,
    screenshot,
    wait_kernel_idle,
    wait_until,
)
from support.notebooks import write_notebook

pytestmark = pytest.mark.browser

N_TRIALS = 200
EPOCHS = 8
CELLS = [
    "# md\n# Search: Launch, live curves, Stop",
    "import tempfile, time\n"
    "import torch\n"
    "import tunewidgets as tw\n"
    "torch.set_num_threads(1)\n"
    "spirals = tw.tasks.spirals()\n"
    "\n"
    "class Slow(torch.nn.Module):\n"
    "    \"\"\"The spirals MLP, 5 ms slower a batch, so that a trial lasts long enough to watch.\"\"\"\n"
    "    def __init__(self, width=32):\n"
    "        super().__init__()\n"
    "        self.inner = spirals.build_model(width=width)\n"
    "    def forward(self, x):\n"
    "        time.sleep(0.005)\n"
    "        return self.inner(x)\n"
    "\n"
    "task = tw.Task(model=Slow, train=spirals.train, val=spirals.val, metrics=('accuracy',), batch_size=64,\n"
    "               name='spirals')",
    "w = tw.widgets.Search(task, {'lr': tw.space.LogUniform(1e-3, 0.3), 'model.width': tw.space.Choice([8, 32])},\n"
    f"                      base=tw.TrainConfig(optimizer='adam', epochs={EPOCHS}, device='cpu'), n_trials={N_TRIALS},\n"
    "                      pruner='median', store=tempfile.mkdtemp(), interval=0.1)\n"
    "w",
]

# The browser's copy of each data source called `name`: {column: values} (one per shown document).
_SOURCES_JS = r"""(name) => {
  const index = window.Bokeh?.index;
  if (index == null) return null;
  const roots = typeof index[Symbol.iterator] === 'function' ? [...index]
              : index instanceof Map ? [...index.values()] : Object.values(index);
  const docs = new Set(roots.map((view) => view.model.document).filter((doc) => doc != null));
  const out = [];
  const plain = (x) => (x != null && typeof x === 'object' && x.length !== undefined) ? Array.from(x, plain) : x;
  for (const doc of docs) {
    for (const m of doc.all_models) {
      if (m.name === name && m.data != null) {
        const data = m.data instanceof Map ? Object.fromEntries(m.data) : m.data;
        const cols = {};
        for (const [k, v] of Object.entries(data)) cols[k] = plain(v);
        out.push(cols);
      }
    }
  }
  return out;
}"""

# The ranges the page computed for the plot that draws source `name`: {x: [start, end], y: [...]}.
_RANGES_JS = r"""(name) => {
  const roots = [...window.Bokeh.index];
  const docs = new Set(roots.map((view) => view.model.document).filter((doc) => doc != null));
  const out = [];
  for (const doc of docs) {
    for (const m of doc.all_models) {
      if (m.x_range != null && m.renderers != null
          && m.renderers.some((r) => r.data_source != null && r.data_source.name === name)) {
        out.push({x: [m.x_range.start, m.x_range.end], y: [m.y_range.start, m.y_range.end]});
      }
    }
  }
  return out;
}"""


# One cheap poll: each curve's trial, state and length, and the table's states.
_POLL_JS = r"""() => {
  const docs = new Set([...window.Bokeh.index].map((view) => view.model.document).filter((d) => d != null));
  let curves = null, states = null;
  for (const doc of docs) {
    for (const m of doc.all_models) {
      if (m.name === 'search_curves' && m.data != null) {
        const d = m.data instanceof Map ? Object.fromEntries(m.data) : m.data;
        curves = Array.from(d.trial, (t, i) => [t, d.state[i], d.xs[i].length]);
      } else if (m.name === 'search_table' && m.data != null) {
        const d = m.data instanceof Map ? Object.fromEntries(m.data) : m.data;
        states = Array.from(d.state);
      }
    }
  }
  return {curves, states};
}"""


def source(page: Any, name: str) -> dict[str, list[Any]]:
    found = page.evaluate(_SOURCES_JS, name)
    assert found, f"the page shows no data source named {name!r}"
    return found[-1]


def ranges_cover(page: Any, curves: dict[str, list[Any]]) -> tuple[bool, Any]:
    """Whether the ranges the page computed for the curves plot cover every point it holds."""
    ranges = page.evaluate(_RANGES_JS, "search_curves")[-1]
    xs = [x for row in curves["xs"] for x in row]
    ys = [y for row in curves["ys"] for y in row if y is not None and math.isfinite(y)]
    ok = (ranges["x"][0] <= min(xs) and max(xs) <= ranges["x"][1]
          and ranges["y"][0] <= min(ys) and max(ys) <= ranges["y"][1])
    return ok, (ranges, (min(xs), max(xs)), (min(ys), max(ys)))


def test_launch_grows_curves_stop_halts_rows_highlight_and_hide_pruned_hides(jupyter_lab, browser_page):
    page = browser_page
    page_errors: list[str] = []  # uncaught errors and console errors: none is allowed
    page.on("pageerror", lambda exc: page_errors.append(f"pageerror: {exc}"))
    page.on("console", lambda m: page_errors.append(f"console error: {m.text}") if m.type == "error" else None)
    began = time.monotonic()
    write_notebook(jupyter_lab.root_dir / "search_widget.ipynb", CELLS)
    open_notebook(page, "search_widget.ipynb")
    run_all(page)
    expect(page.locator(".bk-Canvas").first).to_be_visible()
    assert_no_widget_errors(page)
    assert source(page, "search_curves")["trial"] == []
    shown_at = time.monotonic()

    click_button(page, "Launch", timeout=30_000)
    expect(page.get_by_role("button", name=button_name("Stop"))).to_be_enabled(timeout=15_000)
    launched_at = time.monotonic()

    # the running trial's curve grows in the page; finished and pruned trials come in
    growth: dict[int, set[int]] = {}
    deadline = time.monotonic() + 45
    ranges_ok = None
    while time.monotonic() < deadline:
        poll = page.evaluate(_POLL_JS)
        for n, state, length in poll["curves"]:
            if state == "running":
                growth.setdefault(n, set()).add(length)
        states = poll["states"]
        grew = any(len(lengths - {0}) >= 2 for lengths in growth.values())
        if grew and states.count("finished") >= 2 and states.count("pruned") >= 1:
            # the axes the page computed cover every point it holds
            ranges_ok = ranges_cover(page, source(page, "search_curves"))
            break
        page.wait_for_timeout(100)
    watched = time.monotonic() - launched_at
    # a running trial's curve was seen with two lengths or more: it grew in the page as it trained
    assert any(len(lengths - {0}) >= 2 for lengths in growth.values()), f"no running curve grew: {growth}"
    assert ranges_ok is not None, f"no pruned or too few finished trials in time: {states}"
    assert ranges_ok[0], f"the curves plot's ranges do not cover its data: {ranges_ok}"
    expect(page.get_by_text(re.compile(r"finished \d+ · running 1 · pruned \d+ · failed 0 · left \d+"))).to_be_visible()

    # Stop halts the search: the status says so, nothing runs any more, nothing grows
    click_button(page, "Stop", timeout=30_000)
    stop_clicked = time.monotonic()
    expect(page.get_by_text(re.compile(r"stopped after [\d.]+ s: \d+ finished"))).to_be_visible(timeout=15_000)
    stopped_in = time.monotonic() - stop_clicked
    wait_kernel_idle(page, timeout=30_000)
    table = source(page, "search_table")
    assert "running" not in table["state"] and {"finished", "pruned"} <= set(table["state"]), table["state"]
    assert set(table["state"]) <= {"finished", "pruned", "stopped"}
    done = int(page.get_by_text(re.compile(rf"^\d+ / {N_TRIALS} trials$")).inner_text().split()[0])
    assert 0 < done < N_TRIALS
    # nothing grows after Stop, without a fixed wait: the kernel says the search is over and how
    # many points its curves hold; its reply comes after every update it sent, so the page must
    # show exactly that many once the reply is in
    kernel_says = kernel_execute(page, "curves = w.plots.figures.curves.select_one({'name': 'search_curves'})\n"
                                       "print(w.session.running, sum(len(xs) for xs in curves.data['xs']))").split()
    assert kernel_says[0] == "False", kernel_says
    points = int(kernel_says[1])
    def all_points_shown() -> dict[str, list[Any]] | None:
        shown = source(page, "search_curves")
        return shown if sum(len(xs) for xs in shown["xs"]) == points else None

    curves = wait_until(page, all_points_shown, timeout=15_000,
                        message=f"the page's curves holding the kernel's {points} points")
    assert "running" not in curves["state"]
    covered = ranges_cover(page, curves)  # also in the final render, made after the search ended
    assert covered[0], f"after Stop, the curves plot's ranges do not cover its data: {covered}"
    y_end = covered[1][0]["y"][1]  # accuracy: the padded axis stops at 1 (it ran to 1.05)
    assert y_end <= 1.0 and y_end >= covered[1][2][1], covered
    expect(page.get_by_role("button", name=button_name("Launch"))).to_be_enabled()
    expect(page.get_by_role("button", name=button_name("Stop"))).to_be_disabled()
    shown = page.locator(".jp-OutputArea-output").filter(has=page.locator(".tw-search")).first
    screenshot(page, "search-after-stop", shown)  # the README's picture of the Search widget

    # clicking a row of the table highlights that trial's curve (the kernel draws it on top)
    output = page.locator(".jp-NotebookPanel:not(.lm-mod-hidden) .jp-OutputArea-output")
    output.locator(".slick-row").nth(1).locator(".slick-cell").nth(1).click()
    picked = table["trial"][1]
    wait_until(page, lambda: source(page, "search_highlight")["trial"] == [picked], timeout=10_000,
               message=f"trial {picked}'s curve highlighted")
    highlighted = source(page, "search_highlight")
    row = source(page, "search_curves")["trial"].index(picked)
    assert highlighted["ys"][0] == source(page, "search_curves")["ys"][row]

    # hiding pruned trials takes them out of the curves and the slices, not out of the table
    pruned = table["state"].count("pruned")
    output.get_by_role("checkbox", name="hide pruned").check()
    wait_until(page, lambda: len(source(page, "search_curves")["trial"]) == len(table["trial"]) - pruned,
               timeout=10_000, message="the pruned curves hidden")
    curves, slices = source(page, "search_curves"), source(page, "search_slice")
    assert "pruned" not in curves["state"] and "pruned" not in slices["state"]
    assert source(page, "search_table")["state"].count("pruned") == pruned

    # switching to grid keeps the settings where they were (they used to wrap below the rows)
    settings = output.locator(".tw-search-settings")
    before = settings.bounding_box()
    output.get_by_role("button", name="grid", exact=True).click()
    expect(output.get_by_text(re.compile(r"grid: lr 3 x model.width 2 = 6 points"))).to_be_visible()
    after = settings.bounding_box()
    assert (round(after["x"]), round(after["y"])) == (round(before["x"]), round(before["y"])), (before, after)
    assert_no_widget_errors(page)
    assert notebook_errors(page) == []
    assert page_errors == [], page_errors
    print(f"\nsearch in the browser: {len(table['trial'])} trials shown ({pruned} pruned) of {N_TRIALS}; "
          f"curve lengths seen while running {sorted(max(growth.values(), key=len))}; watched {watched:.1f} s, "
          f"stopped {stopped_in:.1f} s after the click; notebook shown in {shown_at - began:.1f} s, "
          f"{time.monotonic() - began:.1f} s in all")
