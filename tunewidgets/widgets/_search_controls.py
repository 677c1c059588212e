"""The controls of the ``Search`` widget: one row per space key, and the search settings.

A :class:`DimensionRow` shows one key of the space: an on/off switch, and its range as a
control that suits its dimension: a range slider in log10 units for log dimensions (rates), a
plain range slider for the others, whole numbers for ``Int``, a multi-select for a ``Choice``.
For a grid search a numeric row also asks how many points. :meth:`DimensionRow.dimension`
gives the dimension the controls describe now (None when switched off), of the same type as
the one the row was made from and with its conditions (``when=``).

:func:`default_space` is the space a ``Search`` shows when it is given none: the learning rate
(a decade each side of the base's, or of the schedule's peak when the schedule sets the lr),
momentum for the optimizers that use it, and, switched off, weight decay, batch size, the
optimizer and the model's width and dropout when its factory takes them.

Example:
    >>> import tunewidgets as tw
    >>> from tunewidgets.widgets._search_controls import DimensionRow
    >>> row = DimensionRow("lr", tw.space.LogUniform(1e-4, 1e-1))
    >>> row.slider.value, row.label.value
    ((-4.0, -1.0), '1.00e-4 &rarr; 1.00e-1')
    >>> row.slider.value = (-3.0, -1.0)
    >>> row.dimension(grid=False), row.dimension(grid=True)
    (LogUniform(0.001, 0.1), LogUniform(0.001, 0.1, grid=3))
    >>> row.switch.value = False
    >>> row.dimension(grid=False) is None
    True
"""
from __future__ import annotations

import math
from typing import Any

import ipywidgets as widgets

from tunewidgets.hpo.pruners import PRUNERS
from tunewidgets.hpo.space import Choice, Dimension, Fixed, Int, LogUniform, Uniform
from tunewidgets.hpo.strategies import STRATEGIES
from tunewidgets.plots._common import fmt_lr

__all__ = ["DimensionRow", "SearchSettings", "default_space", "space_of", "peak_key", "cycles_momentum",
           "progress_text", "fmt_seconds", "NO_PRUNER", "COUNTED", "SETTINGS_WIDTH"]

NO_PRUNER = "none"
_KNOWN_BOUNDS = {"momentum": (0.0, 0.999), "model.dropout": (0.0, 0.9), "schedule.pct_start": (0.01, 0.99),
                 "dropout": (0.0, 0.9)}


def _row_layout() -> widgets.Layout:
    """A row's layout: one per row (a shared layout model would be closed with the first row closed)."""
    return widgets.Layout(align_items="center", margin="0 0 2px 0")


SETTINGS_WIDTH = 380  # px: the settings panel's width, the same for every strategy


def _fmt(v: float) -> str:
    return fmt_lr(v) if v != 0 and (abs(v) < 1e-2 or abs(v) >= 1e4) else f"{v:.4g}"


def _nice(v: float) -> float:
    """Three significant digits: what a slider move means, written as people write numbers."""
    return float(f"{v:.3g}")


