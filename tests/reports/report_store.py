"""A store for report tests, written with the store's own API: a training run with a schedule, a
range test, and a study whose names, values and errors carry script payloads.

Each payload sets ``window.__pwned`` if a browser ever runs it.
"""
from __future__ import annotations

import math
from pathlib import Path

from tunewidgets.tracking import Store, studies

__all__ = ["PAYLOADS", "STUDY", "RUN_NAME", "make_store", "LONG_STEPS"]

PAYLOADS = (
    "<script>window.__pwned=1</script>",
    '<img src=x onerror="window.__pwned=2">',
    "</script><script>window.__pwned=3</script>",
    "'\"><svg onload=window.__pwned=4>",
)
STUDY = f"study {PAYLOADS[0]}"
RUN_NAME = f"run {PAYLOADS[1]}"
LONG_STEPS = 20_000  # the training run's step curve: far more points than a plot keeps


def make_store(folder: Path, *, trials: int = 8) -> Path:
    with Store(folder, batch_rows=50_000) as store:
        run = store.start_run(kind="train", name=RUN_NAME,
                              params={"optimizer": "sgd", "lr": 0.1, "epochs": 4,
                                      "schedule": {"name": "cosine", "note": PAYLOADS[2]}}, seed=0)
        rows = []
        for s in range(LONG_STEPS):
            rows.append((s, s * 4 // LONG_STEPS, "train/loss", 2.0 * math.exp(-s / 5000) + (0.5 if s == 12_345 else 0)))
            rows.append((s, s * 4 // LONG_STEPS, "lr", 0.05 * (1 + math.cos(math.pi * s / LONG_STEPS))))
        for e in range(4):
            rows.append(((e + 1) * LONG_STEPS // 4, e, "val/loss", 1.5 - 0.2 * e))
            rows.append(((e + 1) * LONG_STEPS // 4, e, "val/accuracy", 0.5 + 0.1 * e))
        store.log_metrics(run, rows)
        store.finish_run(run, "finished", final={"val_loss": 0.9, "val_accuracy": 0.8, "epochs": 4,
                                                 "steps": LONG_STEPS})
        rt = store.start_run(kind="lr_range_test", name=PAYLOADS[3], params={"start_lr": 1e-6, "end_lr": 1.0})
        lrs = [1e-6 * (1e6 ** (i / 99)) for i in range(100)]
        store.log_metrics(rt, [(i, 0, "lr", lr) for i, lr in enumerate(lrs)]
                          + [(i, 0, "train/loss", 2.0 - 0.3 * math.log10(lr / 1e-6) / 6 + (lr > 0.1) * 3)
                             for i, lr in enumerate(lrs)])
        store.finish_run(rt, "finished", final={"suggested": 0.01, "suggested/valley": 0.01,
                                                "suggested/steepest": 0.003, "steps": 100})
        studies.create_study(store, STUDY, {"space": {"lr": {"type": "LogUniform"}, "opt": {"type": "Choice"}},
                                            "strategy": "random", "metric": "val_accuracy",
                                            "direction": "maximize", "task": PAYLOADS[1]})
        for n in range(trials):
            lr = 10 ** (-3 + 2 * n / max(1, trials - 1))
            opt = PAYLOADS[n % 2]
            rid = studies.start_trial(store, STUDY, n, {"lr": lr, "opt": opt}, config={"lr": lr})
            acc = [0.3 + 0.05 * e + 0.2 * (n / trials) for e in range(3)]
            store.log_metrics(rid, [(10 * (e + 1), e, "val/accuracy", a) for e, a in enumerate(acc)])
            if n == trials - 1:
                store.finish_run(rid, "failed", error=f"RuntimeError: {PAYLOADS[2]}")
            else:
                store.finish_run(rid, "finished", final={"val_accuracy": acc[-1], "epochs": 3})
    return folder
