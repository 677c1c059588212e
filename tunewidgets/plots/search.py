"""Bokeh figures of a hyperparameter search: curves, slices, parallel coordinates, importance, table.

Data first, as for the other plots: a search is a list of :class:`TrialData` (number, state,
values, per-epoch metric) and one :class:`Axis` per searched key; the ``*_columns`` functions
(in :mod:`tunewidgets.plots._search_data`, re-exported here) turn them into the plain columns
each figure shows, and :func:`live_search_figures` builds the figures around empty named sources
that a widget fills as trials train. :func:`search_figures` is the same set filled from a
``Study``: ``tw.plots.search_figures(study)``.

- curves (:data:`CURVES`): each trial's metric per epoch, coloured by its (latest) value;
  running trials drawn thick, pruned ones dashed and failed ones dotted, their last point
  marked (:data:`CURVE_ENDS`); :data:`HIGHLIGHT` holds one trial drawn on top.
- slices (:data:`SLICE`): the metric against each key, one small plot per key, log axes for
  log dimensions, categories for choices.
- parallel coordinates (:data:`PARALLEL`): one line per trial across the keys and the metric,
  each axis scaled to its range (log for log dimensions).
- importance (:data:`IMPORTANCE`): one bar per key.
- table (:data:`TABLE`): trials sorted best first, the best one starred.

Which curves to show is :func:`pick_trials`: running trials always, then the rest, without the
pruned ones or only the ``top_k`` best when asked, and at most ``max_curves`` in all (the best
half and the newest), so that a long search keeps the browser's data bounded.

Example:
    >>> from tunewidgets.plots.search import Axis, TrialData, curve_columns, pick_trials, slice_columns
    >>> trials = [TrialData(0, "finished", {"lr": 0.01}, [1, 2], [0.5, 0.7]),
    ...           TrialData(1, "pruned", {"lr": 0.3}, [1], [0.2]),
    ...           TrialData(2, "running", {"lr": 0.001}, [1], [0.4])]
    >>> pick_trials(trials, "maximize"), pick_trials(trials, "maximize", hide_pruned=True)
    ([0, 1, 2], [0, 2])
    >>> curve_columns(trials[:1])["ys"], curve_columns(trials)["dash"]
    ([[0.5, 0.7]], ['solid', 'dashed', 'solid'])
    >>> slice_columns(trials, [Axis("lr", "log", 1e-3, 1.0)])["p_lr"]     # ended trials only
    [0.01, 0.3]
"""
from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple

from bokeh.layouts import gridplot
from bokeh.models import (
    ColorBar, ColumnDataSource, DataTable, FactorRange, FixedTicker, HTMLTemplateFormatter,
    LabelSet, LinearColorMapper, NumberFormatter, Range1d, ScientificFormatter, TableColumn,
)
from bokeh.palettes import Viridis256
from bokeh.transform import jitter

from tunewidgets.plots._bounds import clamp_range
from tunewidgets.plots._common import add_hover, bound_range, metric_bounds, new_figure
from tunewidgets.plots._search_data import *  # noqa: F403 - the data half of this module
from tunewidgets.plots._search_data import (
    COLOR_MAPPER, CURVE_COLUMNS, CURVE_ENDS, CURVES, END_COLUMNS, ENDED, HIGHLIGHT, IMPORTANCE, PARALLEL,
    PARALLEL_AXES, SLICE, TABLE, Axis, __all__ as _data_all, curve_columns, end_columns, importance_columns,
    parallel_axis_columns, parallel_columns, pick_trials, slice_columns, table_columns, trials_of_study,
    value_range,
)

_NAN_COLOR = "#b0b0b0"  # lines and points of trials with no value yet
#: the importance plot's x range ends here: a bar of 100% keeps its label ("100%", ~30 px) inside
IMPORTANCE_END = 1.18

__all__ = [*_data_all, "IMPORTANCE_END", "SearchFigures", "live_search_figures", "search_parts", "set_color_range",
           "search_figures"]

# ----------------------------------------------------------------------------- figures
class SearchFigures(NamedTuple):
    """The figures of a search (each its own Bokeh document when shown as a widget)."""

    curves: Any
    slices: Any
    parallel: Any
    importance: Any
    table: Any


