"""A notebook served as an app by Voila, in a real browser: the README's command (its notebook
aside) starts Voila, the page shows the LR range test with its plot (jupyter_bokeh's
``BokehModel`` and BokehJS load offline), its Run button runs the test, the plot fills with the
curve the kernel computed and its axes fit it, and the page has no error at all (uncaught,
console, or a red widget box).

Two apps: a small notebook written here (``tw.widgets.LRFinder`` on digits), whose curve is
checked point by point against the same range test run in this process, and
``notebooks/00_start_here.ipynb`` (the Dashboard), skipped while that notebook is missing.

Screenshots (see ``support.lab_page.screenshots_dir``): ``voila-<app>-0-shown``, ``-1-run``.
"""

from __future__ import annotations

import math
import re
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import expect

from support.jupyter import PageErrors, assert_no_widget_errors, bokeh_plots, button_name, screenshot
from support.lab_page import report_failed_page
from support.notebooks import write_notebook
from support.voila import REPO_ROOT, TEMPLATE, Voila, app_command, parse_command

START_HERE = "notebooks/00_start_here.ipynb"  # the Dashboard's notebook
README_APP = START_HERE  # the notebook the README's command serves
LR_FINDER = "lr_finder_app.ipynb"
APP_STEPS = 150  # typed into notebook 00's range test before its button is clicked (its tour ran 100)
RUN_LABEL = "Run test"  # the range test's run button, in LRFinder and in the Dashboard
ENDED = re.compile(r"^(?:(\d+) steps|stopped at step (\d+))")  # its status line once a run has ended
# the range test the small notebook shows (and this module runs again to know its curve)
SETTINGS = {"optimizer": "sgd", "start_lr": 1e-5, "end_lr": 1.0, "steps": 60, "mode": "exp",
            "smoothing": 0.98, "seed": 0, "device": "cpu"}
LR_FINDER_CELLS = [
    "# md\n# The LR range test as an app",
    "import torch\n"
    "import tunewidgets as tw\n"
    "torch.set_num_threads(1)\n"
    "finder = tw.widgets.LRFinder(tw.tasks.digits(), " + ", ".join(f"{k}={v!r}" for k, v in SETTINGS.items())
    + ")\nfinder",
]
APPS = [
    pytest.param(LR_FINDER, id="lr-finder"),
    pytest.param(START_HERE, id="00-start-here", marks=pytest.mark.skipif(
        not (REPO_ROOT / START_HERE).is_file(), reason=f"{START_HERE} is not in the repository yet")),
]


# -- the README's command ------------------------------------------------------------------------
def readme_command() -> str:
    """The command of the README's "Serving a notebook as an app (Voila)" subsection."""
    text = (REPO_ROOT / "README.md").read_text()
    match = re.search(r"^### Serving a notebook as an app \(Voila\)\n(.*?)(?=^#{2,3} )", text, re.M | re.S)
    assert match, "README.md: no '### Serving a notebook as an app (Voila)' subsection"
    blocks = re.findall(r"^```sh\n(.*?)^```", match.group(1), re.M | re.S)
    assert len(blocks) == 1, f"the Voila subsection should hold one sh block, found {len(blocks)}"
    (line,) = [ln for ln in blocks[0].splitlines() if ln.strip()]
    return line


def without_port(argv: list[str]) -> list[str]:
    return [a for a in argv if a != "--no-browser" and not a.startswith(("--port=", "--Voila.port_retries="))]


def test_the_readme_command_is_the_one_the_app_test_runs():
    env, argv = parse_command(readme_command())
    test_env, test_argv = app_command(README_APP, port=8866, browser=False)
    assert (env, without_port(argv)) == (test_env, without_port(test_argv))
    assert argv[-1] == README_APP and (REPO_ROOT / README_APP).is_file()
    template = REPO_ROOT / env["JUPYTER_PATH"] / "voila" / "templates" / TEMPLATE
    assert (template / "index.html.j2").is_file() and (template / "conf.json").is_file()


# -- the app in a browser --------------------------------------------------------------------------
@pytest.fixture(scope="module", params=APPS)
def voila_app(request: pytest.FixtureRequest, browser: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Voila]:
    """Voila serving one app (a module's worth of tests per app), from a scratch folder."""
    base = tmp_path_factory.mktemp("voila")
    if request.param == LR_FINDER:
        notebook = write_notebook(base / "apps" / LR_FINDER, LR_FINDER_CELLS)
    else:  # a copy of notebooks/, so what the notebook writes stays out of the repository
        shutil.copytree(REPO_ROOT / "notebooks", base / "notebooks", ignore=shutil.ignore_patterns(
            ".ipynb_checkpoints", "tunewidgets-runs", "runs", "mlruns"))
        notebook = base / START_HERE
    app = Voila.start(notebook, home=base / "home")
    try:
        yield app
    finally:
        app.stop()


@pytest.fixture
def app_page(browser: Any, voila_app: Voila, request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Any]:
    """A fresh page (not loaded yet) whose errors are collected in ``page.tw_page_errors``."""
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    page = context.new_page()
    page.set_default_timeout(30_000)
    page.tw_page_errors = PageErrors(page)
    try:
        yield page
    finally:
        report_failed_page(request, page, tmp_path, page_errors="\n".join(page.tw_page_errors.errors),
                           voila_log=voila_app.log_tail(60))
        context.close()


