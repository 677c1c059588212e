"""Saved state equals the screen, in a real JupyterLab that saves widget state: after changes made
from code and in the page, the notebook file holds the plots the browser shows (the LR finder's
curve, markers and chosen lr, the schedule preview's schedule and pinned curve, a static figure
that changed after it was shown) and the status texts; a preview linked to a finder draws the
finder's lr from its first render; 50 shape switches leave no models behind; BokehJS is in the
file once.

Screenshots: ``saved-1-preview-linked``, ``saved-2-after-changes`` (the preview),
``saved-3-static-figure``, ``saved-4-finder``.
"""

from __future__ import annotations

import html
import json
import math
import re
from typing import Any

import nbformat
import pytest
from playwright.sync_api import expect

from support.jupyter import (
    SAVE_WIDGET_STATE,
    assert_no_widget_errors,
    bokeh_plots,
    kernel_execute,
    open_notebook,
    run_cell,
    save_notebook,
    screenshot,
    wait_until,
)
from support.notebooks import saved_bokeh_sources, write_notebook

pytestmark = pytest.mark.browser

LAB_SETTINGS = SAVE_WIDGET_STATE  # JupyterLab saves the widget state with the notebook
SHAPES = ["Cyclic", "Warmup", "MultiStep", "ReduceOnPlateau", "Sequential", "OneCycle", "Cosine"]
CELLS = [
    "# md\n# Saved state equals the screen",
    "import torch\n"
    "import tunewidgets as tw\n"
    "from bokeh.models import ColumnDataSource\n"
    "from bokeh.plotting import figure\n"
    "from ipywidgets.widgets.widget import _instances\n"
    "torch.set_num_threads(1)\n"
    "task = tw.tasks.digits()",
    "finder = tw.widgets.LRFinder(task, optimizer='adam', start_lr=1e-4, end_lr=1.0, steps=120, seed=0,\n"
    "                             device='cpu')\n"
    "finder.run()\n"
    "finder",
    "await finder.wait_async()\nprint('lr', finder.lr)",
    "preview = tw.widgets.SchedulePreview(lr_finder=finder, total_steps=138, steps_per_epoch=23)\npreview",
    "source = ColumnDataSource({'x': [1, 2, 3], 'y': [3.0, 1.0, 2.0]}, name='static_points')\n"
    "fig = figure(height=200, sizing_mode='stretch_width', title='a static figure')\n"
    "fig.line('x', 'y', source=source, line_width=2)\n"
    "tw.widgets.bokeh_widget(fig)",
    "preview.pin()\npreview.spec = tw.schedules.Cosine()\nsource.stream({'x': [4], 'y': [5.0]})",
    f"shapes = {SHAPES!r}\n"
    "before = len(_instances)\n"
    "for i in range(50):\n"
    "    preview.editor.shape.value = shapes[i % len(shapes)]\n"
    "preview.editor.shape.value = 'Cyclic'\n"
    "print('models', before, len(_instances))",
]
SETUP, FINDER, WAIT, PREVIEW, STATIC, CHANGES, SWITCHES = range(1, 8)


def saved(path) -> nbformat.NotebookNode:
    return nbformat.read(path, as_version=4)


def widget_state(nb: nbformat.NotebookNode) -> dict[str, Any]:
    return nb.metadata["widgets"]["application/vnd.jupyter.widget-state+json"]["state"]


def saved_plots(nb: nbformat.NotebookNode) -> list[dict[str, dict[str, list[Any]]]]:
    return [saved_bokeh_sources(entry) for entry in widget_state(nb).values() if entry["model_name"] == "BokehModel"]


def saved_models(entry: dict[str, Any], kind: str) -> list[dict[str, Any]]:
    """The Bokeh models of type ``kind`` in a saved BokehModel's render bundle."""
    bundle = entry["state"]["render_bundle"]
    stack, found = [json.loads(bundle) if isinstance(bundle, str) else bundle], []
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            if node.get("name") == kind and node.get("type") == "object":
                found.append(node)
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)
    return found


def same(a: list[Any], b: list[Any]) -> bool:
    """Two columns hold the same values (NaN and None alike, floats to 1e-12)."""
    def norm(v: Any) -> Any:
        return None if v is None or (isinstance(v, float) and math.isnan(v)) else v
    a, b = [norm(v) for v in a], [norm(v) for v in b]
    return len(a) == len(b) and all(
        x == y or (isinstance(x, (int, float)) and isinstance(y, (int, float)) and math.isclose(x, y, rel_tol=1e-12))
        for x, y in zip(a, b))


def assert_saved_is_shown(page: Any, nb: nbformat.NotebookNode) -> None:
    """Every plot the page shows is in the file with the same data, source by source."""
    kept = saved_plots(nb)
    shown = [p for p in bokeh_plots(page) if p["shown"] and p["sources"]]
    assert shown, "no plots in the page"
    for plot in shown:
        names = set(plot["sources"])
        matches = [k for k in kept if names <= set(k)]
        assert len(matches) == 1, f"plot with {sorted(names)}: {len(matches)} saved plots hold its sources"
        for name, columns in plot["sources"].items():
            for column, values in columns.items():
                assert same(values, matches[0][name][column]), (name, column, values[:5], matches[0][name][column][:5])


def saved_is_shown(page: Any, nb: nbformat.NotebookNode) -> bool:
    try:
        assert_saved_is_shown(page, nb)
    except AssertionError:
        return False
    return True


def wait_saved(page: Any, path: Any, ok: Any, what: str) -> nbformat.NotebookNode:
    """Save the notebook and read it back until ``ok(notebook)`` holds; return that notebook."""
    def attempt() -> nbformat.NotebookNode | None:
        save_notebook(page)
        nb = saved(path)
        return nb if ok(nb) else None
    return wait_until(page, attempt, timeout=30_000, interval=250, message=what)


