"""Drive JupyterLab in headless Chromium with Playwright's sync API: open a notebook, run it
from the menus, click widget buttons, and read what the page shows.

Every helper takes a Playwright ``Page`` whose context has ``base_url`` set to a
:class:`support.jupyter.JupyterLab` server and that has logged in once (the ``browser_page``
fixture of ``tests/conftest.py`` does both)::

    def test_slider(jupyter_lab, browser_page):
        write_notebook(jupyter_lab.root_dir / "t.ipynb", ["import ipywidgets as w; w.IntSlider(3)"])
        open_notebook(browser_page, "t.ipynb")
        run_all(browser_page)
        assert_no_widget_errors(browser_page)

Facts these helpers rely on (JupyterLab 4, Bokeh 3): the kernel is ready when the status bar
reads ``Python 3 (ipykernel) | Idle`` (the toolbar indicator reads idle before a kernel exists);
Playwright CSS locators pierce Bokeh's shadow DOM while ``document.querySelector`` does not;
``Bokeh.index`` iterates over root views; ``window.jupyterapp`` exists because the server runs
with ``--LabApp.expose_app_in_browser``.
"""

from __future__ import annotations

import os
import re
import tempfile
import time
import urllib.parse
from collections.abc import Callable
from pathlib import Path
from typing import Any

__all__ = [
    "CHROMIUM",
    "CHROMIUM_ARGS",
    "KERNEL_IDLE_TEXT",
    "PageErrors",
    "assert_no_widget_errors",
    "bokeh_plots",
    "bokeh_source_lengths",
    "button_name",
    "click_button",
    "kernel_execute",
    "launch_chromium",
    "menu_command",
    "notebook_errors",
    "open_notebook",
    "run_all",
    "run_cell",
    "save_notebook",
    "screenshot",
    "screenshots_dir",
    "wait_kernel_idle",
    "wait_until",
]

#: Debian's Chromium; Playwright's own browser download is not used.
CHROMIUM = "/usr/bin/chromium"
#: Flags for a root, offline, headless machine (no sandbox, no calls home).
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]
#: Status-bar text of a started, idle kernel.
KERNEL_IDLE_TEXT = "Python 3 (ipykernel) | Idle"

_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


def launch_chromium(playwright: Any, *, executable_path: str = CHROMIUM) -> Any:
    """Launch Debian's Chromium headless through Playwright's sync API."""
    return playwright.chromium.launch(executable_path=executable_path, args=CHROMIUM_ARGS,
                                      headless=True)


def open_notebook(page: Any, name: str, *, wait_kernel: bool = True, reset: bool = True,
                  timeout: float = 60_000) -> None:
    """Open ``name`` (a path under the server's root) in JupyterLab and wait for its kernel.

    The page's context must have ``base_url`` set to the server and a login cookie. With
    ``reset`` (the default) the saved workspace is dropped, so notebooks that an earlier test
    opened do not come back as other tabs. ``timeout`` is in milliseconds, like Playwright's.
    """
    page.goto(f"/lab/tree/{urllib.parse.quote(name)}" + ("?reset" if reset else ""), wait_until="domcontentloaded",
              timeout=timeout)
    page.locator(".jp-NotebookPanel").first.wait_for(state="visible", timeout=timeout)
    page.locator(".jp-Notebook .jp-Cell").first.wait_for(state="visible", timeout=timeout)
    if wait_kernel:
        wait_kernel_idle(page, timeout=timeout)


def wait_kernel_idle(page: Any, *, timeout: float = 60_000) -> None:
    """Wait until the status bar reads ``Python 3 (ipykernel) | Idle`` (milliseconds).

    The toolbar's execution indicator reads idle even before a kernel exists, so it is not used.
    """
    page.locator("#jp-main-statusbar").get_by_text(KERNEL_IDLE_TEXT, exact=False).wait_for(
        state="visible", timeout=timeout)


