"""The newcomer path: what a new user does first works from a clean checkout.

The repository is cloned (committed files only), the README's JupyterLab set-up command runs in
the clone without starting the server (``conftest.py``: parsed from README.md, so this test
follows the README), the package imports from that venv, and the first notebook runs there:
``notebooks/00_start_here.ipynb``, or the lowest-numbered notebook while it does not exist.
"""
from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from fresh_env import CLONE_STATUS, clean_env  # tests/binder/fresh_env.py
from support.notebooks import assert_ran_clean

pytestmark = [pytest.mark.binder, pytest.mark.slow, pytest.mark.timeout(1500)]

START_HERE = "00_start_here.ipynb"
REPO_ROOT = Path(__file__).resolve().parents[2]


def first_notebook(folder: Path) -> str:
    """``00_start_here.ipynb`` when ``folder`` holds it, else its first notebook by name."""
    names = sorted(p.name for p in folder.glob("*.ipynb"))
    assert names, f"{folder}: no notebooks"
    return START_HERE if START_HERE in names else names[0]


def test_first_notebook_is_start_here_when_it_exists(tmp_path):
    for name in ("02_b.ipynb", "01_a.ipynb"):
        (tmp_path / name).write_text("{}")
    assert first_notebook(tmp_path) == "01_a.ipynb"
    (tmp_path / START_HERE).write_text("{}")
    assert first_notebook(tmp_path) == START_HERE


def test_clone_holds_only_committed_files(fresh_checkout):
    assert CLONE_STATUS[fresh_checkout] == []  # before anything ran: nothing but what git tracks
    heads = [subprocess.run(["git", "-C", str(repo), "rev-parse", "HEAD"], check=True, capture_output=True,
                            text=True).stdout for repo in (fresh_checkout, REPO_ROOT)]
    assert heads[0] == heads[1]  # the commit under test


def test_package_imports_from_the_readme_setup(fresh_venv):
    probe = ("import sys, tunewidgets as tw; "
             "print(tunewidgets_file := tw.__file__); "
             "print(sorted(m for m in ('ipywidgets', 'bokeh', 'jupyter_bokeh') if m in sys.modules)); "
             "print(type(tw.tasks.digits()).__name__)")
    out = subprocess.run([str(fresh_venv.python), "-c", probe], check=True, capture_output=True,
                         text=True, cwd=fresh_venv.home,
                         env=clean_env(fresh_venv.venv, fresh_venv.home)).stdout.splitlines()
    assert Path(out[0]).is_relative_to(fresh_venv.checkout / "tunewidgets")
    assert out[1] == "[]"  # the core imports no UI package
    assert out[2] == "Task"
    # the set-up's other half: widget state is saved with the notebook, inside the venv
    overrides = fresh_venv.venv / "share" / "jupyter" / "lab" / "settings" / "overrides.json"
    assert overrides.read_text() == (fresh_venv.checkout / "binder" / "overrides.json").read_text()


def test_first_notebook_runs_in_the_fresh_venv(fresh_venv, notebook_runs):
    name = first_notebook(fresh_venv.checkout / "notebooks")
    run = notebook_runs(name)
    print(f"\n{name}: {run.wall_s:.1f} s, peak {run.peak_mb:.0f} MB")
    assert run.error is None, run.error
    assert_ran_clean(run.notebook)
    code = [c for c in run.notebook.cells if c.cell_type == "code"]
    assert code and all(c.execution_count is not None for c in code)
