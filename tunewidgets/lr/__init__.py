"""The LR range test and the rules that turn its loss curve into a learning rate.

Example:
    >>> import tunewidgets as tw
    >>> res = tw.lr.lr_range_test(tw.tasks.digits(), start_lr=1e-4, end_lr=10, steps=60, device="cpu")
    >>> res.suggested is None or 1e-4 <= res.suggested <= 10
    True
"""
from __future__ import annotations

from tunewidgets.lr.range_test import lr_range_test
from tunewidgets.lr.result import LRRangeTestResult
from tunewidgets.lr.suggest import (MIN_POINTS, RULES, Suggestions, suggest, suggest_minimum, suggest_steepest,
                                    suggest_valley)

__all__ = [
    "lr_range_test", "LRRangeTestResult", "Suggestions", "suggest", "suggest_steepest", "suggest_valley",
    "suggest_minimum", "RULES", "MIN_POINTS",
]
