"""``tw.export_notebook`` and ``python -m tunewidgets.export`` without a browser: what goes into
the page (inline scripts only where needed, saved widget state, no CDN), what they refuse and
how they say so."""
from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

import tunewidgets as tw
from support.notebooks import write_notebook
from tunewidgets.export import MissingWidgetStateError, NotebookExecutionError, external_references

WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"
WIDGET_STATE = "application/vnd.jupyter.widget-state+json"


def _cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "tunewidgets.export", *args], capture_output=True,
                          text=True, timeout=300, cwd=cwd)


def _page_state(html: str) -> dict:
    found = re.search(r'<script type="application/vnd.jupyter.widget-state\+json">\s*(.*?)\s*</script>', html, re.S)
    assert found, "the page holds no widget state"
    return json.loads(found.group(1))["state"]


def _with_widget_view(path: Path, state: dict | None) -> Path:
    """A saved notebook with one widget output, and ``state`` as its saved widget state."""
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    cell = nbformat.v4.new_code_cell("w", execution_count=1)
    cell.outputs = [nbformat.v4.new_output("display_data", data={
        "text/plain": "IntSlider(value=3)",
        WIDGET_VIEW: {"version_major": 2, "version_minor": 0, "model_id": "a" * 32}})]
    nb.cells.append(cell)
    if state is not None:
        nb.metadata["widgets"] = {WIDGET_STATE: {"version_major": 2, "version_minor": 0, "state": state}}
    nbformat.write(nb, path)
    return path


@pytest.mark.slow
def test_unsaved_widget_state_is_refused_with_the_fix(tmp_path):
    nb = _with_widget_view(tmp_path / "lab_default.ipynb", None)
    with pytest.raises(MissingWidgetStateError) as err:
        tw.export_notebook(nb, tmp_path / "out.html")
    message = str(err.value)
    assert "lab_default.ipynb" in message and "no saved widget state" in message
    assert "--execute" in message and "Save Widget State Automatically" in message
    assert not (tmp_path / "out.html").exists()

    proc = _cli(str(nb), "-o", str(tmp_path / "out.html"), cwd=tmp_path)
    assert proc.returncode == 2
    assert proc.stderr.startswith("error: lab_default.ipynb") and "--execute" in proc.stderr
    assert not (tmp_path / "out.html").exists()


def test_widgets_with_state_of_some_outputs_missing_export_with_a_warning(tmp_path):
    nb = nbformat.read(_with_widget_view(tmp_path / "partial.ipynb", {}), as_version=4)
    nb.cells.append(nbformat.v4.new_code_cell("v"))
    nb.cells[-1].outputs = [nbformat.v4.new_output("display_data", data={
        "text/plain": "Button()", WIDGET_VIEW: {"version_major": 2, "version_minor": 0, "model_id": "b" * 32}})]
    nb.metadata["widgets"][WIDGET_STATE]["state"] = {"b" * 32: {
        "model_name": "ButtonModel", "model_module": "@jupyter-widgets/controls", "model_module_version": "2.0.0",
        "state": {"description": "kept"}}}
    nbformat.write(nb, tmp_path / "partial.ipynb")
    with pytest.warns(UserWarning, match=r"1 of 2 widget output\(s\) \(cells 0\) have no saved state"):
        out = tw.export_notebook(tmp_path / "partial.ipynb", tmp_path / "partial.html")
    html = out.read_text()
    assert "IntSlider(value=3)" in html  # shown as its text, as nbconvert does
    assert set(_page_state(html)) == {"b" * 32}


@pytest.mark.notebook
def test_execute_runs_in_the_notebook_folder_and_saves_widget_state(tmp_path):
    nb = write_notebook(tmp_path / "live.ipynb", [
        "import pathlib, ipywidgets as w\npathlib.Path('ran-here.txt').write_text('yes')",
        "w.IntSlider(value=7, description='seven')",
    ])
    out = tw.export_notebook(nb, execute=True)
    assert out == tmp_path / "live.html"
    assert (tmp_path / "ran-here.txt").read_text() == "yes"
    state = _page_state(out.read_text())
    sliders = [e["state"] for e in state.values() if e["model_name"] == "IntSliderModel"]
    assert [(s["value"], s["description"]) for s in sliders] == [(7, "seven")]
    # the saved notebook is left as it was
    assert all(c.outputs == [] for c in nbformat.read(nb, as_version=4).cells)
    html = out.read_text()
    assert external_references(html) == [] and "<script src=" not in html
    assert "window.__tunewidgets_assets=" in html  # the widget manager is inline
    assert "/* BEGIN bokeh.min.js */" not in html  # no plot: neither BokehJS
    assert 'a.unshift("@bokeh/jupyter_bokeh")' not in html  # nor the jupyter_bokeh bundle


