"""Controls generated from a schedule spec's ``controls()``: one input per field, an inline
error area under each, and nested specs (``Warmup.then``, ``Sequential.specs``) as nested editors.

A :class:`SpecEditor` shows a shape selector and the chosen shape's fields; ``build()`` returns
the spec they describe or raises :class:`SpecInputError`, which says which field's error area
should show the problem. Learning rates get log sliders; numbers sliders; choices dropdowns;
``list[int]`` a text box ("500, 750"); optional fields a "None" box beside their slider. A nested
editor has no ``interval`` control of its own: it takes its parent's.

Example:
    >>> import tunewidgets as tw
    >>> from tunewidgets.widgets._spec_controls import SpecEditor, SpecInputError
    >>> editor = SpecEditor(tw.schedules.Warmup(steps=50), choices=list(tw.schedules.CATALOGUE))
    >>> editor.build()
    tw.schedules.Warmup(steps=50)
    >>> editor.fields["then"].editor.shape.value = "OneCycle"
    >>> editor.build()
    tw.schedules.Warmup(steps=50, then=tw.schedules.OneCycle())
    >>> editor.fields["start_factor"].input.value = 1.0
    >>> editor.build().start_factor
    1.0
"""
from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import ipywidgets as widgets

from tunewidgets.schedules import CATALOGUE, Control, ScheduleSpec
from tunewidgets.widgets._ui import ErrorArea

__all__ = ["SpecEditor", "FieldControl", "SpecInputError", "make_field", "fit_to_run"]

_STYLE = {"description_width": "130px"}
_WIDTH = "420px"
# "Cyclic.max_lr: ...", "Sequential.specs[1]: ...", "cycle_momentum: ..."
_FIELD_OF_MESSAGE = re.compile(r"^(?:(\w+)\.)?(\w+)(?:\[\d+\])?:")
# lengths whose defaults suit a run of about _DEFAULT_RUN steps; a freshly picked shape gets them scaled
_LENGTH_FIELDS = ("steps", "warmup_steps", "step_size", "step_size_up", "T_0", "milestones")
_DEFAULT_RUN = 1000

OnChange = Callable[[Any], None]


class SpecInputError(ValueError):
    """A spec could not be built from the controls. ``where`` (a field control or an editor) has
    the error area that should show ``error``; None when no control matches."""

    def __init__(self, where: Any, error: BaseException) -> None:
        super().__init__(str(error))
        self.where, self.error = where, error


def field_of_message(message: str) -> tuple[str | None, str] | None:
    """``(owner, field)`` named at the start of a validation message, or None.

    >>> field_of_message("Cyclic.max_lr: must be above base_lr (0.1), got 0.01; e.g. max_lr=1.0")
    ('Cyclic', 'max_lr')
    >>> field_of_message("cycle_momentum: rprop has neither momentum nor betas")
    (None, 'cycle_momentum')
    """
    match = _FIELD_OF_MESSAGE.match(message)
    return (match.group(1), match.group(2)) if match else None


class FieldControl:
    """One field of a spec: ``input`` (the widget), ``error`` (its inline error area), ``row``
    (both, to lay out) and ``value()`` (what the spec gets)."""

    def __init__(self, owner: str, control: Control, on_change: OnChange) -> None:
        self.owner, self.control, self.name = owner, control, control.name
        self._on_change = on_change
        self.error = ErrorArea()
        self.input: Any = None
        self.row = widgets.VBox(layout=widgets.Layout(margin="0 0 2px 0"))
        self.row.add_class("tw-field")
        self.row.add_class(f"tw-field-{owner}-{control.name}")

    def _finish(self, *inputs: Any) -> None:
        shown = inputs[0] if len(inputs) == 1 else widgets.HBox(list(inputs))
        self.row.children = [shown, self.error]

    def _changed(self, _change: Any = None) -> None:
        self._on_change(self)

    def _fail(self, message: str) -> SpecInputError:
        return SpecInputError(self, ValueError(f"{self.owner}.{self.name}: {message}"))

    def value(self, interval: str | None = None) -> Any:
        raise NotImplementedError

    def set_value(self, value: Any) -> None:
        raise NotImplementedError

    def editors(self) -> list[SpecEditor]:
        """Nested editors (for spec fields)."""
        return []


