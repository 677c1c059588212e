"""``tw.report`` opened from file:// in headless Chromium with every outside request blocked:
nothing fails, every plot draws, and no payload hidden in a name, a value or an error runs."""
from __future__ import annotations

from pathlib import Path

import pytest

import tunewidgets as tw
from export.offline_page import bokeh_sources, open_offline, wait_for_canvases
from report_store import PAYLOADS, make_store
from tunewidgets.reports._load import MAX_POINTS

pytestmark = [pytest.mark.browser, pytest.mark.slow]


@pytest.fixture(scope="module")
def report_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = make_store(tmp_path_factory.mktemp("report_browser"))
    return tw.report(folder, folder / "report.html")


def test_the_report_renders_offline_and_runs_no_injected_script(report_file: Path, browser) -> None:
    shown = open_offline(browser, report_file)
    page = shown.page
    plots = page.locator(".plot")
    counts = wait_for_canvases(page, plots)
    shown.assert_clean()
    shown.screenshot("report")
    assert len(counts) >= 7 and all(counts), counts
    assert page.evaluate("() => typeof window.__pwned") == "undefined"
    # the names are shown as text, exactly as the user wrote them
    body = page.locator("body").inner_text()
    for payload in PAYLOADS:
        assert payload in body, payload
    assert page.evaluate("() => document.querySelectorAll('img, svg, iframe').length") == 0
    sources = {s["name"]: s["columns"] for s in bokeh_sources(page) if s["name"]}
    loss = sources["run1_train_loss"]
    assert len(loss["x"]) <= MAX_POINTS and loss["x"][0] == 0 and loss["x"][-1] == 19_999
    assert sources["trial_history"]["trial"] == list(range(8))
    assert sorted(sources["importance"]["key"]) == ["lr", "opt"]
    # hovering the plots (tooltips show trial values) runs nothing either
    plots.nth(4).hover()
    # a marker, not a fixed wait: the hover's handlers have run once the page painted two frames
    page.evaluate("() => new Promise((done) => requestAnimationFrame(() => requestAnimationFrame(done)))")
    assert page.evaluate("() => typeof window.__pwned") == "undefined"
    page.context.close()
