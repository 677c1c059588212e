"""SchedulePreview headless, what a user sees and what is saved: the saved plot follows every
change, a linked LR finder's lr is drawn from the start, switching shapes closes what it replaces
and keeps shared settings, the pinned momentum curve is labelled, small thresholds get log
sliders, late milestones are flagged, and the code reads as the sliders do."""
from __future__ import annotations

import html
import re

import numpy as np
import pytest
from ipywidgets.widgets.widget import _instances  # every live widget model (ipywidgets 8)
from traitlets import Float as FloatTrait
from traitlets import HasTraits

import tunewidgets as tw
from tunewidgets.plots.schedule import MOMENTUM_AXIS, PINNED, SCHEDULE
from tunewidgets.schedules import Cosine, Cyclic, MultiStep, OneCycle, ReduceOnPlateau, Sequential, Warmup
from tunewidgets.widgets import SchedulePreview
from tunewidgets.widgets._bokeh import saved_columns


class FakeFinder(HasTraits):
    lr = FloatTrait(None, allow_none=True)


def make(spec=None, **kw) -> SchedulePreview:
    kw.setdefault("total_steps", 500)
    kw.setdefault("steps_per_epoch", 50)
    return SchedulePreview(spec, **kw)


def saved(w: SchedulePreview, name: str = SCHEDULE) -> dict[str, np.ndarray]:
    """A source as the widget's saved state holds it (what a saved notebook shows)."""
    return {k: np.asarray(v, dtype=float) for k, v in saved_columns(w.plot, name).items()}


def on_screen(w: SchedulePreview, name: str = SCHEDULE) -> dict[str, np.ndarray]:
    return {k: np.asarray(v, dtype=float) for k, v in w.figure.select_one({"name": name}).data.items()}


def assert_saved_is_shown(w: SchedulePreview) -> None:
    for name in (SCHEDULE, PINNED):
        now, kept = on_screen(w, name), saved(w, name)
        assert set(now) == set(kept)
        for column in now:
            np.testing.assert_array_equal(kept[column], now[column])


def test_the_saved_plot_follows_every_change_pins_included():
    w = make(OneCycle(max_lr=0.1))
    assert_saved_is_shown(w)
    w.editor.fields["max_lr"].input.value = 0.3
    assert saved(w)["lr"].max() == pytest.approx(0.3)
    w.pin()
    assert_saved_is_shown(w)
    assert saved(w, PINNED)["lr"].max() == pytest.approx(0.3)  # "pinned" with its curve
    w.editor.shape.value = "Cosine"
    assert_saved_is_shown(w)
    w.spec = Cyclic(base_lr=0.01, max_lr=0.2, step_size_up=50)
    assert_saved_is_shown(w)
    assert saved(w)["lr"].max() == pytest.approx(0.2) and saved(w, PINNED)["lr"].max() == pytest.approx(0.3)
    w.unpin()
    assert len(saved(w, PINNED)["lr"]) == 0


def test_a_linked_finder_lr_is_drawn_from_the_start():
    finder = FakeFinder()
    finder.lr = 0.005878016072274911  # an lr as a range test suggests it
    w = make(lr_finder=finder)
    assert w.spec == OneCycle(max_lr=0.00588)  # three significant digits, as the code shows it
    assert w.code == "tw.schedules.OneCycle(max_lr=5.88e-3)"
    assert saved(w)["lr"].max() == pytest.approx(0.00588)  # the first render, not the default 0.1
    assert eval(w.code, {"tw": tw}) == w.spec


def test_fifty_shape_switches_leave_no_models_behind():
    w = make(OneCycle(max_lr=0.4))
    shapes = ["Cyclic", "Warmup", "MultiStep", "ReduceOnPlateau", "Sequential", "CosineWarmRestarts", "OneCycle"]
    w.editor.shape.value = "Warmup"
    w.editor.shape.value = "OneCycle"
    before = len(_instances)
    for i in range(50):
        w.editor.shape.value = shapes[i % len(shapes)]
    w.editor.shape.value = "OneCycle"
    assert len(_instances) == before
    assert w.spec == OneCycle(max_lr=0.4) and w.error == ""


def test_a_sequential_that_shrinks_closes_the_parts_it_drops():
    w = make(Sequential(specs=[Cosine(), Cosine()], milestones=[250]))
    w.editor.fields["milestones"].input.value = "100, 200, 300"
    assert len(w.editor.fields["specs"].list) == 4
    dropped = w.editor.fields["specs"].list[1:]
    w.editor.fields["milestones"].input.value = "100"
    assert len(w.editor.fields["specs"].list) == 2
    assert all(e.comm is None and e.shape.comm is None for e in dropped[1:])


