"""One study, many processes: each trial is claimed once, so N processes end with exactly n_trials
trials, no number and no grid point twice; a trial of a process killed mid-trial runs again, once."""
from __future__ import annotations

import contextlib
from collections import Counter
from pathlib import Path

import pytest

import tunewidgets as tw
from tunewidgets.tracking import studies
from support.killing import child, kill9

HERE = Path(__file__).resolve().parent
N_TRIALS = 10
TIMEOUT = 240.0  # generous: three processes importing torch on two busy cores


def _ready(proc) -> None:
    line = proc.stdout.readline()
    assert line.strip() == "ready", f"child said {line!r}; stderr: {proc.stderr.read()[-3000:]}"


def _lines_until(proc, wanted: str) -> list[str]:
    lines = []
    for line in proc.stdout:
        lines.append(line.strip())
        if line.startswith(wanted):
            return lines
    raise AssertionError(f"child never said {wanted!r}: {lines}; stderr: {proc.stderr.read()[-3000:]}")


def _finish(proc) -> list[str]:
    out, err = proc.communicate(timeout=TIMEOUT)
    assert proc.returncode == 0, f"{out[-2000:]}\n{err[-3000:]}"
    lines = out.splitlines()
    assert lines and lines[-1] == "done finished", f"{lines}\n{err[-3000:]}"
    return lines


def _started(lines: list[str]) -> list[int]:
    return [int(x.split()[1]) for x in lines if x.startswith("start ")]


def _check_store(folder: Path, strategy: str) -> list[dict]:
    with tw.Store(folder) as store:
        rows = studies.trial_runs(store, "shared")
        latest = studies.latest_trials(store, "shared")
    states = [(r["trial"], r["status"], r["error"]) for r in rows]
    assert [r["trial"] for r in latest] == list(range(N_TRIALS)), states  # exactly n_trials, no number twice
    assert all(r["status"] == "finished" for r in latest), states
    points = {tuple(sorted(r["search"].items())) for r in latest}
    assert len(points) == N_TRIALS, [r["search"] for r in latest]  # no point twice (a grid of 10: each once)
    return rows


@pytest.mark.slow
@pytest.mark.parametrize("strategy", ["random", "grid"])
def test_three_processes_share_one_study(tmp_path, strategy):
    go = tmp_path / "go"
    with contextlib.ExitStack() as stack:
        procs = [stack.enter_context(child(HERE / "_shared_child.py", tmp_path / "runs", strategy, N_TRIALS, go,
                                           "none", timeout=TIMEOUT)) for _ in range(3)]
        for proc in procs:
            _ready(proc)
        go.touch()
        outputs = [_finish(proc) for proc in procs]
    started = [n for lines in outputs for n in _started(lines)]
    assert sorted(started) == list(range(N_TRIALS)), outputs  # every trial trained once, by one of them
    rows = _check_store(tmp_path / "runs", strategy)
    assert len(rows) == N_TRIALS, [(r["trial"], r["status"]) for r in rows]


@pytest.mark.slow
@pytest.mark.parametrize("strategy", ["random", "grid"])
def test_a_trial_of_a_killed_process_runs_again_once(tmp_path, strategy):
    go = tmp_path / "go"
    go.touch()  # the first process starts at once; the others once it is inside its first trial
    with contextlib.ExitStack() as stack:
        killed = stack.enter_context(child(HERE / "_shared_child.py", tmp_path / "runs", strategy, N_TRIALS, go,
                                           "first", timeout=TIMEOUT))
        _ready(killed)
        lines = _lines_until(killed, "training")
        number = int(lines[-1].split()[1])
        others = [stack.enter_context(child(HERE / "_shared_child.py", tmp_path / "runs", strategy, N_TRIALS, go,
                                            "none", timeout=TIMEOUT)) for _ in range(2)]
        for proc in others:
            _ready(proc)
        kill9(killed)  # mid-trial: its row says running, its writer is gone
        outputs = [_finish(proc) for proc in others]
    started = Counter(n for lines in outputs for n in _started(lines))
    assert sorted(started) == list(range(N_TRIALS)) and set(started.values()) == {1}, outputs  # once, by one
    rows = _check_store(tmp_path / "runs", strategy)
    assert len(rows) == N_TRIALS + 1, [(r["trial"], r["status"]) for r in rows]
    attempts = [r for r in rows if r["trial"] == number]
    assert [r["status"] for r in attempts] == ["interrupted", "finished"]
    assert attempts[0]["search"] == attempts[1]["search"]  # run again with its own values
