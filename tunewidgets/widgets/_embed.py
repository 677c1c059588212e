"""A widget as one offline HTML page: its state, its plots and every script it needs, inline.

``widget.to_html(path)`` (every tunewidgets widget has it) and :func:`write_widget_html` (any
ipywidget, e.g. a ``bokeh_widget`` view) write a page that shows the widget as it is now:
controls, status and plots, with the data the plots hold. It opens from disk with no network
(see :mod:`tunewidgets.export._runtime` for what is inlined). The page is a snapshot: the
controls can be moved, but nothing runs behind them.

Each Bokeh view is rendered afresh from its figure for the page, without sending anything to
the notebook's page (a user's zoom there stays), so data streamed since the widget's last full
render is in the page too.

Example:
    >>> import tunewidgets as tw
    >>> from tunewidgets.export import external_references
    >>> preview = tw.widgets.SchedulePreview(tw.schedules.OneCycle(max_lr=0.1), total_steps=200)
    >>> path = preview.to_html("schedule.html")
    >>> html = path.read_text()
    >>> "application/vnd.jupyter.widget-state+json" in html, external_references(html)
    (True, [])
"""
from __future__ import annotations

import html
import json
import os
from pathlib import Path
from typing import Any

import ipywidgets as widgets
from ipywidgets.embed import dependency_state, embed_data, escape_script

from tunewidgets.export._output import check_output
from tunewidgets.export._runtime import bokehjs_scripts, requirejs_script, widget_manager_scripts

__all__ = ["widget_page_state", "widget_html", "write_widget_html", "HTMLExport"]

_PAGE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1.0">
<title>{title}</title>
<style>
body {{ margin: 24px; font-family: system-ui, -apple-system, "Segoe UI", Roboto, sans-serif;
        font-size: 13px; color: #212121; background: #fff; }}
.tunewidgets-widget {{ max-width: 1100px; }}
</style>
{scripts}
</head>
<body>
<script type="application/vnd.jupyter.widget-state+json">
{state}
</script>
<div class="tunewidgets-widget">
<script type="application/vnd.jupyter.widget-view+json">
{view}
</script>
</div>
</body>
</html>
"""


def widget_page_state(widget: widgets.Widget) -> tuple[dict[str, Any], dict[str, Any], list[dict[str, Any]]]:
    """The widget manager state of ``widget`` and all widgets it refers to, its view spec, and
    the Bokeh documents its plots hold (one per Bokeh view, rendered from the figure now)."""
    if not isinstance(widget, widgets.DOMWidget):
        raise TypeError(f"widget: expected a displayable ipywidget, got {type(widget).__name__}; "
                        "e.g. tw.widgets.LRFinder(task)")
    if widget.comm is None:
        raise ValueError(f"widget: this {type(widget).__name__} was closed; an export needs an open widget")
    state = dependency_state([widget], drop_defaults=True)
    docs = []
    for model_id, entry in state.items():
        view = _instances().get(model_id)
        if view is not None and hasattr(view, "_model_to_traits") and getattr(view, "_model", None) is not None:
            from bokeh.core.json_encoder import serialize_json

            bundle = type(view)._model_to_traits(view._model)
            entry["state"]["render_bundle"] = serialize_json(bundle)
            docs.extend(bundle["docs_json"].values())
    data = embed_data(views=[widget], drop_defaults=True, state=state)
    (view_spec,) = data["view_specs"]
    return data["manager_state"], view_spec, docs


def widget_html(widget: widgets.Widget, *, title: str | None = None) -> str:
    """The offline page of ``widget`` as a string (see :func:`write_widget_html`)."""
    manager_state, view_spec, docs = widget_page_state(widget)
    has_bokeh = any(e["model_module"] == "@bokeh/jupyter_bokeh" for e in manager_state["state"].values())
    scripts = []
    if has_bokeh:
        scripts.append(bokehjs_scripts(docs))
    scripts += [requirejs_script(), widget_manager_scripts(jupyter_bokeh=has_bokeh)]
    return _PAGE.format(
        title=html.escape(title if title is not None else type(widget).__name__),
        scripts="\n".join(scripts),
        state=escape_script(json.dumps(manager_state)),
        view=escape_script(json.dumps(view_spec)),
    )


def write_widget_html(widget: widgets.Widget, path: str | os.PathLike[str], *,
                      title: str | None = None, overwrite: bool = False) -> Path:
    """Write ``widget`` as one self-contained HTML page to ``path`` and return the path.

    The page shows the widget as it is now (controls, status, plots and their data) and
    needs no network: open it from disk, mail it, put it on any web server. An existing file
    that is not a page tunewidgets wrote (a run store's file, say) or a folder is refused
    unless ``overwrite`` (never a folder).
    """
    target = check_output(path, overwrite=overwrite, field="path", example="lr_finder.html")
    if target.suffix.lower() not in (".html", ".htm"):
        raise ValueError(f"path: {str(target)!r} should end in .html, e.g. 'lr_finder.html'")
    text = widget_html(widget, title=title)
    target.write_text(text, encoding="utf-8")
    return target


class HTMLExport:
    """Gives a widget ``to_html(path)``: the widget as one offline HTML page."""

    def to_html(self, path: str | os.PathLike[str], *, title: str | None = None, overwrite: bool = False) -> Path:
        """Write this widget, as it is now, to ``path`` as one self-contained HTML file.

        Plots, controls and status are in the page with the data they show; scripts and
        fonts are inline, so it renders from disk with no network. Returns the path. An existing
        file that tunewidgets did not write is replaced only with ``overwrite=True``.
        """
        return write_widget_html(self, path, title=title, overwrite=overwrite)  # type: ignore[arg-type]


def _instances() -> dict[str, Any]:
    from ipywidgets.widgets import widget as widget_module

    return widget_module._instances
