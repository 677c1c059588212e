"""What an offline page needs to draw widgets and Bokeh plots: script tags with everything inline.

The JavaScript comes from two places, never from the network: BokehJS from the installed
bokeh (``bokeh.resources.INLINE``, only the components the page's documents use), and the
files in ``js/`` (widget manager, require.js, the jupyter_bokeh widget bundle, MathJax), put
there by ``tools/fetch_js.py`` at pinned versions (``js/manifest.json`` lists them).

Order matters: BokehJS first (a BokehModel view draws with ``window.Bokeh``), then require.js,
then the jupyter_bokeh bundle registered under its module name (the widget manager asks
require.js for ``@bokeh/jupyter_bokeh`` and would fall back to a CDN if it were missing), then
the widget manager, which renders every widget-view script of the page once the page has
loaded. The manager's bundle refers to its Font Awesome fonts by file name; here they become
data URIs.

Example:
    >>> from tunewidgets.export._runtime import asset_text, escape_script
    >>> "RequireJS" in asset_text("requirejs/require.js")[:200]
    True
    >>> escape_script('s = "</script>"')
    's = "<\\\\/script>"'
"""
from __future__ import annotations

import base64
import functools
import json
import re
import warnings
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

__all__ = [
    "JS_DIR", "asset_text", "escape_script", "script_tag", "bokehjs_scripts", "requirejs_script",
    "widget_manager_scripts", "mathjax_scripts", "manifest",
]

JS_DIR = Path(__file__).with_name("js")

_JUPYTER_BOKEH = "@bokeh/jupyter_bokeh"
# the manager's bundle refers to each font as `<webpack require>.p + "<hash>.<ext>"`
_ASSET_REF = re.compile(r'\b[A-Za-z_$][\w$]*\.p\+"([0-9a-f]{20}\.(?:woff2|woff|ttf|eot|svg))"')
_FONTS_DIR = "html-manager/fonts"
#: references to bundled fonts in embed-amd.js (15 files, in the base and the 7.x bundles)
_EXPECTED_ASSET_REFS = 30
_SCRIPT_END = re.compile(r"</(script)", re.IGNORECASE)
_COMMENT_OPEN = re.compile(r"<!--")


def manifest() -> dict[str, Any]:
    """The record of the shipped files: packages, versions, npm integrity, sha256 per file."""
    return json.loads((JS_DIR / "manifest.json").read_text())


@functools.lru_cache(maxsize=None)
def asset_text(name: str) -> str:
    """The text of a shipped file, by its path under ``js/``."""
    path = JS_DIR / name
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing from the package: reinstall tunewidgets, or run "
                                "`python tools/fetch_js.py` in a source checkout")
    return path.read_text(encoding="utf-8")


def escape_script(code: str) -> str:
    """``code`` made safe inside an inline ``<script>``: no ``</script`` or ``<!--`` left.

    Both only ever occur inside string or regular-expression literals of the bundles, where
    ``<\\/`` and ``\\u003c`` mean the same characters.
    """
    return _COMMENT_OPEN.sub(r"\\u003c!--", _SCRIPT_END.sub(r"<\\/\1", code))


def script_tag(code: str, **attrs: str) -> str:
    extra = "".join(f' {k.replace("_", "-")}="{v}"' for k, v in attrs.items())
    return f"<script{extra}>\n{escape_script(code)}\n</script>"