class DimensionRow(widgets.HBox):
    """One space key: on/off switch, its range (or values), grid points; see the module docstring."""

    def __init__(self, key: str, dim: Dimension, *, on: bool = True) -> None:
        self.key, self.source = key, dim
        self.switch = widgets.Checkbox(value=on, description=key, indent=False,
                                       layout=widgets.Layout(width="150px"))
        self.label = widgets.HTML(layout=widgets.Layout(min_width="150px"))
        self.note = widgets.HTML()
        self.slider: Any = None
        self.kind = self._kind(dim)
        # an Int grid tries every whole number of its range unless given a number of points (0: all)
        first = getattr(dim, "grid", None) or (0 if self.kind == "int" else 3)
        self.points = widgets.BoundedIntText(value=int(first), min=0 if self.kind == "int" else 2, max=1000,
                                             description="points", style={"description_width": "45px"},
                                             layout=widgets.Layout(width="120px", visibility="hidden"),
                                             tooltip="grid points, both ends included (log-spaced on a log range)"
                                                     + ("; 0: every whole number" if self.kind == "int" else ""))
        control = self._make_control(dim)
        children = [self.switch, control, self.label]
        if self.kind in ("log", "linear", "int"):
            children.append(self.points)
        children.append(self.note)
        super().__init__(children=children, layout=_row_layout())
        self.switch.observe(lambda _c: self._show_enabled(), names="value")
        self._show_enabled()

    # -- building -------------------------------------------------------------------------
    @staticmethod
    def _kind(dim: Dimension) -> str:
        if isinstance(dim, Choice):
            return "choice"
        if isinstance(dim, Fixed):
            return "fixed"
        if isinstance(dim, Int):
            return "int"
        return "log" if dim.is_log else "linear"

    def _make_control(self, dim: Any) -> Any:
        width = widgets.Layout(width="260px")
        if self.kind == "choice":
            labels = [v if isinstance(v, str) else repr(v) for v in dim.values]
            self.slider = widgets.SelectMultiple(options=list(zip(labels, range(len(labels)))),
                                                 value=tuple(range(len(labels))), rows=min(len(labels), 4),
                                                 layout=width, tooltip="ctrl-click to pick several")
            self.slider.observe(lambda _c: self._show_label(), names="value")
            self._show_label()
            return self.slider
        if self.kind == "fixed":
            self.label.value = f"fixed at {dim.value!r}"
            return widgets.HTML(layout=width)
        self._low, self._high = float(dim.low), float(dim.high)
        if self.kind == "log":
            lo, hi = math.log10(self._low), math.log10(self._high)
            self.slider = widgets.FloatRangeSlider(value=(lo, hi), min=math.floor(lo) - 2, max=math.ceil(hi) + 2,
                                                   step=0.01, readout=False, layout=width,
                                                   tooltip="log10 of the range's ends")
        elif self.kind == "int":
            self._low, self._high = int(dim.low), int(dim.high)
            span = max(1, self._high - self._low)
            bottom = max(1, self._low - span) if self._low >= 1 else self._low - span
            self.slider = widgets.IntRangeSlider(value=(self._low, self._high), min=bottom, max=self._high + span,
                                                 step=int(getattr(dim, "step", 1)), layout=width, readout=False)
        else:
            bottom, top = _KNOWN_BOUNDS.get(self.key, (None, None))
            span = self._high - self._low
            if bottom is None:
                bottom = max(0.0, self._low - span) if self._low >= 0 else self._low - span
                top = self._high + span
            bottom, top = min(bottom, self._low), max(top, self._high)
            self.slider = widgets.FloatRangeSlider(value=(self._low, self._high), min=bottom, max=top,
                                                   step=(top - bottom) / 500, readout=False, layout=width)
        self.slider.observe(self._on_slider, names="value")
        self._show_label()
        return self.slider

    # -- public ---------------------------------------------------------------------------
    @property
    def on(self) -> bool:
        return bool(self.switch.value)

    @property
    def low(self) -> float:
        return self._low

    @property
    def high(self) -> float:
        return self._high

    def set_range(self, low: float, high: float) -> None:
        """Set a numeric row's range exactly (the slider shows it at its step)."""
        if self.kind not in ("log", "linear", "int"):
            raise ValueError(f"{self.key}: a {self.kind} row has no range to set")
        if not low < high:
            raise ValueError(f"{self.key}: low must be below high, got {low!r} and {high!r}")
        if self.kind == "log":
            lo, hi = math.log10(low), math.log10(high)
            self.slider.min = min(self.slider.min, math.floor(lo) - 1)
            self.slider.max = max(self.slider.max, math.ceil(hi) + 1)
            self.slider.value = (lo, hi)
        else:
            self.slider.min, self.slider.max = min(self.slider.min, low), max(self.slider.max, high)
            self.slider.value = (low, high)
        self._low, self._high = (int(low), int(high)) if self.kind == "int" else (float(low), float(high))
        self._show_label()

    def show_grid(self, grid: bool) -> None:
        """Show the grid points field for a grid search; its room stays when hidden, so that the
        rows keep their width and the settings beside them do not move when the strategy changes."""
        self.points.layout.visibility = "visible" if grid else "hidden"

    def dimension(self, grid: bool) -> Dimension | None:
        """The dimension the controls describe (None when switched off); grid points when ``grid``."""
        if not self.on:
            return None
        dim, when = self.source, self.source.when
        if self.kind == "fixed":
            return dim
        if self.kind == "choice":
            chosen = sorted(self.slider.value)
            if not chosen:
                raise ValueError(f"{self.key}: no value is selected; select at least one (ctrl-click for "
                                 "several), or switch the key off")
            return Choice([dim.values[i] for i in chosen], when=when)
        points = int(self.points.value) if grid and self.points.value else None
        if self.kind == "int":
            return Int(self._low, self._high, log=dim.log, step=dim.step, grid=points, when=when)
        cls = LogUniform if self.kind == "log" else Uniform
        return cls(self._low, self._high, grid=points, when=when)

    def disable(self, disabled: bool) -> None:
        for w in (self.switch, self.slider, self.points):
            if w is not None:
                w.disabled = disabled

    # -- reacting -------------------------------------------------------------------------
    def _on_slider(self, change: Any) -> None:
        lo, hi = change["new"]
        step = self.slider.step
        if self.kind == "log":
            # an end the page only snapped to the slider's step keeps its exact value
            if abs(lo - math.log10(self._low)) > step / 2 + 1e-9:
                self._low = _nice(10.0 ** lo)
            if abs(hi - math.log10(self._high)) > step / 2 + 1e-9:
                self._high = _nice(10.0 ** hi)
        elif self.kind == "int":
            self._low, self._high = int(lo), int(hi)
        else:
            if abs(lo - self._low) > step / 2 + 1e-12:
                self._low = _nice(lo)
            if abs(hi - self._high) > step / 2 + 1e-12:
                self._high = _nice(hi)
        self._show_label()

    def _show_label(self) -> None:
        if self.kind == "choice":
            picked = [self.slider.options[i][0] for i in sorted(self.slider.value)]
            self.label.value = ", ".join(picked) if picked else '<span style="color:#b00020">none selected</span>'
        elif self.kind == "int":
            self.label.value = f"{self._low} &rarr; {self._high}" + (" (log)" if self.source.log else "")
        elif self.kind == "log":
            self.label.value = f"{fmt_lr(self._low)} &rarr; {fmt_lr(self._high)}"
        elif self.kind != "fixed":
            self.label.value = f"{_fmt(self._low)} &rarr; {_fmt(self._high)}"

    def _show_enabled(self) -> None:
        off = not self.on
        for w in (self.slider, self.points):
            if w is not None:
                w.disabled = off
        self.label.layout.opacity = "0.45" if off else "1"


