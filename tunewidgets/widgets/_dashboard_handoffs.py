"""The ``Dashboard``'s hand-offs: what one step gives the next, said in a line, and overridable.

- :class:`PeakHandoff`: the range test's chosen lr sets the schedule preview's peak lr
  (``max_lr`` of OneCycle and Cyclic, else the optimizer's lr), through
  ``SchedulePreview.set_peak_lr``. A peak set by hand in the preview wins: later range tests no
  longer move it, the line says so, and "Use the range test's lr" hands the lr over again.
- :class:`SearchHandoff`: the search's base config takes the range test's lr and the preview's
  schedule (the links of ``Search(lr_finder=, schedule=)``, see ``_search_links``); each can be
  switched off, and the line says where each value comes from.

Example:
    >>> import tunewidgets as tw
    >>> from tunewidgets.widgets._dashboard_handoffs import PeakHandoff, peak_of
    >>> from traitlets import Float, HasTraits
    >>> class FakeFinder(HasTraits):                      # anything with an ``lr`` trait links
    ...     lr = Float(None, allow_none=True)
    >>> finder, preview = FakeFinder(), tw.widgets.SchedulePreview(total_steps=200)
    >>> handoff = PeakHandoff(finder, preview)
    >>> finder.lr = 0.0031622
    >>> peak_of(preview), handoff.text
    (('max_lr', 0.00316), "lr 3.16e-3 from the range test (the schedule's max_lr)")
    >>> preview.editor.fields["max_lr"].input.value = 0.01   # set by hand: it wins
    >>> finder.lr = 0.02
    >>> peak_of(preview), handoff.overridden
    (('max_lr', 0.01), True)
    >>> handoff.follow(); peak_of(preview)
    ('max_lr', 0.02)
"""
from __future__ import annotations

import html
import math
from typing import Any

import ipywidgets as widgets

from tunewidgets.plots._common import fmt_lr

__all__ = ["PeakHandoff", "SearchHandoff", "peak_of"]

_FROM = "#1b7f3b"  # a value handed over
_HERE = "#8a6d00"  # a value set here, overriding the hand-off
_NONE = "#555"


def peak_of(preview: Any) -> tuple[str, float]:
    """``("max_lr", value)`` of the preview's spec (the first one, nested ones included), or
    ``("optimizer lr", preview.base_lr)`` for a shape that scales the optimizer's lr."""
    stack = [preview.spec]
    while stack:
        spec = stack.pop(0)
        value = getattr(spec, "max_lr", None)
        if isinstance(value, (int, float)):
            return "max_lr", float(value)
        stack.extend(s for s in [getattr(spec, "then", None), *(getattr(spec, "specs", None) or ())] if s is not None)
    return "optimizer lr", float(preview.base_lr)


def _rounded(lr: float) -> float:
    return float(f"{float(lr):.3g}")  # as set_peak_lr sets it


def _line(color: str, text: str) -> str:
    return f'<span class="tw-handoff-text" style="color:{color}">{html.escape(text)}</span>'