class _NumberField(FieldControl):
    """A slider: log scale for learning rates and log fields; a "None" box beside it when optional."""

    def __init__(self, owner: str, control: Control, value: Any, on_change: OnChange) -> None:
        super().__init__(owner, control, on_change)
        c = control
        self.whole = c.kind == "int"
        self.none = widgets.Checkbox(value=False, description="None", indent=False,
                                     layout=widgets.Layout(width="70px"), tooltip="None: " + c.help)
        common = dict(description=c.name, tooltip=c.help, style=_STYLE, layout=widgets.Layout(width=_WIDTH),
                      continuous_update=True)
        lo, hi = c.min, c.max
        if self.whole:
            lo = 0 if lo is None else int(lo)
            hi = max(lo + 100, 1000) if hi is None else int(hi)
            self.input = widgets.IntSlider(value=lo, min=lo, max=hi, **common)
        elif c.log:
            self.input = widgets.FloatLogSlider(value=lo, base=10, min=math.log10(lo), max=math.log10(hi),
                                                step=0.001, readout_format=".2e" if c.kind == "lr" else ".3g",
                                                **common)
        else:
            self.step = 10.0 ** math.floor(math.log10((hi - lo) / 100))
            self.decimals = max(0, -int(math.floor(math.log10(self.step))))
            self.input = widgets.FloatSlider(value=lo, min=lo, max=hi, step=self.step,
                                             readout_format=f".{self.decimals}f", **common)
        self._exact: Any = None
        self.set_value(value)
        self.input.observe(self._changed, names="value")
        self.none.observe(self._none_changed, names="value")
        if c.optional:
            self._finish(self.input, self.none)
        else:
            self._finish(self.input)

    def _none_changed(self, change: Any) -> None:
        self.input.disabled = bool(change["new"])
        self._changed()

    def set_value(self, value: Any) -> None:
        if value is None:
            self.none.value = True
            self.input.disabled = True
            return
        self.none.value = False
        self.input.disabled = False
        w = self.input
        if isinstance(w, widgets.FloatLogSlider):  # widen the range so the value is not clamped
            if value > 0:
                w.min, w.max = min(w.min, math.floor(math.log10(value))), max(w.max, math.ceil(math.log10(value)))
        elif isinstance(value, (int, float)) and math.isfinite(value):
            w.min, w.max = min(w.min, value), max(w.max, value)
        w.value = value
        self._exact = value  # exact until the slider moves by a step or more

    def _near_exact(self, v: float) -> bool:
        """True while the slider shows the value set from code, up to the browser snapping it to a step."""
        exact, w = self._exact, self.input
        if exact is None or self.whole:
            return v == exact
        if isinstance(w, widgets.FloatLogSlider):
            return v > 0 and exact > 0 and abs(math.log10(v) - math.log10(exact)) <= 0.5001 * w.step
        return abs(v - exact) <= 0.5001 * w.step

    def value(self, interval: str | None = None) -> Any:
        if self.control.optional and self.none.value:
            return None
        v = self.input.value
        if self._near_exact(v):
            return self._exact
        if self.whole:
            return int(v)
        if isinstance(self.input, widgets.FloatLogSlider):
            return float(f"{v:.3g}")
        return round(float(v), self.decimals)


class _ChoiceField(FieldControl):
    def __init__(self, owner: str, control: Control, value: Any, on_change: OnChange) -> None:
        super().__init__(owner, control, on_change)
        self.input = widgets.Dropdown(options=list(control.choices), value=value, description=control.name,
                                      tooltip=control.help, style=_STYLE, layout=widgets.Layout(width="300px"))
        self.input.observe(self._changed, names="value")
        self._finish(self.input)

    def set_value(self, value: Any) -> None:
        self.input.value = value

    def value(self, interval: str | None = None) -> Any:
        return self.input.value


