"""The plots of the ``Search`` widget: its figures, their Bokeh views and the live sources behind them.

:class:`SearchPlots` is the box the widget shows. :meth:`SearchPlots.show` makes the figures
for the searched keys (one slice plot per key, one parallel axis, one table column) unless the
shown ones already fit them; the same five views then show the new figures, so a Launch with
other keys re-renders them in place. Selecting a row of the results table highlights that
trial's curve (the page sends the selection to the kernel, which draws the curve on top).

Example:
    >>> import tunewidgets as tw
    >>> from tunewidgets.plots.search import axes_of
    >>> from tunewidgets.widgets._search_views import SearchPlots
    >>> plots = SearchPlots(max_curves=50, max_rows=20)
    >>> plots.show(axes_of({"lr": tw.space.LogUniform(1e-4, 1e-1)}), "val_accuracy", "maximize")
    >>> len(plots.views), sorted(plots.parts["search_slice"].data)
    (5, ['alpha', 'marker', 'p_lr', 'state', 'trial', 'value'])
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import ipywidgets as widgets

from tunewidgets.plots.search import TABLE, Axis, SearchFigures, live_search_figures, search_parts
from tunewidgets.widgets._bokeh import bokeh_widget
from tunewidgets.widgets._search_live import LiveSources

__all__ = ["SearchPlots"]


class SearchPlots(widgets.VBox):
    """Curves and importance; slices; parallel coordinates and the results table."""

    def __init__(self, *, max_curves: int, max_rows: int) -> None:
        super().__init__()
        self.max_curves, self.max_rows = max_curves, max_rows
        self.figures: SearchFigures | None = None
        self.parts: dict[str, Any] = {}
        self.views: list[Any] = []
        self.live: LiveSources | None = None  # type: ignore[assignment]
        self._signature: Any = None

    def show(self, axes: Sequence[Axis], metric: str, direction: str | None = None, *,
             hide_pruned: bool = False, top_k: int = 0) -> None:
        """Show figures for these axes (made anew only when the keys, their kinds or the metric change)."""
        if direction is None:  # before a Launch: the usual sense of the metric's name
            direction = "minimize" if any(w in metric for w in ("loss", "error")) else "maximize"
        signature = (tuple((a.key, a.kind, a.factors) for a in axes), metric, direction)
        if signature == self._signature and self.live is not None:
            self.live.axes = list(axes)  # the same figures; the numeric ranges may differ
            return
        self.figures = f = live_search_figures(axes, metric, direction)
        self.parts = search_parts(f)
        self.live = LiveSources(self.parts, axes, metric, direction, max_curves=self.max_curves,
                                max_rows=self.max_rows)
        self.live.hide_pruned, self.live.top_k = hide_pruned, top_k
        self.parts[TABLE].selected.on_change("indices", self._on_table_select)
        self._signature = signature
        if self.views:  # the same widgets show the new figures (the page re-renders them)
            for view, fig in zip(self.views, f):
                if view._document is not None:
                    view._document.remove_on_change(view)
                view.update_from_model(fig)
            return
        curves, slices, parallel, importance, table = self.views = [
            bokeh_widget(f.curves, min_width="420px", flex="1 1 600px"), bokeh_widget(f.slices),
            bokeh_widget(f.parallel, min_width="420px", flex="1 1 600px"), bokeh_widget(f.importance),
            bokeh_widget(f.table)]
        wrap = widgets.Layout(flex_flow="row wrap", width="100%")
        self.children = [widgets.HBox([curves, importance], layout=wrap), slices,
                         widgets.HBox([parallel, table], layout=wrap)]

    def _on_table_select(self, _attr: str, _old: Any, new: Any) -> None:
        trial = self.live.table_trial(new[0]) if new else None
        if trial != self.live.selected:
            self.live.select(trial)
