"""``SchedulePreview``: pick a schedule shape, move its controls, watch the lr (and momentum) redraw.

The controls come from the spec's own field metadata (``Spec.controls()``): log sliders for
learning rates, sliders, dropdowns, nested selectors for ``Warmup.then`` and
``Sequential.specs``. Every change rebuilds the spec, previews it (``spec.preview``: exactly
what training applies) and replaces the plot's data in one assignment. A bad value shows its
error under that control and the plot keeps the last valid schedule.

Example (headless; in a notebook, show ``w`` and move the controls):
    >>> import tunewidgets as tw
    >>> w = tw.widgets.SchedulePreview(tw.schedules.OneCycle(max_lr=0.1), total_steps=1000, steps_per_epoch=100)
    >>> w.editor.fields["max_lr"].input.value = 0.05
    >>> w.spec, w.code
    (tw.schedules.OneCycle(max_lr=0.05), 'tw.schedules.OneCycle(max_lr=5.00e-2)')
    >>> w.editor.shape.value = "Cyclic"               # keeps max_lr=0.05
    >>> w.editor.fields["base_lr"].input.value = 0.1  # above max_lr: an error, shown under max_lr
    >>> w.error
    'ValueError: Cyclic.max_lr: must be above base_lr (0.1), got 0.05; e.g. max_lr=1.0, or pick both from tw.lr_range_test'
    >>> w.spec                                        # the last valid spec (and plot)
    tw.schedules.Cyclic(max_lr=0.05)
    >>> cfg = tw.TrainConfig(optimizer="sgd", lr=w.base_lr, schedule=w.spec, epochs=10)
"""
from __future__ import annotations

import math
from typing import Any

import ipywidgets as widgets
from traitlets import Float, Instance, Int, TraitError, Unicode, observe, validate

from tunewidgets.plots._common import LR_FORMAT
from tunewidgets.plots.schedule import (
    SCHEDULE, SchedulePlotData, schedule_figure, schedule_parts, schedule_plot_data, set_epoch_marks,
    show_pinned, show_schedule,
)
from tunewidgets.schedules import CATALOGUE, ScheduleSpec
from tunewidgets.schedules._preview import OPTIMIZER_KINDS
from tunewidgets.widgets._bokeh import batched, bokeh_widget, ensure_bokehjs
from tunewidgets.widgets._embed import HTMLExport
from tunewidgets.widgets._spec_code import code_html, code_spans, spec_code
from tunewidgets.widgets._spec_controls import FieldControl, SpecEditor, SpecInputError, fit_to_run
from tunewidgets.widgets._ui import ErrorArea

__all__ = ["SchedulePreview", "PEAK_FIELD"]

_OWN_LR_SHAPES = ("OneCycle", "Cyclic")  # their lrs come from their own fields, not the optimizer's
PEAK_FIELD = "max_lr"  # the field a linked LR finder sets (OneCycle, Cyclic); else the preview's base_lr
_LAST_GOOD = "The plot and the code show the last valid schedule; fix the value marked in red."
_METRIC_NOTE = ("This schedule follows the validation metric; the plot assumes a metric that never "
                "improves (the fastest decay it allows), evaluated once per epoch (20 times in all "
                "without steps_per_epoch).")