def expected_curve() -> Any:
    """The small notebook's range test, run here: the curve its page must show."""
    import torch

    import tunewidgets as tw

    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as the notebook's kernel
    try:
        return tw.lr_range_test(tw.tasks.digits(), **SETTINGS)
    finally:
        torch.set_num_threads(threads)


def finder_plot(page: Any) -> dict[str, Any]:
    plots = [p for p in bokeh_plots(page, "lr_curve") if p["shown"]]
    assert len(plots) == 1, f"expected the range test's plot once in the page, found {len(plots)}"
    return plots[0]


def curve(plot: dict[str, Any]) -> dict[str, list[Any]]:
    return plot["sources"]["lr_curve"]


def fits(plot: dict[str, Any], points: int) -> bool:
    """The plot holds ``points`` points and its axes cover every finite one."""
    data = curve(plot)
    lr = [v for v in data["lr"] if v is not None]
    smoothed = [v for v in data["smoothed"] if v is not None]
    if len(data["lr"]) != points or not lr or not smoothed:
        return False
    (x0, x1), (y0, y1) = plot["x_range"], plot["y_range"]
    return None not in (x0, x1, y0, y1) and x0 <= min(lr) and x1 >= max(lr) and y0 <= min(smoothed) \
        and y1 >= max(smoothed)


def wait_filled(page: Any, points: int, timeout: float = 30.0) -> dict[str, Any]:
    """The plot once it holds ``points`` points inside its axes (a snapshot taken between a new
    batch of data and the redraw of the ranges is taken again, never passed)."""
    deadline = time.monotonic() + timeout
    while True:
        plot = finder_plot(page)
        if fits(plot, points):
            return plot
        assert time.monotonic() < deadline, (f"the plot never held {points} points inside its axes: "
                                             f"{len(curve(plot)['lr'])} points, x {plot['x_range']}, y {plot['y_range']}")
        page.wait_for_timeout(100)


def test_the_app_runs_the_range_test_from_its_button_and_the_plot_fills(voila_app, app_page):
    page, name = app_page, Path(voila_app.notebook).stem
    expected = expected_curve() if voila_app.notebook.name == LR_FINDER else None
    began = time.monotonic()
    page.goto(voila_app.url, wait_until="domcontentloaded", timeout=120_000)
    finder = page.locator(".tw-lr-finder").first
    expect(finder).to_be_visible(timeout=120_000)  # Voila shows the cells once they have run
    # the plot, or the red box of a widget that failed to render (BokehJS missing, say)
    expect(finder.locator(".bk-Canvas").or_(finder.locator(".jupyter-widgets-error-widget")).first).to_be_visible()
    assert_no_widget_errors(page)
    before = finder_plot(page)
    shown_in = time.monotonic() - began
    screenshot(page, f"voila-{name}-0-shown", finder)
    status = finder.locator(".tw-status")
    if expected is not None:  # the small notebook only shows the finder: nothing has run
        assert curve(before)["lr"] == []
    else:  # notebook 00's tour ran a test from code as the page was made: its curve is shown, and
        # the run from the button is told apart from it by another length typed into "steps"
        wait_filled(page, len(curve(before)["lr"]) or 1)
        steps = finder.locator(".widget-inline-hbox", has_text="steps").locator("input")
        steps.fill(str(APP_STEPS))
        steps.press("Enter")

    finder.get_by_role("button", name=button_name(RUN_LABEL)).click()
    # the status line says how many steps ran once the run has ended ("60 steps in 0.4 s; ...")
    if expected is None:
        expect(status).to_contain_text(f"{APP_STEPS} steps in", timeout=120_000)
    expect(status).to_have_text(ENDED, timeout=120_000)
    done = int(next(n for n in ENDED.match(status.inner_text()).groups() if n is not None))
    if expected is None:
        assert done == APP_STEPS
    plot = wait_filled(page, done)
    screenshot(page, f"voila-{name}-1-run", finder)

    data = curve(plot)
    assert data["step"] == list(range(1, done + 1))  # steps count from 1, one point per step
    lr = data["lr"]
    assert all(a < b for a, b in zip(lr, lr[1:])), "the lr ramp must rise step by step"
    if expected is not None:  # point by point, the curve the kernel computed
        assert done == len(expected) == SETTINGS["steps"]  # the whole ramp
        assert lr == pytest.approx(expected.lrs.tolist(), rel=1e-9)
        for column, values in (("smoothed", expected.smoothed), ("loss", expected.losses)):
            shown = data[column]  # what the page holds; a number that is not finite reads None
            assert [v is None for v in shown] == [not math.isfinite(v) for v in values], column
            assert [v for v in shown if v is not None] == pytest.approx(
                [v for v in values.tolist() if math.isfinite(v)], rel=1e-5), column
    # the axes fit the data: they cover it (checked above) and it fills most of each
    finite = [v for v in data["smoothed"] if v is not None]
    (x0, x1), (y0, y1) = plot["x_range"], plot["y_range"]
    x_fill = math.log10(max(lr) / min(lr)) / math.log10(x1 / x0)
    y_fill = (max(finite) - min(finite)) / (y1 - y0)
    assert x_fill > 0.8 and y_fill > 0.8, (x_fill, y_fill, plot["x_range"], plot["y_range"])

    assert_no_widget_errors(page)
    page.tw_page_errors.check()
    print(f"\nVoila app {name}: shown {shown_in:.1f} s after the page was asked for, "
          f"{done} points after the click; server started in {voila_app.started_in:.1f} s")