def menu_command(page: Any, menu: str, command: str) -> None:
    """Click menu ``menu`` in JupyterLab's menu bar, then its item for ``command``
    (e.g. ``menu_command(page, "Kernel", "kernelmenu:interrupt")``), as a person would."""
    page.locator("#jp-menu-panel .lm-MenuBar-item", has_text=menu).first.click()
    item = page.locator(f'.lm-Menu .lm-Menu-item[data-command="{command}"]').first
    item.wait_for(state="visible", timeout=10_000)
    item.click()


_menu_command = menu_command


# A Run All (started on cleared outputs) has finished when no code cell shows [*] and either
# every non-empty code cell shows a number, or some cells stayed blank because one raised
# (its traceback is stderr output).
_RUN_FINISHED_JS = r"""() => {
  const panel = '.jp-NotebookPanel:not(.lm-mod-hidden) ';
  let numbered = 0, pending = 0, blank = 0;
  for (const cell of document.querySelectorAll(panel + '.jp-CodeCell')) {
    const prompt = cell.querySelector('.jp-InputPrompt')?.textContent ?? '';
    const code = cell.querySelector('.cm-content')?.textContent ?? '';
    if (prompt.includes('*')) pending += 1;
    else if (/\d/.test(prompt)) numbered += 1;
    else if (code.trim()) blank += 1;
  }
  const stderr = document.querySelectorAll(
    panel + '.jp-OutputArea-output[data-mime-type="application/vnd.jupyter.stderr"]').length;
  return pending === 0 && numbered > 0 && (blank === 0 || stderr > 0);
}"""


# Error outputs read from the notebook's model (``window.jupyterapp``, exposed by the server
# flag ``--LabApp.expose_app_in_browser``): in the DOM an error looks like any stderr text.
_ERROR_TEXTS_JS = r"""() => {
  const cells = window.jupyterapp?.shell?.currentWidget?.content?.model?.cells;
  if (cells == null) return null;
  const errors = [];
  for (let i = 0; i < cells.length; i++) {
    const cell = cells.get(i);
    if (cell.type !== 'code') continue;
    for (let j = 0; j < cell.outputs.length; j++) {
      const out = cell.outputs.get(j).toJSON();
      if (out.output_type === 'error')
        errors.push(`cell ${i}: ${out.ename}: ${out.evalue}\n${(out.traceback ?? []).join('\n')}`);
    }
  }
  return errors;
}"""


def run_all(page: Any, *, timeout: float = 120_000, clear_first: bool = True, wait: bool = True) -> None:
    """Run all cells from the menus (Run -> Run All Cells) and wait until the run has finished.

    Outputs are cleared first (Edit -> Clear Outputs of All Cells), so execution counts saved in
    the file cannot pass for a finished run. Raises ``AssertionError`` with the error text when a
    cell raised. ``timeout`` is in milliseconds. With ``wait=False`` it returns as soon as the
    command is given, for tests that act on the page while cells still run.
    """
    if clear_first:
        _menu_command(page, "Edit", "editmenu:clear-all")
    _menu_command(page, "Run", "runmenu:run-all")
    if not wait:
        return
    page.wait_for_function(_RUN_FINISHED_JS, timeout=timeout, polling=100)
    wait_kernel_idle(page, timeout=timeout)
    errors = notebook_errors(page)
    if errors:
        raise AssertionError("a cell raised during Run All:\n" + "\n---\n".join(errors))


def notebook_errors(page: Any) -> list[str]:
    """Errors shown in the current notebook, one ``"cell I: Name: value\\ntraceback"`` each."""
    errors = page.evaluate(_ERROR_TEXTS_JS)
    if errors is None:
        raise AssertionError("no notebook is the current widget of JupyterLab")
    return [_ANSI.sub("", text) for text in errors]


def assert_no_widget_errors(page: Any) -> None:
    """Fail if any widget shows the red 'failed to render' box."""
    boxes = page.locator(".jupyter-widgets-error-widget")
    count = boxes.count()
    if count:
        texts = [boxes.nth(i).inner_text() for i in range(count)]
        raise AssertionError(f"{count} widget(s) failed to render: {texts}")


