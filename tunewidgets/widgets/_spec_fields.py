"""The input of one spec field, made from its ``Control`` metadata, with an inline error area.

Learning rates get log sliders; numbers sliders (log where the control says so, or where the
range starts at 0 and the default is a small positive number, such as a threshold of 1e-4: a
linear slider would read 0.000 there); choices dropdowns; flags checkboxes; ``list[int]`` a text box ("500, 750"); optional fields a "None"
box beside their slider; nested specs a nested editor (made by the caller's ``make_editor``).
A slider keeps the exact value set from code until it moves by a step: a page snaps values to
the slider's step when it draws it, and that echo must not change the spec.

Example:
    >>> from tunewidgets.schedules import OneCycle
    >>> from tunewidgets.widgets._spec_fields import make_field
    >>> control = {c.name: c for c in OneCycle.controls()}["max_lr"]
    >>> field = make_field("OneCycle", control, 0.0123456, on_change=lambda f: None)
    >>> type(field.input).__name__, field.value()
    ('FloatLogSlider', 0.0123456)
    >>> field.input.value = 0.05
    >>> field.value()
    0.05
"""
from __future__ import annotations

import math
import re
from collections.abc import Callable, Sequence
from typing import Any

import ipywidgets as widgets

from tunewidgets.plots._common import LR_FORMAT
from tunewidgets.schedules import CATALOGUE, Control, ScheduleSpec
from tunewidgets.widgets._ui import ErrorArea, close_tree

__all__ = ["FieldControl", "SpecListField", "SpecInputError", "STYLE", "field_of_message", "make_field"]

STYLE = {"description_width": "130px"}
_WIDTH = "420px"
_SMALL = 100  # a default this many times below the top of a range that starts at 0: log slider
_LOG_DECADES = 3  # such a slider reaches this many decades below the default
# "Cyclic.max_lr: ...", "Sequential.specs[1]: ...", "cycle_momentum: ..."
_FIELD_OF_MESSAGE = re.compile(r"^(?:(\w+)\.)?(\w+)(?:\[\d+\])?:")

OnChange = Callable[[Any], None]
# (spec, label, choices) -> the nested editor showing spec
MakeEditor = Callable[[ScheduleSpec, str, Sequence[str]], Any]


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

    def editors(self) -> list[Any]:
        """Nested editors (for spec fields)."""
        return []

    def close(self) -> None:
        """Close every widget of this field, nested editors too (when its shape is replaced)."""
        for editor in self.editors():
            editor.dispose()
        close_tree(self.row)
        for w in self._owned:
            close_tree(w)

    _owned: tuple[Any, ...] = ()  # widgets made but not shown in the row


