"""Fixtures shared by all tests.

Browser tests (mark them ``@pytest.mark.browser``) use two fixtures:

- ``jupyter_lab``: a real ``jupyter lab`` serving a scratch copy of ``notebooks/``
  (``jupyter_lab.root_dir``; write extra notebooks there with ``support.notebooks.write_notebook``,
  under a name no other test module uses). One server serves every test module with the same
  ``LAB_SETTINGS`` (user settings) and ``LAB_OVERRIDES`` (an ``overrides.json``), for the whole
  session: most modules share the default one, a module with settings of its own gets its own.
- ``browser_page`` (one per test): a Playwright page in headless Debian Chromium, logged in to
  that server, with ``base_url`` set, so ``support.jupyter.open_notebook(page, "name.ipynb")``
  works. On failure it saves a screenshot and prints the server log and browser console errors.
  Kernels are shut down after each test.

One Chromium serves all browser tests: the test modules that use a browser run in a row (in
their collected order), after the others in one process, and Chromium is closed before any test
of another module runs.

The README's test command runs the suite with pytest-xdist (``-n 2 --dist loadgroup``): the
tests marked ``xdist_group(NAME)`` run on one worker, one after the other. The browser modules
(their servers and Chromium are made once) get the group ``browser`` here, the tests of the
fresh venv (``tests/binder``: it is built once per process) the group ``fresh-venv``, the tests
that start a local Ray mark themselves ``xdist_group("ray")`` (one Ray on the machine at a
time), and every other module is a group of its own (its module fixtures, such as a notebook
run, are made once). Workers take the two long groups first.

Without ``/usr/bin/chromium`` the browser tests are skipped, except when ``CI`` is set: there a
missing browser fails them (install it with ``apt-get install -y chromium``).
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
_BROWSER_FIXTURES = {"jupyter_lab", "browser_page", "browser"}
_FRESH_VENV_FIXTURES = {"fresh_checkout", "fresh_venv", "binder_venv", "notebook_runs"}


@pytest.hookimpl(tryfirst=True)  # before pytest-xdist reads the groups (it names each test by its group)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Give every test that uses a browser fixture the ``browser`` mark, so that
    ``-m "not browser"`` deselects it even when the mark was forgotten; run the modules that use
    a browser after the others (whole modules, so module fixtures are made once), so that one
    Chromium serves them all."""
    browser_modules = set()
    for item in items:
        if _BROWSER_FIXTURES & set(getattr(item, "fixturenames", ())):
            browser_modules.add(_module_id(item))
            if item.get_closest_marker("browser") is None:
                item.add_marker(pytest.mark.browser)
    for item in items:  # with pytest-xdist's --dist loadgroup, one worker runs each group
        if item.get_closest_marker("xdist_group") is None:
            # a module on one worker, so its module fixtures (a notebook run) are made once; the
            # tests that share the fresh venv (built once per process) on one worker too
            module = _module_id(item)
            fresh = _FRESH_VENV_FIXTURES & set(getattr(item, "fixturenames", ()))
            item.add_marker(pytest.mark.xdist_group(
                "browser" if module in browser_modules else "fresh-venv" if fresh else module))
    if os.environ.get("PYTEST_XDIST_WORKER"):
        # workers take groups in this order: the two longest first, so that neither is left
        # running alone at the end while the other workers wait
        first = {"browser": 0, "fresh-venv": 1}
        items.sort(key=lambda item: first.get(_group(item), 2))
    else:  # one process: the browser modules last, so that one Chromium serves them all in a row
        items.sort(key=lambda item: _module_id(item) in browser_modules)  # stable within each part
    config.stash[_BROWSER_MODULES] = browser_modules


def _module_id(item: pytest.Item) -> str:
    return item.nodeid.split("::", 1)[0]


def _group(item: pytest.Item) -> str:
    marker = item.get_closest_marker("xdist_group")
    return "" if marker is None else marker.kwargs.get("name", marker.args[0] if marker.args else "")


_BROWSER_MODULES = pytest.StashKey[set]()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_teardown(item: pytest.Item, nextitem: pytest.Item | None) -> Any:
    """After the last test of the browser modules in a row (its fixtures torn down), close
    Chromium and Playwright: while Playwright's sync API runs, the main thread counts as running
    an asyncio loop, and a later test that calls ``asyncio.run`` would fail."""
    result = yield
    browser_modules = item.config.stash.get(_BROWSER_MODULES, set())
    if nextitem is None or _module_id(nextitem) not in browser_modules:
        _CHROMIUM.close()
    return result


