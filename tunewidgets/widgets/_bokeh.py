"""Bokeh inside ipywidgets: BokehJS loaded inline (works offline), figures wrapped as widgets.

``jupyter_bokeh.BokehModel`` needs ``window.Bokeh`` in the page. Loading it from a CDN fails
offline, so :func:`ensure_bokehjs` loads the inline copy, once per kernel. A saved notebook
keeps a widget's last full render, not the updates streamed since: :func:`refresh` re-renders
the widget from its figure when a run ends so the saved state shows the final plot.

Example:
    >>> from bokeh.plotting import figure
    >>> from tunewidgets.widgets._bokeh import bokeh_widget, refresh
    >>> fig = figure()
    >>> _ = fig.line([1, 2], [3, 4])
    >>> view = bokeh_widget(fig)
    >>> refresh(view) is view
    True
    >>> '"render_items"' in view.get_state()["render_bundle"]
    True
"""
from __future__ import annotations

from typing import Any

__all__ = ["ensure_bokehjs", "in_kernel", "bokeh_widget", "refresh"]

_loaded = False


def in_kernel() -> bool:
    """True inside a running IPython kernel (Jupyter), False in scripts and tests."""
    try:
        from IPython import get_ipython
    except ImportError:  # pragma: no cover - IPython comes with ipykernel
        return False
    shell = get_ipython()
    return shell is not None and getattr(shell, "kernel", None) is not None


def ensure_bokehjs(force: bool = False) -> bool:
    """Load BokehJS from the installed package into the notebook page, once per kernel.

    Returns True when it published the loader now. Does nothing outside a kernel.
    """
    global _loaded
    if (_loaded and not force) or not in_kernel():
        return False
    from bokeh.io import output_notebook
    from bokeh.resources import INLINE

    output_notebook(INLINE, hide_banner=True)
    _loaded = True
    return True


def bokeh_widget(fig: Any, **layout: Any) -> Any:
    """A ``jupyter_bokeh.BokehModel`` showing ``fig``; streams to its sources reach the page."""
    from jupyter_bokeh import BokehModel

    global _FigureView
    if _FigureView is None:
        _FigureView = _make_view_class(BokehModel)
    ensure_bokehjs()
    view = _FigureView(fig)
    for key, value in layout.items():
        setattr(view.layout, key, value)
    return view


def refresh(view: Any, now: bool | None = None) -> Any:
    """Re-render ``view`` from its figure's current state (for saved notebooks and exports).

    In a kernel (``now`` None) it re-renders at once, so the page and its saved widget state
    show the final plot. Outside one nobody is looking: it re-renders when its state is next
    read (``view.get_state()``, as an export does), so headless runs pay nothing for it.
    """
    if now is None:
        now = in_kernel()
    if now or not hasattr(view, "_stale"):
        view.update_from_model(view._model)
        view._stale = False
    else:
        view._stale = True
    return view


_FigureView: Any = None


def _make_view_class(base: type) -> type:
    class FigureView(base):  # type: ignore[misc, valid-type]
        """A BokehModel that can defer re-rendering from its figure until its state is read."""

        _stale = False

        def _sync_model(self, _model: Any, content: dict[str, Any], _buffers: list[Any]) -> None:
            # The page sends back the data updates it receives from here (ColumnsStreamed, or a
            # ModelChanged of `data`); applied again here they would duplicate rows, or undo
            # newer ones when they arrive late. Data flows only from the kernel to the page.
            kind = content.get("kind")
            if content.get("event") == "jsevent" and (
                    kind in ("ColumnsStreamed", "ColumnsPatched")
                    or (kind == "ModelChanged" and content.get("attr") == "data")):
                return
            super()._sync_model(_model, content, _buffers)

        def get_state(self, key: Any = None, drop_defaults: bool = False) -> dict[str, Any]:
            if self._stale:
                self._stale = False
                self.update_from_model(self._model)
            return super().get_state(key, drop_defaults)

    return FigureView
