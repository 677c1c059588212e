"""Notebooks 01 and 02 exported to HTML render offline: opened from file:// in headless Chromium
with every request outside the file aborted, no request is made, nothing fails, every widget
output draws its plot, and the LR range test plot holds exactly the result's curves.

Notebook 01 is run headless (support.notebooks.run_notebook, which saves widget state) and
exported as saved; notebook 02 goes through ``python -m tunewidgets.export --execute``.
"""
from __future__ import annotations

import json
import math
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import nbformat
import numpy as np
import pytest

import tunewidgets as tw
from offline_page import bokeh_sources, open_offline, wait_for_canvases
from support.lab_page import button_name
from support.notebooks import run_notebook
from tunewidgets.export import MissingWidgetStateError, external_references

pytestmark = [pytest.mark.notebook, pytest.mark.slow]

NOTEBOOKS = Path(__file__).resolve().parents[2] / "notebooks"
NB01, NB02 = NOTEBOOKS / "01_lr_range_test.ipynb", NOTEBOOKS / "02_schedules.ipynb"
WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"
# appended to a copy of notebook 01: the curves of the three range tests it shows, from its kernel
DUMP_CURVES = """import json, pathlib
pathlib.Path("curves.json").write_text(json.dumps({
    name: {"lr": r.lrs.tolist(), "loss": r.losses.tolist(), "smoothed": r.smoothed.tolist(),
           "suggestions": r.suggestions}
    for name, r in (("finder", finder.result), ("spirals", res), ("narrow", narrow))}))"""


def _views(nb: nbformat.NotebookNode) -> list[str]:
    return [o["data"][WIDGET_VIEW]["model_id"] for c in nb.cells for o in c.get("outputs", [])
            if WIDGET_VIEW in o.get("data", {})]


@pytest.fixture(scope="module")
def nb01(tmp_path_factory: pytest.TempPathFactory) -> SimpleNamespace:
    base = tmp_path_factory.mktemp("export01")
    source = base / "source" / "notebooks" / NB01.name
    source.parent.mkdir(parents=True)
    nb = nbformat.read(NB01, as_version=4)
    nb.cells.append(nbformat.v4.new_code_cell(DUMP_CURVES))
    nbformat.write(nb, source)
    began = time.perf_counter()
    executed = run_notebook(source, timeout=180, workdir=base / "run")
    run_s = time.perf_counter() - began
    saved = base / NB01.name
    nbformat.write(executed, saved)
    began = time.perf_counter()
    out = tw.export_notebook(saved, base / "01_lr_range_test.html")
    export_s = time.perf_counter() - began
    curves = json.loads((base / "run" / "notebooks" / "curves.json").read_text())
    print(f"\nnotebook 01: ran in {run_s:.1f} s, saved {saved.stat().st_size / 1e6:.1f} MB; exported in "
          f"{export_s:.1f} s to {out.stat().st_size / 1e6:.2f} MB")
    return SimpleNamespace(saved=saved, executed=executed, html=out, curves=curves)


@pytest.fixture(scope="module")
def nb02(tmp_path_factory: pytest.TempPathFactory) -> SimpleNamespace:
    base = tmp_path_factory.mktemp("export02")
    copy = base / NB02.name
    copy.write_bytes(NB02.read_bytes())
    out = base / "schedules.html"
    began = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "tunewidgets.export", str(copy), "-o", str(out), "--execute"],
                          capture_output=True, text=True, timeout=300, cwd=base)
    assert proc.returncode == 0, proc.stderr[-3000:]
    print(f"\nnotebook 02: executed and exported in {time.perf_counter() - began:.1f} s to "
          f"{out.stat().st_size / 1e6:.2f} MB")
    assert proc.stdout.startswith(f"wrote {out}")
    assert all(c.get("outputs", []) == [] for c in nbformat.read(copy, as_version=4).cells)  # left as saved
    return SimpleNamespace(html=out)


