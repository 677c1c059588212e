"""SchedulePreview headless: controls -> spec -> plotted data, inline errors, pin, code, LR link."""
from __future__ import annotations

import html
import math
import re

import numpy as np
import pytest
import torch
from torch import nn
from torch.utils.data import TensorDataset
from traitlets import HasTraits, TraitError
from traitlets import Float as FloatTrait

import tunewidgets as tw
from tunewidgets.plots.schedule import EPOCH_AXIS, MOMENTUM_AXIS, PINNED, SCHEDULE
from tunewidgets.schedules import CATALOGUE, Cosine, Cyclic, OneCycle, Sequential, Warmup
from tunewidgets.widgets import LRFinder, SchedulePreview


def preview(spec, total_steps=500, base_lr=0.1, steps_per_epoch=50, **kw):
    if spec.metric_driven:
        kw["metrics"] = [1.0] * -(-total_steps // steps_per_epoch)
    return spec.preview(total_steps, base_lr, steps_per_epoch, **kw)


def shown(w: SchedulePreview, name: str = SCHEDULE) -> dict[str, np.ndarray]:
    return {k: np.asarray(v) for k, v in w.figure.select_one({"name": name}).data.items()}


def assert_shows(w: SchedulePreview, spec) -> None:
    """The plotted data is exactly ``spec.preview(...)`` with the widget's settings."""
    frame = preview(spec, w.total_steps, w.base_lr, w.steps_per_epoch)
    data = shown(w)
    np.testing.assert_array_equal(data["step"], frame["step"].to_numpy())
    np.testing.assert_array_equal(data["lr"], frame["lr"].to_numpy())
    if "momentum" in frame:
        np.testing.assert_array_equal(data["momentum"], frame["momentum"].to_numpy())
    else:
        assert np.isnan(data["momentum"]).all()


def shown_code(w: SchedulePreview) -> str:
    """The code as the page shows it: the text of its HTML."""
    return html.unescape(re.sub(r"<[^>]+>", "", w.code_view.value))


def visible_errors(w: SchedulePreview) -> list[str]:
    return [a.message for a in [*w.editor.error_areas(), w.error_area] if a.visible]


def make(spec=None, **kw) -> SchedulePreview:
    kw.setdefault("total_steps", 500)
    kw.setdefault("steps_per_epoch", 50)
    return SchedulePreview(spec, **kw)


# -- control -> spec -> data -------------------------------------------------------------------
def test_first_plot_is_the_preview_of_the_given_spec():
    w = make(OneCycle(max_lr=0.2))
    assert w.spec == OneCycle(max_lr=0.2)
    assert_shows(w, OneCycle(max_lr=0.2))
    assert w.error == "" and visible_errors(w) == []


def test_moving_a_log_slider_redraws_with_the_new_spec():
    w = make(OneCycle())
    slider = w.editor.fields["max_lr"].input
    assert type(slider).__name__ == "FloatLogSlider"  # learning rates get log sliders
    slider.value = 0.031622776601683794  # a value the slider makes when dragged (10 ** -1.5)
    assert w.spec.max_lr == 0.0316  # rounded to what the readout shows
    assert_shows(w, OneCycle(max_lr=0.0316))
    assert float(shown(w)["lr"].max()) == pytest.approx(0.0316)


@pytest.mark.parametrize("name", list(CATALOGUE))
def test_every_shape_from_the_selector_redraws_exactly(name):
    w = make(OneCycle(max_lr=0.05))
    w.editor.shape.value = name
    assert type(w.spec).__name__ == name, w.error
    assert w.error == ""
    assert_shows(w, w.spec)
    # momentum gets its own axis exactly when the shape cycles it
    cycles = "momentum" in preview(w.spec)
    assert w.figure.select_one({"name": MOMENTUM_AXIS}).visible is cycles
    # a metric-driven shape says what its preview assumes
    assert ("never improves" in w.status_line.value) is w.spec.metric_driven


def test_shape_switch_keeps_the_values_the_user_changed_and_fits_lengths_to_the_run():
    w = make(OneCycle(max_lr=0.05))  # a 500-step run
    w.editor.shape.value = "Cyclic"
    assert w.spec == Cyclic(max_lr=0.05, step_size_up=50)  # default 100 is for ~1000 steps
    w.editor.shape.value = "Sequential"
    assert w.spec == Sequential(milestones=[250])
    assert len(w.editor.fields["specs"].list) == 2


def test_the_browser_snapping_values_to_slider_steps_changes_nothing():
    """A page snaps a slider's value to its step when it draws it and sends that back: the
    spec keeps the exact value and nothing is redrawn; a real move is taken."""
    w = make(OneCycle(max_lr=0.0123456), base_lr=0.0123456)
    events = []
    w.figure.document.on_change(lambda event: events.append(event))
    for slider in (w.editor.fields["max_lr"].input, w.editor.fields["div_factor"].input, w.base_lr_slider):
        slider.value = 10 ** (round(math.log10(slider.value) / slider.step) * slider.step)
        assert slider.value != 0.0123456 and slider.value != 25.0
    w.editor.fields["pct_start"].input.value = 0.3 + 0.0004  # linear slider: within half a step
    assert w.spec == OneCycle(max_lr=0.0123456) and w.base_lr == 0.0123456
    assert events == []
    w.editor.fields["max_lr"].input.value = 0.0123456 * 10 ** 0.002  # two steps along
    assert w.spec == OneCycle(max_lr=0.0124)


def test_controls_come_from_the_spec_metadata():
    w = make(Cyclic())
    kinds = {name: type(f.input).__name__ for name, f in w.editor.fields.items()}
    assert kinds["base_lr"] == kinds["max_lr"] == "FloatLogSlider"
    assert kinds["step_size_up"] == "IntSlider"
    assert kinds["mode"] == kinds["interval"] == "Dropdown"
    assert kinds["cycle_momentum"] == "Checkbox"
    assert list(w.editor.fields) == [c.name for c in Cyclic.controls()]
    # optional field: None box beside the slider
    field = w.editor.fields["step_size_down"]
    assert field.value() is None and field.input.disabled
    field.none.value = False
    field.input.value = 40
    assert w.spec.step_size_down == 40
    assert_shows(w, Cyclic(step_size_down=40))


def test_base_lr_scales_shapes_that_use_the_optimizer_lr():
    w = make(Cosine())
    w.base_lr_slider.value = 0.01
    assert w.base_lr == 0.01
    assert float(shown(w)["lr"][0]) == pytest.approx(0.01)
    w.base_lr = 0.5
    assert w.base_lr_slider.value == 0.5 and float(shown(w)["lr"][0]) == 0.5
    assert_shows(w, Cosine())


def test_a_change_is_one_assignment_of_the_source_data_not_a_stream():
    w = make(OneCycle())
    events = []
    w.figure.document.on_change(lambda event: events.append(event))
    w.editor.fields["pct_start"].input.value = 0.4
    kinds = [(type(e).__name__, getattr(e, "attr", None)) for e in events
             if getattr(e, "model", None) is w.figure.select_one({"name": SCHEDULE})]
    assert kinds == [("ColumnDataChangedEvent", "data")]  # whole data replaced; no ColumnsStreamedEvent


# -- nested specs ----------------------------------------------------------------------------
def test_warmup_then_is_a_nested_selector_with_its_own_controls():
    w = make(Warmup(steps=5, then=Cosine()))
    inner = w.editor.fields["then"].editor
    assert "interval" not in inner.fields  # the nested spec takes the Warmup's interval
    inner.shape.value = "OneCycle"
    assert w.spec == Warmup(steps=5, then=OneCycle())
    inner.fields["max_lr"].input.value = 0.2
    assert w.spec == Warmup(steps=5, then=OneCycle(max_lr=0.2))
    assert_shows(w, w.spec)
    # the interval of the outer spec reaches the nested one (5 of the run's 10 epochs warm up)
    w.editor.fields["interval"].input.value = "epoch"
    assert w.spec.then.interval == "epoch" and w.error == ""
    assert_shows(w, w.spec)


def test_sequential_has_one_nested_selector_per_part():
    w = make(Sequential(specs=[Cosine(), Cosine()], milestones=[200]))
    w.editor.fields["milestones"].input.value = "100, 300"
    parts = w.editor.fields["specs"].list
    assert len(parts) == 3
    parts[2].shape.value = "Exponential"
    assert w.spec == Sequential(specs=[Cosine(), Cosine(), CATALOGUE["Exponential"]()], milestones=[100, 300])
    assert_shows(w, w.spec)


# -- bad input ---------------------------------------------------------------------------------
def test_bad_value_shows_its_error_next_to_that_control_and_keeps_the_plot():
    w = make(Warmup(steps=50, then=Cosine()))
    before, spec = shown(w), w.spec
    steps = w.editor.fields["steps"]
    steps.input.value = 600  # longer than the 500-step run
    assert steps.error.visible
    assert "Warmup.steps: the warm-up (600 steps) must be shorter than the run (500 steps)" in steps.error.message
    assert "Warmup.steps" in steps.error.value  # the text the page shows
    assert visible_errors(w) == [steps.error.message]
    assert w.error == steps.error.message
    assert w.spec is spec
    for name, values in before.items():
        np.testing.assert_array_equal(shown(w)[name], values)
    # fixing it clears the error and redraws
    steps.input.value = 100
    assert visible_errors(w) == [] and w.error == ""
    assert w.spec == Warmup(steps=100, then=Cosine())
    assert_shows(w, w.spec)


def test_cross_field_error_is_shown_at_the_field_it_names():
    w = make(Cyclic(base_lr=1e-3, max_lr=1e-2))
    w.editor.fields["base_lr"].input.value = 0.05
    field = w.editor.fields["max_lr"]
    assert field.error.visible and "Cyclic.max_lr: must be above base_lr (0.05)" in field.error.message
    assert w.spec == Cyclic(base_lr=1e-3, max_lr=1e-2)


@pytest.mark.parametrize("text, expected", [
    ("500, abc", "MultiStep.milestones: expected whole numbers separated by commas, got '500, abc'"),
    ("300, 200", "MultiStep.milestones: must be strictly increasing, got [300, 200]"),
])
def test_bad_milestones_text_shows_inline(text, expected):
    w = make(CATALOGUE["MultiStep"](milestones=[100, 300]))
    before = shown(w)["lr"]
    field = w.editor.fields["milestones"]
    field.input.value = text
    assert field.error.visible and expected in field.error.message
    np.testing.assert_array_equal(shown(w)["lr"], before)


def test_error_in_a_nested_spec_is_shown_inside_it():
    w = make(Warmup(steps=50, then=Cyclic(base_lr=1e-3, max_lr=1e-2)))
    inner = w.editor.fields["then"].editor
    inner.fields["max_lr"].input.value = 1e-4
    assert inner.fields["max_lr"].error.visible
    assert not w.editor.fields["then"].error.visible
    assert "Cyclic.max_lr" in w.error


def test_epoch_interval_without_steps_per_epoch_is_shown_at_the_interval_control():
    w = SchedulePreview(Cosine(), total_steps=500)
    w.editor.fields["interval"].input.value = "epoch"
    field = w.editor.fields["interval"]
    assert field.error.visible and "steps_per_epoch" in field.error.message
    assert w.spec == Cosine()


@pytest.mark.parametrize("kwargs, exc, text", [
    ({"total_steps": 0}, ValueError, "total_steps: must be a whole number >= 1, got 0"),
    ({"steps_per_epoch": 2.5}, ValueError, "steps_per_epoch: must be a whole number >= 1, got 2.5"),
    ({"base_lr": -1}, ValueError, "base_lr: must be a finite number > 0, got -1"),
    ({"optimizer": "lbfgs"}, ValueError, "optimizer: must be one of"),
    ({"momentum": 1.5}, ValueError, "momentum: must be in [0, 1), got 1.5"),
    ({"spec": "OneCycle"}, TypeError, "spec: expected a tw.schedules spec"),
    ({"spec": Warmup(steps=600)}, ValueError, "Warmup.steps: the warm-up (600 steps)"),
    ({"lr_finder": object()}, TypeError, "lr_finder: expected an LRFinder widget"),
])
def test_bad_arguments_raise_before_any_work(kwargs, exc, text):
    spec = kwargs.pop("spec", None)
    with pytest.raises(exc) as info:
        make(spec, **kwargs)
    assert text in str(info.value)


def test_setting_spec_from_code_updates_the_controls():
    w = make(OneCycle())
    w.spec = Warmup(steps=20, then=OneCycle(max_lr=0.3))
    assert w.editor.shape.value == "Warmup"
    assert w.editor.fields["then"].editor.fields["max_lr"].input.value == 0.3
    assert_shows(w, Warmup(steps=20, then=OneCycle(max_lr=0.3)))
    with pytest.raises(TraitError, match="Warmup.steps"):
        w.spec = Warmup(steps=900)
    assert w.spec == Warmup(steps=20, then=OneCycle(max_lr=0.3))


# -- pin, code, epochs, long schedules ----------------------------------------------------------
def test_pin_overlays_the_current_schedule_as_a_reference():
    w = make(OneCycle(max_lr=0.1))
    assert len(shown(w, PINNED)["lr"]) == 0
    w.pin_button.click()
    assert w.pinned == OneCycle(max_lr=0.1)
    reference = shown(w, PINNED)
    np.testing.assert_array_equal(reference["lr"], shown(w)["lr"])
    assert "tw.schedules.OneCycle()" in w.pinned_label.value
    w.editor.fields["max_lr"].input.value = 0.3
    np.testing.assert_array_equal(shown(w, PINNED)["lr"], reference["lr"])  # the reference stays
    assert float(shown(w)["lr"].max()) == pytest.approx(0.3)
    legend = w.figure.select_one({"name": "schedule_legend"})
    assert [item.visible for item in legend.items] == [True, True, True]
    w.unpin_button.click()
    assert w.pinned is None and len(shown(w, PINNED)["lr"]) == 0 and not legend.items[2].visible


@pytest.mark.parametrize("spec, field, value", [
    (OneCycle(max_lr=0.05, pct_start=0.25), "pct_start", 0.4),
    (Warmup(steps=30, then=Cyclic(base_lr=1e-3, max_lr=0.02, mode="triangular2")), "steps", 40),
    (Sequential(specs=[Cosine(eta_min=1e-4), CATALOGUE["Exponential"](gamma=0.99)], milestones=[250]),
     "milestones", "300"),
])
def test_code_text_evaluates_to_an_equal_spec(spec, field, value):
    w = make(spec)
    assert eval(w.code, {"tw": tw}) == w.spec == spec
    assert shown_code(w) == w.code  # shown, html-escaped
    w.editor.fields[field].input.value = value
    assert w.spec != spec and w.error == ""
    assert eval(w.code, {"tw": tw}) == w.spec


def test_epochs_are_marked_on_the_top_axis():
    w = make(OneCycle(), total_steps=500, steps_per_epoch=50)
    axis = w.figure.select_one({"name": EPOCH_AXIS})
    assert axis.visible and axis.ticker.ticks == [k * 50 + 0.5 for k in range(11)]
    w.steps_per_epoch = None
    assert not axis.visible
    w.steps_per_epoch = 100
    assert axis.visible and axis.ticker.ticks == [0.5, 100.5, 200.5, 300.5, 400.5, 500.5]


def test_long_schedules_are_decimated_keeping_min_and_max():
    w = make(Cyclic(step_size_up=500), total_steps=20_000, steps_per_epoch=1000)
    frame = preview(w.spec, 20_000, 0.1, 1000)
    data = shown(w)
    assert len(data["lr"]) <= 2000
    assert data["lr"].max() == frame["lr"].max() and data["lr"].min() == frame["lr"].min()
    assert data["momentum"].max() == frame["momentum"].max()
    # every plotted point is an exact point of the preview
    np.testing.assert_array_equal(data["lr"], frame["lr"].to_numpy()[data["step"] - 1])


# -- link to an LR finder ----------------------------------------------------------------------
class FakeFinder(HasTraits):
    lr = FloatTrait(None, allow_none=True)


def test_link_lr_sets_max_lr_or_base_lr():
    finder = FakeFinder()
    w = make(OneCycle(max_lr=0.1)).link_lr(finder)
    finder.lr = 0.003
    assert w.spec == OneCycle(max_lr=0.003)
    assert_shows(w, OneCycle(max_lr=0.003))
    w.editor.shape.value = "Cosine"
    finder.lr = 0.02
    assert w.base_lr == 0.02 and w.spec == Cosine()
    assert float(shown(w)["lr"][0]) == pytest.approx(0.02)
    w.unlink_lr()
    finder.lr = 0.5
    assert w.base_lr == 0.02


def blobs(n: int = 128) -> TensorDataset:
    g = torch.Generator().manual_seed(0)
    y = torch.randint(0, 3, (n,), generator=g)
    x = torch.tensor([[2.0, 0.0], [-2.0, 1.0], [0.0, -2.0]])[y] + 0.7 * torch.randn(n, 2, generator=g)
    return TensorDataset(x, y)


def test_real_lr_finder_choice_sets_max_lr():
    task = tw.Task(model=lambda: nn.Sequential(nn.Linear(2, 8), nn.ReLU(), nn.Linear(8, 3)), train=blobs(),
                   loss="cross_entropy", batch_size=32)
    finder = LRFinder(task, steps=20, device="cpu")
    finder.lr = 0.004
    w = make(Warmup(steps=20, then=OneCycle()), lr_finder=finder)  # a current choice applies at once
    assert w.spec.then.max_lr == 0.004
    finder.chosen.value = 0.02  # the finder's own slider
    assert w.spec.then.max_lr == pytest.approx(0.02)
    assert float(shown(w)["lr"].max()) == pytest.approx(0.02)


def test_the_optimizer_lr_slider_is_hidden_for_shapes_with_their_own_lr():
    # no "base lr" slider beside Cyclic's own base_lr, nor beside OneCycle's max_lr
    w = SchedulePreview(tw.schedules.OneCycle(max_lr=0.3), total_steps=200)
    assert w.base_lr_slider.layout.display == "none"
    w.spec = tw.schedules.Cosine()
    assert w.base_lr_slider.layout.display is None and w.base_lr_slider.description == "optimizer lr"
    w.spec = tw.schedules.Cyclic(base_lr=0.01, max_lr=0.1, step_size_up=20)
    assert w.base_lr_slider.layout.display == "none" and "base_lr" in w.editor.fields