def test_switching_shapes_keeps_shared_settings_through_other_shapes():
    w = make(OneCycle())
    w.editor.fields["max_lr"].input.value = 0.4
    for shape in ("Cosine", "Warmup", "OneCycle"):
        w.editor.shape.value = shape
    assert w.spec == OneCycle(max_lr=0.4)
    w.editor.shape.value = "Cyclic"
    assert w.spec.max_lr == 0.4
    # a linked finder's lr set while a shape without max_lr is shown reaches later shapes too
    finder = FakeFinder()
    w.link_lr(finder)
    w.editor.shape.value = "Cosine"
    finder.lr = 0.02
    w.editor.shape.value = "OneCycle"
    assert w.spec == OneCycle(max_lr=0.02)


def test_a_pinned_momentum_curve_keeps_a_labelled_axis_on_shapes_without_momentum():
    w = make(OneCycle(max_lr=0.1))
    axis = w.figure.select_one({"name": MOMENTUM_AXIS})
    assert axis.visible and axis.axis_label == "momentum"
    w.pin()
    w.editor.shape.value = "Cosine"
    pinned_momentum = w.figure.select_one({"name": "schedule_pinned_momentum_line"})
    assert pinned_momentum.visible and axis.visible and axis.axis_label == "momentum (pinned)"
    w.unpin()
    assert not pinned_momentum.visible and not axis.visible
    w.spec = Warmup(steps=50)
    w.pin()
    assert not axis.visible  # nothing with momentum is drawn: no axis


def test_small_thresholds_get_log_sliders_that_read_their_value():
    w = make(ReduceOnPlateau())
    for name, default in (("threshold", 1e-4), ("eps", 1e-8)):
        slider = w.editor.fields[name].input
        assert type(slider).__name__ == "FloatLogSlider", name
        assert slider.value == pytest.approx(default) and slider.readout_format == ".2e"
        assert 10 ** slider.min < default < 10 ** slider.max
    w.editor.fields["threshold"].input.value = 10 ** -2.5
    assert w.spec.threshold == 0.00316 and w.error == ""


def test_milestones_past_the_end_of_the_run_are_flagged_under_their_field():
    w = make(MultiStep(milestones=[100, 200]))
    area = w.editor.fields["milestones"].error
    w.editor.fields["milestones"].input.value = "100, 600, 700"
    assert area.visible and "MultiStep.milestones" in area.message and "end of the run (500 steps)" in area.message
    assert w.spec == MultiStep(milestones=[100, 200])  # the plot keeps the last valid schedule
    w.editor.fields["milestones"].input.value = "100, 400"
    assert not area.visible and w.spec == MultiStep(milestones=[100, 400])


def test_the_code_rounds_floats_like_the_sliders_and_wraps_between_arguments():
    w = make(Warmup(steps=50, then=Cyclic(base_lr=0.0012345678, max_lr=0.054321, mode="triangular2")))
    assert w.code == ("tw.schedules.Warmup(steps=50, then=tw.schedules.Cyclic(base_lr=1.23e-3, max_lr=5.43e-2, "
                      "mode='triangular2'))")
    shown = w.code_view.value
    pieces = re.findall(r'<span style="white-space:nowrap">(.*?)</span>', shown)
    assert " ".join(html.unescape(p) for p in pieces) == w.code  # breaks only between arguments
    assert all(" " not in p for p in pieces)
    readout = w.editor.fields["then"].editor.fields["max_lr"].input.readout_format
    assert readout == ".2e"  # the d3 format that reads 5.43e-2, as the code does
    w.pin()
    pinned = re.findall(r'<span style="white-space:nowrap">(.*?)</span>', w.pinned_label.value)
    assert " ".join(html.unescape(p) for p in pinned) == w.pinned_code == w.code


def test_the_page_echoing_default_values_carries_nothing_into_the_next_shape():
    w = make(OneCycle(max_lr=0.2))
    # a browser sends back the values it shows: OneCycle's default momenta, unchanged
    for name in ("base_momentum", "max_momentum"):
        field = w.editor.fields[name]
        field.input.value = field.control.default + 0.3 * field.step  # snapped to the slider's step
        assert field.value() == field.control.default
    w.editor.shape.value = "Cyclic"
    assert w.spec == Cyclic(max_lr=0.2, step_size_up=50)
