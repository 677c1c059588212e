"""One fresh environment for the Binder simulation and the newcomer test, built once per suite.

What a new user gets is the committed repository: ``fresh_checkout`` clones the checkout under
test (``git clone`` of the tests' repository root, at its ``HEAD`` commit) into a scratch folder.
``fresh_venv`` runs the README's JupyterLab set-up command there, without its final
``jupyter lab`` part, which creates ``.venv`` in the clone from nothing (Python's ``venv``, then
``pip install``; pip's cache makes this about a minute).

The same venv serves as Binder's environment: ``binder/requirements.txt`` names exactly what the
README's command installs (``torch==2.13.0`` and ``-e .``, which brings jupyterlab along), and
``binder_venv`` proves it by installing that file into the venv and checking that nothing changes.

``notebook_runs`` executes a notebook of the clone in that venv's kernel, under what Binder
imposes that is cheap to mimic (one CPU thread, ``BOKEH_RESOURCES=inline``, a fresh ``HOME``),
samples the kernel's resident memory (its child processes included) every 50 ms and records
the wall time; each notebook runs at most once per suite, whichever test asks first. The
figures are printed as a table at the end of the run.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from fresh_env import (CLONE_STATUS, CPU_INDEX_LINE, FreshVenv, NotebookRun, clean_env, freeze, readme_lab_setup,
                       run_in_venv)

REPO_ROOT = Path(__file__).resolve().parents[2]

_SUMMARY: list[FreshVenv] = []


@pytest.fixture(scope="session")
def fresh_checkout(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A ``git clone`` of the repository under test at its ``HEAD``: committed files only."""
    if not (REPO_ROOT / ".git").exists():
        pytest.skip("the repository root is not a git checkout: nothing to clone")
    head = subprocess.run(["git", "-C", str(REPO_ROOT), "rev-parse", "HEAD"], check=True,
                          capture_output=True, text=True).stdout.strip()
    target = tmp_path_factory.mktemp("newcomer") / "tunewidgets"
    subprocess.run(["git", "clone", "--quiet", "--no-checkout", str(REPO_ROOT), str(target)],
                   check=True, capture_output=True, text=True)
    subprocess.run(["git", "-C", str(target), "checkout", "--quiet", "--detach", head],
                   check=True, capture_output=True, text=True)
    # what the clone held before anything ran in it (the notebooks write into it later)
    CLONE_STATUS[target] = subprocess.run(["git", "-C", str(target), "status", "--porcelain", "--ignored"],
                                          check=True, capture_output=True, text=True).stdout.splitlines()
    return target


@pytest.fixture(scope="session")
def fresh_venv(fresh_checkout: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[FreshVenv]:
    """The README's JupyterLab set-up run in the clone (it makes ``.venv`` there), timed."""
    setup = readme_lab_setup((fresh_checkout / "README.md").read_text())
    home = tmp_path_factory.mktemp("home")
    env = clean_env(fresh_checkout / ".venv", home)
    env["HOME"] = os.environ.get("HOME", str(home))  # pip's warm cache lives in the real home
    began = time.perf_counter()
    done = subprocess.run(["bash", "-c", setup], cwd=fresh_checkout, env=env, capture_output=True,
                          text=True, timeout=900)
    build_s = time.perf_counter() - began
    assert done.returncode == 0, (f"the README's set-up failed in a fresh clone ({build_s:.0f} s):\n"
                                  f"{setup}\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}")
    venv = fresh_checkout / ".venv"
    python = venv / "bin" / "python"
    version = subprocess.run([str(python), "-c", "import sys; print('%d.%d' % sys.version_info[:2])"],
                             env=env, check=True, capture_output=True, text=True).stdout.strip()
    record = FreshVenv(fresh_checkout, venv, python, build_s, home, version)
    _SUMMARY.append(record)
    yield record
    shutil.rmtree(venv, ignore_errors=True)  # about 1.6 GB: do not keep it in pytest's basetemp


@pytest.fixture(scope="session")
def binder_venv(fresh_venv: FreshVenv) -> FreshVenv:
    """The fresh venv, proven to be what ``binder/requirements.txt`` alone installs.

    The CPU index cannot be reached from here: the requirements are installed with their
    ``--extra-index-url`` line left out, and torch resolves to the wheel pip already has
    (``torch==2.13.0`` is the CPU build on this machine). Installing them must change nothing.
    """
    text = (fresh_venv.checkout / "binder" / "requirements.txt").read_text()
    assert CPU_INDEX_LINE in text.splitlines(), f"binder/requirements.txt lost its line {CPU_INDEX_LINE!r}"
    local = fresh_venv.home / "binder-requirements-here.txt"  # outside the clone
    local.write_text("\n".join(line for line in text.splitlines() if line.strip() != CPU_INDEX_LINE) + "\n")
    env = clean_env(fresh_venv.venv, fresh_venv.home)
    env["HOME"] = os.environ.get("HOME", str(fresh_venv.home))
    before = freeze(fresh_venv.python, env)
    began = time.perf_counter()
    done = subprocess.run([str(fresh_venv.python), "-m", "pip", "install", "-r", str(local)],
                          cwd=fresh_venv.checkout, env=env, capture_output=True, text=True, timeout=600)
    fresh_venv.binder_check_s = time.perf_counter() - began
    assert done.returncode == 0, f"pip install -r binder/requirements.txt failed:\n{done.stderr[-3000:]}"
    after = freeze(fresh_venv.python, env)
    assert after == before, ("binder/requirements.txt installs something the README's set-up does "
                             f"not: added {sorted(set(after) - set(before))}, "
                             f"removed {sorted(set(before) - set(after))}; make them name the same")
    return fresh_venv


@pytest.fixture(scope="session")
def notebook_runs(fresh_venv: FreshVenv):
    """``run(name)``: notebook ``notebooks/<name>`` executed once in the fresh venv (cached)."""

    def run(name: str) -> NotebookRun:
        if name not in fresh_venv.runs:
            fresh_venv.runs[name] = run_in_venv(fresh_venv, name)
        return fresh_venv.runs[name]

    return run


def pytest_terminal_summary(terminalreporter) -> None:  # noqa: ANN001 (pytest's own type)
    for venv in _SUMMARY:
        lines = [f"fresh venv (README set-up in a clone, Python {venv.python_version}): "
                 f"built in {venv.build_s:.0f} s"
                 + ("" if venv.binder_check_s is None else
                    f"; binder/requirements.txt added nothing ({venv.binder_check_s:.0f} s)")]
        if venv.runs:
            lines.append(f"{'notebook':<34} {'wall s':>7} {'peak RSS MB':>12} {'samples':>8}  result")
            for run in sorted(venv.runs.values(), key=lambda r: r.name):
                lines.append(f"{run.name:<34} {run.wall_s:>7.1f} {run.peak_mb:>12.0f} {run.samples:>8}  "
                             + ("ok" if run.error is None else "FAILED"))
        terminalreporter.write_sep("-", "Binder simulation (1 thread, BOKEH_RESOURCES=inline)")
        for line in lines:
            terminalreporter.write_line(line)
