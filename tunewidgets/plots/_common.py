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

from bokeh.models import ColumnDataSource, CustomJS, HoverTool
from bokeh.plotting import figure

from tunewidgets.plots._bounds import _PAD, clamp_range, metric_bounds, padded_range

__all__ = [
    "PALETTE", "METHOD_COLORS", "RAW_COLOR", "SMOOTH_COLOR", "CHOSEN_COLOR",
    "new_figure", "source", "fmt_lr", "fmt_num", "LR_FORMAT", "finite_or_nan", "method_color",
    "metric_bounds", "padded_range", "clamp_range", "bound_range", "legend_outside", "log_ticks", "log_ticker", "MIN_LOG_TICKS",
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
    """A figure with the project's look: a quiet grid, the toolbar above, stretched to its width;
    a log axis gets :func:`log_ticker` (4 ticks or more, however narrow its range)."""
    fig = figure(title=title, x_axis_type=x_axis_type, height=height, width=width,
                 tools=tools, toolbar_location="above", sizing_mode="stretch_width", **kwargs)
    if x_axis_type == "log":
        fig.xaxis.ticker = log_ticker()
    if kwargs.get("y_axis_type") == "log":
        fig.yaxis.ticker = log_ticker()
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


_BOUND_JS = """
if (r.have_updated_interactively) { return }
let s = r.start, e = r.end
if (!(isFinite(s) && isFinite(e))) { return }
if (Math.abs(Math.abs(e - s) - r.default_span) < 1e-12) {  // one value (or all alike)
  const c = (s + e) / 2
  let h = Math.abs(c) * pad || 0.05
  if (lo != null && hi != null) { h = Math.min(h, (hi - lo) * 0.05) }
  s = c - h; e = c + h
}
if (lo != null && s < lo) { s = lo }
if (hi != null && e > hi) { e = hi }
if (s != r.start || e != r.end) { r.setv({start: s, end: e}) }
"""


def bound_range(rng: Any, bounds: tuple[float | None, float | None] = (None, None), pad: float = _PAD) -> Any:
    """Keep a ``DataRange1d`` that follows streamed data inside ``bounds`` in the browser: its
    padding is clamped there (accuracy never runs to 1.05) and one value gets a range of 10%
    around it (not Bokeh's span of 2). A range the user zoomed is left alone. Returns ``rng``."""
    lo, hi = bounds
    rng.range_padding = pad
    code = CustomJS(args={"r": rng, "lo": lo, "hi": hi, "pad": pad}, code=_BOUND_JS)
    rng.js_on_change("start", code)
    rng.js_on_change("end", code)
    rng.tags = [*rng.tags, {"bounds": [lo, hi]}]
    return rng


def legend_outside(fig: Any, side: str = "right") -> Any:
    """Move a figure's legend out of its plot area (``"right"`` or ``"below"``), with click-to-hide,
    so it never covers lines or points. Returns the legend (None: the figure has none).

    Example:
        >>> from bokeh.plotting import figure
        >>> import tunewidgets as tw
        >>> fig = figure()
        >>> _ = fig.line([1, 2, 3], [3, 1, 2], legend_label="trial 1")
        >>> legend = tw.plots.legend_outside(fig)
        >>> legend in fig.right, legend in fig.center, legend.click_policy
        (True, False, 'hide')
    """
    if side not in ("right", "below", "left", "above"):
        raise ValueError(f"side: expected 'right', 'below', 'left' or 'above', got {side!r}")
    if not fig.legend:
        return None
    legend = fig.legend[0]
    for place in (fig.center, fig.right, fig.below, fig.left, fig.above):
        if legend in place:
            place.remove(legend)
    legend.update(visible=True, location="top_left" if side in ("right", "left") else "center", click_policy="hide",
                  orientation="vertical" if side in ("right", "left") else "horizontal",
                  border_line_color=None, label_text_font_size="11px")
    fig.add_layout(legend, side)
    return legend


_MANTISSAS = ((1,), (1, 3), (1, 2, 5), (1, 2, 3, 5, 7), (1, 2, 3, 4, 5, 6, 7, 8, 9))
MIN_LOG_TICKS = 4


def log_ticks(low: float, high: float) -> list[float]:
    """Major ticks of a log axis from ``low`` to ``high``: whole decades when there are at least
    :data:`MIN_LOG_TICKS` of them (every 2nd, 3rd... past 10), else the fewest mantissas per
    decade (1-3, 1-2-5, ...) that give that many, else (a range under a factor of 2) evenly spaced
    round numbers. :func:`log_ticker` runs the same rule in the browser.

    Example:
        >>> log_ticks(5e-4, 8e-2)
        [0.001, 0.003, 0.01, 0.03]
        >>> log_ticks(1e-7, 1.0)[:3], len(log_ticks(1e-7, 1.0))
        ([1e-07, 1e-06, 1e-05], 8)
        >>> log_ticks(3.0e-4, 4.0e-4)
        [0.0003, 0.00031, 0.00032, 0.00033, 0.00034, 0.00035, 0.00036, 0.00037, 0.00038, 0.00039, 0.0004]
    """
    if not (low > 0 and high > low and math.isfinite(high)):
        return []
    lo_exp, hi_exp = math.floor(math.log10(low)), math.ceil(math.log10(high))
    for mantissas in _MANTISSAS:
        ticks = [float(f"{m}e{e}") for e in range(lo_exp, hi_exp + 1) for m in mantissas]
        ticks = [t for t in ticks if low * (1 - 1e-9) <= t <= high * (1 + 1e-9)]
        if len(ticks) >= MIN_LOG_TICKS:
            every = max(1, math.ceil(len(ticks) / 10)) if len(mantissas) == 1 else 1
            return ticks[::every]
    raw = (high - low) / 10  # a round step at most 2.5 times this: 4 ticks or more
    mag = 10 ** math.floor(math.log10(raw))
    step = next(m * mag for m in (1, 2, 5, 10) if m * mag >= raw * (1 - 1e-9))
    first = math.ceil(low / step - 1e-9)
    return [float(f"{k * step:.12g}") for k in range(first, int(math.floor(high / step + 1e-9)) + 1)]


_LOG_TICKS_JS = """
const low = cb_data.start != null ? Math.min(cb_data.start, cb_data.end) : Math.min(cb_data.range.start, cb_data.range.end)
const high = cb_data.start != null ? Math.max(cb_data.start, cb_data.end) : Math.max(cb_data.range.start, cb_data.range.end)
if (!(low > 0 && high > low && isFinite(high))) { return [] }
const sets = [[1], [1, 3], [1, 2, 5], [1, 2, 3, 5, 7], [1, 2, 3, 4, 5, 6, 7, 8, 9]]
const lo = Math.floor(Math.log10(low)), hi = Math.ceil(Math.log10(high))
for (const ms of sets) {
  let ticks = []
  for (let e = lo; e <= hi; e++) {
    for (const m of ms) {
      const t = parseFloat(m + "e" + e)
      if (low * (1 - 1e-9) <= t && t <= high * (1 + 1e-9)) { ticks.push(t) }
    }
  }
  if (ticks.length >= MIN) {
    const every = ms.length == 1 ? Math.max(1, Math.ceil(ticks.length / 10)) : 1
    return ticks.filter((t, i) => i % every == 0)
  }
}
const raw = (high - low) / 10
const mag = Math.pow(10, Math.floor(Math.log10(raw)))
const step = [1, 2, 5, 10].map(m => m * mag).find(s => s >= raw * (1 - 1e-9))
const out = []
for (let k = Math.ceil(low / step - 1e-9); k <= Math.floor(high / step + 1e-9); k++) {
  out.push(parseFloat((k * step).toPrecision(12)))
}
return out
"""


def log_ticker() -> Any:
    """A log axis' ticker that gives at least :data:`MIN_LOG_TICKS` major ticks however narrow
    the range (Bokeh's own gives only the decades: two on a range of 5e-4 to 8e-2); the rule is
    :func:`log_ticks`, run in the browser as the range follows the data.

    Example:
        >>> from bokeh.plotting import figure
        >>> import tunewidgets as tw
        >>> fig = figure(x_axis_type="log")
        >>> fig.xaxis.ticker = tw.plots.log_ticker()
        >>> type(fig.xaxis.ticker[0]).__name__ if isinstance(fig.xaxis.ticker, list) else type(fig.xaxis[0].ticker).__name__
        'CustomJSTicker'
        >>> len(tw.plots._common.log_ticks(5e-4, 8e-2)) >= 4  # Bokeh's own ticker gives 2 decades here
        True
    """
    from bokeh.models import CustomJSTicker

    return CustomJSTicker(major_code=_LOG_TICKS_JS.replace("MIN", str(MIN_LOG_TICKS)), minor_code="return []",
                          tags=["tunewidgets-log-ticks"])
