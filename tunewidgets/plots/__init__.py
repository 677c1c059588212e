"""Bokeh figure builders from plain data (no widgets, no torch).

Each plot has a data step, which returns plain columns a test can check, and a render
step that builds the figure. Figures work in widgets (through ``jupyter_bokeh``) and in
static pages: ``bokeh.embed.file_html(fig, bokeh.resources.INLINE)`` renders offline.

Example:
    >>> import tunewidgets as tw
    >>> fig = tw.plots.lr_range_figure({"lr": [1e-4, 1e-3, 1e-2], "loss": [2.3, 1.9, 2.8]},
    ...                                suggestions={"minimum": 1e-3})
    >>> fig.x_scale.__class__.__name__
    'LogScale'
"""
from __future__ import annotations

from tunewidgets.plots._common import legend_outside, log_ticker
from tunewidgets.plots.lr import LRPlotData, live_lr_figure, lr_plot_data, lr_range_figure
from tunewidgets.plots.schedule import schedule_comparison_figure, schedule_figure, schedule_plot_data
from tunewidgets.plots.search import search_figures

__all__ = ["LRPlotData", "lr_plot_data", "lr_range_figure", "live_lr_figure",
           "schedule_plot_data", "schedule_figure", "schedule_comparison_figure", "search_figures",
           "legend_outside", "log_ticker"]
