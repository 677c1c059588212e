"""Runs a seeded search on a running Ray (its address in argv); test_ray_executor.py kills it with SIGKILL.

Usage: python _ray_search_child.py FOLDER RAY_ADDRESS N_TRIALS SLOW_TRIAL

Prints ``start <n>`` and ``end <n> <status>`` for every trial. Trial SLOW_TRIAL blocks the
driver in its first EVAL handler (its worker waits for the verdict), so that a kill lands while
it trains.
"""
from __future__ import annotations

import sys
import time

import torch

import tunewidgets as tw
from hpo_helpers import BASE, blob_task
from ray_helpers import SPACE


def main() -> None:
    folder, address, n_trials, slow = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
    torch.set_num_threads(1)

    def on_record(event, record):
        if event == "start":
            print(f"start {record['trial']}", flush=True)
        elif event == "end":
            print(f"end {record['trial']} {record['status']}", flush=True)
        elif event == "eval" and record["trial"] == slow:
            print(f"training {slow}", flush=True)
            time.sleep(60)

    study = tw.search(blob_task(), SPACE, base=BASE.replace(epochs=2), strategy="random", n_trials=n_trials,
                      store=folder, study="killed", seed=3, background=False, callbacks=[on_record],
                      executor=tw.hpo.RayExecutor(address=address))
    print(f"done {study.status} {len(study.trials)}", flush=True)


if __name__ == "__main__":
    main()
