"""``to_html`` pages of a live LRFinder after a run and of a SchedulePreview, opened from file://
in headless Chromium with the network cut off: they render, and their plots hold the result's
curve and the schedules shown (the one set last, and the pinned one)."""
from __future__ import annotations

import math
from types import SimpleNamespace

import numpy as np
import pytest

import tunewidgets as tw
from offline_page import bokeh_sources, open_offline, wait_for_canvases
from support.lab_page import button_name

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def pages(tmp_path_factory: pytest.TempPathFactory) -> SimpleNamespace:
    # made before the browser starts: a headless run drains on this thread
    base = tmp_path_factory.mktemp("widget_pages")
    finder = tw.widgets.LRFinder(tw.tasks.spirals(), optimizer="adam", start_lr=1e-5, end_lr=1.0, steps=60,
                                 device="cpu", seed=0)
    finder.run()
    finder.wait(timeout=120)
    assert finder.status == "finished"
    one_cycle = tw.schedules.OneCycle(max_lr=0.3)
    cyclic = tw.schedules.Cyclic(base_lr=0.01, max_lr=0.2, step_size_up=50, mode="triangular2")
    preview = tw.widgets.SchedulePreview(one_cycle, total_steps=400)
    preview.pin()
    preview.spec = cyclic
    out = SimpleNamespace(finder=finder, finder_html=finder.to_html(base / "finder.html"),
                          one_cycle=one_cycle, cyclic=cyclic, preview_html=preview.to_html(base / "preview.html"))
    for path in (out.finder_html, out.preview_html):
        print(f"\n{path.name}: {path.stat().st_size / 1e6:.2f} MB")
    return out


def _sources(page) -> dict[str, dict]:
    return {s["name"]: s["columns"] for s in bokeh_sources(page) if s["name"]}


@pytest.mark.browser
def test_lr_finder_page_renders_offline_with_the_results_curve(pages, browser):
    shown = open_offline(browser, pages.finder_html)
    page = shown.page
    assert wait_for_canvases(page, page.locator(".tunewidgets-widget")) == [1]
    shown.assert_clean()
    shown.screenshot("lr_finder_to_html")
    result = pages.finder.result
    curve = _sources(page)["lr_curve"]
    for column, expected in (("lr", result.lrs), ("loss", result.losses), ("smoothed", result.smoothed)):
        np.testing.assert_allclose(np.asarray(curve[column], dtype=float), expected, rtol=1e-12, equal_nan=True)
    markers = dict(zip(_sources(page)["lr_markers"]["method"], _sources(page)["lr_markers"]["x"]))
    assert all(math.isclose(markers[m], v, rel_tol=1e-12) for m, v in result.suggestions.items() if v is not None)
    assert page.get_by_role("button", name=button_name("Run test")).count() == 1
    assert f"{len(result.lrs)} steps" in page.locator(".tunewidgets-widget").inner_text()
    page.context.close()


@pytest.mark.browser
def test_schedule_preview_page_renders_offline_with_the_spec_set_last_and_the_pin(pages, browser):
    shown = open_offline(browser, pages.preview_html)
    page = shown.page
    assert wait_for_canvases(page, page.locator(".tunewidgets-widget")) == [1]
    shown.assert_clean()
    shown.screenshot("schedule_preview_to_html")
    sources = _sources(page)
    np.testing.assert_allclose(sources["schedule_lr"]["lr"], pages.cyclic.preview(400)["lr"], rtol=1e-12)
    np.testing.assert_allclose(sources["schedule_pinned"]["lr"], pages.one_cycle.preview(400)["lr"], rtol=1e-12)
    assert "tw.schedules.Cyclic(" in page.locator(".tunewidgets-widget").inner_text()
    page.context.close()
