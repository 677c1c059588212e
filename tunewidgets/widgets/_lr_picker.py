"""``LRPicker``: the row under an LR range plot that shows and sets the chosen learning rate.

A value box (type an exact lr; empty while none is chosen), a log slider over the tested range
(hidden while none is chosen) and a list of the test's suggestions. Every pick goes to the
``on_pick`` callback; the owner decides and shows the result with :meth:`LRPicker.show`.
The page snaps a slider's value to its step and sends it back, once or more for each value or
range the kernel set, and those echoes arrive after the kernel has moved on (a new range, then a
new lr, echo the old lr and then the new one): a value within half a step of a value the kernel
set since the user last moved the slider is such an echo, not a pick.

Example:
    >>> from tunewidgets.widgets._lr_picker import LRPicker
    >>> picks = []
    >>> p = LRPicker(picks.append, low=1e-6, high=1.0)
    >>> p.value_box.value, p.chosen.layout.visibility
    ('', 'hidden')
    >>> p.value_box.value = "3e-3"
    >>> p.show(picks[-1]); p.value_box.value, p.chosen.layout.visibility
    ('3.00e-3', 'visible')
    >>> p.set_suggestions({"valley": 1.5e-3, "steepest": None}); p.pick.value = "valley"
    >>> picks
    [0.003, 0.0015]
"""
from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any

import ipywidgets as widgets

from tunewidgets.plots._common import fmt_lr

__all__ = ["LRPicker", "CUSTOM"]

CUSTOM = "custom"
_STEP = 0.01  # log10 units: 100 notches a decade
_ECHOES = 8  # values the kernel set that the page may still echo (older ones are forgotten)


