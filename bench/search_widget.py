"""Search widget at scale: 1,000 trials of 20 epochs in one widget, the drain per tick and the page's data.

A real ``tw.search`` (random strategy, SQLite store) drives a ``Search`` widget headless: the
search trains in its thread, the widget's drain runs on this thread every ``--interval`` seconds
and updates every source, as it does on a kernel's loop. The trials are tiny (one step an epoch)
so that records come fast: about ten trials end in each tick, which is harder on the drain than
real training. Measured: the drain's time in each tick that had records (median, 90th percentile,
max), what the page is sent (bytes of Bokeh patches per tick, as the views would send them), and
what the page holds at the end (rows per source, points in the curves, bytes of a fresh render).
The goal: a median under 50 ms a tick and bounded page data (the curves capped at ``--max-curves``).
The last line is the ratio of the median drain to 50 ms.

    python bench/search_widget.py                        # 1000 trials x 20 epochs
    python bench/search_widget.py --trials 200           # a shorter run
"""
from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from typing import Any

import torch
from torch import nn
from torch.utils.data import TensorDataset

import tunewidgets as tw
from tunewidgets.plots.search import CURVES

BUDGET_S = 0.050


def tiny_task(n: int = 32) -> tw.Task:
    g = torch.Generator().manual_seed(0)
    y = torch.randint(0, 3, (2 * n,), generator=g)
    x = torch.tensor([[2.0, 0.0], [-2.0, 1.0], [0.0, -2.0]])[y] + 0.8 * torch.randn(2 * n, 2, generator=g)

    def model(width: int = 8) -> nn.Module:
        return nn.Sequential(nn.Linear(2, width), nn.ReLU(), nn.Linear(width, 3))

    return tw.Task(model=model, train=TensorDataset(x[:n], y[:n]), val=TensorDataset(x[n:], y[n:]),
                   loss="cross_entropy", metrics=("accuracy",), batch_size=n, name="blobs")


def count_sends(view: Any, sent: list[int]) -> None:
    """Add the bytes of each message ``view`` sends to the page to ``sent``."""
    def send(content: Any, buffers: Any = None) -> None:
        sent.append(len(json.dumps(content)) + sum(len(b) for b in buffers or ()))

    view.send = send


def main(argv: list[str] | None = None) -> float:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--trials", type=int, default=1000)
    ap.add_argument("--epochs", type=int, default=20)
    ap.add_argument("--interval", type=float, default=0.25, help="seconds between drains (the widget's default)")
    ap.add_argument("--max-curves", type=int, default=200)
    ap.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)

    space = {"lr": tw.space.LogUniform(1e-3, 1.0), "momentum": tw.space.Uniform(0.0, 0.95),
             "model.width": tw.space.Choice([4, 8, 16])}
    w = tw.widgets.Search(tiny_task(), space, base=tw.TrainConfig(optimizer="sgd", epochs=args.epochs, device="cpu"),
                          n_trials=args.trials, store=tempfile.mkdtemp(), interval=args.interval,
                          max_curves=args.max_curves)
    ticks: list[float] = []
    records: list[int] = []
    handle = w.session.on_records

    cpu: list[float] = []

    def timed(batch: list[Any]) -> None:
        t0, c0 = time.perf_counter(), time.thread_time()
        handle(batch)
        ticks.append(time.perf_counter() - t0)
        cpu.append(time.thread_time() - c0)
        records.append(len(batch))

    w.session.on_records = timed
    sent: list[int] = []
    sent_per_tick: list[int] = []
    for view in w.views:
        count_sends(view, sent)
    max_rows = 0
    t0 = time.perf_counter()
    assert w.launch(), w.error_area.message
    for view in w.views:  # Launch may have swapped the figures in
        count_sends(view, sent)
    while not w.session.done:
        before = len(sent), sum(sent)
        time.sleep(args.interval)
        w.session.drain()
        if len(sent) > before[0]:
            sent_per_tick.append(sum(sent) - before[1])
        max_rows = max(max_rows, len(w.parts[CURVES].data["trial"]))
    study = w.wait()
    elapsed = time.perf_counter() - t0
    assert w.status == "finished", (w.status, w.error)
    counts = study.counts()
    assert counts["finished"] == args.trials, counts

    data = w.data
    curve_points = sum(len(xs) for xs in data[CURVES]["xs"])
    rows = {name.removeprefix("search_"): len(next(iter(cols.values()), [])) for name, cols in data.items()}
    render_bytes = sum(len(json.dumps(v.get_state()["render_bundle"])) for v in w.views)
    t1 = time.perf_counter()
    frame = study.trials
    trials_s = time.perf_counter() - t1
    t1 = time.perf_counter()
    study.importance()
    importance_s = time.perf_counter() - t1

    med, p90 = statistics.median(ticks), statistics.quantiles(ticks, n=10)[-1]
    print(f"{args.trials} trials x {args.epochs} epochs in {elapsed:.1f} s ({args.trials / elapsed:.1f} trials/s), "
          f"drain every {args.interval} s, {len(ticks)} ticks with records "
          f"(median {statistics.median(records):.0f} records, {args.trials / max(len(ticks), 1):.1f} trials a tick)")
    print(f"drain per tick: median {med * 1000:.1f} ms, p90 {p90 * 1000:.1f} ms, max {max(ticks) * 1000:.1f} ms, "
          f"total {sum(ticks):.2f} s ({sum(ticks) / elapsed * 100:.1f}% of the run); the drain's own CPU time "
          f"median {statistics.median(cpu) * 1000:.1f} ms (the rest is waiting: for the GIL, which the training "
          f"thread holds between its torch calls, and for a CPU)")
    print(f"sent to the page: {sum(sent) / 1e6:.2f} MB in {len(sent)} messages; per tick median "
          f"{statistics.median(sent_per_tick) / 1e3:.1f} kB, max {max(sent_per_tick) / 1e3:.1f} kB")
    print(f"page data at the end: curves {rows['curves']} rows (max {max_rows} during the run, cap "
          f"{args.max_curves} + a quarter) with {curve_points} points of {len(frame) * args.epochs}; "
          + ", ".join(f"{k} {v}" for k, v in rows.items() if k != "curves")
          + f" rows; a fresh render {render_bytes / 1e6:.2f} MB")
    print(f"study.trials at {len(frame)} trials: {trials_s * 1000:.1f} ms; study.importance(): "
          f"{importance_s * 1000:.0f} ms (in the widget's worker thread, not the drain)")
    ratio = med / BUDGET_S
    print(f"ratio drain median / 50 ms: {ratio:.3f}")
    return ratio


if __name__ == "__main__":
    main()
