"""A real Voila server for browser tests: one notebook served as an app, the way the README says.

:func:`app_command` is the README's command ("Serving a notebook as an app (Voila)"): the
environment it sets and the ``voila`` arguments, with the notebook and (for a test) the port.
``Voila.start(notebook, home=...)`` runs that command from the repository root (where the
``tunewidgets`` template's relative ``JUPYTER_PATH`` points) on a free loopback port, in its own
process session, with a fresh HOME and TMPDIR under ``home`` (Voila writes its kernels'
connection files under TMPDIR, which is how :meth:`Voila.stop` finds kernels left behind).
``stop()`` sends SIGTERM to the server's process group, then SIGKILL after a grace period.

Voila runs the notebook when a page asks for it (each page load starts a kernel), so being ready
is checked on one of its static files, never on the notebook's page.

Example::

    with Voila.start(notebook, home=tmp_path / "home") as app:
        page.goto(app.url)
"""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from support.jupyter import ServerProcess, free_port

__all__ = ["APP_ENV", "TEMPLATE", "Voila", "app_command", "parse_command", "REPO_ROOT"]

REPO_ROOT = Path(__file__).resolve().parents[2]
#: Voila template that drops the CDN style sheets of Voila's own "lab" template (offline).
TEMPLATE = "tunewidgets"
#: What the command puts in Voila's environment: BokehJS from the page, and where the
#: ``tunewidgets`` template lies (``share/jupyter/voila/templates/``, relative to the repository).
APP_ENV = {"BOKEH_RESOURCES": "inline", "JUPYTER_PATH": "share/jupyter"}
#: The ``voila`` of the project's virtualenv, as the README writes it.
VOILA = ".venv/bin/voila"


def app_command(notebook: str, *, port: int | None = None, browser: bool = True) -> tuple[dict[str, str], list[str]]:
    """``(environment, argv)`` that serve ``notebook`` as an app: the README's command, plus
    ``--port`` (and no retry on another port) when given, and ``--no-browser`` without ``browser``.

    >>> env, argv = app_command("notebooks/00_start_here.ipynb")
    >>> env["BOKEH_RESOURCES"], argv
    ('inline', ['.venv/bin/voila', '--template=tunewidgets', 'notebooks/00_start_here.ipynb'])
    """
    argv = [VOILA, f"--template={TEMPLATE}", notebook]
    if port is not None:
        argv += [f"--port={port}", "--Voila.port_retries=0"]
    if not browser:
        argv.append("--no-browser")
    return dict(APP_ENV), argv


def parse_command(line: str) -> tuple[dict[str, str], list[str]]:
    """``(environment, argv)`` of the last command of a shell line (after its last ``&&``):
    leading ``NAME=value`` words are its environment.

    >>> parse_command("{ true; } && A=1 B='x y' .venv/bin/voila nb.ipynb")
    ({'A': '1', 'B': 'x y'}, ['.venv/bin/voila', 'nb.ipynb'])
    """
    words = shlex.split(line.rsplit("&&", 1)[-1])
    env: dict[str, str] = {}
    while words and "=" in words[0] and words[0].split("=", 1)[0].isidentifier():
        name, value = words.pop(0).split("=", 1)
        env[name] = value
    return env, words


@dataclass
class Voila(ServerProcess):
    """A running ``voila`` serving one notebook; build it with :meth:`start`, end it with :meth:`stop`."""

    notebook: Path
    home: Path
    port: int
    process: subprocess.Popen[bytes]
    log_path: Path
    argv: list[str]
    env: dict[str, str]
    started_in: float = field(default=0.0)

    @property
    def url(self) -> str:
        """The app's page, e.g. ``http://127.0.0.1:8866/`` (each load runs the notebook in a new kernel)."""
        return f"http://127.0.0.1:{self.port}/"

    @property
    def tmp_dir(self) -> Path:
        """TMPDIR of the server: its kernels' connection files are under it."""
        return self.home / "tmp"

    @property
    def kernels_dir(self) -> Path:
        return self.tmp_dir

    @classmethod
    def start(cls, notebook: str | os.PathLike[str], *, home: str | os.PathLike[str],
              timeout: float = 60.0, env: dict[str, str] | None = None) -> Voila:
        """Start Voila on ``notebook`` with :func:`app_command` and wait until it serves files.

        ``home`` must be an empty scratch folder: it becomes HOME (and holds TMPDIR and the
        server log ``voila.log``). The ``voila`` run is the one next to this Python. Raises
        ``RuntimeError`` with the end of the server log if it exits or is not ready in time.
        """
        path, home_dir = Path(notebook).resolve(), Path(home).resolve()
        if not path.is_file():
            raise ValueError(f"notebook: {str(path)!r} is not a file; write it first")
        (home_dir / "tmp").mkdir(parents=True, exist_ok=True)
        bin_dir = Path(sys.executable).parent
        if not (bin_dir / "voila").exists():
            raise RuntimeError(f"no {bin_dir / 'voila'}: install the project with its 'dev' extra")
        port = free_port()
        app_env, argv = app_command(str(path), port=port, browser=False)
        argv = [str(bin_dir / "voila"), *argv[1:]]
        child_env = {k: v for k, v in os.environ.items()
                     if not k.startswith(("JUPYTER", "XDG_", "IPYTHON", "VOILA"))}
        child_env.update(app_env)
        child_env.update(
            HOME=str(home_dir),
            TMPDIR=str(home_dir / "tmp"),
            PATH=f"{bin_dir}{os.pathsep}{child_env.get('PATH', '')}",
            PYTHONUNBUFFERED="1",
        )
        child_env.update(env or {})
        log_path = home_dir / "voila.log"
        began = time.monotonic()
        with open(log_path, "wb") as log:
            process = subprocess.Popen(argv, cwd=REPO_ROOT, env=child_env, stdout=log,
                                       stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                       start_new_session=True)
        app = cls(path, home_dir, port, process, log_path, argv, child_env)
        try:
            app._wait_ready(timeout)
        except BaseException:
            app.stop()
            raise
        app.started_in = time.monotonic() - began
        return app

    def _wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        probe = f"http://127.0.0.1:{self.port}/voila/static/voila.js"  # a file: starts no kernel
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"voila exited with code {self.process.returncode}:\n{self.log_tail()}")
            try:
                with urllib.request.urlopen(probe, timeout=2) as reply:
                    if reply.status == 200:
                        return
            except OSError:
                pass
            time.sleep(0.2)
        raise RuntimeError(f"voila not ready after {timeout:.0f} s:\n{self.log_tail()}")