class _NumberField(FieldControl):
    """A slider: log scale for learning rates and log fields; a "None" box beside it when optional."""

    def __init__(self, owner: str, control: Control, value: Any, on_change: OnChange) -> None:
        super().__init__(owner, control, on_change)
        c = control
        self.whole = c.kind == "int"
        self.none = widgets.Checkbox(value=False, description="None", indent=False,
                                     layout=widgets.Layout(width="70px"), tooltip="None: " + c.help)
        common = dict(description=c.name, tooltip=c.help, style=STYLE, layout=widgets.Layout(width=_WIDTH),
                      continuous_update=True)
        lo, hi = c.min, c.max
        if self.whole:
            lo = 0 if lo is None else int(lo)
            hi = max(lo + 100, 1000) if hi is None else int(hi)
            self.input = widgets.IntSlider(value=lo, min=lo, max=hi, **common)
        elif c.log or _small_default(c):
            if not c.log:  # 0 is left out of reach of the slider (set it from code)
                lo = 10.0 ** (math.floor(math.log10(c.default)) - _LOG_DECADES)
            # learning rates and tiny values read like the lr readouts (5.88e-3); factors as 25.0
            small = c.kind == "lr" or lo < 1e-3
            self.input = widgets.FloatLogSlider(value=lo, base=10, min=math.log10(lo), max=math.log10(hi),
                                                step=0.001, readout_format=LR_FORMAT if small else ".3g",
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
            self._owned = (self.none,)

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
            if exact == 0:  # out of the slider's reach: it shows its lowest value
                return v > 0 and abs(math.log10(v) - w.min) <= 0.5001 * w.step
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


def _small_default(c: Control) -> bool:
    """A float range from 0 whose default is a small positive number (thresholds, eps)."""
    return (c.kind == "float" and c.min == 0 and c.max is not None and isinstance(c.default, (int, float))
            and 0 < c.default and c.default * _SMALL <= c.max)


class _ChoiceField(FieldControl):
    def __init__(self, owner: str, control: Control, value: Any, on_change: OnChange) -> None:
        super().__init__(owner, control, on_change)
        self.input = widgets.Dropdown(options=list(control.choices), value=value, description=control.name,
                                      tooltip=control.help, style=STYLE, layout=widgets.Layout(width="300px"))
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
                                      style=STYLE, layout=widgets.Layout(width=_WIDTH))
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
                                  placeholder="e.g. 500, 750", continuous_update=False, style=STYLE,
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
                 make_editor: MakeEditor) -> None:
        super().__init__(owner, control, on_change)
        self.editor = make_editor(value, control.name, control.choices)
        self.input = self.editor.shape
        self._finish(self.editor)

    def set_value(self, value: Any) -> None:
        self.editor.load(value)

    def value(self, interval: str | None = None) -> ScheduleSpec:
        return self.editor.build(interval)

    def editors(self) -> list[Any]:
        return [self.editor]


class SpecListField(FieldControl):
    """Several nested specs in order (``Sequential.specs``); their number follows the milestones."""

    def __init__(self, owner: str, control: Control, value: Any, on_change: OnChange,
                 make_editor: MakeEditor) -> None:
        super().__init__(owner, control, on_change)
        self.make_editor = make_editor
        self.box = widgets.VBox()
        self.list: list[Any] = []
        self.set_value(value)
        self._finish(self.box)

    def _editor(self, index: int, spec: ScheduleSpec) -> Any:
        return self.make_editor(spec, f"{self.name}[{index}]", self.control.choices)

    def set_value(self, value: Any) -> None:
        old = getattr(self, "list", [])
        self.list = [self._editor(i, spec) for i, spec in enumerate(value)]
        self.box.children = self.list
        for editor in old:  # what it replaces leaves no model behind
            editor.dispose()

    def resize(self, n: int) -> bool:
        """Show ``n`` nested editors (new ones start as Constant); True if that changed anything."""
        if n == len(self.list) or n < 1:
            return False
        while len(self.list) < n:
            self.list.append(self._editor(len(self.list), CATALOGUE["Constant"]()))
        dropped = self.list[n:]
        del self.list[n:]
        self.box.children = self.list
        for editor in dropped:
            editor.dispose()
        return True

    def value(self, interval: str | None = None) -> list[ScheduleSpec]:
        return [e.build(interval) for e in self.list]

    def editors(self) -> list[Any]:
        return list(self.list)


_FIELD_KINDS = {"lr": _NumberField, "float": _NumberField, "int": _NumberField, "choice": _ChoiceField,
                "bool": _BoolField, "list[int]": _WholeListField, "spec": _SpecField,
                "list[spec]": SpecListField}


def make_field(owner: str, control: Control, value: Any, on_change: OnChange,
               make_editor: MakeEditor | None = None) -> FieldControl:
    """The field control for ``control`` (by its kind), showing ``value``. Nested specs need
    ``make_editor(spec, label, choices)``, which returns the nested editor."""
    cls = _FIELD_KINDS[control.kind]
    if control.kind in ("spec", "list[spec]"):
        if make_editor is None:
            raise TypeError(f"make_field: {owner}.{control.name} holds specs; pass make_editor")
        return cls(owner, control, value, on_change, make_editor)
    return cls(owner, control, value, on_change)
