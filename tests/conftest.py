"""Fixtures shared by all tests.

Browser tests (mark them ``@pytest.mark.browser``) use two fixtures:

- ``jupyter_lab`` (one server per test module): a real ``jupyter lab`` serving a scratch copy of
  ``notebooks/`` (``jupyter_lab.root_dir``; write extra notebooks there with
  ``support.notebooks.write_notebook``).
- ``browser_page`` (one per test): a Playwright page in headless Debian Chromium, logged in to
  that server, with ``base_url`` set, so ``support.jupyter.open_notebook(page, "name.ipynb")``
  works. On failure it saves a screenshot and prints the server log and browser console errors.
  Kernels are shut down after each test.

Without ``/usr/bin/chromium`` the browser tests are skipped, except when ``CI`` is set: there a
missing browser fails them (install it with ``apt-get install -y chromium``).
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
_BROWSER_FIXTURES = {"jupyter_lab", "browser_page", "browser"}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Give every test that uses a browser fixture the ``browser`` mark, so that
    ``-m "not browser"`` deselects it even when the mark was forgotten."""
    for item in items:
        if _BROWSER_FIXTURES & set(getattr(item, "fixturenames", ())):
            if item.get_closest_marker("browser") is None:
                item.add_marker(pytest.mark.browser)


@pytest.fixture
def one_torch_thread() -> Iterator[None]:
    """Tiny models train fastest on one torch thread (and the machine's cores are shared); use it
    with ``pytestmark = pytest.mark.usefixtures("one_torch_thread")``."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    report = yield
    setattr(item, f"report_{report.when}", report)  # read by fixtures at teardown
    return report


def _require_chromium() -> str:
    from support.jupyter import CHROMIUM

    if Path(CHROMIUM).exists():
        return CHROMIUM
    message = (f"{CHROMIUM} is missing: install it with "
               "`apt-get update && apt-get install -y chromium`")
    if os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no"):
        pytest.fail(f"browser tests need Chromium on CI; {message}", pytrace=False)
    pytest.skip(message)


@pytest.fixture(scope="module")
def jupyter_lab(tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest) -> Iterator[Any]:
    """A running JupyterLab on a scratch copy of ``notebooks/`` (see ``support.jupyter``), with
    the test module's ``LAB_SETTINGS`` (user settings) and ``LAB_OVERRIDES`` (the path of an
    ``overrides.json``, read as the environment's settings overrides) if it has them."""
    from support.jupyter import JupyterLab

    _require_chromium()
    base = tmp_path_factory.mktemp("jupyterlab")
    root = base / "notebooks"
    source = REPO_ROOT / "notebooks"
    if source.is_dir():
        shutil.copytree(source, root, ignore=shutil.ignore_patterns(
            ".ipynb_checkpoints", "tunewidgets-runs", "runs", "mlruns"))
    else:
        root.mkdir()
    lab = JupyterLab.start(root, home=base / "home", settings=getattr(request.module, "LAB_SETTINGS", None),
                           overrides=getattr(request.module, "LAB_OVERRIDES", None))
    try:
        yield lab
    finally:
        lab.stop()


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """Headless Debian Chromium driven by Playwright's sync API (one per test module).

    Module scope, not session: while Playwright's sync API is started, the main thread counts
    as running an asyncio loop, and later tests that call ``asyncio.run`` would fail.
    """
    chromium = _require_chromium()
    from playwright.sync_api import sync_playwright

    from support.jupyter import launch_chromium

    playwright = sync_playwright().start()
    try:
        instance = launch_chromium(playwright, executable_path=chromium)
        try:
            yield instance
        finally:
            instance.close()
    finally:
        playwright.stop()


@pytest.fixture
def browser_page(browser: Any, jupyter_lab: Any, request: pytest.FixtureRequest,
                 tmp_path: Path) -> Iterator[Any]:
    """A fresh page logged in to ``jupyter_lab`` (relative URLs resolve against the server).

    A test whose page had an uncaught error or a console error fails (``support.lab_page.PageErrors``).
    """
    from support.lab_page import PageErrors

    context = browser.new_context(base_url=jupyter_lab.url,
                                  viewport={"width": 1400, "height": 900})
    page = context.new_page()
    page.set_default_timeout(30_000)
    page_errors = page.tw_page_errors = PageErrors(page)  # a test that expects an error clears it
    console: list[str] = []
    page.on("console", lambda m: console.append(f"{m.type}: {m.text}")
            if m.type in ("error", "warning") else None)
    page.on("pageerror", lambda e: console.append(f"pageerror: {e}"))
    page.goto(f"/api/status?token={jupyter_lab.token}")  # sets the login cookie
    try:
        yield page
    finally:
        report = getattr(request.node, "report_call", None)
        if report is not None and report.failed:
            shot = tmp_path / "failure.png"
            try:
                page.screenshot(path=str(shot), full_page=True)
                print(f"screenshot of the failing page: {shot}")
            except Exception as exc:  # the page may be gone; the log below still helps
                print(f"no screenshot: {exc}")
            print("browser console errors and warnings:\n" + "\n".join(console[-30:]))
            print("jupyter server log:\n" + jupyter_lab.log_tail(60))
        context.close()
        jupyter_lab.shutdown_kernels()
    if report is not None and report.passed:
        page_errors.check()
