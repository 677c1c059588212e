"""What a FigureView sends the page: one patch of three comm messages per batch of changes, its
arrays inline, nothing twice, and the page's copy of the figure ends as the kernel's.

The page side is played by Bokeh's own protocol receiver and a document built from the view's
render bundle, as BokehJS builds its copy: the patches are applied to it as the page applies them.
"""
from __future__ import annotations

import asyncio
import json

import numpy as np
import pytest
from bokeh.document import Document
from bokeh.models import ColumnDataSource
from bokeh.plotting import figure
from bokeh.protocol.receiver import Receiver
from bokeh.protocol import Protocol

import tunewidgets as tw
from tunewidgets.plots.schedule import SCHEDULE
from tunewidgets.widgets._bokeh import batched, bokeh_widget


class Page:
    """The page's copy of a view's figure: built from its last render, patched by what it sends."""

    def __init__(self, view) -> None:
        self.messages: list[dict] = []
        self.view = view
        view.send = self._receive  # what ipywidgets would put on the comm
        self.load()

    def load(self) -> None:
        bundle = self.view.render_bundle
        bundle = json.loads(bundle) if isinstance(bundle, str) else bundle
        (doc_json,) = bundle["docs_json"].values()
        self.doc = Document.from_json(doc_json)

    def _receive(self, content, buffers=None) -> None:
        assert content["msg"] == "patch" and not buffers, "a patch part went as a binary buffer"
        self.messages.append(content)

    def apply(self) -> list[list[str]]:
        """Apply what came since the last call; returns each patch's event kinds."""
        receiver, kinds = Receiver(Protocol()), []
        messages, self.messages = self.messages, []
        assert len(messages) % 3 == 0, f"{len(messages)} messages: a patch is header, metadata, content"

        async def consume():
            for content in messages:
                msg = await receiver.consume(content["payload"])
                if msg is not None:
                    kinds.append([e["kind"] for e in msg.content["events"]])
                    msg.apply_to_document(self.doc)
        asyncio.run(consume())
        return kinds

    def model(self, model_id: str):
        """The page's copy of the model with this id."""
        (found,) = [m for m in self.doc.models if m.id == model_id]
        return found

    def data(self, name: str) -> dict[str, list]:
        (source,) = [m for m in self.doc.models if isinstance(m, ColumnDataSource) and m.name == name]
        return {k: list(np.asarray(v).tolist()) for k, v in source.data.items()}


def curve_figure():
    fig = figure(width=300, height=200)
    line = fig.line("x", "y", source=ColumnDataSource({"x": [1.0, 2.0], "y": [3.0, 4.0]}, name="pts"))
    return fig, line


def test_each_change_outside_a_batch_is_one_patch_of_three_messages_with_arrays_inline():
    fig, line = curve_figure()
    view = bokeh_widget(fig)
    page = Page(view)
    line.data_source.stream({"x": np.array([3.0, 4.0]), "y": np.array([5.0, 6.0])})
    assert len(page.messages) == 3 and '"ndarray"' in page.messages[2]["payload"]
    line.glyph.line_width = 3
    assert page.apply() == [["ColumnsStreamed"], ["ModelChanged"]]
    assert page.data("pts") == {"x": [1.0, 2.0, 3.0, 4.0], "y": [3.0, 4.0, 5.0, 6.0]}
    assert page.model(line.glyph.id).line_width == 3


def test_a_batch_sends_its_changes_as_one_patch_at_its_end():
    fig, line = curve_figure()
    view = bokeh_widget(fig)
    page = Page(view)
    with batched([view]):
        for i in range(5):
            line.data_source.stream({"x": [10.0 + i], "y": [float(i)]})
        line.glyph.line_width = 2
        with batched([view]):  # nested: still the outer one's patch
            line.data_source.stream({"x": [20.0], "y": [9.0]})
        assert page.messages == []  # nothing before the end
    assert page.apply() == [["ColumnsStreamed"] * 5 + ["ModelChanged", "ColumnsStreamed"]]
    assert page.data("pts")["x"] == [1.0, 2.0, 10.0, 11.0, 12.0, 13.0, 14.0, 20.0]
    assert view.patches_sent == 1


