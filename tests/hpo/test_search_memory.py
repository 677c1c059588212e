"""Memory stays flat over 50 trials: nothing of a finished trial (model, optimizer, history) is kept."""
from __future__ import annotations

import gc
import os
from pathlib import Path

import pytest

import tunewidgets as tw
from hpo_helpers import BASE, Net, blob_task, one_thread  # noqa: F401 (autouse)
from tunewidgets.hpo.space import LogUniform

WIDTH = 100_000  # 2 -> 100k -> 3: 0.5 M weights, 2 MB; with Adam's state about 6 MB per trial


def rss_bytes() -> int:
    statm = Path("/proc/self/statm")
    if not statm.exists():
        pytest.skip("needs /proc/self/statm (Linux) to read the resident memory")
    return int(statm.read_text().split()[1]) * os.sysconf("SC_PAGE_SIZE")


@pytest.mark.slow
def test_memory_is_flat_over_50_trials(tmp_path):
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

    task = blob_task()
    base = BASE.replace(optimizer="adam", epochs=1, model_kwargs={"width": WIDTH})
    gc.collect()
    already = len(Net.made)
    study = tw.search(task, {"lr": LogUniform(1e-4, 1e-2)}, base=base, n_trials=50, store=tmp_path,
                      background=False, callbacks=[on_record])
    assert (study.trials["state"] == "finished").all() and len(study.trials) == 50
    # only the trial that is starting has a model: earlier ones were freed when they ended
    assert max(alive.values()) - already == 1, alive
    # resident memory: the peak of trials 40-49 against that of trials 10-19 (the allocator keeps
    # some freed memory, so single readings jump by tens of MB); 30 kept models would add 180 MB
    early = max(rss[n] for n in range(10, 20))
    late = max(rss[n] for n in range(40, 50))
    print(f"resident memory: peak of trials 10-19 {early / 2**20:.0f} MB, of trials 40-49 {late / 2**20:.0f} MB")
    assert late - early < 50 * 2**20, f"resident memory grew {(late - early) / 2**20:.1f} MB"
    # Python objects: what a study keeps per trial (its record, Optuna's trial) is a few dozen
    per_trial = (objects[49] - objects[10]) / 39
    print(f"Python objects kept per trial: {per_trial:.1f}")
    assert per_trial < 100, f"{per_trial:.0f} objects kept per trial"
