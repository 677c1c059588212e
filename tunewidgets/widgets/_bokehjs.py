"""BokehJS in the notebook page: loaded from the installed package (works offline), each part once.

``jupyter_bokeh.BokehModel`` needs ``window.Bokeh`` in the page, and the ``jupyter_bokeh`` lab
extension does not bring it. :func:`ensure_bokehjs` publishes, once per page, the parts of
BokehJS a figure needs and have not been published to that page yet: the core (about 1.3 MB) for
the figures tunewidgets draws; widgets, tables, WebGL or MathJax only for figures that use them.
A page is new to the kernel when its widget manager connects (a reload, a second tab, the
notebook opened again while the kernel runs): ipywidgets' front end then opens its
``jupyter.widget.control`` comm to fetch the widgets' states, and from that moment the next
widget shown publishes BokehJS again, so its plots (and those of a widget shown before the
reload and shown again) render in the new page.
It publishes them in one MIME type only (``application/vnd.bokehjs_load.v0+json``, which the
``jupyter_bokeh`` extension runs), where ``bokeh.io.output_notebook`` publishes all five parts
twice (about 8 MB in a saved notebook). In the page each part is skipped when it is already
there (a second kernel, a restarted one, or a front end that provides BokehJS itself). With the
environment variable ``TUNEWIDGETS_BOKEHJS=none`` nothing is embedded at all: for front ends
whose own extension provides BokehJS.

Under Voila the same script goes out as ``application/javascript`` instead
(:func:`load_mime_type`): ``jupyter_bokeh`` registers its renderer for the load MIME type on
each notebook panel JupyterLab opens, and a Voila page has no notebook panel, so that output
would be dropped, ``window.Bokeh`` never defined and every plot a "Failed to create view for
'BokehView'" box. Voila marks outputs trusted and runs JavaScript outputs. A kernel knows it
runs under Voila from the ``VOILA_*`` variables Voila puts in every kernel's environment.

The same output carries two small fixes for ``jupyter_bokeh``'s view:

- re-rendered from a new bundle while BokehJS is still building the previous document, the view
  clears that document under the builder, which then fails with "configuration is missing" (an
  uncaught error in the page). The clear waits until the build it would cut short has finished.
- the view sent every patch it applied back to the kernel (a message, and a busy and an idle
  from the kernel, per change the kernel made). BokehJS marks the changes a patch applies
  ``sync = false``, and Bokeh's own server session never sends those back; the view's document
  listener now drops them too. What the page changes itself (a legend click, a zoom) still goes.

Example:
    >>> from tunewidgets.widgets._bokehjs import bokehjs_parts, loader_js
    >>> from bokeh.plotting import figure
    >>> fig = figure()
    >>> [name for name, _ in bokehjs_parts([fig]) if not name.startswith("extra-")]  # the core only
    ['bokeh']
    >>> js = loader_js(bokehjs_parts([fig]))
    >>> "models/widgets/sliders/slider" in js, "configuration" in js, len(js) < 2_000_000
    (False, True, True)
    >>> load_mime_type({}), load_mime_type({"VOILA_BASE_URL": "/"})  # JupyterLab, Voila
    ('application/vnd.bokehjs_load.v0+json', 'application/javascript')
"""
from __future__ import annotations

import hashlib
import json
import os
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

__all__ = ["LOAD_MIME_TYPE", "SCRIPT_MIME_TYPE", "ENV_VAR", "ensure_bokehjs", "bokehjs_parts", "loader_js",
           "load_mime_type", "reset_loaded", "watch_pages"]

LOAD_MIME_TYPE = "application/vnd.bokehjs_load.v0+json"
SCRIPT_MIME_TYPE = "application/javascript"  # what a Voila page runs (see the module doc)
ENV_VAR = "TUNEWIDGETS_BOKEHJS"
# set by Voila in the environment of every kernel it starts (pre-heated ones included)
_VOILA_VARS = ("VOILA_BASE_URL", "VOILA_PREHEAT", "VOILA_SERVER_URL", "VOILA_APP_PORT")
# a module each optional part registers: the page skips a part that is already there
_PROBES = {
    "bokeh-gl": "models/glyphs/webgl/line_gl",
    "bokeh-widgets": "models/widgets/sliders/slider",
    "bokeh-tables": "models/widgets/tables/data_table",
    "bokeh-mathjax": "models/text/mathjax/index",
}
_PART_NAME = re.compile(r"^/\* BEGIN ([\w.-]+?)(?:\.min)?\.js \*/")

_published: set[str] = set()  # keys of the parts published since the last page connected
_guard_published = False
_CONTROL_TARGET = "jupyter.widget.control"  # the comm a widget manager opens when it connects
_watching_pages = False

# Defers Document.clear() while BokehJS still builds that document's views (see module doc).
_GUARD_JS = r"""
(function (root) {
  function install() {
    const B = root.Bokeh;
    if (B == null || B.require == null) return false;
    if (B.__tunewidgets_guard) return true;
    const {Document} = B.require("document");
    const standalone = B.require("embed/standalone");
    const building = new WeakMap();
    const add = standalone.add_document_standalone;
    standalone.add_document_standalone = function (doc, ...rest) {
      const done = add.call(this, doc, ...rest);
      building.set(doc, done);
      const forget = () => { if (building.get(doc) === done) building.delete(doc); };
      done.then(forget, forget);
      return done;
    };
    // the view's listener: drop the changes a kernel patch applied (they came from the kernel)
    const on_change = Document.prototype.on_change;
    Document.prototype.on_change = function (callback, allow_batches) {
      if (!allow_batches && /\b_change_event\b/.test(String(callback))) {
        const own = (event) => { if (event.sync !== false) callback(event); };
        return on_change.call(this, own, allow_batches);
      }
      return on_change.call(this, callback, allow_batches);
    };
    const clear = Document.prototype.clear;
    Document.prototype.clear = function (...args) {
      const pending = building.get(this);
      if (pending != null) {  // "configuration is missing" if cleared now
        const later = () => clear.apply(this, args);
        pending.then(later, later);
        return;
      }
      return clear.apply(this, args);
    };
    B.__tunewidgets_guard = true;
    return true;
  }
  if (!install()) {
    let tries = 0;
    const timer = setInterval(() => { if (install() || ++tries > 200) clearInterval(timer); }, 50);
  }
})(window);
"""


