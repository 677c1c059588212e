"""Bokeh figures as widgets whose page and saved state show the figure as the kernel holds it.

``jupyter_bokeh.BokehModel`` renders a figure once (its ``render_bundle``) and then forwards
each change as a patch. Two things go wrong with it as it is, and :class:`FigureView` fixes both:

- A notebook saves the bundle, not the patches: a saved notebook showed the first render. So
  every change made in the kernel marks the view stale, and it re-renders once the changes
  stop: at the end of the cell that made them (so a notebook executor records it), or a moment
  after the last click. :meth:`FigureView.hold` defers that while a run streams into the plot.
- The page sends back what it computes, DataRange1d ``start``/``end`` included; applied to the
  kernel's figure they became fixed ranges at the next render, and plots kept the last run's
  axes. The view never applies range values from the page (nor the page's echoes of the data
  and values the kernel sent it), so every render fits the data again. A user's zoom is kept
  across re-renders (the new render restores it; the reset tool returns to the fit) until
  :meth:`FigureView.fit` drops it, as a widget does when a new run starts. A zoom alone does not
  re-render: it is saved with the next change.

Each update costs messages (kernel -> server -> page, and the kernel's busy/idle for each one
the page sends back), and at several updates a second on two cores they were what made a cell
run during a stream slow. So the view sends less than ``BokehModel`` does:

- one ``PATCH-DOC`` for all the changes of one tick (:func:`batched`), not one per change;
- its arrays inline (base64 in the patch's JSON), not as binary buffers of two messages each:
  a patch is always three comm messages;
- the plot's own x and y ranges are not synced back (``syncable=False``): the page sent their
  ``start`` and ``end`` after every update it drew; a user's zoom is read from the
  ``rangesupdate`` event a pan or zoom ends with instead. (The page no longer echoes the
  patches it applies either: see ``_bokehjs``.)

Outside a kernel nobody looks, so re-rendering waits until the state is read
(``view.get_state()``, as an export does).

Example:
    >>> from bokeh.plotting import figure
    >>> from tunewidgets.widgets._bokeh import bokeh_widget, refresh, saved_columns
    >>> fig = figure()
    >>> line = fig.line([1, 2], [3, 4], name="points")
    >>> view = bokeh_widget(fig)
    >>> line.data_source.data = {"x": [1, 2, 3], "y": [3, 4, 5]}
    >>> saved_columns(view)["x"]          # the saved state follows the kernel's figure
    [1, 2, 3]
    >>> refresh(view) is view
    True
    >>> with batched([view]):             # one patch for both changes
    ...     line.data_source.stream({"x": [4], "y": [6]})
    ...     line.glyph.line_width = 2
    >>> view.patches_sent
    2
"""
from __future__ import annotations

import base64
import gzip
import json
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np

from tunewidgets.widgets._bokehjs import ensure_bokehjs
from tunewidgets.widgets._kernel import defer, in_kernel

__all__ = ["FigureView", "ensure_bokehjs", "in_kernel", "bokeh_widget", "refresh", "saved_columns",
           "figure_views", "batched", "open_batch", "close_batch"]

_RANGE_ATTRS = ("start", "end")
_ECHO_MEMORY = 16  # values remembered per (model, attribute) sent to the page
# restores a user's zoom in a fresh render; the reset tool then goes back to the fit
_RESTORE_JS = """
for (let i = 0; i < ranges.length; i++) {
  ranges[i].setv({start: starts[i], end: ends[i]});
  ranges[i].have_updated_interactively = true;
}
"""


def _ignore(_event: Any) -> None:
    """Subscribes a plot to an event the view reads from the raw message (see ``_sync_model``)."""


