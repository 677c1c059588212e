"""JupyterLab in a real browser shows an ipywidgets slider and a Bokeh plot, offline.

Proves the browser test helpers end to end: server, login, opening a notebook, Run All from
the menus, widget rendering, BokehJS loaded inline (a CDN would be unreachable), and reading
the browser's copy of a Bokeh data source.
"""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from support.jupyter import (
    assert_no_widget_errors,
    bokeh_source_lengths,
    click_button,
    notebook_errors,
    open_notebook,
    run_all,
    wait_until,
)
from support.notebooks import write_notebook

pytestmark = pytest.mark.browser

SMOKE_CELLS = [
    "# md\n# Smoke test: a slider, a plot and a button",
    "import ipywidgets as widgets\n"
    "slider = widgets.IntSlider(value=7, min=0, max=10, description='smoke')\n"
    "slider",
    "import bokeh.io, bokeh.plotting, bokeh.resources\n"
    "from bokeh.models import ColumnDataSource\n"
    "from jupyter_bokeh import BokehModel\n"
    "bokeh.io.output_notebook(bokeh.resources.INLINE, hide_banner=True)\n"
    "source = ColumnDataSource({'x': [0, 1, 2, 3], 'y': [1, 4, 2, 3]}, name='smoke_points')\n"
    "fig = bokeh.plotting.figure(width=320, height=200)\n"
    "fig.line('x', 'y', source=source)\n"
    "plot = BokehModel(fig)\n"
    "plot",
    "button = widgets.Button(description='Add point')\n"
    "def add_point(_):\n"
    "    n = len(source.data['x'])\n"
    "    source.stream({'x': [n], 'y': [n % 3]})\n"
    "button.on_click(add_point)\n"
    "button",
]


def test_slider_and_bokeh_plot_render_and_stream(jupyter_lab, browser_page):
    page = browser_page
    write_notebook(jupyter_lab.root_dir / "smoke.ipynb", SMOKE_CELLS)

    open_notebook(page, "smoke.ipynb")
    run_all(page)

    slider = page.locator(".jp-OutputArea-output .widget-slider").first
    expect(slider).to_be_visible()
    expect(page.locator(".jp-OutputArea-output .widget-readout").first).to_have_text("7")
    expect(page.locator(".bk-Canvas").first).to_be_visible()
    assert_no_widget_errors(page)
    assert notebook_errors(page) == []

    def smoke_length() -> int:
        rows = [s["length"] for s in bokeh_source_lengths(page) if s["name"] == "smoke_points"]
        assert len(rows) == 1, rows
        return rows[0]

    assert smoke_length() == 4

    # A click in the page runs the kernel's callback; the stream reaches the browser's copy.
    click_button(page, "Add point")
    click_button(page, "Add point")
    page.wait_for_function(
        """() => [...Bokeh.index].some(v => [...(v.model.document?.all_models ?? [])]
              .some(m => m.name === 'smoke_points' && m.get_length() === 6))""",
        timeout=15_000,
    )
    assert smoke_length() == 6
    assert_no_widget_errors(page)


def test_run_all_reports_the_failing_cell(jupyter_lab, browser_page):
    write_notebook(jupyter_lab.root_dir / "fails.ipynb",
                   ["x = 1", "raise ValueError('bad lr: -1')", "print('never runs')"])
    open_notebook(browser_page, "fails.ipynb")
    with pytest.raises(AssertionError, match=r"cell 1: ValueError: bad lr: -1"):
        run_all(browser_page)
    # The cell after the error never ran: its prompt stays empty.
    prompts = browser_page.locator(".jp-CodeCell .jp-InputPrompt").all_inner_texts()
    assert [p.strip() for p in prompts] == ["[1]:", "[2]:", "[ ]:"]


def test_errors_in_the_page_are_collected_for_the_test_to_fail_on(jupyter_lab, browser_page):
    page = browser_page
    write_notebook(jupyter_lab.root_dir / "page_error.ipynb", [
        "from IPython.display import Javascript\n"
        "Javascript(\"setTimeout(() => { throw new Error('boom from the page') }, 0); "
        "console.error('a console error')\")",
    ])
    open_notebook(page, "page_error.ipynb")
    run_all(page)
    errors = page.tw_page_errors

    def thrown() -> bool:
        return any("pageerror: Error: boom from the page" in e or "pageerror: boom from the page" in e
                   for e in errors.errors)

    def logged() -> bool:
        return any("console error: a console error" in e for e in errors.errors)

    # both come from a timer in the page after the cell ran: wait for them, not for a fixed time
    wait_until(page, lambda: thrown() and logged(), timeout=15_000, message=lambda: str(errors.errors))
    with pytest.raises(AssertionError, match=r"error\(s\) in the page"):
        errors.check()
    errors.errors.clear()  # expected here; the fixture checks the rest
