"""The code a schedule widget shows to copy: short numbers in the widget's one number format, laid
out so that it wraps only between arguments.

Learning rates read as the sliders show them (three significant digits, ``5.88e-3``); other
floats with four significant digits (``0.3``, ``1e-8``); only fields that differ from their
defaults are written, as ``spec.to_code()`` does.

Example:
    >>> import tunewidgets as tw
    >>> from tunewidgets.widgets._spec_code import code_html, spec_code
    >>> spec_code(tw.schedules.OneCycle(max_lr=0.005878016072274911, pct_start=0.25))
    'tw.schedules.OneCycle(max_lr=5.88e-3, pct_start=0.25)'
    >>> spec_code(tw.schedules.Warmup(steps=30, then=tw.schedules.Cosine(eta_min=1e-4)))
    'tw.schedules.Warmup(steps=30, then=tw.schedules.Cosine(eta_min=0.0001))'
    >>> 'white-space:nowrap' in code_html("tw.schedules.OneCycle(max_lr=5.88e-3, pct_start=0.25)")
    True
"""
from __future__ import annotations

import html
import re
from typing import Any

from tunewidgets.plots._common import fmt_lr, fmt_num

__all__ = ["spec_code", "code_html", "code_spans"]

_ARGUMENT_END = re.compile(r"(?<=,) ")


def spec_code(spec: Any) -> str:
    """Python that recreates ``spec`` (up to the rounding of long floats)."""
    args = []
    for control in type(spec).controls():
        value = getattr(spec, control.name)
        if value == control.default and type(value) is type(control.default):
            continue
        args.append(f"{control.name}={_literal(value, control.kind)}")
    return f"tw.schedules.{type(spec).__name__}({', '.join(args)})"


def _literal(value: Any, kind: str) -> str:
    if hasattr(value, "controls") and hasattr(value, "to_code"):
        return spec_code(value)
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_literal(v, kind) for v in value) + "]"
    if isinstance(value, float):
        if kind == "lr" and value > 0:
            return fmt_lr(value)
        return fmt_num(value)
    return repr(value)


def code_spans(code: str) -> str:
    """``code`` as HTML that breaks lines only after an argument's comma, never inside a word."""
    pieces = _ARGUMENT_END.split(code)
    return " ".join(f'<span style="white-space:nowrap">{html.escape(p)}</span>' for p in pieces)


def code_html(code: str) -> str:
    """``code`` as a block to select and copy (see :func:`code_spans`)."""
    return ('<pre title="click to select, then copy" style="user-select:all;margin:4px 0;padding:4px 8px;'
            'background:#f6f8fa;border-radius:4px;white-space:pre-wrap;word-break:normal;'
            f'overflow-wrap:normal">{code_spans(code)}</pre>')
