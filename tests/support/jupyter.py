"""A real JupyterLab server for browser tests, plus (re-exported from :mod:`support.lab_page`)
the Playwright helpers that drive it.

``JupyterLab.start(root_dir, home=...)`` runs ``jupyter lab`` from the test's virtualenv on a
free loopback port with a random token, in its own process session and a fresh HOME, with
``BOKEH_RESOURCES=inline`` so plots load BokehJS from the page (no CDN). ``stop()`` sends
SIGTERM to the server's process group, then SIGKILL after a grace period, and ends kernels the
server left behind. Use it through the ``jupyter_lab`` fixture of ``tests/conftest.py``.
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from support import lab_page
from support.lab_page import *  # noqa: F403  (the page helpers, one import away)

__all__ = [
    "JupyterLab",
    "ServerProcess",
    "SAVE_WIDGET_STATE",
    "free_port",
    *lab_page.__all__,
]

# User settings written into the server's fresh HOME: no news or update toasts over the page,
# and every cell kept in the DOM so helpers can read all prompts.
_LAB_SETTINGS = {
    "@jupyterlab/apputils-extension/notification.jupyterlab-settings":
        {"fetchNews": "false", "checkForUpdates": False},
    "@jupyterlab/notebook-extension/tracker.jupyterlab-settings": {"windowingMode": "none"},
}


#: Lab settings that save widget state with the notebook (off by default in JupyterLab).
#: A test module sets ``LAB_SETTINGS = SAVE_WIDGET_STATE`` to get a server with them.
SAVE_WIDGET_STATE = {"@jupyter-widgets/jupyterlab-manager/plugin.jupyterlab-settings": {"saveState": True}}


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class ServerProcess:
    """What a test's server process (JupyterLab, Voila) does at its end: its log's tail, and a stop
    that ends its process group and the kernels it left. A subclass has ``process`` and
    ``log_path`` and names where its kernels' connection files are (:attr:`kernels_dir`)."""

    process: subprocess.Popen[bytes]
    log_path: Path

    @property
    def kernels_dir(self) -> Path:
        raise NotImplementedError

    def log_tail(self, lines: int = 40) -> str:
        """The last ``lines`` lines the server printed."""
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return "(no server log)"
        return "\n".join(text.splitlines()[-lines:])

    def kernel_pids(self) -> list[int]:
        """Kernels of this server still running (their command line names a connection file
        under :attr:`kernels_dir`)."""
        return _pids_with_argument(str(self.kernels_dir))

    def stop(self, grace: float = 10.0) -> None:
        """SIGTERM the server's process group, SIGKILL it after ``grace`` s, end stray kernels."""
        if self.process.poll() is None:
            _signal_group(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=grace)
            except subprocess.TimeoutExpired:
                _signal_group(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=grace)
        for pid in self.kernel_pids():  # kernels run in sessions of their own
            _signal_group(pid, signal.SIGKILL)
            try:
                os.kill(pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass

    def __enter__(self) -> Any:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


@dataclass
class JupyterLab(ServerProcess):
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

    @property
    def kernels_dir(self) -> Path:
        return self.runtime_dir

    @classmethod
    def start(cls, root_dir: str | os.PathLike[str], *, home: str | os.PathLike[str],
              timeout: float = 60.0, env: dict[str, str] | None = None,
              settings: dict[str, dict[str, Any]] | None = None,
              overrides: str | os.PathLike[str] | None = None) -> JupyterLab:
        """Start ``jupyter lab`` serving ``root_dir`` and wait until ``/api/status`` answers.

        ``home`` must be an empty scratch folder: it becomes HOME (settings, runtime files, the
        server log ``jupyter.log``). ``settings`` adds user settings (``{plugin file: values}``,
        e.g. :data:`SAVE_WIDGET_STATE`). ``overrides``: an ``overrides.json`` the server reads as
        its environment's settings overrides (as it would from
        ``<env>/share/jupyter/lab/settings/overrides.json``), copied into its own app settings
        folder under ``home``. Raises ``RuntimeError`` with the end of the server log
        if it exits or is not ready within ``timeout`` seconds.
        """
        root, home_dir = Path(root_dir).resolve(), Path(home).resolve()
        if not root.is_dir():
            raise ValueError(f"root_dir: {str(root)!r} is not a folder; create it first")
        home_dir.mkdir(parents=True, exist_ok=True)
        _write_lab_settings(home_dir, settings)
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
        if overrides is not None:
            app_settings = home_dir / "app-settings"
            app_settings.mkdir(parents=True, exist_ok=True)
            (app_settings / "overrides.json").write_bytes(Path(overrides).read_bytes())
            command.append(f"--LabApp.app_settings_dir={app_settings}")
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



def _write_lab_settings(home: Path, extra: dict[str, dict[str, Any]] | None = None) -> None:
    settings_dir = home / ".jupyter" / "lab" / "user-settings"
    for relative, values in {**_LAB_SETTINGS, **(extra or {})}.items():
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
