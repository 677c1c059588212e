"""A real JupyterLab server and a headless Chromium page that drives it, for browser tests.

``JupyterLab.start(root_dir)`` runs ``jupyter lab`` from the test's virtualenv on a free
loopback port with a random token, in its own process session and a fresh HOME, with
``BOKEH_RESOURCES=inline`` so plots load BokehJS from the page (no CDN). ``stop()`` sends
SIGTERM to the server's process group, then SIGKILL after a grace period, and ends kernels the
server left behind.

The page helpers take a Playwright ``Page`` whose context has ``base_url`` set to the server and
that has logged in once (the ``browser_page`` fixture does both)::

    def test_slider(jupyter_lab, browser_page):
        write_notebook(jupyter_lab.root_dir / "t.ipynb", ["import ipywidgets as w; w.IntSlider(3)"])
        open_notebook(browser_page, "t.ipynb")
        run_all(browser_page)
        assert_no_widget_errors(browser_page)

Facts these helpers rely on (JupyterLab 4): the kernel is ready when the status bar reads
``Python 3 (ipykernel) | Idle``; Playwright CSS locators pierce Bokeh's shadow DOM while
``document.querySelector`` does not; ``Bokeh.index`` iterates over root views (Bokeh 3).
"""

from __future__ import annotations