def live_search_figures(axes: Sequence[Axis], metric: str, direction: str, *, width: int = 640) -> SearchFigures:
    """The figures of a search around empty named sources (see the module docstring)."""
    palette = list(Viridis256) if direction == "maximize" else list(reversed(Viridis256))
    metric_label = metric.replace("_", " ")
    bounds = metric_bounds(metric)  # accuracy: axes and colour bars stay inside [0, 1]

    def mapper() -> LinearColorMapper:
        return LinearColorMapper(palette=palette, low=0.0, high=1.0, nan_color=_NAN_COLOR, name=COLOR_MAPPER,
                                 tags=[{"bounds": list(bounds)}])

    # curves
    curves_fig = new_figure("every trial's curve", x_label="epoch", y_label=metric_label, height=320, width=width)
    bound_range(curves_fig.y_range, bounds)
    colors = mapper()
    curves = ColumnDataSource({c: [] for c in CURVE_COLUMNS}, name=CURVES)
    ends = ColumnDataSource({c: [] for c in END_COLUMNS}, name=CURVE_ENDS)
    highlight = ColumnDataSource({"xs": [], "ys": [], "trial": []}, name=HIGHLIGHT)
    lines = curves_fig.multi_line("xs", "ys", source=curves, line_color={"field": "value", "transform": colors},
                                  line_dash="dash", line_alpha="alpha", line_width="width")
    curves_fig.scatter("x", "y", source=ends, marker="marker", size=9, color="#444444", fill_alpha=0.3)
    curves_fig.multi_line("xs", "ys", source=highlight, line_color="#D55E00", line_width=4.5, line_alpha=0.9)
    curves_fig.add_layout(ColorBar(color_mapper=colors, width=8, title=metric_label), "right")
    add_hover(curves_fig, [lines], [("trial", "@trial"), ("state", "@state"), (metric_label, "@value{0.0000}")],
              mode="mouse")

    # slices: one small figure per key, sharing one source
    slice_src = ColumnDataSource({c: [] for c in ("trial", "value", "state", "marker", "alpha",
                                                  *(a.column for a in axes))}, name=SLICE)
    slice_colors = mapper()
    figs = []
    for a in axes:
        kwargs: dict[str, Any] = {}
        x: Any = a.column
        if a.kind == "choice":  # a category axis; points spread a little so that they do not hide each other
            kwargs["x_range"] = FactorRange(*a.factors)
            x = jitter(a.column, width=0.5, range=kwargs["x_range"])
        f = new_figure(a.key + (" (log scale)" if a.kind == "log" else ""),
                       x_axis_type={"log": "log", "linear": "linear"}.get(a.kind, "auto"),
                       y_label=metric_label if not figs else "", height=220, width=260, **kwargs)
        f.sizing_mode = "fixed"
        bound_range(f.y_range, bounds)  # one trial: a range around its point, not 0-1.8
        if a.kind == "linear":  # a log axis has the project's log ticker (4 ticks or more)
            f.xaxis.ticker.desired_num_ticks = 4
            bound_range(f.x_range)  # one trial: a range around its value, not 2 wide
        r = f.scatter(x, "value", source=slice_src, marker="marker", size=8, fill_alpha="alpha",
                      line_alpha="alpha", color={"field": "value", "transform": slice_colors})
        add_hover(f, [r], [("trial", "@trial"), ("state", "@state"), (a.key, f"@{a.column}"),
                           (metric_label, "@value{0.0000}")], mode="mouse")
        figs.append(f)
    if not figs:
        figs.append(new_figure("no searched keys", height=220, width=260))
    slices = gridplot(figs, ncols=min(3, len(figs)), toolbar_location="right", merge_tools=True)

    # parallel coordinates
    vrange = (0.0, 1.0)
    par = new_figure("parallel coordinates", y_label="", height=300, width=width,
                     x_range=Range1d(-0.3, len(axes) + 0.3), y_range=Range1d(-0.12, 1.12))
    par_src = ColumnDataSource({c: [] for c in ("trial", "xs", "ys", "value", "state", "dash", "alpha")},
                               name=PARALLEL)
    par_axes = ColumnDataSource(parallel_axis_columns(axes, metric, vrange), name=PARALLEL_AXES)
    par_colors = mapper()
    plines = par.multi_line("xs", "ys", source=par_src, line_color={"field": "value", "transform": par_colors},
                            line_dash="dash", line_alpha="alpha", line_width=1.5)
    par.segment(x0="x", y0="y0", x1="x", y1="y1", source=par_axes, line_color="#555555", line_width=1)
    par.add_layout(LabelSet(x="x", y="y0", text="low", source=par_axes, y_offset=-14, text_font_size="10px",
                            text_align="center"))
    par.add_layout(LabelSet(x="x", y="y1", text="high", source=par_axes, y_offset=4, text_font_size="10px",
                            text_align="center"))
    par.xaxis.ticker = FixedTicker(ticks=list(range(len(axes) + 1)))
    par.xaxis.major_label_overrides = {i: n for i, n in enumerate([a.key for a in axes] + [metric_label])}
    par.yaxis.visible = False
    par.ygrid.visible = False
    add_hover(par, [plines], [("trial", "@trial"), ("state", "@state"), (metric_label, "@value{0.0000}")],
              mode="mouse")

    # importance
    keys = [a.key for a in axes]
    imp = new_figure("importance (after a few finished trials)", x_label="share of the metric's variation",
                     height=max(160, 60 + 28 * len(keys)), width=320, y_range=FactorRange(*reversed(keys)),
                     x_range=Range1d(0, IMPORTANCE_END))
    imp.xaxis.ticker = FixedTicker(ticks=[0.0, 0.25, 0.5, 0.75, 1.0])  # room right of 1 for a bar's label
    imp_src = ColumnDataSource(importance_columns(None), name=IMPORTANCE)
    imp.hbar(y="key", right="importance", source=imp_src, height=0.6, color="#0072B2")
    imp.add_layout(LabelSet(x="importance", y="key", text="label", source=imp_src, x_offset=4, y_offset=-6,
                            text_font_size="10px"))
    imp.sizing_mode = "fixed"

    # table
    table_src = ColumnDataSource(table_columns([], axes, direction), name=TABLE)
    number = NumberFormatter(format="0.0000", nan_format="-")
    star = HTMLTemplateFormatter(template='<b style="color:#1b7f3b"><%= value %></b>')
    columns = [TableColumn(field="best", title="", width=20, formatter=star),
               TableColumn(field="trial", title="trial", width=45),
               TableColumn(field="state", title="state", width=70),
               TableColumn(field="value", title=metric_label, formatter=number, width=90)]
    for a in axes:
        fmt = None if a.kind == "choice" else (
            ScientificFormatter(precision=3, power_limit_low=-2, nan_format="-") if a.kind == "log"
            else NumberFormatter(format="0.[0000]", nan_format="-"))
        columns.append(TableColumn(field=a.column, title=a.key, width=90, **({"formatter": fmt} if fmt else {})))
    columns += [TableColumn(field="epochs", title="epochs", width=50),
                TableColumn(field="duration", title="duration (s)", width=80, formatter=NumberFormatter(format="0.0",
                                                                                             nan_format="-"))]
    table = DataTable(source=table_src, columns=columns, height=300, width=width, index_position=None,
                      sortable=True, selectable=True, name="search_results")
    return SearchFigures(curves_fig, slices, par, imp, table)


