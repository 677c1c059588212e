"""Jupyter widgets: controls that build configs, live Bokeh plots fed by a background run.

Importing this package loads ipywidgets, Bokeh and jupyter_bokeh; ``import tunewidgets``
does not (``tw.widgets`` is imported on first use).

Example:
    >>> import tunewidgets as tw
    >>> finder = tw.widgets.LRFinder(tw.tasks.spirals(), steps=20, device="cpu")
    >>> finder.status, finder.lr is None
    ('idle', True)
"""
from __future__ import annotations

from tunewidgets.widgets._bokeh import bokeh_widget
from tunewidgets.widgets.dashboard import Dashboard
from tunewidgets.widgets.lr_finder import LRFinder
from tunewidgets.widgets.schedule_preview import SchedulePreview
from tunewidgets.widgets.search import Search

__all__ = ["Dashboard", "LRFinder", "SchedulePreview", "Search", "bokeh_widget"]