class LRPicker(widgets.HBox):
    """Value box, log slider over ``low``..``high`` and suggestion list for one chosen lr."""

    def __init__(self, on_pick: Callable[[float], None], *, low: float, high: float,
                 description_width: str = "90px") -> None:
        self._on_pick = on_pick
        self._quiet = False
        self._lr: float | None = None
        self._suggestions: dict[str, float] = {}
        self._sent: list[float] = []  # log10 of the values set on the slider since the user last moved it
        self.value_box = widgets.Text(
            value="", placeholder="none yet", description="chosen lr", continuous_update=False,
            tooltip="the learning rate to train with; type one, or pick it below or on the plot",
            style={"description_width": description_width}, layout=widgets.Layout(width="190px"))
        self.value_box.add_class("tw-chosen-lr")
        self.chosen = widgets.FloatLogSlider(
            value=math.sqrt(low * high), base=10, min=_floor(low), max=_ceil(high), step=_STEP,
            readout=False, description="", tooltip="drag to pick a learning rate in the tested range",
            layout=widgets.Layout(width="460px", visibility="hidden"))
        self.pick = widgets.Dropdown(options=[("(run the test first)", CUSTOM)], value=CUSTOM,
                                     description="use", style={"description_width": "40px"},
                                     layout=widgets.Layout(width="240px"))
        self.message = widgets.HTML('<span style="color:#666">or click the plot at an lr</span>')
        self.value_box.observe(self._on_box, names="value")
        self.chosen.observe(self._on_slider, names="value")
        self.pick.observe(self._on_list, names="value")
        super().__init__([self.value_box, self.chosen, self.pick, self.message],
                         layout=widgets.Layout(align_items="center", flex_flow="row wrap"))

    # -- shown by the owner -----------------------------------------------------------------
    def show(self, lr: float | None) -> None:
        """Show ``lr`` as the chosen learning rate (None: nothing chosen)."""
        self._lr = lr
        self._quiet = True
        try:
            if lr is None:
                self.value_box.value = ""
                self.chosen.layout.visibility = "hidden"
            else:
                self.value_box.value = fmt_lr(lr)
                exp = math.log10(lr)
                if exp < self.chosen.min:
                    self._expect_echo()
                    self.chosen.min = _floor(lr)
                if exp > self.chosen.max:
                    self._expect_echo()
                    self.chosen.max = _ceil(lr)
                if not _same_notch(math.log10(self.chosen.value), exp):
                    self.chosen.value = lr
                    self._expect_echo()
                self.chosen.layout.visibility = "visible"
            match = [m for m, v in self._suggestions.items() if lr is not None and math.isclose(v, lr)]
            if self.pick.value not in match:
                self.pick.value = match[0] if match else CUSTOM
        finally:
            self._quiet = False

    def set_range(self, low: float, high: float) -> None:
        """Let the slider span the tested range ``low``..``high`` (and the chosen lr)."""
        lo, hi = _floor(low), _ceil(high)
        if self._lr is not None:
            lo, hi = min(lo, _floor(self._lr)), max(hi, _ceil(self._lr))
        if (lo, hi) != (self.chosen.min, self.chosen.max):
            self._expect_echo()  # the page may send its value back, snapped to the new notches
        self._quiet = True
        try:
            # widen first, then narrow: the value must stay inside at every step
            self.chosen.min, self.chosen.max = min(lo, self.chosen.min), max(hi, self.chosen.max)
            self.chosen.min, self.chosen.max = lo, hi
        finally:
            self._quiet = False

    def set_suggestions(self, suggestions: Mapping[str, float | None] | None, note: str = "") -> None:
        """List the suggestions (None: there are none now; ``note`` says why in the list)."""
        self._suggestions = {m: float(v) for m, v in (suggestions or {}).items() if v is not None}
        options = [(f"{m} ({fmt_lr(v)})", m) for m, v in self._suggestions.items()]
        if suggestions is None:
            options = [(note or "(run the test first)", CUSTOM)]
        else:
            options.append((CUSTOM, CUSTOM))
        self._quiet = True
        try:
            self.pick.options = options
            self.pick.value = CUSTOM
        finally:
            self._quiet = False
        self.show(self._lr)

    def set_message(self, html_text: str) -> None:
        self.message.value = html_text

    @property
    def disabled(self) -> bool:
        return self.chosen.disabled

    @disabled.setter
    def disabled(self, value: bool) -> None:
        for control in (self.value_box, self.chosen, self.pick):
            control.disabled = bool(value)

    # -- picks -----------------------------------------------------------------------------
    def _on_box(self, change: Any) -> None:
        if self._quiet:
            return
        text = str(change["new"]).strip()
        try:
            value = float(text)
        except ValueError:
            value = math.nan
        if not (math.isfinite(value) and value > 0):
            self.set_message(f'<span style="color:#b00020">chosen lr: expected a number &gt; 0, got '
                             f'{_escape(text)!s}; e.g. 3e-3</span>')
            self.show(self._lr)
            return
        self.set_message('<span style="color:#666">or click the plot at an lr</span>')
        self._on_pick(value)

    def _on_slider(self, change: Any) -> None:
        if self._quiet:
            return
        value = float(change["new"])
        if not (math.isfinite(value) and value > 0):
            return
        exp = math.log10(value)
        if any(_same_notch(sent, exp) for sent in self._sent):
            return  # the page snapped a value the kernel set and sent it back (once or more)
        self._sent.clear()  # the user moved the slider: the page has caught up
        if self._lr is not None and _same_notch(exp, math.log10(self._lr)):
            return  # the shown lr, snapped
        self._on_pick(float(f"{value:.3g}"))

    def _expect_echo(self) -> None:
        self._sent.append(math.log10(self.chosen.value))
        del self._sent[:-_ECHOES]

    def _on_list(self, change: Any) -> None:
        if self._quiet or change["new"] == CUSTOM:
            return
        value = self._suggestions.get(change["new"])
        if value is not None:
            self._on_pick(value)


def _same_notch(exp_a: float, exp_b: float) -> bool:
    return abs(exp_a - exp_b) <= _STEP / 2 + 1e-9


def _floor(lr: float) -> float:
    return math.floor(math.log10(lr) / _STEP) * _STEP


def _ceil(lr: float) -> float:
    return math.ceil(math.log10(lr) / _STEP) * _STEP


def _escape(text: str) -> str:
    import html

    return html.escape(repr(text))
