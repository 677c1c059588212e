"""Store scale: a study of 1,000 trials x 100 epochs, its trials table, and its HTML report.

Writes the store with the store's batch API (``log_metrics`` of whole trials, one transaction per
50,000 rows): per trial three metrics per epoch (val/loss, val/accuracy, train/epoch_loss) and a
train loss every 10 steps (30 steps an epoch), so 1,000 trials hold 600,000 metric rows. Then, repeated, it times
the trials table as the Study reads it from the store (``studies.latest_trials`` into a
DataFrame: what ``tw.search`` resumes from), ``tw.report`` of the store, and the report's size.
Targets: table < 1 s, report < 10 s, file < 20 MB. Medians of the repeats (wall and CPU: the
machine may be shared); the last line is the report's build time over its 10 s budget.

    python bench/store_scale.py                  # 1,000 trials x 100 epochs, 3 repeats
    python bench/store_scale.py --trials 200     # a quicker look
"""
from __future__ import annotations

import argparse
import math
import random
import statistics
import tempfile
import time
from pathlib import Path

import tunewidgets as tw
from tunewidgets.tracking import Store, studies

STUDY = "scale"


def write_store(folder: Path, trials: int, epochs: int) -> float:
    rng = random.Random(0)
    t0 = time.perf_counter()
    with Store(folder, batch_rows=50_000, flush_interval=60.0) as store:
        studies.create_study(store, STUDY, {
            "space": {"lr": {"type": "LogUniform", "low": 1e-4, "high": 1.0},
                      "model.width": {"type": "Choice", "values": [16, 32, 64, 128]},
                      "weight_decay": {"type": "Uniform", "low": 0.0, "high": 0.01}},
            "strategy": "random", "metric": "val_accuracy", "direction": "maximize", "task": "digits",
            "n_trials": trials})
        for n in range(trials):
            lr, width, wd = 10 ** rng.uniform(-4, 0), rng.choice([16, 32, 64, 128]), rng.uniform(0, 0.01)
            rid = studies.start_trial(store, STUDY, n, {"lr": lr, "model.width": width, "weight_decay": wd},
                                      config={"lr": lr, "epochs": epochs, "model_kwargs": {"width": width}})
            quality = 1 - abs(math.log10(lr) + 2) / 3
            rows = []
            for e in range(epochs):
                acc = min(0.99, 0.1 + quality * 0.85 * (1 - math.exp(-(e + 1) / 15)) + rng.gauss(0, 0.01))
                step = (e + 1) * 30
                rows += [(step, e, "val/loss", 2.3 * (1 - acc)), (step, e, "val/accuracy", acc),
                         (step, e, "train/epoch_loss", 2.2 * (1 - acc))]
                rows += [(step - 30 + s, e, "train/loss", 2.3 * (1 - acc) + rng.gauss(0, 0.05)) for s in range(0, 30, 10)]
            store.log_metrics(rid, rows)
            store.finish_run(rid, "finished" if quality > 0 else "diverged",
                             final={"val_accuracy": acc, "val_loss": 2.3 * (1 - acc), "epochs": epochs})
    return time.perf_counter() - t0


def timed(fn) -> tuple[float, float]:
    t0, c0 = time.perf_counter(), time.process_time()
    fn()
    return time.perf_counter() - t0, time.process_time() - c0


def trials_table(folder: Path) -> None:
    import pandas as pd

    with Store(folder) as store:
        rows = studies.latest_trials(store, STUDY)
        frame = pd.DataFrame([{"trial": r["trial"], "state": r["status"], **r["search"],
                               "val_accuracy": (r["final"] or {}).get("val_accuracy"),
                               "duration": r["duration"], "run_id": r["id"]} for r in rows])
    assert len(frame) == TRIALS, len(frame)


def main() -> None:
    global TRIALS
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=1000)
    parser.add_argument("--epochs", type=int, default=100)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    TRIALS = args.trials
    folder = Path(tempfile.mkdtemp(prefix="tw-scale-"))
    seconds = write_store(folder, args.trials, args.epochs)
    with Store(folder) as store:
        rows = len(store.metrics(None))
    print(f"store: {args.trials} trials x {args.epochs} epochs, {rows:,} metric rows written in {seconds:.1f} s "
          f"({(folder / 'runs.sqlite').stat().st_size / 1e6:.1f} MB)")
    out = folder / "report.html"
    table, build = [], []
    for _ in range(args.repeats):
        table.append(timed(lambda: trials_table(folder)))
        build.append(timed(lambda: tw.report(folder, out)))
    size = out.stat().st_size / 1e6
    med = lambda xs, i: statistics.median(x[i] for x in xs)  # noqa: E731
    print(f"trials table from the store: {med(table, 0):.3f} s wall, {med(table, 1):.3f} s CPU (target < 1 s)")
    print(f"report build: {med(build, 0):.2f} s wall, {med(build, 1):.2f} s CPU (target < 10 s)")
    print(f"report file: {size:.2f} MB (target < 20 MB)")
    print(f"report build / 10 s budget: {med(build, 0) / 10:.2f}")


TRIALS = 0

if __name__ == "__main__":
    main()