def search_parts(figures: SearchFigures) -> dict[str, Any]:
    """The named sources of :func:`live_search_figures`, and ``"mappers"``: its three colour mappers."""
    parts: dict[str, Any] = {"mappers": []}
    for fig in figures:
        for m in fig.references():
            if isinstance(m, ColumnDataSource) and m.name:
                parts[m.name] = m
            elif isinstance(m, LinearColorMapper) and m.name == COLOR_MAPPER:
                parts["mappers"].append(m)
    missing = sorted({CURVES, CURVE_ENDS, HIGHLIGHT, SLICE, PARALLEL, PARALLEL_AXES, IMPORTANCE, TABLE} - set(parts))
    if missing:
        raise KeyError(f"not figures from live_search_figures(): no source(s) named {missing}")
    return parts


def set_color_range(parts: Mapping[str, Any], vrange: tuple[float, float]) -> None:
    """Colour every figure's lines and points over ``vrange`` (lowest, highest value)."""
    for m in parts["mappers"]:
        bounds = next((t["bounds"] for t in m.tags if isinstance(t, dict) and "bounds" in t), (None, None))
        vrange = clamp_range(tuple(vrange), tuple(bounds))
        if (m.low, m.high) != vrange:
            m.update(low=vrange[0], high=vrange[1])


def search_figures(study: Any, *, top_k: int | None = None, hide_pruned: bool = False, max_curves: int = 200,
                   max_rows: int = 100) -> SearchFigures:
    """The figures of a finished (or running) ``Study``, filled: ``tw.plots.search_figures(study)``."""
    trials = trials_of_study(study)
    axes = axes_of(study.space)
    figs = live_search_figures(axes, study.metric, study.direction)
    parts = search_parts(figs)
    by_number = {t.trial: t for t in trials}
    shown = [by_number[n] for n in pick_trials(trials, study.direction, hide_pruned=hide_pruned, top_k=top_k,
                                               max_curves=max_curves)]
    vrange = value_range((t for t in trials if t.state in ENDED), metric_bounds(study.metric))
    parts[CURVES].data = curve_columns(shown)
    parts[CURVE_ENDS].data = end_columns(shown)
    parts[SLICE].data = slice_columns(trials, axes, hide_pruned=hide_pruned)
    ended = [t for t in shown if t.state in ENDED and math.isfinite(t.value)]
    parts[PARALLEL].data = parallel_columns(ended, axes, vrange)
    parts[PARALLEL_AXES].data = parallel_axis_columns(axes, study.metric, vrange)
    parts[TABLE].data = table_columns(trials, axes, study.direction, max_rows=max_rows)
    set_color_range(parts, vrange)
    return figs