@pytest.mark.notebook
@pytest.mark.slow
def test_a_failing_cell_stops_the_export_and_is_named(tmp_path):
    nb = write_notebook(tmp_path / "broken.ipynb", ["x = 1", "1 / 0"])
    with pytest.raises(NotebookExecutionError, match=r"broken.ipynb: cell 1 raised ZeroDivisionError"):
        tw.export_notebook(nb, tmp_path / "broken.html", execute=True)
    assert not (tmp_path / "broken.html").exists()
    proc = _cli(str(nb), "--execute", cwd=tmp_path)
    assert proc.returncode == 1 and "cell 1 raised ZeroDivisionError" in proc.stderr


def test_mathjax_is_inlined_only_for_pages_with_math(tmp_path):
    with_math = write_notebook(tmp_path / "math.ipynb", ["# md\nThe loss $L = -\\log p$ and $$\\sum_i x_i$$"])
    without = write_notebook(tmp_path / "prose.ipynb", ["# md\nCosts 5 dollars, no formulas."])
    assert "window.MathJax=" in tw.export_notebook(with_math).read_text()
    page = tw.export_notebook(without).read_text()
    assert "window.MathJax" not in page and "MathJax.Hub" not in page


def test_a_notebook_never_run_gets_a_warning(tmp_path):
    nb = write_notebook(tmp_path / "fresh.ipynb", ["print('hi')"])
    with pytest.warns(UserWarning, match="holds no outputs.*execute=True"):
        tw.export_notebook(nb)


def test_outside_files_are_reported_and_local_images_inlined(tmp_path):
    png = bytes.fromhex("89504e470d0a1a0a0000000d4948445200000001000000010806000000"
                        "1f15c4890000000d49444154789c6360000002000185d31d4f0000000049454e44ae426082")
    (tmp_path / "dot.png").write_bytes(png)
    nb = write_notebook(tmp_path / "images.ipynb", ["# md\n![dot](dot.png) and ![far](https://example.org/far.png)"])
    with pytest.warns(UserWarning, match=r"refers to 1 file\(s\) outside it.*https://example.org/far.png"):
        out = tw.export_notebook(nb)
    assert external_references(out.read_text()) == ["https://example.org/far.png"]
    assert "data:image/png;base64," in out.read_text()


def test_external_references_skips_code_and_links():
    page = ('<a href="https://example.org">a link</a><script>var s = "<img src=https://x/y.png>";</script>'
            '<script src="https://cdn.example/lib.js"></script><style>p {background: url("bg.png")}</style>'
            '<img src="data:image/png;base64,AAAA">')
    assert external_references(page) == ["bg.png", "https://cdn.example/lib.js"]


@pytest.mark.parametrize(("args", "message"), [
    ({"notebook": "missing.ipynb"}, "notebook: no .ipynb file at 'missing.ipynb'"),
    ({"notebook": "notes.txt"}, "notebook: no .ipynb file"),
    ({"out": "page.pdf"}, "out: 'page.pdf' should end in .html"),
    ({"out": "no/such/folder/page.html"}, "out: the folder 'no/such/folder' does not exist"),
    ({"timeout": 0}, "timeout: must be a number of seconds > 0, got 0"),
])
def test_bad_arguments_name_the_field_and_the_fix(tmp_path, monkeypatch, args, message):
    monkeypatch.chdir(tmp_path)
    write_notebook(tmp_path / "ok.ipynb", ["1"])
    (tmp_path / "notes.txt").write_text("not a notebook")
    call = {"notebook": "ok.ipynb", "out": "ok.html", **args}
    with pytest.raises(ValueError, match=re.escape(message)):
        tw.export_notebook(call.pop("notebook"), call.pop("out"), **call)


@pytest.mark.slow
def test_importing_the_export_loads_no_converter_and_no_ui_library():
    code = ("import sys, tunewidgets as tw, tunewidgets.export; f = tw.export_notebook; "
            "print(sorted(m for m in ('nbconvert', 'nbclient', 'bokeh', 'ipywidgets', 'jupyter_bokeh') "
            "if m in sys.modules))")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "[]"