class PeakHandoff:
    """The range test's lr -> the preview's peak lr (see the module doc)."""

    def __init__(self, finder: Any, preview: Any) -> None:
        self.finder, self.preview = finder, preview
        self.overridden = False
        self._setting = 0
        self._shape = type(preview.spec)
        self.line = widgets.HTML()
        self.line.add_class("tw-handoff")
        self.follow_button = widgets.Button(description="Use the range test's lr", icon="link",
                                            tooltip="hand the range test's lr to the schedule again",
                                            layout=widgets.Layout(width="auto"))
        self.follow_button.on_click(lambda _b: self.follow())
        self.box = widgets.HBox([self.line, self.follow_button], layout=widgets.Layout(align_items="center"))
        finder.observe(self._on_lr, names="lr")
        preview.observe(self._on_spec, names=["spec", "base_lr"])
        if finder.lr is not None:
            self._apply(finder.lr)
        self.show()

    @property
    def text(self) -> str:
        """The line as plain text."""
        lr = self.finder.lr
        name, peak = peak_of(self.preview)
        where = "the schedule's max_lr" if name == "max_lr" else "the optimizer's lr"
        if lr is None:
            return f"{name} {fmt_lr(peak)} set here; no range test yet (run it in step 1 and its lr sets {where})"
        if self.overridden:
            return f"{name} {fmt_lr(peak)} set here; the range test's lr {fmt_lr(lr)} is not used"
        return f"lr {fmt_lr(lr)} from the range test ({where})"

    def show(self) -> None:
        color = _NONE if self.finder.lr is None else (_HERE if self.overridden else _FROM)
        value = _line(color, self.text)
        if self.line.value != value:
            self.line.value = value
        disabled = not (self.overridden and self.finder.lr is not None)
        if self.follow_button.disabled != disabled:
            self.follow_button.disabled = disabled

    def follow(self) -> None:
        """Hand the range test's lr over again (after a peak was set by hand)."""
        self.overridden = False
        if self.finder.lr is not None:
            self._apply(self.finder.lr)
        self.show()

    def close(self) -> None:
        """Stop following (the dashboard rebuilds its steps)."""
        self.finder.unobserve(self._on_lr, names="lr")
        self.preview.unobserve(self._on_spec, names=["spec", "base_lr"])

    def _apply(self, lr: float) -> None:
        self._setting += 1
        try:
            self.preview.set_peak_lr(lr)
        finally:
            self._setting -= 1
        self._shape = type(self.preview.spec)

    def _on_lr(self, change: Any) -> None:
        if change["new"] is not None and not self.overridden:
            self._apply(change["new"])
        self.show()

    def _on_spec(self, _change: Any) -> None:
        if self._setting:
            return
        lr, shape = self.finder.lr, type(self.preview.spec)
        if lr is not None and not self.overridden:
            if shape is not self._shape:  # another shape picked: it starts from the handed-over lr
                self._apply(lr)
            elif not math.isclose(peak_of(self.preview)[1], _rounded(lr), rel_tol=1e-9):
                self.overridden = True  # set by hand: it wins
        self._shape = type(self.preview.spec)
        self.show()


class SearchHandoff:
    """The range test's lr and the preview's schedule -> the search's base config (see the module doc)."""

    def __init__(self, finder: Any, preview: Any, search: Any) -> None:
        self.finder, self.preview, self.search = finder, preview, search
        self.use_lr = widgets.Checkbox(value=True, description="lr from the range test", indent=False,
                                       layout=widgets.Layout(width="auto"))
        self.use_schedule = widgets.Checkbox(value=True, description="schedule from the preview", indent=False,
                                             layout=widgets.Layout(width="auto"))
        self.line = widgets.HTML()
        self.line.add_class("tw-handoff")
        self.box = widgets.VBox([self.line, widgets.HBox([self.use_lr, self.use_schedule])])
        self.use_lr.observe(self._on_switch, names="value")
        self.use_schedule.observe(self._on_switch, names="value")
        finder.observe(self._on_change, names="lr")
        preview.observe(self._on_change, names="code")
        self.show()

    @property
    def text(self) -> str:
        """The line as plain text: where the base config's lr and schedule come from."""
        links, base = self.search.links, self.search.base_config()
        if links.lr_finder is not None and self.finder.lr is not None:
            lr = f"lr {fmt_lr(base.lr)} from the range test"
        elif links.lr_finder is not None:
            lr = f"lr {fmt_lr(base.lr)} from the base config (no range test yet)"
        else:
            lr = f"lr {fmt_lr(base.lr)} set here" + (
                f"; the range test's {fmt_lr(self.finder.lr)} is not used" if self.finder.lr is not None else "")
        if links.schedule is not None:
            schedule = f"schedule {self.preview.code} from the preview"
        else:
            schedule = f"no schedule (a constant lr) set here; the preview's {self.preview.code} is not used"
        return f"{lr}; {schedule}"

    def show(self) -> None:
        links = self.search.links
        overridden = links.lr_finder is None or links.schedule is None
        value = _line(_HERE if overridden else _FROM, self.text)
        if self.line.value != value:
            self.line.value = value

    def close(self) -> None:
        self.finder.unobserve(self._on_change, names="lr")
        self.preview.unobserve(self._on_change, names="code")

    def _on_switch(self, _change: Any) -> None:
        links = self.search.links
        links.lr_finder = self.finder if self.use_lr.value else None
        links.schedule = self.preview if self.use_schedule.value else None
        self.search._show_grid()  # the rows say again what they search (the lr row's name)
        self.show()

    def _on_change(self, _change: Any) -> None:
        self.show()