def bokeh_widget(fig: Any, **layout: Any) -> Any:
    """A :class:`FigureView` showing ``fig`` (a Bokeh figure or layout); streams and changes to
    the figure reach the page, and its saved state follows them. ``layout``: ipywidgets Layout
    fields, e.g. ``width="100%"``."""
    from jupyter_bokeh import BokehModel

    global FigureView
    if FigureView is None:
        FigureView = _make_view_class(BokehModel)
    ensure_bokehjs([fig])
    view = FigureView(fig)
    for key, value in layout.items():
        setattr(view.layout, key, value)
    return view


def refresh(view: Any, now: bool | None = None) -> Any:
    """Re-render ``view`` from its figure: at once in a kernel (``now`` None) or with ``now``;
    else when its state is next read."""
    if now is None:
        now = in_kernel()
    if now:
        view.render_now()
    else:
        view._stale = True
    return view


def figure_views(widget: Any) -> Iterator[Any]:
    """Every :class:`FigureView` in ``widget`` and its descendants."""
    stack = [widget]
    while stack:
        w = stack.pop()
        if hasattr(w, "render_now"):
            yield w
        stack.extend(getattr(w, "children", ()))


@contextmanager
def batched(views: Any) -> Iterator[None]:
    """The changes made inside go to each of ``views`` as one patch, sent at the end."""
    views = open_batch(views)
    try:
        yield
    finally:
        close_batch(views)


def open_batch(views: Any) -> list[Any]:
    """Hold the changes of ``views`` until :func:`close_batch` (nested batches send at the outer end)."""
    views = list(views)
    for view in views:
        view._batching += 1
    return views


def close_batch(views: Any) -> None:
    for view in views:
        view._batching = max(0, view._batching - 1)
        if not view._batching:
            view.send_patches()


def saved_columns(view: Any, name: str | None = None) -> dict[str, list[Any]]:
    """The columns of data source ``name`` (the first one for None) in the view's state, as a
    saved notebook or an export would hold them."""
    bundle = view.get_state()["render_bundle"]
    bundle = json.loads(bundle) if isinstance(bundle, str) else bundle
    stack: list[Any] = [bundle["docs_json"]]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            attributes = node.get("attributes", {})
            if node.get("name") == "ColumnDataSource" and "data" in attributes and (
                    name is None or attributes.get("name") == name):
                return {k: _decode(v) for k, v in attributes["data"]["entries"]}
            stack.extend(reversed(list(node.values())))
        elif isinstance(node, list):
            stack.extend(reversed(node))
    raise KeyError(f"no data source named {name!r} in the view's saved state")


def _decode(column: Any) -> list[Any]:
    if isinstance(column, dict) and column.get("type") == "ndarray":
        raw = base64.b64decode(column["array"]["data"])
        raw = gzip.decompress(raw) if raw[:2] == b"\x1f\x8b" else raw
        return np.frombuffer(raw, dtype=column["dtype"]).tolist()
    return list(column)


FigureView: Any = None