def _mode() -> str:
    return os.environ.get(ENV_VAR, "inline").strip().lower() or "inline"


def load_mime_type(environ: Mapping[str, str] | None = None) -> str:
    """The MIME type BokehJS is published in: :data:`LOAD_MIME_TYPE` (run by ``jupyter_bokeh``'s
    notebook extension in JupyterLab and Notebook), or :data:`SCRIPT_MIME_TYPE` in a kernel that
    Voila started (``environ``: the process's environment when None)."""
    env = os.environ if environ is None else environ
    return SCRIPT_MIME_TYPE if any(name in env for name in _VOILA_VARS) else LOAD_MIME_TYPE


def bokehjs_parts(objs: Sequence[Any] | None = None) -> list[tuple[str, str]]:
    """``(name, javascript)`` of the BokehJS parts that ``objs`` (Bokeh models) need, core first;
    all parts for None. Names: ``bokeh``, ``bokeh-gl``, ``bokeh-widgets``, ``bokeh-tables``,
    ``bokeh-mathjax``, or ``extra-<hash>`` for other code (custom models, log level)."""
    from bokeh.embed.bundle import bundle_for_objs_and_resources
    from bokeh.resources import INLINE

    bundle = bundle_for_objs_and_resources(list(objs) if objs is not None else None, INLINE)
    parts = []
    for text in bundle.js_raw:
        match = _PART_NAME.match(text)
        name = match.group(1) if match else "extra-" + hashlib.sha1(text.encode()).hexdigest()[:12]
        parts.append((name, text))
    return parts


def loader_js(parts: Iterable[tuple[str, str]]) -> str:
    """One script that runs each part unless the page has it already, then installs the guard."""
    from bokeh import __version__

    chunks = ["(function (root) {", f"  const version = {json.dumps(__version__)};",
              "  function has(name) { try { root.Bokeh.require(name); return true; } catch (e) { return false; } }",
              "  root.__tunewidgets_bokehjs = root.__tunewidgets_bokehjs || {};"]
    for name, text in parts:
        if name == "bokeh":
            test = "root.Bokeh == null || root.Bokeh[version] == null"
        elif name in _PROBES:
            test = f"root.Bokeh != null && !has({json.dumps(_PROBES[name])})"
        else:
            test = f"!root.__tunewidgets_bokehjs[{json.dumps(name)}]"
        chunks.append(f"  if ({test}) {{ (function () {{\n{text}\n}}).call(root); "
                      f"root.__tunewidgets_bokehjs[{json.dumps(name)}] = true; }}")
    chunks.append("})(window);")
    chunks.append(_GUARD_JS)
    return "\n".join(chunks)


def ensure_bokehjs(objs: Sequence[Any] | None = None, *, force: bool = False) -> bool:
    """Publish the BokehJS parts ``objs`` need that this kernel has not published yet (all of
    them again with ``force``). Returns True when it published something. Does nothing outside
    a kernel, nor with ``TUNEWIDGETS_BOKEHJS=none`` (then only the small race guard goes out)."""
    global _guard_published
    from tunewidgets.widgets._kernel import in_kernel

    if not in_kernel():
        return False
    watch_pages()
    if _mode() == "none":
        if _guard_published and not force:
            return False
        _publish(_GUARD_JS)
        _guard_published = True
        return True
    parts = [(name, text) for name, text in bokehjs_parts(objs) if force or name not in _published]
    if not parts:
        return False
    _publish(loader_js(parts))
    _published.update(name for name, _ in parts)
    _guard_published = True
    from bokeh.io.state import curstate

    curstate().output_notebook()  # bokeh.io.show() then displays in the notebook too
    return True


def watch_pages() -> bool:
    """Forget what was published whenever a new page's widget manager connects to this kernel
    (it opens the ``jupyter.widget.control`` comm). Installed once, by :func:`ensure_bokehjs`;
    returns True when the hook is in place."""
    global _watching_pages
    if _watching_pages:
        return True
    try:
        import ipywidgets  # noqa: F401  (registers the control target first)
        from comm import get_comm_manager
    except ImportError:  # pragma: no cover - both come with ipywidgets
        return False
    manager = get_comm_manager()
    opened = getattr(manager, "targets", {}).get(_CONTROL_TARGET)
    if opened is None:
        return False

    def page_connected(comm: Any, msg: Any) -> Any:
        reset_loaded()
        return opened(comm, msg)

    manager.register_target(_CONTROL_TARGET, page_connected)
    _watching_pages = True
    return True


def reset_loaded() -> None:
    """Forget what was published (a new page connected, or a test)."""
    global _guard_published
    _published.clear()
    _guard_published = False


def _publish(js: str) -> None:
    from IPython.display import publish_display_data

    publish_display_data({load_mime_type(): js}, metadata={})