class _BoolField(FieldControl):
    def __init__(self, owner: str, control: Control, value: Any, on_change: OnChange) -> None:
        super().__init__(owner, control, on_change)
        self.input = widgets.Checkbox(value=bool(value), description=control.name, tooltip=control.help,
                                      style=_STYLE, layout=widgets.Layout(width=_WIDTH))
        self.input.observe(self._changed, names="value")
        self._finish(self.input)

    def set_value(self, value: Any) -> None:
        self.input.value = bool(value)

    def value(self, interval: str | None = None) -> Any:
        return bool(self.input.value)


class _WholeListField(FieldControl):
    """Whole numbers as text, "500, 750"; applied on Enter or when the box loses focus."""

    def __init__(self, owner: str, control: Control, value: Any, on_change: OnChange) -> None:
        super().__init__(owner, control, on_change)
        self.input = widgets.Text(value="", description=control.name, tooltip=control.help,
                                  placeholder="e.g. 500, 750", continuous_update=False, style=_STYLE,
                                  layout=widgets.Layout(width=_WIDTH))
        self.set_value(value)
        self.input.observe(self._changed, names="value")
        self._finish(self.input)

    def set_value(self, value: Any) -> None:
        self.input.value = ", ".join(str(v) for v in value)

    def value(self, interval: str | None = None) -> list[int]:
        text = self.input.value
        parts = [p for p in re.split(r"[,\s]+", text.strip().strip("[]()")) if p]
        try:
            return [int(p) for p in parts]
        except ValueError:
            raise self._fail(f"expected whole numbers separated by commas, got {text!r}; "
                             "e.g. 500, 750") from None


class _SpecField(FieldControl):
    """A nested spec: its own shape selector and controls, indented."""

    def __init__(self, owner: str, control: Control, value: Any, on_change: OnChange,
                 fit: Callable[[ScheduleSpec], ScheduleSpec] | None = None) -> None:
        super().__init__(owner, control, on_change)
        self.editor = SpecEditor(value, choices=control.choices, on_change=on_change, label=control.name,
                                 nested=True, fit=fit)
        self.input = self.editor.shape
        self._finish(self.editor)

    def set_value(self, value: Any) -> None:
        self.editor.load(value)

    def value(self, interval: str | None = None) -> ScheduleSpec:
        return self.editor.build(interval)

    def editors(self) -> list[SpecEditor]:
        return [self.editor]


class _SpecListField(FieldControl):
    """Several nested specs in order (``Sequential.specs``); their number follows the milestones."""

    def __init__(self, owner: str, control: Control, value: Any, on_change: OnChange,
                 fit: Callable[[ScheduleSpec], ScheduleSpec] | None = None) -> None:
        super().__init__(owner, control, on_change)
        self.fit = fit
        self.box = widgets.VBox()
        self.list: list[SpecEditor] = []
        self.set_value(value)
        self._finish(self.box)

    def _editor(self, index: int, spec: ScheduleSpec) -> SpecEditor:
        return SpecEditor(spec, choices=self.control.choices, on_change=self._on_change,
                          label=f"{self.name}[{index}]", nested=True, fit=self.fit)

    def set_value(self, value: Any) -> None:
        self.list = [self._editor(i, spec) for i, spec in enumerate(value)]
        self.box.children = self.list

    def resize(self, n: int) -> bool:
        """Show ``n`` nested editors (new ones start as Constant); True if that changed anything."""
        if n == len(self.list) or n < 1:
            return False
        while len(self.list) < n:
            self.list.append(self._editor(len(self.list), CATALOGUE["Constant"]()))
        del self.list[n:]
        self.box.children = self.list
        return True

    def value(self, interval: str | None = None) -> list[ScheduleSpec]:
        return [e.build(interval) for e in self.list]

    def editors(self) -> list[SpecEditor]:
        return list(self.list)


