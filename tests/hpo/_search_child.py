"""Runs a seeded search into a store; used by test_search_resume.py, which kills it with SIGKILL.

Usage: python _search_child.py FOLDER STRATEGY N_TRIALS SLOW_TRIAL

Prints ``start <n>`` and ``end <n> <status>`` for every trial. Trial SLOW_TRIAL (-1: none) sleeps
in its LOG handler after its first rows, so that a kill lands while it trains.
"""
from __future__ import annotations

import sys
import time

import torch

import tunewidgets as tw
from hpo_helpers import BASE, blob_task
from tunewidgets.hpo.space import Int, LogUniform, Uniform

SPACE = {"lr": LogUniform(1e-3, 0.3), "momentum": Uniform(0.5, 0.95), "model.width": Int(4, 16)}


def main() -> None:
    folder, strategy, n_trials, slow = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
    torch.set_num_threads(1)

    def on_record(event, record):
        if event == "start":
            print(f"start {record['trial']}", flush=True)
        elif event == "end":
            print(f"end {record['trial']} {record['status']}", flush=True)
        elif event == "log" and record["trial"] == slow:
            print(f"training {slow}", flush=True)
            time.sleep(60)

    study = tw.search(blob_task(), SPACE, base=BASE.replace(epochs=2, log_every=2), strategy=strategy,
                      n_trials=n_trials, store=folder, study="killed", seed=7, background=False,
                      callbacks=[on_record], resume=True)  # a restart continues the study
    print(f"done {study.status} {len(study.trials)}", flush=True)


if __name__ == "__main__":
    main()