class SearchSettings(widgets.VBox):
    """Strategy, trial count (the grid's size for grid), pruner, metric, epochs, seed, study name, views."""

    def __init__(self, *, strategy: str, n_trials: int, pruner: str | None, metrics: list[str], metric: str,
                 epochs: int, study: str | None, seed: int = 0) -> None:
        style = {"description_width": "70px"}
        self.strategy = widgets.ToggleButtons(options=list(STRATEGIES), value=strategy, description="strategy",
                                              style={"description_width": "70px", "button_width": "80px"},
                                              tooltips=["every grid point once", "random points",
                                                        "TPE: learns from the finished trials"])
        self.n_trials = widgets.BoundedIntText(value=n_trials, min=1, max=1_000_000, description="trials",
                                               style=style, layout=widgets.Layout(width="170px"))
        # a fixed room for the grid's size: the panel keeps its width whatever it says
        self.grid_info = widgets.HTML(layout=widgets.Layout(width=f"{SETTINGS_WIDTH - 180}px"))
        self.pruner = widgets.Dropdown(options=[NO_PRUNER, *PRUNERS], value=pruner or NO_PRUNER,
                                       description="pruner", style=style, layout=widgets.Layout(width="250px"))
        self.metric = widgets.Dropdown(options=metrics, value=metric, description="metric", style=style,
                                       layout=widgets.Layout(width="250px"))
        self.epochs = widgets.BoundedIntText(value=epochs, min=1, max=100_000, description="epochs", style=style,
                                             layout=widgets.Layout(width="170px"), tooltip="epochs of each trial")
        self.seed = widgets.BoundedIntText(value=seed, min=0, max=2**32 - 1, description="seed", style=style,
                                           layout=widgets.Layout(width="170px"),
                                           tooltip="seeds the sampler: the same seed draws the same points")
        self.study = widgets.Text(value=study or "", placeholder="new study each Launch", description="study",
                                  style=style, layout=widgets.Layout(width="250px"),
                                  tooltip="a study's name: Launch resumes it if the store has it")
        self.hide_pruned = widgets.Checkbox(value=False, description="hide pruned", indent=False,
                                            layout=widgets.Layout(width="110px"))
        self.top_k = widgets.BoundedIntText(value=0, min=0, max=100_000, description="top k", style={
            "description_width": "40px"}, layout=widgets.Layout(width="120px"),
            tooltip="show only the k best curves (0: all)")
        super().__init__(children=[
            self.strategy,
            widgets.HBox([self.n_trials, self.grid_info], layout=_row_layout()),
            self.pruner, self.metric, widgets.HBox([self.epochs, self.seed], layout=_row_layout()), self.study,
            widgets.HBox([self.hide_pruned, self.top_k], layout=_row_layout()),
        ], layout=widgets.Layout(width=f"{SETTINGS_WIDTH}px"))
        self.add_class("tw-search-settings")

    def inputs(self) -> list[Any]:
        """The controls a running search uses as it started (disabled while it runs)."""
        return [self.strategy, self.n_trials, self.pruner, self.metric, self.epochs, self.seed, self.study]