_SOURCE_LENGTHS_JS = r"""() => {
  const B = window.Bokeh;
  if (B == null || B.index == null) return null;
  const index = B.index;
  let roots;
  if (typeof index[Symbol.iterator] === 'function') roots = [...index];   // Bokeh 3: ViewManager
  else if (index instanceof Map) roots = [...index.values()];
  else roots = Object.values(index);                                     // Bokeh 2: {id: view}
  // Each shown object has a document with several roots (Bokeh 3 adds a Notifications root):
  // visit each document once.
  const docs = new Set(roots.map((view) => view.model.document).filter((doc) => doc != null));
  const out = [];
  for (const doc of docs) {
    for (const m of doc.all_models) {
      if (typeof m.get_length === 'function' && m.data != null) {
        out.push({id: m.id, name: m.name ?? null, type: m.type, length: m.get_length() ?? 0});
      }
    }
  }
  return out;
}"""


def bokeh_source_lengths(page: Any) -> list[dict[str, Any]]:
    """Rows in each Bokeh data source the browser shows, as
    ``[{"id": "p1008", "name": "losses", "type": "ColumnDataSource", "length": 42}, ...]``.

    Reads the browser's copy (what streaming delivered), not the kernel's. One entry per source
    per shown document, so a figure shown twice lists its sources twice. Returns ``[]`` when
    BokehJS is loaded but shows nothing; raises ``AssertionError`` when BokehJS is not loaded.
    Give sources a ``name=`` in the figure builders to find them here.
    """
    result = page.evaluate(_SOURCE_LENGTHS_JS)
    if result is None:
        raise AssertionError("BokehJS is not loaded in the page (window.Bokeh is missing)")
    return result


def click_button(page: Any, text: str, *, timeout: float = 10_000) -> None:
    """Click the one widget button in the notebook's outputs whose label is exactly ``text``
    (an icon before the label, which counts in the button's accessible name, is ignored)."""
    button = page.locator(".jp-NotebookPanel:not(.lm-mod-hidden) .jp-OutputArea-output").get_by_role(
        "button", name=button_name(text))
    button.click(timeout=timeout)


def button_name(text: str) -> re.Pattern[str]:
    """A pattern for ``get_by_role("button", name=...)`` that matches the label ``text`` exactly,
    after an optional icon (Font Awesome glyphs are part of the accessible name)."""
    return re.compile(r"^\W*" + re.escape(text) + "$")


# -- waiting on a state, not on the clock -----------------------------------------------------------
def wait_until(page: Any, condition: Callable[[], Any], *, timeout: float = 30_000, interval: float = 100,
               message: str | Callable[[], str] = "the condition") -> Any:
    """Call ``condition()`` (it reads the page, e.g. ``lambda: curve_length(page) >= 25``) until it
    returns something truthy, and return that; between calls the page's events are handled.

    ``timeout`` (milliseconds) only guards against a hang: ``AssertionError`` names ``message``
    (a text or a callable that describes what was seen) when it passes. Use it instead of a fixed
    wait when the state can only be read from Python; use ``page.wait_for_function`` or
    ``expect`` when it can be read in the page.
    """
    deadline = time.monotonic() + timeout / 1000
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            text = message() if callable(message) else message
            raise AssertionError(f"not reached within {timeout / 1000:.0f} s: {text}")
        page.wait_for_timeout(interval)


# Runs code in the current notebook's kernel, not as a cell: resolves with what it printed once the
# kernel has replied and gone idle, so every message the kernel sent before has reached the page.
_KERNEL_EXECUTE_JS = r"""async ([code, timeout]) => {
  const kernel = window.jupyterapp.shell.currentWidget?.sessionContext?.session?.kernel;
  if (kernel == null) return {status: 'no kernel', text: ''};
  const future = kernel.requestExecute({code, silent: false, store_history: false});
  const out = [];
  future.onIOPub = (msg) => {
    const t = msg.header.msg_type, c = msg.content;
    if (t === 'stream') out.push(c.text);
    else if (t === 'error') out.push(`${c.ename}: ${c.evalue}\n`);
    else if (t === 'execute_result') out.push((c.data['text/plain'] ?? '') + '\n');
  };
  const timer = new Promise((resolve) => setTimeout(() => resolve(null), timeout));
  const reply = await Promise.race([future.done, timer]);
  if (reply == null) return {status: 'timeout', text: out.join('')};
  return {status: reply.content.status, text: out.join('')};
}"""


