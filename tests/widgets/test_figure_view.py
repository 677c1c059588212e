"""FigureView headless: what the page sends back never fixes the axes or undoes the kernel's
changes, a user's zoom survives a re-render until reset, and the saved state follows the figure."""
from __future__ import annotations

import json
import math

import pytest
from bokeh.core.serialization import Serializer
from bokeh.document.events import ModelChangedEvent
from bokeh.models import Span
from bokeh.plotting import figure

from tunewidgets.widgets._bokeh import bokeh_widget, saved_columns
from tunewidgets.widgets._bokehjs import bokehjs_parts, loader_js


def page_sends(view, model, attr, value) -> None:
    """A ModelChanged the browser sends, as jupyter_bokeh's view encodes it."""
    event = ModelChangedEvent(model.document, model, attr, value)
    view._sync_model(view, {**Serializer().encode(event), "event": "jsevent"}, [])


def page_event(view, plot, name: str, **values) -> None:
    """A UI event (``rangesupdate``, ``reset``) the browser publishes for ``plot``."""
    entries = [["model", {"id": plot.id}], *([k, v] for k, v in values.items())]
    content = {"kind": "MessageSent", "msg_type": "bokeh_event", "event": "jsevent",
               "msg_data": {"type": "event", "name": name, "values": {"type": "map", "entries": entries}}}
    view._sync_model(view, content, [])


def rendered(view) -> dict:
    """The document the view's last render holds (what a saved notebook shows)."""
    bundle = view.get_state()["render_bundle"]
    bundle = json.loads(bundle) if isinstance(bundle, str) else bundle
    (doc,) = bundle["docs_json"].values()
    return doc


def find(node, model_id):
    if isinstance(node, dict):
        if node.get("id") == model_id and "name" in node:
            return {"attributes": {}, **node}
        for v in node.values():
            if (hit := find(v, model_id)) is not None:
                return hit
    elif isinstance(node, list):
        for v in node:
            if (hit := find(v, model_id)) is not None:
                return hit
    return None


def line_figure():
    fig = figure(width=300, height=200)
    fig.line([1, 2, 3], [4, 5, 6], name="points")
    return fig


def test_range_values_from_the_page_are_not_applied_so_every_render_fits_the_data():
    fig = line_figure()
    view = bokeh_widget(fig)
    for attr, value in (("start", 0.8), ("end", 3.2)):  # what the page computed for its fit
        page_sends(view, fig.x_range, attr, value)
    assert math.isnan(fig.x_range.start) and math.isnan(fig.x_range.end)
    fig.renderers[0].data_source.data = {"x": [10, 20], "y": [1, 2]}  # the next run's data
    x_range = find(rendered(view), fig.x_range.id)
    assert "start" not in x_range["attributes"] and "end" not in x_range["attributes"]
    assert saved_columns(view)["x"] == [10, 20]


def test_a_zoom_is_restored_by_the_next_render_until_reset_or_fit():
    fig = line_figure()
    view = bokeh_widget(fig)
    for model, attr, value in ((fig.x_range, "start", 1.5), (fig.x_range, "end", 2.5),
                               (fig.y_range, "start", 4.4), (fig.y_range, "end", 5.5)):
        page_sends(view, model, attr, value)
    assert not view.zoomed and "callbacks" not in rendered(view)  # the page's own fit: nothing kept
    page_event(view, fig, "rangesupdate", x0=1.5, x1=2.5, y0=4.4, y1=5.5)  # a pan or zoom ended
    assert view.zoomed
    fig.renderers[0].data_source.data = {"x": [1, 2, 3, 4], "y": [4, 5, 6, 7]}
    doc = rendered(view)
    (restore,) = doc["callbacks"]["entries"][0][1]
    args = dict(restore["attributes"]["args"]["entries"])
    assert args["starts"] == [1.5, 4.4] and args["ends"] == [2.5, 5.5]
    assert [r["id"] for r in args["ranges"]] == [fig.x_range.id, fig.y_range.id]
    assert "document_ready" not in fig.document.callbacks.js_event_callbacks  # only in that render
    page_event(view, fig, "reset")  # the reset tool: back to the fit
    assert not view.zoomed and "callbacks" not in rendered(view)
    page_event(view, fig, "rangesupdate", x0=1.5, x1=2.5, y0=4.4, y1=5.5)
    view.fit()  # a new run
    assert "callbacks" not in rendered(view)