def html_text(value: str) -> str:
    return re.sub(r"\s+", " ", html.unescape(re.sub(r"<[^>]+>", "", value))).strip()


def test_the_saved_notebook_holds_what_the_page_shows(jupyter_lab, browser_page):
    page = browser_page
    path = jupyter_lab.root_dir / "saved_state.ipynb"
    write_notebook(path, CELLS)
    open_notebook(page, "saved_state.ipynb")
    for cell in (SETUP, FINDER, WAIT, PREVIEW):
        run_cell(page, cell, timeout=90_000)
    lr = float(re.search(r"lr (\S+)", page.evaluate(
        f"() => window.jupyterapp.shell.currentWidget.content.widgets[{WAIT}].outputArea.node.innerText")).group(1))
    outputs = page.locator(".jp-NotebookPanel:not(.lm-mod-hidden) .jp-OutputArea-output")
    preview = outputs.filter(has=page.locator(".tw-schedule-preview")).first
    code = preview.locator(".tw-schedule-code")

    # the linked preview draws the finder's lr from its first render
    peak = float(f"{lr:.3g}")
    expect(code).to_have_text(re.compile(rf"max_lr={peak:.2e}".replace("e-0", "e-")))
    (schedule,) = [p for p in bokeh_plots(page, "schedule_lr") if p["shown"]]
    assert max(v for v in schedule["sources"]["schedule_lr"]["lr"] if v is not None) == pytest.approx(peak, rel=2e-3)
    screenshot(page, "saved-1-preview-linked", preview)

    # changes from code, then in the page: a shape picked, a pin, another suggestion
    run_cell(page, STATIC)
    run_cell(page, CHANGES)
    preview.locator("select").first.select_option("Cyclic")
    expect(code).to_contain_text("tw.schedules.Cyclic(")
    preview.get_by_role("button", name=re.compile(r"Pin$")).click()
    expect(preview.get_by_text(re.compile(r"pinned: tw.schedules.Cyclic\("))).to_be_visible()
    finder = outputs.filter(has=page.locator(".tw-lr-finder")).first
    pick = finder.locator("select").last
    texts = pick.evaluate("e => [...e.options].map(o => o.text)")
    pick.select_option(index=next(i for i, t in enumerate(texts) if t.startswith("steepest")))
    expect(finder.locator(".tw-chosen-lr input")).not_to_have_value(f"{lr:.2e}".replace("e-0", "e-"))
    # the views re-render after the last change: once the kernel has handled it (kernel_execute
    # returns after that, a marker), save until the file holds what the page shows
    kernel_execute(page, "None")
    nb = wait_saved(page, path, lambda nb: saved_is_shown(page, nb), "the saved plots equal the page's")
    assert_saved_is_shown(page, nb)

    # the chosen-lr line, the status texts and the pinned label are saved as shown
    (lr_plot,) = [p for p in bokeh_plots(page, "lr_curve") if p["shown"]]
    (span,) = [s for s in lr_plot["spans"] if s["name"] == "lr_chosen"]
    kept_spans = [n for e in widget_state(nb).values() if e["model_name"] == "BokehModel"
                  for n in saved_models(e, "Span") if n.get("attributes", {}).get("name") == "lr_chosen"]
    assert len(kept_spans) == 1
    assert kept_spans[0]["attributes"].get("visible", True) is span["visible"] is True
    assert kept_spans[0]["attributes"]["location"] == span["location"]
    html_values = [html_text(e["state"].get("value", "")) for e in widget_state(nb).values()
                   if e["model_name"] == "HTMLModel"]
    for widget in (finder, preview):
        for line in widget.locator(".widget-html-content").all_inner_texts():
            line = re.sub(r"\s+", " ", line).strip()
            if line:
                assert line in html_values, (line, html_values)
    screenshot(page, "saved-2-after-changes", preview)
    static = page.locator(".jp-NotebookPanel:not(.lm-mod-hidden) .jp-Notebook .jp-Cell").nth(STATIC)
    screenshot(page, "saved-3-static-figure", static.locator(".jp-OutputArea-output").first)
    screenshot(page, "saved-4-finder", finder)

    # 50 shape switches: as many models before as after, in the kernel and in the saved file
    models_before = len(widget_state(nb))
    run_cell(page, SWITCHES, timeout=90_000)
    counts = [int(n) for n in re.findall(r"models (\d+) (\d+)", page.evaluate(
        f"() => window.jupyterapp.shell.currentWidget.content.widgets[{SWITCHES}].outputArea.node.innerText"))[0]]
    assert counts[0] == counts[1], counts
    # the page drops a closed model when the kernel's close message reaches it, which on a busy
    # machine can come after a save: after the kernel's marker, save again until the file holds
    # as many models as before (a leak never does)
    kernel_execute(page, "None")
    nb = wait_saved(page, path, lambda nb: len(widget_state(nb)) == models_before,
                    f"the saved file holding {models_before} widget models as before")
    assert len(widget_state(nb)) == models_before, (models_before, len(widget_state(nb)))
    assert_saved_is_shown(page, nb)

    # BokehJS once in the file, from the package (no CDN), and only the core it needs
    loaders = [o for c in nb.cells for o in c.get("outputs", [])
               if "application/vnd.bokehjs_load.v0+json" in o.get("data", {})]
    assert len(loaders) == 1
    assert not any("application/javascript" in o.get("data", {}) for c in nb.cells for o in c.get("outputs", []))
    size = path.stat().st_size
    print(f"\nsaved notebook: {size / 1e6:.2f} MB, {len(widget_state(nb))} widget models, "
          f"kernel models before/after 50 switches {counts}")
    assert size < 3_000_000
    assert_no_widget_errors(page)