def _check_renders_offline(browser, html: Path, widget_outputs: int) -> object:
    shown = open_offline(browser, html)
    outputs = shown.page.locator("div.jupyter-widgets.jp-OutputArea-output")
    canvases = wait_for_canvases(shown.page, outputs)
    print(f"{html.name}: loaded in {shown.load_s:.1f} s; canvases per widget output {canvases}")
    assert len(canvases) == widget_outputs
    assert all(n >= 1 for n in canvases), canvases
    shown.assert_clean()
    shown.screenshot(html.stem)
    return shown


@pytest.mark.browser
def test_notebook_01_renders_offline_with_every_widget_plot(nb01, browser):
    views = _views(nb01.executed)
    assert len(views) == 4  # the three-lr figure, the LRFinder and the two spirals plots
    shown = _check_renders_offline(browser, nb01.html, len(views))
    # the finder's controls and status came along with its plot
    page = shown.page
    assert page.get_by_role("button", name=button_name("Run test")).count() == 1
    assert "suggested lr" in page.locator("div.jupyter-widgets.jp-OutputArea-output").nth(1).inner_text()
    shown.page.context.close()


@pytest.mark.browser
def test_lr_range_test_plots_in_the_page_hold_the_results_curves(nb01, browser):
    shown = open_offline(browser, nb01.html)
    wait_for_canvases(shown.page, shown.page.locator("div.jupyter-widgets.jp-OutputArea-output"))
    sources = bokeh_sources(shown.page)
    shown.page.context.close()
    by_doc: dict[int, dict[str, dict]] = {}
    for s in sources:
        by_doc.setdefault(s["doc"], {})[s["name"]] = s["columns"]
    curves = [doc for doc in by_doc.values() if "lr_curve" in doc]
    assert len(curves) == 3

    def same(a, b) -> bool:
        a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
        return a.shape == b.shape and np.allclose(a, b, rtol=1e-12, atol=0, equal_nan=True)

    for name, expected in nb01.curves.items():
        matching = [doc for doc in curves if all(same(doc["lr_curve"][c], expected[c])
                                                 for c in ("lr", "loss", "smoothed"))]
        assert len(matching) == 1, f"{name}: {len(matching)} plots in the page hold its curve"
        markers = dict(zip(matching[0]["lr_markers"]["method"], matching[0]["lr_markers"]["x"]))
        wanted = {m: v for m, v in expected["suggestions"].items() if v is not None}
        assert markers.keys() == wanted.keys() and all(math.isclose(markers[m], wanted[m], rel_tol=1e-12)
                                                        for m in wanted)
    finder = nb01.curves["finder"]
    assert len(finder["lr"]) > 10 and math.isclose(finder["lr"][0], 1e-7, rel_tol=1e-9)


@pytest.mark.browser
def test_notebook_02_exported_with_execute_renders_offline(nb02, browser):
    # SchedulePreview and the three-panel comparison of the trained runs
    shown = _check_renders_offline(browser, nb02.html, 2)
    outputs = shown.page.locator("div.jupyter-widgets.jp-OutputArea-output")
    assert outputs.nth(1).locator(".bk-Canvas").count() == 3
    shown.page.context.close()


def test_pages_carry_bokehjs_once_and_nothing_from_outside(nb01, nb02):
    loaders = [o for c in nb01.executed.cells for o in c.get("outputs", [])
               if "application/vnd.bokehjs_load.v0+json" in o.get("data", {})]
    assert loaders  # the notebook loads BokehJS into its page ...
    for html in (nb01.html, nb02.html):
        page = html.read_text()
        assert page.count("/* BEGIN bokeh.min.js */") == 1  # ... the export carries it once
        assert external_references(page) == []
        assert "<script src=" not in page
        assert "LRFinder(children=" not in page and "SchedulePreview(children=" not in page


def test_notebook_01_saved_without_widget_state_is_refused(nb01, tmp_path):
    nb = nbformat.read(nb01.saved, as_version=4)
    del nb.metadata["widgets"]  # what JupyterLab saves by default
    nbformat.write(nb, tmp_path / NB01.name)
    with pytest.raises(MissingWidgetStateError, match=r"its 4 widget output\(s\) \(cells [\d, ]+\) have no saved"):
        tw.export_notebook(tmp_path / NB01.name, tmp_path / "out.html")
