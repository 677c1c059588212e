"""The JavaScript shipped for offline HTML: what tools/fetch_js.py recorded, at versions that go
with the installed ipywidgets and jupyter_bokeh, with licences, declared as package data, and
inlined safely (fonts as data URIs, no script tag closed early)."""
from __future__ import annotations

import glob
import importlib.util
import json
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from tunewidgets.export import _runtime

REPO = Path(__file__).resolve().parents[2]
JS = REPO / "tunewidgets" / "export" / "js"
PACKAGE = REPO / "tunewidgets" / "export"
LAB_MANAGER = Path(sys.prefix) / "share/jupyter/labextensions/@jupyter-widgets/jupyterlab-manager/package.json"


def _manifest() -> dict:
    return json.loads((JS / "manifest.json").read_text())


def test_shipped_files_match_the_manifest_and_the_pins():
    proc = subprocess.run([sys.executable, str(REPO / "tools" / "fetch_js.py"), "--check"],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "matches" in proc.stdout
    names = {p["name"]: p["version"] for p in _manifest()["packages"]}
    assert names == {"@jupyter-widgets/html-manager": "1.0.15", "@bokeh/jupyter_bokeh": "4.1.0",
                     "requirejs": "2.3.8", "mathjax": "3.2.2", "@fortawesome/fontawesome-free": "5.15.4"}


def test_the_check_fails_on_a_changed_file(tmp_path, monkeypatch):
    # the check itself can fail: a shipped file that differs from its recorded sha256
    spec = importlib.util.spec_from_file_location("fetch_js", REPO / "tools" / "fetch_js.py")
    fetch_js = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(fetch_js)
    copy = tmp_path / "js"
    shutil.copytree(JS, copy)
    (copy / "requirejs" / "require.js").write_text("tampered")
    monkeypatch.setattr(fetch_js, "JS_DIR", copy)
    monkeypatch.setattr(fetch_js, "MANIFEST", copy / "manifest.json")
    assert fetch_js.check() == ["requirejs/require.js: sha256 differs from the manifest"]


def _caret(version_range: str) -> tuple[int, ...]:
    assert version_range.startswith("^"), version_range
    return tuple(int(x) for x in version_range[1:].split("."))


def test_widget_manager_goes_with_the_installed_ipywidgets():
    import ipywidgets

    manager = json.loads((JS / "html-manager" / "package.json").read_text())
    version = tuple(int(x) for x in manager["version"].split("."))
    wanted = _caret(ipywidgets._version.__html_manager_version__)  # '^1.0.1' for ipywidgets 8.1
    assert version[0] == wanted[0] and version >= wanted
    # the same widget model packages as JupyterLab's widget manager (jupyterlab_widgets)
    lab = json.loads(LAB_MANAGER.read_text())
    for dep in ("@jupyter-widgets/base", "@jupyter-widgets/controls", "@jupyter-widgets/output"):
        assert _caret(manager["dependencies"][dep])[0] == _caret(lab["dependencies"][dep])[0], dep


def test_jupyter_bokeh_bundle_is_the_installed_version():
    import jupyter_bokeh

    bundle = (JS / "jupyter_bokeh" / "index.js").read_text()
    found = re.search(r'name:"@bokeh/jupyter_bokeh",version:"([\d.]+)"', bundle)
    assert found and found.group(1) == jupyter_bokeh.__version__


def test_every_shipped_bundle_has_its_licence():
    files = _manifest()["files"]
    for folder in ("html-manager", "jupyter_bokeh", "requirejs", "mathjax"):
        licences = [f for f in files if f.startswith(folder + "/") and "LICENSE" in f.upper()]
        assert licences, f"{folder} ships without a licence"
        assert all((JS / f).stat().st_size > 500 for f in licences)
    assert "Font Awesome" in (JS / "html-manager" / "LICENSE-fontawesome.txt").read_text()
    assert "MIT" in (JS / "requirejs" / "LICENSE.txt").read_text()


def test_package_data_declares_every_shipped_file():
    config = tomllib.loads((REPO / "pyproject.toml").read_text())
    patterns = config["tool"]["setuptools"]["package-data"]["tunewidgets.export"]
    declared = {Path(p) for pattern in patterns for p in glob.glob(str(PACKAGE / pattern))}
    shipped = {p for folder in ("js", "templates") for p in (PACKAGE / folder).rglob("*") if p.is_file()}
    assert shipped and shipped <= declared, sorted(str(p) for p in shipped - declared)


def test_fonts_become_data_uris_and_no_bundled_asset_is_left_to_fetch():
    scripts = _runtime.widget_manager_scripts()
    assert not re.search(r'\.p\+"[0-9a-f]{20}\.(?:woff2|woff|ttf|eot|svg)"', scripts)
    fonts = re.search(r"window\.__tunewidgets_assets=(\{.*?\});", scripts).group(1)
    assert sorted(json.loads(fonts)) == sorted(p.name for p in (JS / "html-manager" / "fonts").glob("*.woff2"))
    assert all(v.startswith("data:font/woff2;base64,") for v in json.loads(fonts).values())


@pytest.mark.parametrize("code", ['a = "</script>";', "b = /<!--x/;", 'c = "</SCRIPT >"'])
def test_inline_scripts_cannot_be_closed_early(code):
    tag = _runtime.script_tag(code)
    body = tag[len("<script>"):-len("</script>")]
    assert "</script" not in body.lower() and "<!--" not in body


def test_a_parser_sees_each_inline_bundle_as_one_whole_script():
    from html.parser import HTMLParser

    class Scripts(HTMLParser):
        def __init__(self) -> None:
            super().__init__(convert_charrefs=False)
            self.bodies: list[str] = []
            self.inside = False

        def handle_starttag(self, tag, attrs):
            if tag == "script":
                self.inside = True
                self.bodies.append("")

        def handle_endtag(self, tag):
            self.inside = False if tag == "script" else self.inside

        def handle_data(self, data):
            if self.inside:
                self.bodies[-1] += data

    pieces = [_runtime.requirejs_script(), _runtime.widget_manager_scripts(), _runtime.mathjax_scripts(),
              _runtime.bokehjs_scripts(None)]
    parser = Scripts()
    parser.feed("\n".join(pieces))
    # every bundle (BokehJS, MathJax, the widget manager with its <script> strings) ends where it should
    assert len(parser.bodies) == sum(p.count("\n</script>") for p in pieces) >= 7
    assert parser.bodies[0].lstrip().startswith("/** vim") and "requirejs" in parser.bodies[0][-20000:]
    assert parser.bodies[-1].strip() == 'Bokeh.set_log_level("info");'


def test_bokehjs_components_follow_the_documents():
    from bokeh.document import Document
    from bokeh.embed.util import standalone_docs_json
    from bokeh.models import ColumnDataSource, DataTable, TableColumn
    from bokeh.plotting import figure

    def docs_json(model):
        doc = Document()
        doc.add_root(model)
        return list(standalone_docs_json([model]).values())

    fig = figure()
    fig.line([1, 2], [3, 4])
    plain = _runtime.bokehjs_scripts(docs_json(fig))
    table = DataTable(source=ColumnDataSource({"a": [1]}), columns=[TableColumn(field="a")])
    with_table = _runtime.bokehjs_scripts(docs_json(table))
    assert re.findall(r"/\* BEGIN (\S+) \*/", plain) == ["bokeh.min.js"]
    assert "bokeh-tables.min.js" in re.findall(r"/\* BEGIN (\S+) \*/", with_table)