import json
import os
import re
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = [
    "CHROMIUM",
    "CHROMIUM_ARGS",
    "JupyterLab",
    "assert_no_widget_errors",
    "bokeh_source_lengths",
    "click_button",
    "free_port",
    "launch_chromium",
    "notebook_errors",
    "open_notebook",
    "run_all",
    "wait_kernel_idle",
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

# User settings written into the server's fresh HOME: no news or update toasts over the page,
# and every cell kept in the DOM so helpers can read all prompts.
_LAB_SETTINGS = {
    "@jupyterlab/apputils-extension/notification.jupyterlab-settings":
        {"fetchNews": "false", "checkForUpdates": False},
    "@jupyterlab/notebook-extension/tracker.jupyterlab-settings": {"windowingMode": "none"},
}


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class JupyterLab:
    """A running ``jupyter lab`` server; build it with :meth:`start`, end it with :meth:`stop`."""

    root_dir: Path
    home: Path
    port: int
    token: str
    process: subprocess.Popen[bytes]
    log_path: Path
    started_in: float = field(default=0.0)

    @property
    def url(self) -> str:
        """Base URL of the server, e.g. ``http://127.0.0.1:8888``."""
        return f"http://127.0.0.1:{self.port}"

    @property
    def runtime_dir(self) -> Path:
        """Where the server writes kernel connection files."""
        return self.home / "runtime"

    @classmethod
    def start(cls, root_dir: str | os.PathLike[str], *, home: str | os.PathLike[str],
              timeout: float = 60.0, env: dict[str, str] | None = None) -> JupyterLab:
        """Start ``jupyter lab`` serving ``root_dir`` and wait until ``/api/status`` answers.

        ``home`` must be an empty scratch folder: it becomes HOME (settings, runtime files, the
        server log ``jupyter.log``). Raises ``RuntimeError`` with the end of the server log if it
        exits or is not ready within ``timeout`` seconds.
        """
        root, home_dir = Path(root_dir).resolve(), Path(home).resolve()
        if not root.is_dir():
            raise ValueError(f"root_dir: {str(root)!r} is not a folder; create it first")
        home_dir.mkdir(parents=True, exist_ok=True)
        _write_lab_settings(home_dir)
        port, token = free_port(), secrets.token_hex(16)
        bin_dir = Path(sys.executable).parent
        jupyter = bin_dir / "jupyter"
        if not jupyter.exists():
            raise RuntimeError(f"no {jupyter}: install the project with its 'dev' extra")
        child_env = {k: v for k, v in os.environ.items()
                     if not k.startswith(("JUPYTER", "XDG_", "IPYTHON"))}
        child_env.update(
            HOME=str(home_dir),
            PATH=f"{bin_dir}{os.pathsep}{child_env.get('PATH', '')}",
            JUPYTER_RUNTIME_DIR=str(home_dir / "runtime"),
            BOKEH_RESOURCES="inline",
            PYTHONUNBUFFERED="1",
        )
        child_env.update(env or {})
        command = [
            str(jupyter), "lab", "--no-browser", "--allow-root", "--ip=127.0.0.1",
            f"--port={port}", "--ServerApp.port_retries=0",
            f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={root}",
            "--LabApp.news_url=None", "--LabApp.expose_app_in_browser=True",
            "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
        ]
        log_path = home_dir / "jupyter.log"
        began = time.monotonic()
        with open(log_path, "wb") as log:
            process = subprocess.Popen(command, cwd=root, env=child_env, stdout=log,
                                       stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                       start_new_session=True)
        lab = cls(root, home_dir, port, token, process, log_path)
        try:
            lab._wait_ready(timeout)
        except BaseException:
            lab.stop()
            raise
        lab.started_in = time.monotonic() - began
        return lab

    def _wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        status_url = f"{self.url}/api/status?token={self.token}"
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"jupyter lab exited with code {self.process.returncode}:\n"
                                   f"{self.log_tail()}")
            try:
                with urllib.request.urlopen(status_url, timeout=2) as reply:
                    if reply.status == 200:
                        json.load(reply)
                        return
            except (OSError, ValueError):
                pass
            time.sleep(0.2)
        raise RuntimeError(f"jupyter lab not ready after {timeout:.0f} s:\n{self.log_tail()}")

    def api(self, path: str) -> Any:
        """GET ``/api/<path>`` with the token and return the decoded JSON (e.g. ``"kernels"``)."""
        with urllib.request.urlopen(f"{self.url}/api/{path}?token={self.token}", timeout=10) as r:
            return json.load(r)

    def shutdown_kernels(self) -> int:
        """Shut down every kernel the server runs (between tests); returns how many there were."""
        kernels = self.api("kernels")
        for kernel in kernels:
            request = urllib.request.Request(
                f"{self.url}/api/kernels/{kernel['id']}?token={self.token}", method="DELETE")
            try:
                urllib.request.urlopen(request, timeout=30).close()
            except urllib.error.HTTPError as exc:  # already gone
                if exc.code != 404:
                    raise
        return len(kernels)

    def log_tail(self, lines: int = 40) -> str:
        """The last ``lines`` lines the server printed."""
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return "(no server log)"
        return "\n".join(text.splitlines()[-lines:])

    def stop(self, grace: float = 10.0) -> None:
        """SIGTERM the server's process group, SIGKILL it after ``grace`` s, end stray kernels."""
        if self.process.poll() is None:
            _signal_group(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=grace)
            except subprocess.TimeoutExpired:
                _signal_group(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=grace)
        # Kernels run in sessions of their own; end any the server did not shut down.
        for pid in _pids_with_argument(str(self.runtime_dir)):
            _signal_group(pid, signal.SIGKILL)
            try:
                os.kill(pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass

    def __enter__(self) -> JupyterLab:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


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


def _menu_command(page: Any, menu: str, command: str) -> None:
    page.locator("#jp-menu-panel .lm-MenuBar-item", has_text=menu).first.click()
    item = page.locator(f'.lm-Menu .lm-Menu-item[data-command="{command}"]').first
    item.wait_for(state="visible", timeout=10_000)
    item.click()


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


def run_all(page: Any, *, timeout: float = 120_000, clear_first: bool = True) -> None:
    """Run all cells from the menus (Run -> Run All Cells) and wait until the run has finished.

    Outputs are cleared first (Edit -> Clear Outputs of All Cells), so execution counts saved in
    the file cannot pass for a finished run. Raises ``AssertionError`` with the error text when a
    cell raised. ``timeout`` is in milliseconds.
    """
    if clear_first:
        _menu_command(page, "Edit", "editmenu:clear-all")
    _menu_command(page, "Run", "runmenu:run-all")
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
    """Click the one widget button in the notebook's outputs whose label is exactly ``text``."""
    button = page.locator(".jp-NotebookPanel:not(.lm-mod-hidden) .jp-OutputArea-output").get_by_role(
        "button", name=text, exact=True)
    button.click(timeout=timeout)


def _write_lab_settings(home: Path) -> None:
    settings_dir = home / ".jupyter" / "lab" / "user-settings"
    for relative, values in _LAB_SETTINGS.items():
        target = settings_dir / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(json.dumps(values))


def _signal_group(pid: int, sig: signal.Signals) -> None:
    try:
        os.killpg(pid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def _pids_with_argument(argument: str) -> list[int]:
    """Processes whose command line contains ``argument`` (Linux /proc)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().decode(errors="replace")
        except OSError:
            continue
        if argument in cmdline:
            found.append(int(entry.name))
    return found
