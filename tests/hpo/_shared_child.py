"""One of several processes searching one study in one store; used by test_search_shared.py.

Usage: python _shared_child.py FOLDER STRATEGY N_TRIALS GO_FILE SLOW_TRIAL

Prints ``ready`` once imported, then waits for GO_FILE to exist (so that the processes start
searching together), then prints ``start <n>`` and ``end <n> <status>`` for every trial it
trains and ``done <status>`` at the end. The trial it trains first, if SLOW_TRIAL is ``first``,
blocks in its LOG handler after printing ``training <n>``, so that it can be killed mid-trial.
"""
from __future__ import annotations

import os
import sys
import time

import torch

import tunewidgets as tw
from tunewidgets.hpo.space import Choice, LogUniform

SPACES = {"random": {"lr": LogUniform(1e-3, 0.3), "model.width": Choice([4, 8, 16])},
          "grid": {"lr": LogUniform(1e-3, 0.3, grid=5), "model.width": Choice([4, 8])}}  # 10 points


def main() -> None:
    folder, strategy, n_trials, go, slow = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4], sys.argv[5]
    torch.set_num_threads(1)
    task = tw.tasks.spirals(n=200, batch_size=32)
    print("ready", flush=True)
    while not os.path.exists(go):  # the test creates it once every process is ready
        time.sleep(0.01)
    first: list[int] = []

    def on_record(event, record):
        if event == "start":
            first.append(record["trial"])
            print(f"start {record['trial']}", flush=True)
        elif event == "end":
            print(f"end {record['trial']} {record['status']}", flush=True)
        elif event == "log" and slow == "first" and record["trial"] == first[0]:
            print(f"training {record['trial']}", flush=True)
            time.sleep(600)  # until killed

    study = tw.search(task, SPACES[strategy], base=tw.TrainConfig(optimizer="adam", epochs=1, device="cpu"),
                      strategy=strategy, n_trials=n_trials if strategy != "grid" else None, store=folder,
                      study="shared", seed=3, background=False, callbacks=[on_record], resume=True)
    print(f"done {study.status}", flush=True)


if __name__ == "__main__":
    main()