def kernel_execute(page: Any, code: str, *, timeout: float = 60_000) -> str:
    """Run ``code`` in the open notebook's kernel (not as a cell: the notebook does not change)
    and return what it printed; raises ``AssertionError`` if it raised or did not end in
    ``timeout`` milliseconds.

    It is also a marker: it returns after the kernel has handled every message that reached it
    before (a click, a typed value) and the page has received every message the kernel sent
    before its reply. A test that checks that something does not happen any more (no more
    points after Stop) asks the kernel after the event, instead of waiting a fixed time.
    """
    result = page.evaluate(_KERNEL_EXECUTE_JS, [code, timeout])
    if result["status"] != "ok":
        raise AssertionError(f"kernel_execute({code!r}): {result['status']}\n{result['text']}")
    return result["text"]


# -- errors in the page ----------------------------------------------------------------------------
class PageErrors:
    """Collects the page's uncaught errors (``pageerror``) and console errors from the moment it
    is attached; :meth:`check` fails with all of them. The ``browser_page`` fixture attaches one
    to every page and checks it after the test, so every browser test fails on a page error.

    ``ignore`` holds patterns of console messages that are not the page's fault (none by default);
    page errors are never ignored.
    """

    def __init__(self, page: Any, ignore: tuple[str, ...] = ()) -> None:
        self.errors: list[str] = []
        self.ignore = tuple(re.compile(p) for p in ignore)
        page.on("pageerror", self._on_page_error)
        page.on("console", self._on_console)

    def _on_page_error(self, error: Any) -> None:
        stack = getattr(error, "stack", "") or ""
        self.errors.append(f"pageerror: {error}" + (f"\n{stack}" if stack else ""))

    def _on_console(self, message: Any) -> None:
        if message.type == "error" and not any(p.search(message.text) for p in self.ignore):
            self.errors.append(f"console error: {message.text}")

    def check(self) -> None:
        """Fail if the page had any error so far."""
        if self.errors:
            raise AssertionError(f"{len(self.errors)} error(s) in the page:\n" + "\n---\n".join(self.errors))


# -- running single cells and saving -----------------------------------------------------------------
_CELL_DONE_JS = r"""([index, before]) => {
  const panel = window.jupyterapp.shell.currentWidget;
  const cell = panel.content.widgets[index];
  const count = cell.model.executionCount;
  return count != null && count !== before && !cell.node.querySelector('.jp-InputPrompt')?.textContent?.includes('*');
}"""


def run_cell(page: Any, index: int, *, timeout: float = 120_000, wait: bool = True) -> None:
    """Run the notebook's cell ``index`` (0-based, markdown cells count) as Shift+Enter would,
    and wait until it has finished and the kernel is idle. Raises ``AssertionError`` with the
    error text when the cell raised."""
    before = page.evaluate(f"() => window.jupyterapp.shell.currentWidget.content.widgets[{index}].model"
                           ".executionCount ?? null")
    page.evaluate(f"""() => {{
      const panel = window.jupyterapp.shell.currentWidget;
      panel.content.activeCellIndex = {index};
      void window.jupyterapp.commands.execute('notebook:run-cell');  // resolves when the cell ends
    }}""")
    if not wait:
        return
    page.wait_for_function(_CELL_DONE_JS, arg=[index, before], timeout=timeout, polling=100)
    wait_kernel_idle(page, timeout=timeout)
    errors = [e for e in notebook_errors(page) if e.startswith(f"cell {index}:")]
    if errors:
        raise AssertionError(f"cell {index} raised:\n" + "\n---\n".join(errors))


def save_notebook(page: Any, *, timeout: float = 30_000) -> None:
    """Save the open notebook (File -> Save) and wait until it is no longer marked as changed."""
    page.evaluate("() => window.jupyterapp.commands.execute('docmanager:save')")
    page.wait_for_function("() => !window.jupyterapp.shell.currentWidget.context.model.dirty",
                           timeout=timeout, polling=100)


