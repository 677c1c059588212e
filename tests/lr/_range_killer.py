"""Runs a long LR range test into a store until it is killed (used by test_lr_events.py).

Usage: python _range_killer.py FOLDER READY_STEP

Prints ``ready <run_id>`` at step READY_STEP, then waits long enough per step (the store
writes buffered rows at least every second) that everything before it has reached the file.
"""
from __future__ import annotations

import sys
import time

import torch

import tunewidgets as tw


def main() -> None:
    folder, ready_step = sys.argv[1], int(sys.argv[2])
    torch.set_num_threads(1)
    x = torch.randn(256, 4, generator=torch.Generator().manual_seed(0))
    y = (x[:, 0] > 0).long()
    task = tw.Task(model=lambda: torch.nn.Linear(4, 2), train=torch.utils.data.TensorDataset(x, y),
                   loss="cross_entropy", batch_size=32)
    run_id = []

    def on_step(rec):
        if rec["step"] == ready_step:
            print(f"ready {run_id[0]}", flush=True)
        if rec["step"] >= ready_step:
            time.sleep(0.01)
    tw.lr_range_test(task, start_lr=1e-6, end_lr=1e-3, steps=100_000, diverge=float("inf"), device="cpu",
                     store=folder, on_step=on_step, callbacks=[{"start": lambda rec: run_id.append(rec["run_id"])}])


if __name__ == "__main__":
    main()