def pytest_configure(config: pytest.Config) -> None:
    """One torch thread for the suite's own process and what it starts (kernels, scripts, Ray):
    its models are tiny, and the test command runs two workers on a 2-core machine, where a
    second thread per process only contends (a 3 s test took 58 s so). Tests that need more set
    it themselves."""
    for name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(name, "1")
    import torch

    torch.set_num_threads(int(os.environ["OMP_NUM_THREADS"]))


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


class _LabServers:
    """The JupyterLab servers of this session, one per (user settings, overrides) pair."""

    def __init__(self, base: Path) -> None:
        self.base = base
        self.servers: dict[str, Any] = {}

    def get(self, settings: dict[str, Any] | None, overrides: Any) -> Any:
        from support.jupyter import JupyterLab

        key = json.dumps([settings or {}, str(overrides) if overrides is not None else None], sort_keys=True)
        if key not in self.servers:
            base = self.base / f"lab{len(self.servers)}"
            root = base / "notebooks"
            source = REPO_ROOT / "notebooks"
            if source.is_dir():
                shutil.copytree(source, root, ignore=shutil.ignore_patterns(
                    ".ipynb_checkpoints", "tunewidgets-runs", "runs", "mlruns"))
            else:
                root.mkdir(parents=True)
            self.servers[key] = JupyterLab.start(root, home=base / "home", settings=settings,
                                                 overrides=overrides)
        return self.servers[key]

    def stop(self) -> None:
        for lab in self.servers.values():
            lab.stop()
        self.servers.clear()


@pytest.fixture(scope="session")
def _lab_servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[_LabServers]:
    servers = _LabServers(tmp_path_factory.mktemp("jupyterlab"))
    try:
        yield servers
    finally:
        servers.stop()


@pytest.fixture(scope="module")
def jupyter_lab(_lab_servers: _LabServers, request: pytest.FixtureRequest) -> Any:
    """A running JupyterLab on a scratch copy of ``notebooks/`` (see ``support.jupyter``), with
    the test module's ``LAB_SETTINGS`` (user settings) and ``LAB_OVERRIDES`` (the path of an
    ``overrides.json``, read as the environment's settings overrides) if it has them. Modules
    with the same settings share one server for the session (see the module docstring)."""
    _require_chromium()
    return _lab_servers.get(getattr(request.module, "LAB_SETTINGS", None),
                            getattr(request.module, "LAB_OVERRIDES", None))


class _Chromium:
    """Playwright and headless Debian Chromium, started on first use and closed by
    ``pytest_runtest_teardown`` once no browser test comes next."""

    def __init__(self) -> None:
        self.playwright: Any = None
        self.instance: Any = None

    def get(self, executable_path: str) -> Any:
        if self.instance is None:
            from playwright.sync_api import sync_playwright

            from support.jupyter import launch_chromium

            playwright = sync_playwright().start()
            try:
                self.instance = launch_chromium(playwright, executable_path=executable_path)
            except BaseException:
                playwright.stop()
                raise
            self.playwright = playwright
        return self.instance

    def close(self) -> None:
        instance, playwright, self.instance, self.playwright = self.instance, self.playwright, None, None
        try:
            if instance is not None:
                instance.close()
        finally:
            if playwright is not None:
                playwright.stop()


_CHROMIUM = _Chromium()


@pytest.fixture(scope="module")
def browser() -> Any:
    """Headless Debian Chromium driven by Playwright's sync API: one for all the browser modules
    in a row (they run after the other tests), closed before any other test runs."""
    return _CHROMIUM.get(_require_chromium())


@pytest.fixture
def browser_page(browser: Any, jupyter_lab: Any, request: pytest.FixtureRequest,
                 tmp_path: Path) -> Iterator[Any]:
    """A fresh page logged in to ``jupyter_lab`` (relative URLs resolve against the server).

    A test whose page had an uncaught error or a console error fails (``support.lab_page.PageErrors``).
    """
    from support.lab_page import PageErrors, report_failed_page

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
        report_failed_page(request, page, tmp_path, browser_console_errors_and_warnings="\n".join(console[-30:]),
                           jupyter_server_log=jupyter_lab.log_tail(60))
        context.close()
        jupyter_lab.shutdown_kernels()
    report = getattr(request.node, "report_call", None)
    if report is not None and report.passed:
        page_errors.check()
