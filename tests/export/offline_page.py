"""Open an exported HTML file from file:// in headless Chromium with the network cut off.

Every request that is not the file itself is aborted and counted, so a page that reaches for a
CDN, a font or an image outside the file shows up in ``blocked`` (and in ``failed``). Page errors
and console errors are recorded too. ``bokeh_sources(page)`` reads the data the browser's
BokehJS holds (``Bokeh.index``), ``wait_for_canvases`` waits for plots to draw. With
``TW_SCREENSHOTS=DIR`` set, ``screenshot(name)`` saves full-page screenshots there.
"""
from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["OfflinePage", "open_offline", "bokeh_sources", "wait_for_canvases"]


@dataclass
class OfflinePage:
    page: Any
    url: str
    blocked: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    page_errors: list[str] = field(default_factory=list)
    console_errors: list[str] = field(default_factory=list)
    load_s: float = 0.0

    def assert_clean(self) -> None:
        """No request left the file, none failed, no page or console error."""
        assert self.blocked == [], f"{len(self.blocked)} request(s) left the file: {self.blocked[:5]}"
        assert self.failed == [], f"{len(self.failed)} request(s) failed: {self.failed[:5]}"
        assert self.page_errors == [], f"page errors: {self.page_errors[:5]}"
        assert self.console_errors == [], f"console errors: {self.console_errors[:5]}"
        assert self.page.locator(".jupyter-widgets-error-widget").count() == 0, "a widget failed to render"

    def screenshot(self, name: str) -> None:
        """A full-page screenshot as ``$TW_SCREENSHOTS/name.png`` (nothing when it is not set)."""
        folder = os.environ.get("TW_SCREENSHOTS")
        if folder:
            Path(folder).mkdir(parents=True, exist_ok=True)
            self.page.screenshot(path=str(Path(folder) / f"{name}.png"), full_page=True)


def open_offline(browser: Any, path: Path) -> OfflinePage:
    """A new page showing ``path`` from file://, with every other request aborted."""
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.set_default_timeout(60_000)
    url = Path(path).resolve().as_uri()
    result = OfflinePage(page, url)

    def route(request_route: Any) -> None:
        if request_route.request.url == url:
            request_route.continue_()
        else:
            result.blocked.append(request_route.request.url)
            request_route.abort()

    context.route("**/*", route)
    page.on("requestfailed", lambda r: result.failed.append(r.url))
    page.on("pageerror", lambda e: result.page_errors.append(str(e)))
    page.on("console", lambda m: result.console_errors.append(m.text) if m.type == "error" else None)
    began = time.perf_counter()
    page.goto(url, wait_until="load")
    result.load_s = time.perf_counter() - began
    return result


def wait_for_canvases(page: Any, containers: Any, *, timeout: float = 60.0) -> list[int]:
    """Wait until each element of the locator ``containers`` holds a Bokeh canvas; return the
    number of canvases in each (Playwright's CSS locators reach into Bokeh's shadow DOM)."""
    deadline = time.monotonic() + timeout
    while True:
        counts = [containers.nth(i).locator(".bk-Canvas").count() for i in range(containers.count())]
        if (counts and all(counts)) or time.monotonic() > deadline:
            return counts
        page.wait_for_timeout(250)


_SOURCES_JS = r"""() => {
  const B = window.Bokeh;
  if (B == null || B.index == null) return null;
  const roots = typeof B.index[Symbol.iterator] === 'function' ? [...B.index] : Object.values(B.index);
  const docs = new Set(roots.map((view) => view.model.document).filter((doc) => doc != null));
  const out = [];
  let index = 0;
  for (const doc of docs) {
    for (const m of doc.all_models) {
      if (typeof m.get_length === 'function' && m.data != null) {
        const data = m.data instanceof Map ? Object.fromEntries(m.data) : m.data;
        const columns = {};
        for (const [k, v] of Object.entries(data)) columns[k] = Array.from(v);
        out.push({doc: index, name: m.name ?? null, columns});
      }
    }
    index += 1;
  }
  return out;
}"""


def bokeh_sources(page: Any) -> list[dict[str, Any]]:
    """Every data source of every document the page's BokehJS shows, as
    ``[{"doc": 0, "name": "lr_curve", "columns": {"lr": [...], ...}}, ...]`` (the browser's copy;
    ``doc`` numbers the documents, one per plot shown)."""
    result = page.evaluate(_SOURCES_JS)
    assert result is not None, "BokehJS is not loaded in the page (window.Bokeh is missing)"
    return result