_FIELD_KINDS = {"lr": _NumberField, "float": _NumberField, "int": _NumberField, "choice": _ChoiceField,
                "bool": _BoolField, "list[int]": _WholeListField, "spec": _SpecField,
                "list[spec]": _SpecListField}


def make_field(owner: str, control: Control, value: Any, on_change: OnChange,
               fit: Callable[[ScheduleSpec], ScheduleSpec] | None = None) -> FieldControl:
    """The field control for ``control`` (by its kind), showing ``value``; ``fit`` adapts the
    specs that nested selectors pick (see :class:`SpecEditor`)."""
    cls = _FIELD_KINDS[control.kind]
    if control.kind in ("spec", "list[spec]"):
        return cls(owner, control, value, on_change, fit=fit)
    return cls(owner, control, value, on_change)


class SpecEditor(widgets.VBox):
    """A shape selector and the chosen shape's field controls; ``build()`` gives the spec.

    Args:
        spec: the spec to show first.
        choices: the shapes offered (names in ``tw.schedules.CATALOGUE``).
        on_change: called with the field control (or this editor, for the shape) that changed.
        label: the selector's description.
        nested: inside another spec: no interval control (the parent's interval is used).
        fit: applied to the spec of a newly picked shape, e.g. to fit its default lengths to
            the run (:func:`fit_to_run`).
    """

    def __init__(self, spec: ScheduleSpec, *, choices: Sequence[str], on_change: OnChange | None = None,
                 label: str = "shape", nested: bool = False,
                 fit: Callable[[ScheduleSpec], ScheduleSpec] | None = None) -> None:
        self.nested = nested
        self.fit = fit
        self.choices = list(choices)
        self._notify = on_change or (lambda _where: None)
        self._quiet = False
        self.fields: dict[str, FieldControl] = {}
        self.shape = widgets.Dropdown(options=self.choices, value=type(spec).__name__, description=label,
                                      tooltip="the shape of the schedule", style=_STYLE,
                                      layout=widgets.Layout(width="300px"))
        self.error = ErrorArea()
        self.body = widgets.VBox()
        super().__init__(children=[self.shape, self.error, self.body])
        if nested:
            self.layout = widgets.Layout(border_left="3px solid #d0d7de", padding="0 0 0 6px", margin="2px 0 4px 0")
        self._show(spec)
        self.shape.observe(self._on_shape, names="value")

    @property
    def spec_class(self) -> type[ScheduleSpec]:
        return CATALOGUE[self.shape.value]

    # -- showing a spec -------------------------------------------------------------------
    def _show(self, spec: ScheduleSpec) -> None:
        name = type(spec).__name__
        self.fields = {c.name: make_field(name, c, getattr(spec, c.name), self._field_changed, self.fit)
                       for c in type(spec).controls() if not (self.nested and c.name == "interval")}
        self.body.children = [f.row for f in self.fields.values()]

    def load(self, spec: ScheduleSpec) -> None:
        """Show ``spec`` (its shape and every field) without reporting changes."""
        self._quiet = True
        try:
            if type(spec).__name__ != self.shape.value:
                self.shape.value = type(spec).__name__
            self._show(spec)
        finally:
            self._quiet = False

    def _on_shape(self, change: Any) -> None:
        if self._quiet:
            return
        spec = _carry_over(self, CATALOGUE[change["new"]])
        self._show(self.fit(spec) if self.fit is not None else spec)
        self._notify(self)

    def _field_changed(self, field: Any) -> None:
        """A field of this editor or of a nested one changed (``field`` may be a nested editor)."""
        if self._quiet:
            return
        if field is self.fields.get("milestones") and isinstance(self.fields.get("specs"), _SpecListField):
            try:
                self.fields["specs"].resize(len(field.value()) + 1)
            except SpecInputError:
                pass  # build() reports the bad text
        self._notify(field)

    # -- building -------------------------------------------------------------------------
    def build(self, interval: str | None = None) -> ScheduleSpec:
        """The spec the controls describe; raises :class:`SpecInputError` (naming the control)."""
        if "interval" in self.fields:
            interval = self.fields["interval"].value()
        kwargs = {name: f.value(interval) for name, f in self.fields.items()}
        cls = self.spec_class
        if self.nested and interval is not None and "interval" in cls.__dataclass_fields__:
            kwargs["interval"] = interval
        try:
            return cls(**kwargs)
        except (ValueError, TypeError) as exc:
            raise SpecInputError(self._own_field(str(exc)) or self, exc) from None

    def _own_field(self, message: str) -> FieldControl | None:
        found = field_of_message(message)
        return self.fields.get(found[1]) if found else None

    # -- finding controls -----------------------------------------------------------------
    def editors(self) -> Iterator[SpecEditor]:
        """This editor and every nested one, depth first."""
        yield self
        for f in self.fields.values():
            for child in f.editors():
                yield from child.editors()

    def all_fields(self) -> Iterator[FieldControl]:
        for editor in self.editors():
            yield from editor.fields.values()

    def error_areas(self) -> Iterator[ErrorArea]:
        for editor in self.editors():
            yield editor.error
            for f in editor.fields.values():
                yield f.error

    def locate(self, message: str) -> FieldControl | None:
        """The field control a message such as ``"Warmup.steps: ..."`` is about, or None."""
        found = field_of_message(message)
        if found is None:
            return None
        owner, name = found
        for editor in self.editors():
            if (owner is None or editor.shape.value == owner) and name in editor.fields:
                return editor.fields[name]
        return None


