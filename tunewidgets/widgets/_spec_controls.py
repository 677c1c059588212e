"""A schedule spec as controls: a shape selector and the chosen shape's fields, nested specs
(``Warmup.then``, ``Sequential.specs``) as nested editors with their own selectors.

``SpecEditor.build()`` returns the spec the controls describe, or raises ``SpecInputError``
saying which control's error area should show the problem. Switching shapes keeps the settings
the new shape shares with the ones set before (``max_lr`` set on OneCycle is still there after a
detour through Cosine), and closes the controls it replaces. A nested editor has no ``interval``
control of its own: it takes its parent's. Each field's input comes from
:mod:`tunewidgets.widgets._spec_fields`.

Example:
    >>> import tunewidgets as tw
    >>> from tunewidgets.widgets._spec_controls import SpecEditor
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

from collections.abc import Callable, Iterator, Sequence
from typing import Any

import ipywidgets as widgets

from tunewidgets.schedules import CATALOGUE, ScheduleSpec
from tunewidgets.widgets._spec_fields import (
    STYLE, FieldControl, OnChange, SpecInputError, SpecListField, field_of_message, make_field,
)
from tunewidgets.widgets._ui import ErrorArea, close_tree

__all__ = ["SpecEditor", "SpecInputError", "fit_to_run"]

# lengths whose defaults suit a run of about _DEFAULT_RUN steps; a freshly picked shape gets them scaled
_LENGTH_FIELDS = ("steps", "warmup_steps", "step_size", "step_size_up", "T_0", "milestones")
_DEFAULT_RUN = 1000


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
        self.memory: dict[str, tuple[str, Any]] = {}  # field -> (kind, value) set by the user or code
        self.shape = widgets.Dropdown(options=self.choices, value=type(spec).__name__, description=label,
                                      tooltip="the shape of the schedule", style=STYLE,
                                      layout=widgets.Layout(width="300px"))
        self.error = ErrorArea()
        self.body = widgets.VBox()
        layout = {"layout": widgets.Layout(border_left="3px solid #d0d7de", padding="0 0 0 6px",
                                           margin="2px 0 4px 0")} if nested else {}
        super().__init__(children=[self.shape, self.error, self.body], **layout)
        self._show(spec)
        self._remember_spec(spec)
        self.shape.observe(self._on_shape, names="value")

    @property
    def spec_class(self) -> type[ScheduleSpec]:
        return CATALOGUE[self.shape.value]

    # -- showing a spec -------------------------------------------------------------------
    def _show(self, spec: ScheduleSpec) -> None:
        name = type(spec).__name__
        old = list(self.fields.values())
        self.fields = {c.name: make_field(name, c, getattr(spec, c.name), self._field_changed, self._nested)
                       for c in type(spec).controls() if not (self.nested and c.name == "interval")}
        self.body.children = [f.row for f in self.fields.values()]
        for f in old:  # the replaced controls leave no model behind
            f.close()

    def dispose(self) -> None:
        """Close this editor, its fields and nested editors (it is being replaced)."""
        for f in self.fields.values():
            f.close()
        self.fields = {}
        close_tree(self)

    def _remember_spec(self, spec: ScheduleSpec) -> None:
        for c in type(spec).controls():
            if getattr(spec, c.name) != c.default:
                self.remember(c.name, c.kind, getattr(spec, c.name))

    def remember(self, name: str, kind: str, value: Any) -> None:
        """Keep ``value`` of field ``name`` for shapes picked later that have that field."""
        if kind not in ("spec", "list[spec]"):
            self.memory[name] = (kind, value)

    def _nested(self, spec: ScheduleSpec, label: str, choices: Sequence[str]) -> SpecEditor:
        return SpecEditor(spec, choices=choices, on_change=self._field_changed, label=label, nested=True,
                          fit=self.fit)

    def load(self, spec: ScheduleSpec) -> None:
        """Show ``spec`` (its shape and every field) without reporting changes."""
        self._quiet = True
        try:
            if type(spec).__name__ != self.shape.value:
                self.shape.value = type(spec).__name__
            self._show(spec)
            self._remember_spec(spec)
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
        if isinstance(field, FieldControl) and field in self.fields.values():
            try:
                value = field.value()
            except SpecInputError:
                value = field.control.default
            if value == field.control.default:  # a default (or the page echoing one) is no choice
                self.memory.pop(field.name, None)
            else:
                self.remember(field.name, field.control.kind, value)
        if field is self.fields.get("milestones") and isinstance(self.fields.get("specs"), SpecListField):
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
    """A ``cls`` spec keeping the values set before in the fields it has (same name and kind):
    from the shape shown now where it changed them, else from any shape before; each value is
    kept when the spec stays valid with it."""
    wanted = {}
    for c in cls.controls():
        if c.kind in ("spec", "list[spec]"):
            continue
        f = editor.fields.get(c.name)
        value: Any = _MISSING
        if f is not None and f.control.kind == c.kind:
            try:
                value = f.value()
            except SpecInputError:
                value = _MISSING
            if value == f.control.default:
                value = _MISSING
        if value is _MISSING and editor.memory.get(c.name, (None,))[0] == c.kind:
            value = editor.memory[c.name][1]
        if value is not _MISSING and value != c.default and (c.kind != "choice" or value in c.choices):
            wanted[c.name] = value
    try:
        return cls(**wanted)
    except (ValueError, TypeError):
        pass
    kept: dict[str, Any] = {}
    for name, value in wanted.items():  # as many as stay valid together, in field order
        try:
            cls(**kept, **{name: value})
        except (ValueError, TypeError):
            continue
        kept[name] = value
    return cls(**kept)


_MISSING = object()


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
