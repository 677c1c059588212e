"""Memory stays flat over 50 trials: nothing of a finished trial (model, optimizer, history) is kept."""
from __future__ import annotations

import gc
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import tunewidgets as tw
from hpo_helpers import BASE, Net, blob_task, one_thread  # noqa: F401 (autouse)
from tunewidgets.hpo.space import LogUniform

WIDTH = 100_000  # 2 -> 100k -> 3: 0.5 M weights, 2 MB; with Adam's state about 6 MB per trial


def rss_bytes() -> int:
    statm = Path("/proc/self/statm")
    if not statm.exists():
        pytest.skip("needs /proc/self/statm (Linux) to read the resident memory")
    return int(statm.read_text().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def measure(folder: str) -> dict[str, float]:
    """Run the 50-trial search in this process and return what the test checks."""
    rss: dict[int, int] = {}
    objects: dict[int, int] = {}
    alive: dict[int, int] = {}

    def on_record(event, record):
        if event == "start":
            n = record["trial"]
            alive[n] = len(Net.made)  # before any collection: freed by reference counting alone
            rss[n] = rss_bytes()
            if n in (10, 49):
                gc.collect()
                objects[n] = len(gc.get_objects())

    torch.set_num_threads(1)
    task = blob_task()
    base = BASE.replace(optimizer="adam", epochs=1, model_kwargs={"width": WIDTH})
    gc.collect()
    already = len(Net.made)
    study = tw.search(task, {"lr": LogUniform(1e-4, 1e-2)}, base=base, n_trials=50, store=folder,
                      background=False, callbacks=[on_record])
    # resident memory: the peak of trials 40-49 against that of trials 10-19 (the allocator keeps
    # some freed memory, so single readings jump by tens of MB); 30 kept models would add 180 MB
    return {"finished": int((study.trials["state"] == "finished").sum()),
            "models_alive": max(alive.values()) - already,
            "early_mb": max(rss[n] for n in range(10, 20)) / 2**20,
            "late_mb": max(rss[n] for n in range(40, 50)) / 2**20,
            "objects_per_trial": (objects[49] - objects[10]) / 39}


@pytest.mark.slow
def test_memory_is_flat_over_50_trials(tmp_path):
    # in a fresh interpreter: the resident memory of this one depends on what ran in it before
    rss_bytes()  # skips where there is no /proc
    done = subprocess.run([sys.executable, __file__, str(tmp_path)], capture_output=True, text=True,
                          timeout=600, cwd=Path(__file__).parent)
    assert done.returncode == 0, done.stderr[-3000:]
    got = json.loads(done.stdout.strip().splitlines()[-1])
    assert got["finished"] == 50
    # only the trial that is starting has a model: earlier ones were freed when they ended
    assert got["models_alive"] == 1, got
    print(f"resident memory: peak of trials 10-19 {got['early_mb']:.0f} MB, of trials 40-49 {got['late_mb']:.0f} MB")
    assert got["late_mb"] - got["early_mb"] < 50, f"resident memory grew {got['late_mb'] - got['early_mb']:.1f} MB"
    # Python objects: what a study keeps per trial (its record, Optuna's trial) is a few dozen
    print(f"Python objects kept per trial: {got['objects_per_trial']:.1f}")
    assert got["objects_per_trial"] < 100, f"{got['objects_per_trial']:.0f} objects kept per trial"


if __name__ == "__main__":
    print(json.dumps(measure(sys.argv[1])))