class SchedulePreview(HTMLExport, widgets.VBox):
    """A schedule picker: shape selector, generated controls, live lr plot, pin, code to copy.

    Args:
        spec: the schedule shown first (default ``tw.schedules.OneCycle()``).
        total_steps: optimizer steps of the run to preview (epochs x steps per epoch).
        steps_per_epoch: optimizer steps per epoch: marks epochs on the plot; needed by
            ``interval="epoch"`` specs.
        base_lr: the optimizer's lr (``TrainConfig.lr``) that most shapes scale; OneCycle and
            Cyclic set their own lr from ``max_lr``.
        optimizer, momentum: the optimizer the preview assumes (whether momentum or beta1
            cycles) and its own momentum.
        lr_finder: an ``LRFinder`` widget (or anything with an ``lr`` trait) whose chosen lr
            sets the peak lr here (see :meth:`link_lr`).
        max_points: longer schedules are decimated to this many points (min and max kept).

    Attributes: ``spec`` (the last valid spec: give it to ``TrainConfig(schedule=...)``),
    ``code`` (``spec.to_code()``), ``error`` (the error shown, or ``""``), ``pinned``.
    """

    spec = Instance(ScheduleSpec, help="The last valid schedule spec; set it to show another.")
    base_lr = Float(0.1, help="The optimizer's lr the preview uses (TrainConfig.lr).")
    total_steps = Int(1000, help="Optimizer steps of the previewed run.")
    steps_per_epoch = Int(None, allow_none=True, help="Optimizer steps per epoch, or None.")
    code = Unicode("", help="Python that recreates the spec, e.g. tw.schedules.OneCycle(max_lr=1.00e-1).")
    error = Unicode("", help="The error shown next to a control ('Type: message'), or '' when valid.")

    def __init__(self, spec: ScheduleSpec | None = None, *, total_steps: int = 1000,
                 steps_per_epoch: int | None = None, base_lr: float = 0.1, optimizer: str = "sgd",
                 momentum: float = 0.9, lr_finder: Any = None, max_points: int = 2000) -> None:
        spec = CATALOGUE["OneCycle"]() if spec is None else spec
        if not isinstance(spec, ScheduleSpec):
            raise TypeError(f"spec: expected a tw.schedules spec such as tw.schedules.OneCycle(), got {spec!r}")
        _check_whole("total_steps", total_steps, "the optimizer steps of the run, e.g. 1000")
        if steps_per_epoch is not None:
            _check_whole("steps_per_epoch", steps_per_epoch, "e.g. len(train_loader), or None")
        _check_positive("base_lr", base_lr, "the optimizer's lr, e.g. 0.1")
        if optimizer not in OPTIMIZER_KINDS:
            raise ValueError(f"optimizer: must be one of {', '.join(map(repr, OPTIMIZER_KINDS))}, got {optimizer!r}")
        if not (isinstance(momentum, (int, float)) and not isinstance(momentum, bool) and 0 <= momentum < 1):
            raise ValueError(f"momentum: must be in [0, 1), got {momentum!r}; e.g. 0.9")
        if not isinstance(max_points, int) or isinstance(max_points, bool) or max_points < 10:
            raise ValueError(f"max_points: must be a whole number >= 10, got {max_points!r}; e.g. 2000")
        if lr_finder is not None:
            _check_finder(lr_finder)
        self.optimizer, self.momentum, self.max_points = optimizer, float(momentum), max_points
        # a spec that does not fit the run raises here, before any widget is made
        first = schedule_plot_data(self._preview(spec, total_steps, steps_per_epoch, float(base_lr)), max_points)
        self._quiet = 0
        self._last_changed: Any = None
        self._finder: Any = None
        self._pinned: tuple[ScheduleSpec, SchedulePlotData] | None = None
        super().__init__(spec=spec, base_lr=float(base_lr), total_steps=total_steps,
                         steps_per_epoch=steps_per_epoch, code=spec_code(spec))
        self._data = first
        self._shown = (spec, total_steps, steps_per_epoch, float(base_lr))

        # -- plot ---------------------------------------------------------------------------
        self.figure = schedule_figure(first, total_steps=total_steps, steps_per_epoch=steps_per_epoch,
                                      title=None, height=300)
        self._parts = schedule_parts(self.figure)
        self.plot = bokeh_widget(self.figure, width="100%", min_width="380px")

        # -- controls -----------------------------------------------------------------------
        self.base_lr_slider = widgets.FloatLogSlider(
            value=float(base_lr), base=10, min=min(-6, math.floor(math.log10(base_lr))),
            max=max(1, math.ceil(math.log10(base_lr))), step=0.001, readout_format=LR_FORMAT,
            description="optimizer lr",
            tooltip="the optimizer's lr (TrainConfig.lr) that most shapes scale; OneCycle and Cyclic set "
                    "their own (hidden for them)", style={"description_width": "130px"},
            layout=widgets.Layout(width="420px"))
        self.base_lr_slider.observe(self._on_base_lr_slider, names="value")
        self.editor = SpecEditor(spec, choices=list(CATALOGUE), on_change=self._on_control, fit=self._fit)
        self.pin_button = widgets.Button(description="Pin", icon="thumb-tack",
                                         tooltip="keep the current schedule as a faded reference")
        self.unpin_button = widgets.Button(description="Unpin", disabled=True, tooltip="remove the reference")
        self.pin_button.on_click(lambda _b: self.pin())
        self.unpin_button.on_click(lambda _b: self.unpin())
        self.pinned_label = widgets.HTML("")
        self.code_view = widgets.HTML(code_html(self.code))
        self.code_view.add_class("tw-schedule-code")
        self.status_line = widgets.HTML("")
        self._set_note()
        self.error_area = ErrorArea()

        controls = widgets.VBox([self.base_lr_slider, self.editor],
                                layout=widgets.Layout(width="450px", min_width="450px"))
        view = widgets.VBox([self.plot, widgets.HBox([self.pin_button, self.unpin_button, self.pinned_label],
                                                      layout=widgets.Layout(align_items="center")),
                             self.code_view, self.status_line],
                            layout=widgets.Layout(flex="1 1 auto", min_width="380px"))
        self.children = [widgets.HBox([controls, view], layout=widgets.Layout(width="100%")), self.error_area]
        self.add_class("tw-schedule-preview")
        if lr_finder is not None:
            self.link_lr(lr_finder)

    # -- public ---------------------------------------------------------------------------
    @property
    def data(self) -> dict[str, Any]:
        """The columns the plot shows now (``step``, ``lr``, ``momentum``; decimated if long)."""
        return self._parts[SCHEDULE].data

    @property
    def pinned(self) -> ScheduleSpec | None:
        """The pinned spec (shown faded), or None."""
        return None if self._pinned is None else self._pinned[0]

    @property
    def pinned_code(self) -> str:
        """The code of the pinned spec, as :attr:`code` writes it ("" when nothing is pinned)."""
        return "" if self._pinned is None else spec_code(self._pinned[0])

    def refresh(self) -> bool:
        """Rebuild the spec from the controls and redraw; False (error shown, plot kept) if invalid."""
        try:
            spec = self.editor.build()
            frame = self._preview(spec, self.total_steps, self.steps_per_epoch, self.base_lr)
        except SpecInputError as exc:
            self._show_error(exc.error, exc.where)
            return False
        except (ValueError, TypeError) as exc:
            self._show_error(exc, self.editor.locate(str(exc)) or self._last_changed)
            return False
        self._clear_errors()
        shown = (spec, self.total_steps, self.steps_per_epoch, self.base_lr)
        if shown == self._shown:  # e.g. the browser echoing a value back: nothing to send
            return True
        self._shown = shown
        self._data = schedule_plot_data(frame, self.max_points)
        with batched([self.plot]):  # a slider's move: one patch for the whole redraw
            show_schedule(self._parts, self._data)
        self._quiet += 1
        try:
            self.spec = spec
        finally:
            self._quiet -= 1
        self._set_note()
        return True

    def pin(self) -> ScheduleSpec:
        """Overlay the current schedule as a faded reference (replacing an earlier pin)."""
        self._pinned = (self.spec, self._data)
        show_pinned(self._parts, self._data)
        self.pinned_label.value = f'<span style="color:#777">pinned: <code>{code_spans(self.code)}</code></span>'
        self.unpin_button.disabled = False
        return self.spec

    def unpin(self) -> None:
        """Remove the pinned reference."""
        self._pinned = None
        show_pinned(self._parts, None)
        self.pinned_label.value = ""
        self.unpin_button.disabled = True

    def set_peak_lr(self, lr: float) -> None:
        """Set the schedule's peak lr: ``max_lr`` of OneCycle and Cyclic (nested ones too), else
        ``base_lr``; rounded to three significant digits, as the code and the sliders show it.
        A shape picked later that has a ``max_lr`` starts from it too."""
        _check_positive("lr", lr, "e.g. 3e-3, as an LR range test suggests")
        lr = float(f"{float(lr):.3g}")
        for editor in self.editor.editors():
            editor.remember(PEAK_FIELD, "lr", lr)
        targets = [f for f in self.editor.all_fields() if f.name == PEAK_FIELD]
        if not targets:
            self.base_lr = lr
            return
        self._quiet += 1
        try:
            for field in targets:
                field.set_value(float(lr))
        finally:
            self._quiet -= 1
        self._last_changed = targets[0]
        self.refresh()

    def link_lr(self, finder: Any) -> SchedulePreview:
        """Follow ``finder``'s chosen lr (an ``LRFinder``'s ``lr`` trait): each new choice sets
        the peak lr (:meth:`set_peak_lr`). Replaces an earlier link; applies a current choice now."""
        _check_finder(finder)
        self.unlink_lr()
        finder.observe(self._on_finder_lr, names="lr")
        self._finder = finder
        if finder.lr is not None:
            self.set_peak_lr(finder.lr)
        return self

    def unlink_lr(self) -> None:
        """Stop following the linked LR finder."""
        if self._finder is not None:
            self._finder.unobserve(self._on_finder_lr, names="lr")
            self._finder = None

    # -- reacting ---------------------------------------------------------------------------
    def _on_control(self, where: Any) -> None:
        if self._quiet:
            return
        self._last_changed = where
        self.refresh()

    def _on_finder_lr(self, change: Any) -> None:
        if change["new"] is not None:
            self.set_peak_lr(change["new"])

    def _on_base_lr_slider(self, change: Any) -> None:
        new = change["new"]
        snapped = abs(math.log10(new) - math.log10(self.base_lr)) <= 0.5001 * self.base_lr_slider.step
        if not self._quiet and not snapped:  # a move, not the browser snapping the value to a step
            self.base_lr = float(f"{new:.3g}")

    @validate("spec")
    def _check_spec(self, proposal: Any) -> ScheduleSpec:
        spec = proposal["value"]
        if self._quiet or not hasattr(self, "editor"):
            return spec
        try:
            self._preview(spec, self.total_steps, self.steps_per_epoch, self.base_lr)
        except (ValueError, TypeError) as exc:
            raise TraitError(f"spec: {exc}") from None
        return spec

    @observe("spec")
    def _spec_changed(self, change: Any) -> None:
        if hasattr(self, "editor"):
            if not self._quiet:  # set from outside: show it in the controls
                self.editor.load(change["new"])
                self.refresh()
            self.code = spec_code(change["new"])

    @observe("code")
    def _code_changed(self, change: Any) -> None:
        if hasattr(self, "code_view"):
            self.code_view.value = code_html(change["new"])

    @validate("base_lr")
    def _check_base_lr(self, proposal: Any) -> float:
        value = proposal["value"]
        if not _positive(value):
            raise TraitError(f"base_lr: must be a finite number > 0, got {value!r}; e.g. 0.1")
        return float(value)

    @validate("total_steps", "steps_per_epoch")
    def _check_lengths(self, proposal: Any) -> Any:
        name, value = proposal["trait"].name, proposal["value"]
        if value is not None and value < 1:
            raise TraitError(f"{name}: must be >= 1, got {value!r}")
        return value

    @observe("base_lr", "total_steps", "steps_per_epoch")
    def _run_changed(self, change: Any) -> None:
        if not hasattr(self, "editor"):
            return
        if change["name"] == "base_lr" and not math.isclose(self.base_lr_slider.value, change["new"]):
            self._quiet += 1
            try:
                self.base_lr_slider.value = change["new"]
            finally:
                self._quiet -= 1
        if change["name"] != "base_lr":
            set_epoch_marks(self._parts, self.total_steps, self.steps_per_epoch)
        self.refresh()

    # -- plumbing -------------------------------------------------------------------------
    def _preview(self, spec: ScheduleSpec, total_steps: int, steps_per_epoch: int | None, base_lr: float) -> Any:
        kwargs: dict[str, Any] = {"optimizer": self.optimizer, "momentum": self.momentum}
        if spec.metric_driven:  # a metric that never improves: the fastest decay the spec allows
            evals = math.ceil(total_steps / steps_per_epoch) if steps_per_epoch else 20
            kwargs["metrics"] = [1.0] * evals
        return spec.preview(total_steps, base_lr, steps_per_epoch, **kwargs)

    def _fit(self, spec: ScheduleSpec) -> ScheduleSpec:
        """A newly picked shape with its default lengths scaled to this run."""
        positions = self.total_steps
        if getattr(spec, "interval", "step") == "epoch" and self.steps_per_epoch:
            positions = math.ceil(self.total_steps / self.steps_per_epoch)
        return fit_to_run(spec, positions)

    def _show_error(self, exc: BaseException, where: Any) -> None:
        area = where.error if isinstance(where, (FieldControl, SpecEditor)) else self.error_area
        self._clear_errors(keep=area)
        area.show(exc)
        self.error = area.message
        self._set_note()

    def _clear_errors(self, keep: ErrorArea | None = None) -> None:
        for area in [*self.editor.error_areas(), self.error_area]:
            if area is not keep and area.visible:
                area.clear()
        if keep is None and self.error:
            self.error = ""
        self._set_note()

    def _set_note(self) -> None:
        """The line under the code: why the plot is stale, or what a metric-driven preview assumes.

        Also hides the optimizer-lr slider for shapes that set their own lr (OneCycle, Cyclic).
        """
        own = type(self.spec).__name__ in _OWN_LR_SHAPES
        display = "none" if own else None
        if self.base_lr_slider.layout.display != display:
            self.base_lr_slider.layout.display = display
        if self.error:
            text = f'<span style="color:#b00020">{_LAST_GOOD}</span>'
        elif self.spec.metric_driven:
            text = f'<span style="color:#777">{_METRIC_NOTE}</span>'
        else:
            text = ""
        if self.status_line.value != text:
            self.status_line.value = text

    def _repr_mimebundle_(self, **kwargs: Any) -> Any:
        ensure_bokehjs([self.figure])
        if self.plot._stale:  # show the plot as it is now (a linked finder may have changed it)
            self.plot.render_now()
        return super()._repr_mimebundle_(**kwargs)


def _positive(value: Any) -> bool:
    return (isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
            and value > 0)


def _check_positive(name: str, value: Any, fix: str) -> None:
    if not _positive(value):
        raise ValueError(f"{name}: must be a finite number > 0, got {value!r}; {fix}")


def _check_whole(name: str, value: Any, fix: str) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise ValueError(f"{name}: must be a whole number >= 1, got {value!r}; {fix}")


def _check_finder(finder: Any) -> None:
    if not (hasattr(finder, "observe") and hasattr(finder, "has_trait") and finder.has_trait("lr")):
        raise TypeError(f"lr_finder: expected an LRFinder widget (anything with an 'lr' trait), "
                        f"got {type(finder).__name__}; e.g. SchedulePreview(lr_finder=tw.widgets.LRFinder(task))")
