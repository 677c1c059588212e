"""Shared styling and small helpers for the Bokeh figure builders.

Every builder makes its figure with :func:`new_figure` so that plots in widgets and in
static reports look alike, and finds its named data sources with :func:`source`.

Example:
    >>> from tunewidgets.plots._common import fmt_lr, new_figure
    >>> fmt_lr(0.0031623), fmt_lr(0.1), fmt_num(0.30000001), fmt_num(1e-8)
    ('3.16e-3', '1.00e-1', '0.3', '1e-8')
    >>> new_figure(title="loss", x_axis_type="log").x_scale.__class__.__name__
    'LogScale'
"""
from __future__ import annotations

import math
import re
from collections.abc import Iterable
from typing import Any

from bokeh.models import ColumnDataSource, HoverTool
from bokeh.plotting import figure

__all__ = [
    "PALETTE", "METHOD_COLORS", "RAW_COLOR", "SMOOTH_COLOR", "CHOSEN_COLOR",
    "new_figure", "source", "fmt_lr", "fmt_num", "LR_FORMAT", "finite_or_nan", "method_color",
]

# Okabe-Ito: distinguishable with the common colour-vision deficiencies
PALETTE = ("#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#F0E442", "#000000")
RAW_COLOR = "#9aa5b1"
SMOOTH_COLOR = "#0072B2"
CHOSEN_COLOR = "#000000"
METHOD_COLORS = {"steepest": "#D55E00", "valley": "#009E73", "minimum": "#CC79A7"}

_TOOLS = "pan,wheel_zoom,box_zoom,reset,save"
#: d3-format of a learning rate in a slider's readout: the same text as :func:`fmt_lr`
LR_FORMAT = ".2e"
_EXPONENT = re.compile(r"e([+-])0*(\d)")


def new_figure(title: str | None = None, *, x_axis_type: str = "linear", x_label: str = "",
               y_label: str = "", height: int = 320, width: int = 640,
               tools: str = _TOOLS, **kwargs: Any) -> Any:
    """A figure with the project's look: a quiet grid, the toolbar above, stretched to its width."""
    fig = figure(title=title, x_axis_type=x_axis_type, height=height, width=width,
                 tools=tools, toolbar_location="above", sizing_mode="stretch_width", **kwargs)
    fig.xaxis.axis_label = x_label
    fig.yaxis.axis_label = y_label
    fig.grid.grid_line_alpha = 0.35
    fig.outline_line_color = None
    fig.title.text_font_size = "13px"
    fig.toolbar.logo = None
    return fig


def add_hover(fig: Any, renderers: list[Any], tooltips: list[tuple[str, str]],
              formatters: dict[str, str] | None = None, mode: str = "vline") -> HoverTool:
    """Add one hover tool over ``renderers`` (tooltips as Bokeh ``(label, "@field")`` pairs)."""
    hover = HoverTool(renderers=renderers, tooltips=tooltips, formatters=formatters or {}, mode=mode)
    fig.add_tools(hover)
    return hover


def source(fig: Any, name: str) -> ColumnDataSource:
    """The data source called ``name`` in ``fig`` (raises KeyError naming the ones there are)."""
    found = fig.select_one({"name": name, "type": ColumnDataSource})
    if found is None:
        names = sorted(s.name for s in fig.select({"type": ColumnDataSource}) if s.name)
        raise KeyError(f"no data source named {name!r} in this figure; it has {names}")
    return found


def fmt_lr(value: float | None) -> str:
    """A learning rate as three significant digits in scientific notation, exactly as slider
    readouts show it (d3-format ``.2e``): ``3.16e-3``, ``1.00e-1``; ``'-'`` for None or a value
    that is not finite."""
    if value is None or not math.isfinite(float(value)):
        return "-"
    mantissa, exponent = f"{float(value):.2e}".split("e")
    return f"{mantissa}e{int(exponent):+d}"


def fmt_num(value: float, digits: int = 4) -> str:
    """A number as ``digits`` significant digits, no trailing zeros, exponents unpadded
    (``1e-8``, not ``1e-08``): valid Python, and the same text everywhere a widget shows it."""
    return _EXPONENT.sub(r"e\1\2", f"{float(value):.{digits}g}")


def finite_or_nan(values: Iterable[Any]) -> list[float]:
    """Floats, with anything infinite or missing as NaN (Bokeh draws a gap there)."""
    out = []
    for v in values:
        try:
            f = float(v)
        except (TypeError, ValueError):
            f = math.nan
        out.append(f if math.isfinite(f) else math.nan)
    return out


def method_color(method: str, index: int = 0) -> str:
    """The colour of a suggestion method: fixed for the built-in ones, else from the palette."""
    return METHOD_COLORS.get(method, PALETTE[(index + 4) % len(PALETTE)])
