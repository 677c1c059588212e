"""Binder, simulated here: every notebook runs in the environment ``binder/`` describes, within
mybinder.org's limits.

The environment is a fresh venv that ``binder/requirements.txt`` alone installs (see
``conftest.py``: the README's set-up builds it in a fresh clone, and installing the Binder
requirements into it changes nothing). The CPU index (``--extra-index-url
https://download.pytorch.org/whl/cpu``) cannot be reached from here, so only that line is left
out when the requirements are installed: ``torch==2.13.0`` then resolves to the CPU wheel that
pip's configured find-links already hold. Each notebook of ``notebooks/`` runs top to bottom in
that venv's kernel with one CPU thread and ``BOKEH_RESOURCES=inline`` (what ``binder/start``
sets); its peak memory (kernel and children, sampled every 50 ms) and wall time are printed in
a table at the end of the run.
"""
from __future__ import annotations

from pathlib import Path

import pytest

from support.notebooks import assert_ran_clean

pytestmark = [pytest.mark.binder, pytest.mark.slow, pytest.mark.timeout(1500)]

REPO_ROOT = Path(__file__).resolve().parents[2]
NOTEBOOKS = sorted(p.name for p in (REPO_ROOT / "notebooks").glob("*.ipynb"))
# mybinder.org restarts a kernel over 2 GB; 1.5 GB leaves room for the server and the browser
# tab's share. The wall time is printed (the table at the end of the run), never asserted: it
# says how fast this machine is, not whether the notebook is right.
MEMORY_LIMIT = int(1.5 * 2**30)


def test_binder_pins_the_python_the_tests_run_on(binder_venv):
    runtime = (binder_venv.checkout / "binder" / "runtime.txt").read_text().strip()
    assert runtime == f"python-{binder_venv.python_version}"
    # runtime.txt is read only when no environment file pins Python
    assert not [p.name for p in (binder_venv.checkout / "binder").iterdir()
                if p.name in ("environment.yml", "environment.yaml", "Pipfile", "pyproject.toml")]


def test_binder_environment_has_cpu_torch_and_the_notebook_stack(binder_venv):
    import subprocess

    from fresh_env import clean_env  # tests/binder/fresh_env.py

    probe = ("import torch, jupyterlab, ipywidgets, jupyter_bokeh, bokeh, tunewidgets; "
             "print(torch.__version__, torch.cuda.is_available(), bokeh.__version__.split('.')[0], "
             "tunewidgets.__file__)")
    out = subprocess.run([str(binder_venv.python), "-c", probe], check=True, capture_output=True,
                         text=True, cwd=binder_venv.home,  # not this checkout, whose package would come first
                         env=clean_env(binder_venv.venv, binder_venv.home)).stdout.split()
    torch_version, cuda, bokeh_major, package = out
    assert torch_version == "2.13.0+cpu" and cuda == "False"
    assert bokeh_major == "3"
    assert Path(package).is_relative_to(binder_venv.checkout)  # the clone's code, not this checkout's


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_notebook_runs_within_binder_limits(name, binder_venv, notebook_runs):
    run = notebook_runs(name)
    print(f"\n{name}: {run.wall_s:.1f} s, peak {run.peak_mb:.0f} MB ({run.samples} samples)")
    assert run.error is None, run.error
    assert_ran_clean(run.notebook)
    assert run.samples >= 10  # the memory was sampled while it ran, not once
    assert run.peak_rss < MEMORY_LIMIT, f"{name}: peak {run.peak_mb:.0f} MB"