def peak_key(schedule: Any) -> str | None:
    """The key of the schedule's own peak lr (``schedule.max_lr``, ``schedule.then.max_lr``), or None
    when the schedule uses the optimizer's lr."""
    path, spec = "schedule", schedule
    while spec is not None and getattr(spec, "_peak_lr", lambda: None)() is not None:
        if hasattr(spec, "max_lr"):
            return f"{path}.max_lr"
        spec, path = getattr(spec, "then", None), f"{path}.then"
    return None


def cycles_momentum(schedule: Any) -> bool:
    return schedule is not None and bool(getattr(schedule, "_cycles_momentum", lambda: False)())


def default_space(base: Any, model_kwargs: list[str] | None, lr: float | None = None
                  ) -> tuple[dict[str, Dimension], set[str]]:
    """The space a ``Search`` shows when given none, and the keys switched on at first."""
    centre = lr or _schedule_peak(base.schedule) or base.lr
    dims: dict[str, Dimension] = {"lr": LogUniform(_nice(centre / 10), _nice(centre * 10))}
    on = {"lr"}
    dims["momentum"] = Uniform(0.8, 0.99)
    if base.optimizer in ("sgd", "rmsprop") and not cycles_momentum(base.schedule):
        on.add("momentum")
    wd = base.weight_decay
    dims["weight_decay"] = LogUniform(_nice(wd / 10), _nice(wd * 10)) if wd > 0 else LogUniform(1e-6, 1e-2)
    if wd > 0:
        on.add("weight_decay")
    dims["batch_size"] = Choice([32, 64, 128, 256])
    dims["optimizer"] = Choice(["sgd", "adam", "adamw"])
    if model_kwargs is not None and "width" in model_kwargs:
        dims["model.width"] = Choice([16, 32, 64, 128])
    if model_kwargs is not None and "dropout" in model_kwargs:
        dims["model.dropout"] = Uniform(0.0, 0.5)
    return dims, on


def _schedule_peak(schedule: Any) -> float | None:
    return None if schedule is None else getattr(schedule, "_peak_lr", lambda: None)()


def space_of(rows: list[DimensionRow], base: Any, grid: bool) -> tuple[dict[str, Dimension], dict[str, str]]:
    """The space the rows describe for this base config, and a note for each row renamed or left out:
    the lr row searches the schedule's own peak when the schedule sets the lr (``schedule.max_lr``),
    and a momentum row is left out when the schedule cycles momentum."""
    peak, cycles = peak_key(base.schedule), cycles_momentum(base.schedule)
    schedule_keys = any(r.key.startswith("schedule.") and r.on for r in rows)
    dims: dict[str, Dimension] = {}
    notes: dict[str, str] = {}
    for row in rows:
        dim = row.dimension(grid)
        if dim is None:
            continue
        key = row.key
        if key == "lr" and peak is not None:
            key = peak
            notes[row.key] = f"searched as {peak}: the schedule sets the lr"
        if key == "momentum" and cycles and not schedule_keys:
            notes[row.key] = "not searched: the schedule cycles momentum"
            continue
        dims[key] = dim
    return dims, notes


COUNTED = ("finished", "pruned", "failed", "diverged")  # the states that count towards n_trials


def progress_text(counts: dict[str, int], total: int, per_trial: float | None = None) -> str:
    """``finished 3 · running 1 · pruned 2 · failed 0 · left 14 · about 40 s left``."""
    ended = sum(counts.get(s, 0) for s in COUNTED)
    left = max(0, total - ended - counts.get("running", 0))
    text = (f"finished {counts.get('finished', 0)} · running {counts.get('running', 0)} · "
            f"pruned {counts.get('pruned', 0)} · failed {counts.get('failed', 0) + counts.get('diverged', 0)} · "
            f"left {left}")
    if per_trial is not None and total > ended:
        text += f" · about {fmt_seconds(per_trial * (total - ended))} left"
    return text


def fmt_seconds(s: float) -> str:
    if s < 60:
        return f"{s:.0f} s"
    if s < 3600:
        return f"{int(s // 60)} min {int(s % 60)} s"
    return f"{int(s // 3600)} h {int(s % 3600 // 60)} min"