def bokehjs_scripts(docs_json: Iterable[Mapping[str, Any]] | None) -> str:
    """Script tags with BokehJS inline: the components that ``docs_json`` use (all when None).

    The components (widgets, tables, WebGL, MathJax) are chosen by Bokeh from the documents
    themselves; a document that cannot be read back (a custom model) brings all of them.
    """
    from bokeh import __version__ as bokeh_version
    from bokeh.document import Document
    from bokeh.embed.bundle import bundle_for_objs_and_resources
    from bokeh.resources import INLINE

    docs: list[Any] | None = None
    if docs_json is not None:
        docs = []
        for doc_json in docs_json:
            saved = doc_json.get("version")
            if saved and saved != bokeh_version:
                warnings.warn(f"a plot was saved with Bokeh {saved}, the page gets BokehJS {bokeh_version} "
                              "(the installed bokeh): it may not render; run the notebook again with "
                              f"bokeh {bokeh_version}", stacklevel=3)
            try:
                docs.append(Document.from_json(dict(doc_json)))  # type: ignore[arg-type]
            except Exception:  # an extension model this bokeh does not know
                docs = None
                break
    bundle = bundle_for_objs_and_resources(docs, INLINE)
    tags = [script_tag(js, type="text/javascript") for js in bundle.js_raw]
    tags += [f"<style>\n{css}\n</style>" for css in bundle.css_raw]
    return "\n".join(tags)


def requirejs_script() -> str:
    return script_tag(asset_text("requirejs/require.js"), type="text/javascript")


def widget_manager_scripts(jupyter_bokeh: bool = True) -> str:
    """The widget manager (``embed-amd.js``) with its fonts inline, after the jupyter_bokeh
    bundle registered as the AMD module ``@bokeh/jupyter_bokeh``. Needs require.js before it."""
    tags = []
    if jupyter_bokeh:
        # the bundle calls an anonymous define(); give it its module name
        shim = ("function(){var a=Array.prototype.slice.call(arguments);"
                f'if(typeof a[0]!=="string")a.unshift({json.dumps(_JUPYTER_BOKEH)});'
                "return window.define.apply(this,a);}")
        tags.append(script_tag(f"(function(define){{define.amd=window.define.amd;\n"
                               f"{asset_text('jupyter_bokeh/index.js')}\n}})({shim});",
                               type="text/javascript"))
    tags.append(script_tag(f"window.__tunewidgets_assets={json.dumps(_font_table())};",
                           type="text/javascript"))
    tags.append(script_tag(_embed_amd(), type="text/javascript"))
    return "\n".join(tags)


def mathjax_scripts() -> str:
    """MathJax 3 (TeX input, SVG output: no font files) configured like JupyterLab's markdown:
    ``$...$`` and ``\\(...\\)`` inline, ``$$...$$`` and ``\\[...\\]`` displayed."""
    config = {
        "tex": {"inlineMath": [["$", "$"], ["\\(", "\\)"]], "displayMath": [["$$", "$$"], ["\\[", "\\]"]],
                "processEscapes": True, "processEnvironments": True, "tags": "ams"},
        "svg": {"fontCache": "global"},
        # the menu's speech and explorer options would load more files: keep it off
        "options": {"enableMenu": False},
        "loader": {"load": []},
    }
    return "\n".join([
        script_tag(f"window.MathJax={json.dumps(config)};", type="text/javascript"),
        script_tag(asset_text("mathjax/tex-svg-full.js"), type="text/javascript"),
    ])


@functools.lru_cache(maxsize=1)
def _font_table() -> dict[str, str]:
    table = {}
    for path in sorted((JS_DIR / _FONTS_DIR).glob("*.woff2")):
        table[path.name] = "data:font/woff2;base64," + base64.b64encode(path.read_bytes()).decode()
    return table


@functools.lru_cache(maxsize=1)
def _embed_amd() -> str:
    fonts = _font_table()
    refs = 0

    def replace(match: re.Match[str]) -> str:
        nonlocal refs
        refs += 1
        name = match.group(1)
        if name in fonts:
            return f'window.__tunewidgets_assets["{name}"]'
        return '"data:,"'  # eot, woff, ttf, svg: listed after woff2, never asked for

    code = _ASSET_REF.sub(replace, asset_text("html-manager/embed-amd.js"))
    if refs != _EXPECTED_ASSET_REFS:
        raise RuntimeError(f"html-manager/embed-amd.js refers to {refs} bundled fonts, expected "
                           f"{_EXPECTED_ASSET_REFS}: tools/fetch_js.py fetched another version than "
                           "this module was written for")
    return code