def _carry_over(editor: SpecEditor, cls: type[ScheduleSpec]) -> ScheduleSpec:
    """A ``cls`` spec keeping the values the user changed in fields it shares with the old shape
    (same name and kind), when valid."""
    controls = {c.name: c for c in cls.controls()}
    kept = {}
    for name, f in editor.fields.items():
        new = controls.get(name)
        if new is None or new.kind != f.control.kind or new.kind in ("spec", "list[spec]"):
            continue
        try:
            value = f.value()
        except SpecInputError:
            continue
        if value != f.control.default and (new.kind != "choice" or value in new.choices):
            kept[name] = value
    try:
        return cls(**kept)
    except (ValueError, TypeError):
        return cls()


def fit_to_run(spec: ScheduleSpec, positions: int) -> ScheduleSpec:
    """``spec`` with the lengths still at their defaults (warm-up steps, step sizes, milestones...,
    made for a run of about 1000 steps) scaled to a run of ``positions`` steps (or epochs);
    ``spec`` itself when nothing changes or the result would be invalid.

    >>> from tunewidgets.schedules import MultiStep, Warmup
    >>> fit_to_run(Warmup(), 200)
    tw.schedules.Warmup(steps=20)
    >>> fit_to_run(MultiStep(milestones=[300, 600]), 200)  # not a default: kept
    tw.schedules.MultiStep(milestones=[300, 600])
    >>> fit_to_run(MultiStep(), 200).milestones
    (100, 150)
    """
    factor = positions / _DEFAULT_RUN
    changes: dict[str, Any] = {}
    for c in type(spec).controls():
        value = getattr(spec, c.name)
        if c.kind == "spec":
            changes[c.name] = fit_to_run(value, positions)
        elif c.kind == "list[spec]":
            changes[c.name] = [fit_to_run(v, positions) for v in value]
        elif c.name in _LENGTH_FIELDS and value == c.default and factor != 1:
            if c.kind == "int":
                changes[c.name] = max(1, round(value * factor)) if value else value
            elif c.kind == "list[int]":
                changes[c.name] = [max(1, round(v * factor)) for v in value]
    try:
        fitted = spec.replace(**changes)
    except (ValueError, TypeError):
        return spec
    return fitted if fitted != spec else spec