# -- what Bokeh shows ------------------------------------------------------------------------------
_PLOTS_JS = r"""() => {
  const B = window.Bokeh;
  if (B == null || B.index == null) return null;
  const roots = [...B.index];
  const docs = new Set(roots.map((view) => view.model.document).filter((doc) => doc != null));
  const finite = (v) => (typeof v === 'number' && Number.isFinite(v)) ? v : null;
  const out = [];
  for (const doc of docs) {
    for (const m of doc.all_models) {
      if (m.x_range == null || m.y_range == null || m.renderers == null) continue;
      const sources = {};
      for (const r of m.renderers) {
        const source = r.data_source;
        if (source == null || source.name == null || sources[source.name] != null) continue;
        const data = {};
        for (const [column, values] of Object.entries(source.data))
          data[column] = Array.from(values, (v) => typeof v === 'number' ? finite(v) : v);
        sources[source.name] = data;
      }
      const span = (r) => [finite(r.start), finite(r.end)];
      const extra = {};
      for (const [name, r] of Object.entries(m.extra_y_ranges ?? {})) extra[name] = span(r);
      const views = roots.filter((v) => v.model.document === doc);
      out.push({id: m.id, x_range: span(m.x_range), y_range: span(m.y_range), extra_y_ranges: extra,
                sources, spans: [...doc.all_models].filter((a) => a.type === 'Span' && a.name != null)
                  .map((a) => ({name: a.name, visible: a.visible, location: finite(a.location)})),
                shown: views.some((v) => v.el?.isConnected)});
    }
  }
  return out;
}"""


def bokeh_plots(page: Any, source: str | None = None) -> list[dict[str, Any]]:
    """Every Bokeh plot the page holds, as the browser has it: ``x_range`` and ``y_range``
    (``[start, end]``, what the axes show now), ``extra_y_ranges``, ``sources`` (named data
    sources drawn there: ``{name: {column: [values]}}``, non-finite numbers as None), ``spans``
    (named Span annotations: name, visible, location) and ``shown`` (its view is in the page).
    With ``source``, only the plots that draw that source."""
    plots = page.evaluate(_PLOTS_JS)
    if plots is None:
        raise AssertionError("BokehJS is not loaded in the page (window.Bokeh is missing)")
    if source is not None:
        plots = [p for p in plots if source in p["sources"]]
    return plots


# -- screenshots ------------------------------------------------------------------------------------
_SHOTS: Path | None = None


def report_failed_page(request: Any, page: Any, tmp_path: Path, **logs: str) -> None:
    """After a failed test (``request.node.report_call``), save a screenshot of ``page`` to
    ``tmp_path/failure.png`` and print where, then each of ``logs`` under its name (a server's log
    tail, the page's errors): what a page fixture's teardown shows of a failure."""
    report = getattr(request.node, "report_call", None)
    if report is None or not report.failed:
        return
    shot = tmp_path / "failure.png"
    try:
        page.screenshot(path=str(shot), full_page=True)
        print(f"screenshot of the failing page: {shot}")
    except Exception as exc:  # the page may be gone; the logs below still help
        print(f"no screenshot: {exc}")
    for name, text in logs.items():
        print(f"{name.replace('_', ' ')}:\n{text}")


def screenshots_dir() -> Path:
    """Where the browser tests write their screenshots: ``$TW_SCREENSHOTS`` when set, else a
    fresh temporary folder for this test session."""
    global _SHOTS
    if _SHOTS is None:
        chosen = os.environ.get("TW_SCREENSHOTS")
        _SHOTS = Path(chosen) if chosen else Path(tempfile.mkdtemp(prefix="tw-screenshots-"))
        _SHOTS.mkdir(parents=True, exist_ok=True)
    return _SHOTS


def screenshot(page: Any, name: str, target: Any = None) -> Path:
    """Save a PNG of ``target`` (a locator, e.g. one widget's output) or of the whole page as
    ``<screenshots_dir()>/<name>.png`` and return its path."""
    path = screenshots_dir() / f"{re.sub(r'[^A-Za-z0-9_.-]+', '-', name)}.png"
    if target is None:
        page.screenshot(path=str(path), full_page=True)
    else:
        target.scroll_into_view_if_needed()
        target.screenshot(path=str(path))
    return path
