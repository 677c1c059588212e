"""The README's commands, CI script, Binder files and example agree with each other and work."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
README = (REPO / "README.md").read_text()
#: The Binder badge's notebook; it comes with the Dashboard (issue 17), and may be missing until then.
START_HERE = "notebooks/00_start_here.ipynb"


def fenced_blocks(language: str) -> list[str]:
    return re.findall(rf"^```{language}\n(.*?)^```", README, flags=re.S | re.M)


def readme_command(marker: str) -> str:
    """The one-line ``sh`` command of the README that contains ``marker``."""
    found = [line for block in fenced_blocks("sh") for line in block.splitlines() if marker in line]
    assert len(found) == 1, f"expected one README command containing {marker!r}, got {found}"
    return found[0]


def test_ci_runs_exactly_the_readme_test_command():
    command = readme_command("pip install -e '.[dev]'")
    script = (REPO / ".ci" / "run").read_text()
    body = [line for line in script.splitlines()
            if line.strip() and not line.startswith("#")]
    assert body == ['set -euo pipefail', 'cd "$(dirname "${BASH_SOURCE[0]}")/.."', command]
    assert os.access(REPO / ".ci" / "run", os.X_OK)


def test_setup_commands_install_cpu_torch_first_and_skip_when_set_up():
    lab = readme_command("bin/jupyter lab")
    tests = readme_command("pip install -e '.[dev]'")
    for command, extra in ((lab, "-e ."), (tests, "-e '.[dev]'")):
        assert command.index("pip install torch==2.13.0") < command.index(f"pip install {extra}")
        assert re.findall(r"torch[=<>~!]=?[\d.]+", command) == ["torch==2.13.0"]
        # Idempotent: the install runs only when .venv does not match pyproject.toml.
        assert command.startswith("{") and "cmp -s pyproject.toml .venv/" in command
    assert "BOKEH_RESOURCES=inline .venv/bin/jupyter lab" in lab
    assert "--ServerApp.root_dir=notebooks" in lab
    assert tests.endswith("&& .venv/bin/python -m pytest -n 2 --dist loadgroup")  # its exit code is the command's


def test_binder_uses_cpu_torch_python_311_and_inline_bokeh():
    assert (REPO / "binder" / "runtime.txt").read_text().strip() == "python-3.11"  # as the tests
    requires = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["requires-python"]
    assert "<3.13" in requires and ">=3.11" in requires
    lines = [line.strip() for line in (REPO / "binder" / "requirements.txt").read_text().splitlines()
             if line.strip() and not line.startswith("#")]
    # what the README's JupyterLab set-up installs (tests/binder checks the two agree)
    assert lines == ["--extra-index-url https://download.pytorch.org/whl/cpu", "torch==2.13.0", "-e ."]
    start = REPO / "binder" / "start"
    assert os.access(start, os.X_OK)
    assert start.read_text().splitlines()[-2:] == ["export BOKEH_RESOURCES=inline", 'exec "$@"']


def test_readme_command_and_binder_save_widget_state_inside_the_environment():
    overrides = json.loads((REPO / "binder" / "overrides.json").read_text())
    assert overrides == {"@jupyter-widgets/jupyterlab-manager:plugin": {"saveState": True}}
    lab = readme_command("bin/jupyter lab")
    install = ("mkdir -p .venv/share/jupyter/lab/settings && "
               "cp binder/overrides.json .venv/share/jupyter/lab/settings/overrides.json && ")
    assert install + "BOKEH_RESOURCES=inline .venv/bin/jupyter lab" in lab  # not in the user's home
    post_build = REPO / "binder" / "postBuild"
    assert os.access(post_build, os.X_OK)
    body = post_build.read_text()
    assert "sys.prefix" in body and 'cp binder/overrides.json "$settings/overrides.json"' in body
    assert "/share/jupyter/lab/settings" in body and "HOME" not in body and "~" not in body


def test_readme_links_name_existing_files():
    paths = set(re.findall(r"(?<![\w/])((?:notebooks|bench)/[\w./-]+\.(?:ipynb|py))", README))
    assert "notebooks/01_lr_range_test.ipynb" in paths
    missing = sorted(p for p in paths if not (REPO / p).is_file())
    assert missing == [], f"README names files that do not exist: {missing}"
    binder = re.findall(r"https://mybinder\.org/v2/gh/[\w-]+/[\w-]+/HEAD\?urlpath=lab/tree/(\S+?)\)",
                        README)
    assert binder and all((REPO / p).is_file() for p in binder)
    assert binder[0] == START_HERE  # the badge, at the top, opens the start-here notebook



@pytest.mark.slow
def test_readme_examples_run(tmp_path):
    example, *others = fenced_blocks("python")
    checks = (
        "\nassert set(res.suggestions) >= {'valley', 'steepest', 'minimum'}, res.suggestions"
        "\nassert 1e-5 <= lr <= 1.0, lr"
        "\nassert list(schedule.preview(total_steps=500)['lr'].shape) == [500]"
        "\nassert 'val_accuracy' in run.final, run.final"
        "\nprint('example ok')"
    )
    # every example runs as written, each in a scratch folder of its own, all at once (one torch
    # thread each, so that they share the machine's cores instead of fighting over them)
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    sources = [example + checks, *others]
    procs = []
    for i, source in enumerate(sources):
        folder = tmp_path / f"example{i + 1}"
        folder.mkdir()
        procs.append(subprocess.Popen([sys.executable, "-c", source], stdout=subprocess.PIPE,
                                      stderr=subprocess.PIPE, text=True, cwd=folder, env=env))
    try:
        results = [proc.communicate(timeout=300) for proc in procs]
    finally:
        for proc in procs:
            proc.kill()  # a hung example is not left running
    for i, (proc, (out, err)) in enumerate(zip(procs, results)):
        assert proc.returncode == 0, f"README example {i + 1} failed:\n{sources[i]}\n{err[-3000:]}"
    assert results[0][0].strip().endswith("example ok")


def test_readme_examples_that_make_a_widget_end_with_it():
    import ast

    blocks = [b for b in fenced_blocks("python") if "tw.widgets." in b]
    assert len(blocks) == 3  # LRFinder in "A first look", the Search widget, the Dashboard
    for block in blocks:
        last = ast.parse(block).body[-1]
        assert isinstance(last, ast.Expr), f"this README example ends with no widget:\n{block}"
        shown = ast.unparse(last.value)
        assert "widgets." in shown or any(  # the widget itself, or the name it was given
            isinstance(s, ast.Assign) and "tw.widgets." in ast.unparse(s.value)
            and shown in [ast.unparse(t) for t in s.targets] for s in ast.parse(block).body), shown
