"""Runs a long LR range test into a store until it is killed (used by test_lr_events.py).

Usage: python _range_killer.py FOLDER READY_STEP

Prints ``ready <run_id>`` once the rows of the first READY_STEP steps are in the file (it
flushes the store itself, a few logged batches later, so no wait on the flush thread), then
goes on slowly until it is killed.
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
    store = tw.Store(folder)
    flush_at = ready_step + 100  # past the next LOG (every 25 steps): the rows of READY_STEP steps are logged

    def on_step(rec):
        if rec["step"] == flush_at:
            store.flush()
            print(f"ready {run_id[0]}", flush=True)
        if rec["step"] >= flush_at:
            time.sleep(0.01)
    tw.lr_range_test(task, start_lr=1e-6, end_lr=1e-3, steps=100_000, diverge=float("inf"), device="cpu",
                     store=store, on_step=on_step, callbacks=[{"start": lambda rec: run_id.append(rec["run_id"])}])


if __name__ == "__main__":
    main()