def _make_view_class(base: type) -> type:
    from bokeh.core.serialization import Serializer
    from bokeh.document.events import ModelChangedEvent
    from bokeh.models import CustomJS, Plot, Range
    from bokeh.protocol.messages.patch_doc import patch_doc

    class _FigureView(base):  # type: ignore[misc, valid-type]
        """A BokehModel whose render fits the data, keeps a user's zoom, and follows the figure."""

        _stale = False

        def __init__(self, model: Any, **kwargs: Any) -> None:
            self._held = 0
            self._page_ranges: dict[str, dict[str, float]] = {}
            self._zoomed = False
            self._sent: dict[tuple[str, str], deque[Any]] = {}
            self.renders = 0
            self.patches_sent = 0
            self._batching = 0
            self._outbox: list[Any] = []
            for plot in model.select({"type": Plot}):
                for event in ("rangesupdate", "reset"):
                    if _ignore not in plot._event_callbacks.get(event, []):
                        plot.on_event(event, _ignore)
                for axis_range in (plot.x_range, plot.y_range):  # read from rangesupdate instead
                    axis_range.syncable = False
            super().__init__(model, **kwargs)

        def close(self) -> None:
            """Close the view; closing it again (its finalizer does) is harmless."""
            try:
                super().close()
            except KeyError:  # closed before: the document no longer calls it
                pass

        # -- rendering ------------------------------------------------------------------
        def update_from_model(self, model: Any) -> None:
            # a fresh render of the figure; with the user's zoom put back where there was one
            restore = self._restore_callback(model) if hasattr(self, "_zoomed") else None
            document = model.document
            if restore is not None:
                document.js_on_event("document_ready", restore)
            self._stale = False  # before the new bundle is sent: get_state must not render again
            self._restores = restore is not None
            if hasattr(self, "_outbox"):
                self._outbox.clear()  # the new render holds those changes
            try:
                super().update_from_model(model)
            finally:
                if restore is not None:  # only in that render: the next one decides again
                    callbacks = document.callbacks.js_event_callbacks
                    callbacks["document_ready"].remove(restore)
                    if not callbacks["document_ready"]:
                        del callbacks["document_ready"]
            self.renders = getattr(self, "renders", 0) + 1

        def _restore_callback(self, model: Any) -> Any:
            if not self._zoomed or model.document is None:
                return None
            ranges, starts, ends = [], [], []
            for model_id, values in self._page_ranges.items():
                found = model.document.get_model_by_id(model_id)
                if found is not None and "start" in values and "end" in values:
                    ranges.append(found)
                    starts.append(values["start"])
                    ends.append(values["end"])
            if not ranges:
                return None
            return CustomJS(args={"ranges": ranges, "starts": starts, "ends": ends}, code=_RESTORE_JS)

        def render_now(self) -> None:
            """Re-render from the figure now (no message goes out when nothing changed)."""
            self.update_from_model(self._model)

        def mark_stale(self) -> None:
            """The figure changed in the kernel: re-render soon (see the module doc)."""
            self._stale = True
            if self._held or not in_kernel():
                return
            defer(("tunewidgets-view", id(self)), self._flush)

        def _flush(self) -> None:
            if self._stale and not self._held and self.comm is not None:
                self.render_now()

        @contextmanager
        def hold(self) -> Iterator[None]:
            """Changes inside go to the page as patches only; one re-render at the end."""
            self._held += 1
            try:
                yield
            finally:
                self._held -= 1
                if not self._held and self._stale:
                    self.mark_stale()

        def hold_renders(self) -> None:
            """Like entering :meth:`hold`; end with :meth:`release_renders`."""
            self._held += 1

        def release_renders(self) -> None:
            self._held = max(0, self._held - 1)
            if not self._held and self._stale:
                self.mark_stale()

        def fit(self) -> None:
            """Forget the user's zoom: the next render fits the data."""
            self._unzoom()

        def _unzoom(self) -> None:
            self._zoomed = False
            if getattr(self, "_restores", False):  # the last render would bring the zoom back
                self.mark_stale()

        @property
        def zoomed(self) -> bool:
            """True while the page shows a user's zoom or pan (until reset or :meth:`fit`)."""
            return self._zoomed

        def get_state(self, key: Any = None, drop_defaults: bool = False) -> dict[str, Any]:
            if self._stale and not self._held:
                self.render_now()
            return super().get_state(key, drop_defaults)

        def _repr_mimebundle_(self, **kwargs: Any) -> Any:
            ensure_bokehjs([self._model])  # a page that connected since has no BokehJS yet
            if self._stale:
                self.render_now()
            return super()._repr_mimebundle_(**kwargs)

        # -- kernel -> page ---------------------------------------------------------------
        def _document_patched(self, event: Any) -> None:
            if event.setter is self:  # applied from the page: it shows it already
                return
            if isinstance(event, ModelChangedEvent) and event.attr != "data":
                sent = self._sent.setdefault((event.model.id, event.attr), deque(maxlen=_ECHO_MEMORY))
                sent.append(_comparable(event.new))
            # encoded now: an event reads its model when encoded (a ColumnDataChanged its data),
            # and a later change in the same batch must not show in it
            document = event.document
            serializer = Serializer(references=document.models.synced_references, deferred=False)
            self._outbox.append(serializer.encode(event))
            document.models.flush_synced(lambda m: not serializer.has_ref(m))
            if not self._batching:
                self.send_patches()
            self.mark_stale()

        def send_patches(self) -> None:
            """Send the changes waiting (see :func:`batched`) as one patch: three comm messages."""
            if not self._outbox:
                return
            events, self._outbox = self._outbox, []
            message = patch_doc(patch_doc.create_header(), {}, {"events": events})
            for part in (message.header_json, message.metadata_json, message.content_json):
                self.send({"msg": "patch", "payload": part})
            self.patches_sent += 1

        # -- page -> kernel ---------------------------------------------------------------
        def _sync_model(self, _model: Any, content: dict[str, Any], _buffers: list[Any]) -> None:
            if content.get("event") != "jsevent":
                return
            kind = content.get("kind")
            # data flows only from the kernel to the page: the page sends back the updates it
            # receives (ColumnsStreamed, or a ModelChanged of `data`); applied again here they
            # would duplicate rows, or undo newer ones when they arrive late
            if kind in ("ColumnsStreamed", "ColumnsPatched"):
                return
            if kind == "MessageSent" and content.get("msg_type") == "bokeh_event":
                name = (content.get("msg_data") or {}).get("name")
                if name == "rangesupdate":
                    self._zoomed = True
                    self._remember_ranges(content.get("msg_data") or {})
                elif name == "reset":
                    self._unzoom()
            if kind == "ModelChanged":
                attr = content.get("attr")
                if attr == "data":
                    return
                model_id = (content.get("model") or {}).get("id")
                target = self._document.get_model_by_id(model_id) if model_id else None
                if isinstance(target, Range) and attr in _RANGE_ATTRS:
                    # what the page shows (its fit, or a zoom): remembered, never fixed here
                    if isinstance(content.get("new"), (int, float)):
                        self._page_ranges.setdefault(model_id, {})[attr] = float(content["new"])
                    return
                if target is not None and self._is_echo(target, attr, content.get("new")):
                    return
            super()._sync_model(_model, content, _buffers)

        def _remember_ranges(self, msg_data: dict[str, Any]) -> None:
            """The plot's x and y ranges as a ``rangesupdate`` event gives them (``x0`` ... ``y1``)."""
            values = msg_data.get("values")
            entries = values.get("entries") if isinstance(values, dict) else None
            values = dict(e for e in entries if isinstance(e, list) and len(e) == 2) if entries else {}
            plot_id = (values.get("model") or {}).get("id") if isinstance(values.get("model"), dict) else None
            plot = self._document.get_model_by_id(plot_id) if plot_id else None
            if not isinstance(plot, Plot):
                return
            for axis_range, low, high in ((plot.x_range, "x0", "x1"), (plot.y_range, "y0", "y1")):
                start, end = values.get(low), values.get(high)
                if isinstance(start, (int, float)) and isinstance(end, (int, float)):
                    self._page_ranges[axis_range.id] = {"start": float(start), "end": float(end)}

        def _is_echo(self, target: Any, attr: str, new: Any) -> bool:
            """True when the page only sends back a value the kernel sent it (the page echoes
            every patch it applies): the current one (nothing to do) or an older one (applying
            it would undo a newer change)."""
            sent = self._sent.get((target.id, attr))
            if not sent:
                return False
            value = _comparable(new)
            return any(value == old for old in sent)

    return _FigureView


def _comparable(value: Any) -> Any:
    """A value as the page would send it back: models as their id, sequences as lists."""
    if hasattr(value, "id") and hasattr(value, "references"):
        return {"id": value.id}
    if isinstance(value, (list, tuple)):
        return [_comparable(v) for v in value]
    if isinstance(value, dict):
        return {k: _comparable(v) for k, v in value.items()}
    if isinstance(value, np.ndarray):
        return value.tolist()
    return value
