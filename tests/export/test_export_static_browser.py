"""Static Bokeh output and math in an exported notebook render offline: ``bokeh.io.show`` after
``output_notebook`` (even one that loaded BokehJS from the CDN in the notebook), a table that
needs BokehJS's tables bundle, and TeX in markdown typeset by the inlined MathJax."""
from __future__ import annotations

import pytest

import tunewidgets as tw
from offline_page import bokeh_sources, open_offline, wait_for_canvases
from support.notebooks import write_notebook

pytestmark = [pytest.mark.notebook, pytest.mark.slow]

CELLS = [
    "# md\n# Static plots\nEuler: $e^{i\\pi} + 1 = 0$, and displayed: $$\\sum_{i=1}^{n} i = \\frac{n(n+1)}{2}$$",
    "from bokeh.io import output_notebook, show\nfrom bokeh.resources import CDN\n"
    "from bokeh.models import ColumnDataSource, DataTable, TableColumn\nfrom bokeh.plotting import figure\n"
    "output_notebook(CDN)  # the notebook's own page would fetch BokehJS from cdn.bokeh.org",
    "fig = figure(title='squares', height=250)\n"
    "fig.scatter('x', 'y', source=ColumnDataSource({'x': [1, 2, 3], 'y': [1, 4, 9]}, name='squares'))\n"
    "show(fig)",
    "show(DataTable(source=ColumnDataSource({'lr': [0.1, 0.01]}, name='table_rows'),\n"
    "               columns=[TableColumn(field='lr', title='lr')], height=120))",
    "# md\nAnd inline again: $a^2 + b^2 = c^2$.",
]


@pytest.fixture(scope="module")
def static_page(tmp_path_factory: pytest.TempPathFactory):
    base = tmp_path_factory.mktemp("static")
    nb = write_notebook(base / "static.ipynb", CELLS)
    return tw.export_notebook(nb, execute=True)


def test_the_page_carries_the_bokehjs_it_needs_and_mathjax(static_page):
    page = static_page.read_text()
    # the notebook's CDN loader and its banner are gone: the page has BokehJS inline
    assert "Loading BokehJS" not in page and "cdn.bokeh.org/bokeh/release/bokeh-" not in page
    assert tw.export.external_references(page) == []
    assert page.count("/* BEGIN bokeh.min.js */") == 1 and page.count("/* BEGIN bokeh-tables.min.js */") == 1
    assert "window.MathJax=" in page


@pytest.mark.browser
def test_static_plots_tables_and_math_render_offline(static_page, browser):
    shown = open_offline(browser, static_page)
    page = shown.page
    outputs = page.locator(".jp-OutputArea-output").filter(has=page.locator(".bk-Canvas, .bk-DataTable"))
    wait_for_canvases(page, page.locator(".jp-Cell").nth(2))
    page.locator("mjx-container svg").nth(2).wait_for(timeout=30_000)
    shown.assert_clean()
    shown.screenshot("static_plots_and_math")
    assert page.locator("mjx-container svg").count() == 3  # two inline formulas, one displayed
    assert page.locator("mjx-container[display='true']").count() == 1
    assert outputs.count() == 2
    sources = {s["name"]: s["columns"] for s in bokeh_sources(page)}
    assert sources["squares"]["y"] == [1, 4, 9]
    assert sources["table_rows"]["lr"] == [0.1, 0.01]
    page.context.close()