def test_the_plot_ranges_are_not_synced_back_and_a_zoom_is_read_from_rangesupdate():
    fig = line_figure()
    view = bokeh_widget(fig)
    doc = rendered(view)
    for axis_range in (fig.x_range, fig.y_range):  # the page no longer sends them after each draw
        assert find(doc, axis_range.id)["attributes"]["syncable"] is False
    page_event(view, fig, "rangesupdate", x0=1.5, x1=2.5, y0=4.4, y1=5.5)  # no ModelChanged at all
    fig.renderers[0].data_source.data = {"x": [1, 2, 3, 4], "y": [4, 5, 6, 7]}
    (restore,) = rendered(view)["callbacks"]["entries"][0][1]
    args = dict(restore["attributes"]["args"]["entries"])
    assert args["starts"] == [1.5, 4.4] and args["ends"] == [2.5, 5.5]
    assert [r["id"] for r in args["ranges"]] == [fig.x_range.id, fig.y_range.id]


def test_a_rangesupdate_without_numbers_keeps_no_range():
    fig = line_figure()
    view = bokeh_widget(fig)
    page_event(view, fig, "rangesupdate", x0={"type": "number", "value": "nan"}, x1=2.0)
    assert view.zoomed and view._page_ranges == {}


def test_echoes_of_values_the_kernel_sent_do_not_undo_newer_ones():
    fig = line_figure()
    span = Span(location=1.0, dimension="height")
    fig.add_layout(span)
    view = bokeh_widget(fig)
    span.location = 2.0
    span.location = 3.0
    page_sends(view, span, "location", 2.0)  # the page's echo of an older patch, arriving late
    assert span.location == 3.0
    page_sends(view, span, "location", 3.0)
    assert span.location == 3.0
    page_sends(view, fig.renderers[0], "visible", False)  # a legend click: a change of the page's own
    assert fig.renderers[0].visible is False


def test_the_saved_state_follows_the_figure_and_waits_while_held():
    fig = line_figure()
    view = bokeh_widget(fig)
    source = fig.renderers[0].data_source
    source.stream({"x": [4], "y": [7]})
    assert saved_columns(view)["x"] == [1, 2, 3, 4]  # not the first render
    with view.hold():
        source.stream({"x": [5], "y": [8]})
        assert saved_columns(view)["x"] == [1, 2, 3, 4]  # a run streams: saved at its end
    assert saved_columns(view)["x"] == [1, 2, 3, 4, 5]
    renders = view.renders
    saved_columns(view)
    assert view.renders == renders  # nothing changed: no new render


def test_bokehjs_parts_are_what_a_figure_needs_and_the_loader_skips_what_the_page_has():
    from bokeh.models import ColumnDataSource, DataTable, TableColumn

    names = [name for name, _ in bokehjs_parts([line_figure()])]
    assert names[0] == "bokeh" and not any(n.startswith("bokeh-") for n in names)
    table = DataTable(source=ColumnDataSource({"a": [1]}), columns=[TableColumn(field="a")])
    assert "bokeh-tables" in [name for name, _ in bokehjs_parts([table])]
    js = loader_js(bokehjs_parts([line_figure()]))
    assert "root.Bokeh == null || root.Bokeh[version] == null" in js  # a page that has it skips it
    assert "Document.prototype.clear" in js  # the guard against "configuration is missing"
    assert "event.sync !== false" in js  # the view no longer sends the kernel's patches back
    assert 1_000_000 < len(js) < 1_400_000  # the core only: about a third of all of BokehJS


@pytest.mark.parametrize("attr", ["start", "end"])
def test_a_range_value_that_is_not_a_number_is_ignored(attr):
    fig = line_figure()
    view = bokeh_widget(fig)
    page_sends(view, fig.x_range, attr, float("nan"))
    assert math.isnan(getattr(fig.x_range, attr))


def test_a_page_connecting_makes_the_next_widget_publish_bokehjs_again(monkeypatch):
    from comm import get_comm_manager

    from tunewidgets.widgets import _bokehjs

    manager = get_comm_manager()
    opened: list[tuple[str, str]] = []
    monkeypatch.setattr(manager, "targets", {"jupyter.widget.control": lambda c, m: opened.append((c, m))})
    monkeypatch.setattr(_bokehjs, "_watching_pages", False)
    monkeypatch.setattr(_bokehjs, "_published", {"bokeh", "bokeh-widgets"})
    monkeypatch.setattr(_bokehjs, "_guard_published", True)
    assert _bokehjs.watch_pages() and _bokehjs.watch_pages()  # installed once
    assert _bokehjs._published == {"bokeh", "bokeh-widgets"}
    manager.targets["jupyter.widget.control"]("comm", "msg")  # a reloaded page's widget manager
    assert opened == [("comm", "msg")]  # ipywidgets still answers it
    assert _bokehjs._published == set() and _bokehjs._guard_published is False
