"""Train into a store on a small tmpfs that fills up mid-run (used by test_store_failures.py).

Usage (as root, in a private mount namespace: ``unshare --mount --propagation private``):
    python _full_disk.py MOUNT_POINT

Mounts a 4 MiB tmpfs at MOUNT_POINT (gone when this process ends), trains with a store there,
fills the disk with a ballast file after the first epoch, and prints one JSON line: what
``train`` returned and what the store recorded while full, then after the ballast is removed
and the store closed.
"""
from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
import warnings
from pathlib import Path

import torch
from torch.utils.data import TensorDataset

import tunewidgets as tw
from tunewidgets.tracking.store import Store, StoreWarning


def fill(path: Path) -> int:
    written = 0
    with open(path, "wb") as fh:
        try:
            while True:
                fh.write(b"\0" * 65536)
                fh.flush()
                written += 65536
        except OSError:
            pass
    return written


def peek(db: Path, sql: str) -> list:
    conn = sqlite3.connect(db)
    try:
        return conn.execute(sql).fetchall()
    finally:
        conn.close()


def main() -> None:
    mount = Path(sys.argv[1])
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(mount)], capture_output=True)
    if done.returncode != 0:
        print(json.dumps({"skip": f"cannot mount a tmpfs: {done.stderr.decode().strip()}"}))
        return
    g = torch.Generator().manual_seed(0)
    y = torch.randint(0, 3, (256,), generator=g)
    x = torch.tensor([[2.0, 0.0], [-2.0, 1.0], [0.0, -2.0]])[y] + 0.7 * torch.randn(256, 2, generator=g)
    task = tw.Task(model=lambda: torch.nn.Sequential(torch.nn.Linear(2, 16), torch.nn.ReLU(), torch.nn.Linear(16, 3)),
                   train=TensorDataset(x, y), val=TensorDataset(x[:64], y[:64]), batch_size=32)
    store = Store(mount / "runs", batch_rows=20, flush_interval=0.05)
    ballast = mount / "ballast"
    sizes = []

    def full_after_first_epoch(record):
        if record["epoch"] == 0:
            sizes.append(fill(ballast))

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        run = tw.train(task, tw.TrainConfig(lr=0.1, epochs=4, log_every=2, device="cpu"), store=store,
                       callbacks=[{"epoch": full_after_first_epoch}])
    db = store.path
    out = {
        "status": run.status, "steps": int(run.final["steps"]), "has_model": run.model is not None,
        "run_id": run.run_id, "ballast": sizes, "errors": [str(e) for e in store.errors],
        "warnings": [str(w.message) for w in caught if issubclass(w.category, StoreWarning)],
        "row_while_full": peek(db, f"SELECT status FROM runs WHERE id = {run.run_id}")[0][0],
    }
    ballast.unlink()
    store.close()
    out["row_after"] = peek(db, f"SELECT status, final IS NOT NULL FROM runs WHERE id = {run.run_id}")[0]
    out["loss_rows_after"] = peek(db, f"SELECT COUNT(*) FROM metrics WHERE run = {run.run_id} "
                                      "AND name = 'train/loss'")[0][0]
    out["resolved"] = [e.resolved for e in store.errors]
    print(json.dumps(out))


if __name__ == "__main__":
    main()
