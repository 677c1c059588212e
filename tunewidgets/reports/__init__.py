"""Static HTML reports of a store: ``tw.report(store, "report.html")`` (Bokeh INLINE, works offline).

Example:
    >>> import tunewidgets as tw
    >>> tw.report is tw.reports.report
    True
"""
from __future__ import annotations

from tunewidgets.reports._build import report

__all__ = ["report"]
