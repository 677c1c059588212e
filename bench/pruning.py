"""Pruning: epochs a pruned grid search trains to get within 1 point of the full grid's best.

The full grid trains every point of the grid for all its epochs. The pruned search runs the
same grid (the same points, each trial seeded alike, so a trial that is not pruned trains
exactly as in the full grid) with a pruner fed the validation accuracy after every epoch.
For each, two figures:

- epochs: the epochs the whole search trained (what it cost to know its best);
- to target: the epochs trained, in trial order, until a finished trial was within 1 point
  (0.01) of the full grid's best final validation accuracy.

The grid (SGD with momentum 0.9 and a cosine schedule, a common recipe) is shuffled by the
search's seed; pruned searches run for several seeds (orders), and the medians are shown; the
full grid's "to target" is read in each pruned search's order. The goal: the pruned search's epochs at most 1/3 of the full grid's,
with its best within 1 point. The last line is that ratio for successive halving.

    python bench/pruning.py                  # digits MLP, 8 lr x 4 widths x 12 epochs, 3 orders
    python bench/pruning.py --seeds 5 --epochs 15
"""
from __future__ import annotations

import argparse
import statistics
import tempfile
import time

import torch

import tunewidgets as tw

TARGET = 0.01  # "within 1%": one point of accuracy


WIDTHS = [16, 32, 64, 128]


def space(n_lr: int) -> dict:
    return {"lr": tw.space.LogUniform(1e-3, 1.0, grid=n_lr), "model.width": tw.space.Choice(WIDTHS)}


def search(task: tw.Task, base: tw.TrainConfig, n_lr: int, pruner: str | None, seed: int, folder: str):
    t0 = time.perf_counter()
    study = tw.search(task, space(n_lr), base=base, strategy="grid", pruner=pruner, seed=seed, store=folder,
                      background=False)
    return study.trials, time.perf_counter() - t0


def to_target(trials, target: float) -> int | None:
    """Epochs trained, in trial order, until a finished trial reached ``target`` (None: never)."""
    spent = 0
    for row in trials.sort_values("trial").itertuples():
        spent += row.epochs
        if row.state == "finished" and row.val_accuracy >= target:
            return spent
    return None


def main(argv: list[str] | None = None) -> float:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--epochs", type=int, default=12)
    ap.add_argument("--lrs", type=int, default=8, help="grid points of the learning rate (log-spaced)")
    ap.add_argument("--seeds", type=int, default=3, help="grid orders for the pruned searches")
    ap.add_argument("--pruners", default="successive_halving,hyperband,median")
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    task = tw.tasks.digits()
    base = tw.TrainConfig(optimizer="sgd", momentum=0.9, epochs=args.epochs, device="cpu", seed=0,
                          schedule=tw.schedules.Cosine())
    tmp = tempfile.TemporaryDirectory()

    full, seconds = search(task, base, args.lrs, None, 0, f"{tmp.name}/full")
    best = full["val_accuracy"].max()
    target = best - TARGET
    full_epochs = int(full["epochs"].sum())
    n = len(full)
    print(f"digits MLP, grid of {n} points (lr {args.lrs} x width {len(WIDTHS)}), {args.epochs} epochs each, "
          "SGD momentum 0.9, cosine schedule")
    final = {(r.lr, r.w): r.val_accuracy for r in full.rename(columns={"model.width": "w"}).itertuples()}
    print(f"full grid: {full_epochs} epochs in {seconds:.1f} s; best val accuracy {best:.4f}; target {target:.4f}")
    ratios: dict[str, list[float]] = {}
    for pruner in [p for p in args.pruners.split(",") if p]:
        rows = []
        for seed in range(args.seeds):
            trials, secs = search(task, base, args.lrs, pruner, seed, f"{tmp.name}/{pruner}-{seed}")
            finished = trials[trials["state"] == "finished"]
            found = float(finished["val_accuracy"].max()) if len(finished) else float("nan")
            epochs = int(trials["epochs"].sum())
            # the full grid in this search's order (its results do not depend on the order)
            order = trials.sort_values("trial")
            reached = [final[(lr, w)] >= target for lr, w in zip(order["lr"], order["model.width"])]
            full_hit = (reached.index(True) + 1) * args.epochs if True in reached else None
            rows.append((epochs, found, to_target(trials, target), (trials["state"] == "pruned").sum(), secs,
                         full_hit))
        ratios[pruner] = [r[0] / full_epochs for r in rows]
        ok = all(r[1] >= target for r in rows)
        print(f"{pruner:>18}: epochs {[r[0] for r in rows]} (median {statistics.median(r[0] for r in rows):.0f}, "
              f"ratio {statistics.median(ratios[pruner]):.3f}); best found {[round(r[1], 4) for r in rows]} "
              f"({'all' if ok else 'NOT all'} within {TARGET:.2f}); to target {[r[2] for r in rows]} "
              f"(full grid in the same order: {[r[5] for r in rows]}); "
              f"pruned {[int(r[3]) for r in rows]} of {n}; {statistics.median(r[4] for r in rows):.1f} s")
    tmp.cleanup()
    head = "successive_halving" if "successive_halving" in ratios else next(iter(ratios))
    ratio = statistics.median(ratios[head])
    print(f"ratio pruned/full epochs ({head}, median of {args.seeds} orders): {ratio:.3f} (goal <= 0.333)")
    return ratio


if __name__ == "__main__":
    main()