def test_each_change_in_a_batch_is_sent_as_it_was_then_not_as_the_batch_left_it():
    fig, line = curve_figure()
    view = bokeh_widget(fig)
    page = Page(view)
    source = line.data_source
    with batched([view]):
        source.data = {"x": [7.0], "y": [1.0]}  # a whole new curve (it reads the data when encoded)
        source.stream({"x": [8.0], "y": [2.0]})
        source.stream({"x": [9.0], "y": [3.0]})
        line.glyph.line_width = 5
        line.glyph.line_width = 1
    page.apply()
    assert page.data("pts") == {"x": [7.0, 8.0, 9.0], "y": [1.0, 2.0, 3.0]}  # each row once
    assert page.model(line.glyph.id).line_width == 1


def test_a_render_inside_a_batch_drops_the_changes_it_holds_so_no_row_arrives_twice():
    fig, line = curve_figure()
    view = bokeh_widget(fig)
    page = Page(view)
    with batched([view]):
        line.data_source.stream({"x": [3.0], "y": [5.0]})
        view.render_now()  # the new render already holds the streamed row
        page.load()
        line.data_source.stream({"x": [4.0], "y": [6.0]})
    assert page.apply() == [["ColumnsStreamed"]]
    assert page.data("pts")["x"] == [1.0, 2.0, 3.0, 4.0]


@pytest.mark.parametrize("interval", [0.01, 30.0])  # many ticks, and two (the first and the end)
def test_an_lr_finder_run_sends_one_patch_a_tick_and_the_page_ends_with_the_kernels_curve(interval):
    finder = tw.widgets.LRFinder(tw.tasks.digits(), start_lr=1e-5, end_lr=1e-1, steps=60, seed=0,
                                 device="cpu", interval=interval)
    page = Page(finder.plot)
    finder.run()
    finder.wait()
    patches = page.apply()
    # the start's resets in one, each tick's changes in one, the end's in one
    assert 2 <= len(patches) <= finder.session.ticks + 2, (len(patches), finder.session.ticks, patches)
    source = finder.figure.select_one({"name": "lr_curve"})
    kernel = {k: np.asarray(v).tolist() for k, v in source.data.items()}
    shown = page.data("lr_curve")
    assert len(shown["lr"]) == len(kernel["lr"]) > 10
    for name, values in kernel.items():
        assert np.allclose(np.asarray(shown[name], dtype=float), np.asarray(values, dtype=float),
                           equal_nan=True), name


def test_a_schedule_preview_change_is_one_patch_and_the_page_shows_the_new_shape():
    from tunewidgets.schedules import OneCycle

    w = tw.widgets.SchedulePreview(OneCycle(), total_steps=500, steps_per_epoch=50)
    page = Page(w.plot)
    w.editor.fields["max_lr"].input.value = 0.031622776601683794
    w.editor.shape.value = "Cosine"  # other models: the patch brings them along
    patches = page.apply()
    assert len(patches) == 2  # one a change, though each redraws several parts of the plot
    kernel = w.figure.select_one({"name": SCHEDULE}).data
    shown = page.data(SCHEDULE)
    for name in ("step", "lr"):
        assert np.array_equal(np.asarray(shown[name], dtype=float), np.asarray(kernel[name], dtype=float))


def test_a_second_launch_clears_the_plots_with_its_first_point_and_the_page_ends_as_the_kernel(tmp_path):
    space = {"lr": tw.space.LogUniform(1e-3, 1e-1)}
    w = tw.widgets.Search(tw.tasks.digits(), space, base=tw.TrainConfig(optimizer="adam", epochs=2, device="cpu"),
                          n_trials=2, store=str(tmp_path / "runs"))
    curves = w.views[0]
    page = Page(curves)
    assert w.launch()
    w.wait(timeout=120)
    page.apply()
    assert sorted(set(page.data("search_curves")["trial"])) == [0, 1]
    assert w.launch()
    assert page.messages == []  # the clearing waits for the first point (or 0.3 s on a loop)
    w.wait(timeout=120)
    page.apply()
    kernel = w.plots.figures.curves.select_one({"name": "search_curves"}).data
    shown = page.data("search_curves")
    assert shown["trial"] == list(kernel["trial"]) == [0, 1]  # the new study's trials, each once
    assert [list(xs) for xs in shown["xs"]] == [list(xs) for xs in kernel["xs"]]
