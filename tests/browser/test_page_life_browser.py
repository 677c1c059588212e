"""What a user sees across the life of a page, in a real JupyterLab set up as the README's
command and Binder set it up (the environment's ``overrides.json`` from ``binder/``):

- a page reloaded while the kernel keeps running gets BokehJS again: a widget shown before the
  reload and shown again, and a new one, render their plots (no "Could not create a view");
- a notebook saved there keeps its widget state (JupyterLab's default does not), so it reopens
  with its widgets;
- the README's examples that show a widget, each pasted into one cell, display that widget.
"""

from __future__ import annotations

import json
import re
import urllib.request
from pathlib import Path

import nbformat
import pytest
from playwright.sync_api import expect

from support.jupyter import assert_no_widget_errors, open_notebook, run_cell, save_notebook
from support.notebooks import write_notebook

pytestmark = pytest.mark.browser

REPO = Path(__file__).resolve().parents[2]
LAB_OVERRIDES = REPO / "binder" / "overrides.json"  # what the README command and postBuild install

RELOAD_CELLS = [
    "# md\n# A reloaded page",
    "import tunewidgets as tw\nfirst = tw.widgets.SchedulePreview(total_steps=200)\nfirst",
    "first   # made before the reload, shown again",
    "second = tw.widgets.SchedulePreview(total_steps=300)\nsecond",
]
FIRST, AGAIN, SECOND = 1, 2, 3


def _bokeh_roots(page) -> int:
    """Bokeh root views the page holds whose element is in the document (-1: no BokehJS)."""
    return page.evaluate("() => window.Bokeh?.index == null ? -1 :"
                         " [...window.Bokeh.index].filter(v => v.el?.isConnected).length")


def _output_canvases(page, cell: int):
    return page.locator(".jp-Notebook .jp-Cell").nth(cell).locator(".bk-Canvas")


def test_reloaded_page_renders_plots_again_and_saves_widget_state(jupyter_lab, browser_page):
    page = browser_page
    write_notebook(jupyter_lab.root_dir / "reload.ipynb", RELOAD_CELLS)
    open_notebook(page, "reload.ipynb")
    run_cell(page, FIRST)
    expect(_output_canvases(page, FIRST).first).to_be_visible()
    assert _bokeh_roots(page) >= 1

    # F5 while the kernel runs: the new page has no BokehJS until a widget brings it
    page.reload(wait_until="domcontentloaded")
    open_notebook(page, "reload.ipynb", reset=False)
    assert page.evaluate("() => window.Bokeh == null")
    run_cell(page, AGAIN)
    expect(_output_canvases(page, AGAIN).first).to_be_visible()
    run_cell(page, SECOND)
    expect(_output_canvases(page, SECOND).first).to_be_visible()
    assert _bokeh_roots(page) >= 2
    assert_no_widget_errors(page)

    # the environment's override turns on "Save Widget State Automatically"
    url = f"{jupyter_lab.url}/lab/api/settings/@jupyter-widgets/jupyterlab-manager:plugin?token={jupyter_lab.token}"
    with urllib.request.urlopen(url, timeout=10) as reply:
        plugin = json.load(reply)
    assert plugin["schema"]["properties"]["saveState"]["default"] is True  # the override, not a user setting
    assert "saveState" not in plugin["settings"]
    save_notebook(page)
    nb = nbformat.read(jupyter_lab.root_dir / "reload.ipynb", as_version=4)
    state = nb.metadata["widgets"]["application/vnd.jupyter.widget-state+json"]["state"]
    shown = {out["data"]["application/vnd.jupyter.widget-view+json"]["model_id"]
             for cell in nb.cells if cell.cell_type == "code" for out in cell.outputs
             if "application/vnd.jupyter.widget-view+json" in out.get("data", {})}
    assert len(shown) == 2 and shown <= set(state)  # every widget output has its model saved
    assert sum(entry["model_name"] == "BokehModel" for entry in state.values()) >= 2


_WIDGET_CLASSES = {"LRFinder": "tw-lr-finder", "Search": "tw-search", "SchedulePreview": "tw-schedule-preview",
                   "Dashboard": "tw-dashboard"}


def readme_widget_examples() -> list[tuple[str, str]]:
    """``(source, css class of the widget it shows)`` of each README example that makes a widget."""
    readme = (REPO / "README.md").read_text()
    out = []
    for block in re.findall(r"^```python\n(.*?)^```", readme, flags=re.S | re.M):
        made = re.findall(r"tw\.widgets\.(\w+)\(", block)
        if made:
            out.append((block, _WIDGET_CLASSES[made[0]]))
    return out


def test_readme_examples_pasted_into_cells_show_their_widgets(jupyter_lab, browser_page):
    page = browser_page
    examples = readme_widget_examples()
    assert sorted(css for _, css in examples) == ["tw-dashboard", "tw-lr-finder", "tw-search"]
    write_notebook(jupyter_lab.root_dir / "readme.ipynb", ["# md\n# The README's examples, one a cell",
                                                            *(source for source, _ in examples)])
    open_notebook(page, "readme.ipynb")
    for index, (_, css) in enumerate(examples, start=1):
        run_cell(page, index, timeout=180_000)
        shown = page.locator(".jp-Notebook .jp-Cell").nth(index).locator(f".jp-OutputArea-output .{css}")
        expect(shown).to_have_count(1)
        expect(shown.locator(".bk-Canvas").first).to_be_visible()
    assert_no_widget_errors(page)
    # the Search example: "set the ranges, press Launch, watch": its six trials end in the page
    cell = 1 + [css for _, css in examples].index("tw-search")  # its own cell (the Dashboard holds one too)
    search = page.locator(".jp-Notebook .jp-Cell").nth(cell).locator(".jp-OutputArea-output .tw-search")
    search.get_by_role("button", name=re.compile(r"Launch")).click()
    expect(search).to_contain_text(re.compile(r"finished after [\d.]+ s: \d+ finished"), timeout=180_000)
    expect(search).to_contain_text("6 / 6 trials")
    assert_no_widget_errors(page)
