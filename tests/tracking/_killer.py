"""Writes metrics to a store in a tight loop until it is killed (used by test_store.py).

Usage: python _killer.py FOLDER ROWS_PER_FLUSH READY_AFTER_FLUSHES

Prints ``ready <run_id>`` once READY_AFTER_FLUSHES flushes are committed, then keeps writing
and flushing every ROWS_PER_FLUSH steps, so a kill lands between or during transactions.
"""
from __future__ import annotations

import sys

from tunewidgets.tracking.store import Store


def main() -> None:
    folder, per_flush, ready_after = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    store = Store(folder, batch_rows=10 * per_flush, flush_interval=3600.0)
    run = store.start_run(kind="train", name="killed", params={"lr": 0.1}, seed=0)
    step = flushes = 0
    while True:
        store.log_metrics(run, [(step, 0, "train/loss", float(step)), (step, 0, "lr", 0.1)])
        step += 1
        if step % per_flush == 0:
            store.flush()
            flushes += 1
            if flushes == ready_after:
                print(f"ready {run}", flush=True)


if __name__ == "__main__":
    main()
