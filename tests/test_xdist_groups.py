"""The test command's ``-n 2 --dist loadgroup`` keeps each ``xdist_group`` on one worker.

The groups are what make module fixtures (a notebook run, a JupyterLab and Chromium, the fresh
venv) be made once and keep one local Ray at a time; pytest-xdist puts a test's group in its id,
which some pytest versions ignore, and the suite then spreads a group over both workers without
a word. This runs a small suite of two groups the way the test command does and reads back on
which worker each test ran.
"""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("xdist")

MODULE = '''
import json, os, pytest
pytestmark = pytest.mark.xdist_group({group!r})

@pytest.mark.parametrize("i", range(4))
def test_where(i):
    with open({out!r}, "a") as f:
        f.write(json.dumps([{group!r}, os.environ["PYTEST_XDIST_WORKER"]]) + "\\n")
'''


def test_each_group_runs_on_one_worker(tmp_path: Path):
    out = tmp_path / "ran.jsonl"
    for name, group in (("test_a1.py", "a"), ("test_a2.py", "a"), ("test_b1.py", "b"), ("test_b2.py", "b")):
        (tmp_path / name).write_text(MODULE.format(group=group, out=str(out)))
    done = subprocess.run([sys.executable, "-m", "pytest", "-n", "2", "--dist", "loadgroup", "-q",
                           "-p", "no:cacheprovider", "-o", "addopts=", str(tmp_path)],
                          cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    ran = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(ran) == 16
    workers = {group: {w for g, w in ran if g == group} for group in ("a", "b")}
    assert all(len(w) == 1 for w in workers.values()), workers
