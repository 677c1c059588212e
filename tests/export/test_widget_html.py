"""``widget.to_html(path)`` without a browser: the page holds the widget's current state and the
data its plots hold now, and refuses bad arguments clearly."""
from __future__ import annotations

import json
import re

import ipywidgets
import numpy as np
import pytest

import tunewidgets as tw
from support.notebooks import saved_bokeh_sources
from tunewidgets.export import external_references
from tunewidgets.widgets._embed import write_widget_html

pytestmark = pytest.mark.slow  # one LR range test, a few seconds on a CPU


def _state(html: str) -> dict:
    found = re.search(r'<script type="application/vnd.jupyter.widget-state\+json">\s*(.*?)\s*</script>', html, re.S)
    return json.loads(found.group(1))["state"]


def _bokeh_entries(html: str) -> list[dict]:
    return [e for e in _state(html).values() if e["model_name"] == "BokehModel"]


@pytest.fixture(scope="module")
def finished_finder():
    finder = tw.widgets.LRFinder(tw.tasks.spirals(), optimizer="adam", start_lr=1e-4, end_lr=1.0, steps=40,
                                 device="cpu", seed=0)
    assert finder.run()
    finder.wait(timeout=120)
    assert finder.status == "finished"
    return finder


def test_lr_finder_page_holds_the_finished_curve_and_controls(finished_finder, tmp_path):
    finder = finished_finder
    path = finder.to_html(tmp_path / "finder.html")
    assert path == tmp_path / "finder.html"
    html = path.read_text()
    (bokeh,) = _bokeh_entries(html)
    curve = saved_bokeh_sources(bokeh)["lr_curve"]
    np.testing.assert_array_equal(curve["lr"], finder.result.lrs)
    np.testing.assert_array_equal(curve["loss"], finder.result.losses)
    described = {e["state"].get("description") for e in _state(html).values()}
    assert {"Run test", "Stop"} <= described
    assert external_references(html) == [] and "<title>LRFinder</title>" in html


def test_a_custom_title_and_any_widget(tmp_path):
    slider = ipywidgets.IntSlider(value=4, description="four")
    html = write_widget_html(slider, tmp_path / "slider.html", title="A <slider>").read_text()
    assert "<title>A &lt;slider&gt;</title>" in html
    assert [e["state"]["value"] for e in _state(html).values() if e["model_name"] == "IntSliderModel"] == [4]
    assert "/* BEGIN bokeh.min.js */" not in html  # no plot, no BokehJS


def test_schedule_preview_page_shows_the_spec_set_last_and_the_pin(tmp_path):
    one_cycle = tw.schedules.OneCycle(max_lr=0.3)
    cyclic = tw.schedules.Cyclic(base_lr=0.01, max_lr=0.2, step_size_up=50)
    preview = tw.widgets.SchedulePreview(one_cycle, total_steps=300)
    preview.pin()
    preview.spec = cyclic
    (bokeh,) = _bokeh_entries(preview.to_html(tmp_path / "preview.html").read_text())
    sources = saved_bokeh_sources(bokeh)
    np.testing.assert_allclose(sources["schedule_lr"]["lr"], cyclic.preview(300)["lr"], rtol=1e-12)
    np.testing.assert_allclose(sources["schedule_pinned"]["lr"], one_cycle.preview(300)["lr"], rtol=1e-12)


def test_bad_arguments_are_refused_with_the_fix(tmp_path):
    slider = ipywidgets.IntSlider()
    with pytest.raises(ValueError, match=r"path: '.*slider.txt' should end in .html"):
        write_widget_html(slider, tmp_path / "slider.txt")
    with pytest.raises(ValueError, match=r"path: the folder '.*missing' does not exist"):
        write_widget_html(slider, tmp_path / "missing" / "slider.html")
    with pytest.raises(TypeError, match="widget: expected a displayable ipywidget, got str"):
        write_widget_html("slider", tmp_path / "slider.html")  # type: ignore[arg-type]
    slider.close()
    with pytest.raises(ValueError, match="widget: this IntSlider was closed"):
        write_widget_html(slider, tmp_path / "slider.html")
    assert not (tmp_path / "slider.html").exists()
