"""The helpers behind ``tests/binder``'s fixtures: the README's set-up command, the Binder
requirements, a clean environment for a venv, and a notebook run in that venv's kernel with its
peak memory (the kernel and its children, sampled every 50 ms) and wall time.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import nbformat
import psutil

#: The CPU index that binder/requirements.txt names; this machine cannot reach it.
CPU_INDEX_LINE = "--extra-index-url https://download.pytorch.org/whl/cpu"
#: A cell that runs this long hangs (the limits the tests assert are far lower).
CELL_TIMEOUT_S = 600
SAMPLE_EVERY_S = 0.05
#: ``git status --porcelain --ignored`` of each clone, taken right after it was checked out.
CLONE_STATUS: dict[Path, list[str]] = {}


def readme_lab_setup(readme: str) -> str:
    """The README's JupyterLab command without its final ``jupyter lab`` part.

    >>> readme_lab_setup("```sh\\n{ a; } && b && X=1 .venv/bin/jupyter lab --x\\n```\\n")
    '{ a; } && b'
    """
    lines = [line for block in re.findall(r"^```sh\n(.*?)^```", readme, flags=re.S | re.M)
             for line in block.splitlines() if "bin/jupyter lab" in line]
    if len(lines) != 1:
        raise AssertionError(f"README.md: expected one sh command that starts `jupyter lab`, got {lines}")
    setup, sep, server = lines[0].rpartition(" && ")
    if not sep or "jupyter lab" not in server or "jupyter lab" in setup:
        raise AssertionError(f"README.md: the JupyterLab command must end with `&& ... jupyter lab ...`: {lines[0]}")
    return setup


def binder_requirements(text: str) -> list[str]:
    """The requirement lines of ``binder/requirements.txt`` (no comments, no pip options).

    >>> binder_requirements("# c\\n--extra-index-url https://x\\ntorch==2.13.0\\n-e .\\n")
    ['torch==2.13.0', '-e .']
    """
    lines = [line.strip() for line in text.splitlines()]
    return [line for line in lines if line and not line.startswith("#")
            and not (line.startswith("--") or line.startswith("-i "))]


def clean_env(venv: Path, home: Path) -> dict[str, str]:
    """An environment in which ``venv`` is the active one and nothing of the test's own
    interpreter leaks in (no ``PYTHONPATH``, no other virtualenv, a fresh ``HOME``)."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("PYTHON", "VIRTUAL_ENV", "JUPYTER", "IPYTHON", "CONDA", "PYTEST"))}
    env.update(HOME=str(home), VIRTUAL_ENV=str(venv), PATH=f"{venv / 'bin'}{os.pathsep}{env.get('PATH', '')}")
    return env


@dataclass
class NotebookRun:
    """One notebook executed in the fresh venv: the executed notebook and its figures."""

    name: str
    notebook: nbformat.NotebookNode | None
    wall_s: float
    peak_rss: int  # bytes, the kernel and its children together, the highest sample
    samples: int
    error: str | None = None

    @property
    def peak_mb(self) -> float:
        return self.peak_rss / 2**20


@dataclass
class FreshVenv:
    """A clone of the repository with the venv its README's set-up made, and what ran in it."""

    checkout: Path
    venv: Path
    python: Path
    build_s: float
    home: Path
    python_version: str = ""  # "3.11": the venv's Python, major.minor
    binder_check_s: float | None = None
    runs: dict[str, NotebookRun] = field(default_factory=dict)


def freeze(python: Path, env: dict[str, str]) -> list[str]:
    """What ``pip freeze --all`` lists in the venv of ``python``, sorted."""
    out = subprocess.run([str(python), "-m", "pip", "freeze", "--all"], env=env, check=True,
                         capture_output=True, text=True).stdout
    return sorted(out.splitlines())


class _PeakSampler(threading.Thread):
    """Samples the resident memory of a process and its children until stopped."""

    def __init__(self, pid: int) -> None:
        super().__init__(daemon=True)
        self.process = psutil.Process(pid)
        self.peak = 0
        self.samples = 0
        self.done = threading.Event()

    def run(self) -> None:
        while True:
            try:
                procs = [self.process, *self.process.children(recursive=True)]
            except psutil.Error:
                return
            total = 0
            for proc in procs:
                try:
                    total += proc.memory_info().rss
                except psutil.Error:
                    pass
            self.peak, self.samples = max(self.peak, total), self.samples + 1
            if self.done.wait(SAMPLE_EVERY_S):
                return


def run_in_venv(venv: FreshVenv, name: str) -> NotebookRun:
    """Run ``notebooks/<name>`` of the clone top to bottom in the venv's own kernel, in place
    (its folder is the kernel's working directory, as on Binder), measuring its peak memory
    and wall time (kernel start to shutdown). A cell error is kept in ``error``."""
    from jupyter_client.kernelspec import KernelSpecManager
    from jupyter_client.manager import KernelManager
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError

    path = venv.checkout / "notebooks" / name
    if not path.is_file():
        raise AssertionError(f"notebooks/{name} is not committed: a fresh clone does not have it")
    specs = venv.home / "kernelspecs"  # outside the clone
    (specs / "fresh-venv").mkdir(parents=True, exist_ok=True)
    (specs / "fresh-venv" / "kernel.json").write_text(json.dumps({
        "argv": [str(venv.python), "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "Python 3 (fresh venv)", "language": "python"}))
    env = clean_env(venv.venv, venv.home)
    # Binder's limits, where they are cheap to mimic: 1 CPU, and BokehJS from the page
    env.update(OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", BOKEH_RESOURCES="inline")
    nb = nbformat.read(path, as_version=4)
    km = KernelManager(kernel_name="fresh-venv",
                       kernel_spec_manager=KernelSpecManager(kernel_dirs=[str(specs)]))
    began = time.perf_counter()
    km.start_kernel(env=env, cwd=str(path.parent))  # in place, as on Binder: the repo's notebooks/
    sampler = _PeakSampler(km.provisioner.pid)
    sampler.start()
    client = NotebookClient(nb, km=km, timeout=CELL_TIMEOUT_S, resources={"metadata": {"path": str(path.parent)}})
    error = None
    try:
        client.execute()
    except CellExecutionError as exc:
        error = str(exc)[-4000:]
    finally:
        wall_s = time.perf_counter() - began
        sampler.done.set()
        sampler.join()
        if client.kc is not None:
            client.kc.stop_channels()
        km.shutdown_kernel(now=True)
    return NotebookRun(name, nb, wall_s, sampler.peak, sampler.samples, error)


