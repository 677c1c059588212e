"""LR widget overhead: ``tw.lr_range_test`` alone against the ``LRFinder`` widget running the same test.

The widget runs headless but does all its live work: the test in a worker thread, records on
a queue, this thread draining them every ``--interval`` seconds into the plot's Bokeh sources
(one stream per tick, thinned to the cap), progress and markers updated, the final state shown.
Same task, seed and settings; repeats interleaved in one process; medians of wall time from
start to result, and of the process's CPU time (steadier on a shared machine); the time the
widget spent draining and drawing is shown too. The last line is the ratio widget/plain of the
wall-time medians (the goal is <= 1.05).

    python bench/lr_widget_overhead.py                    # digits MLP, 3000 steps, CPU
    python bench/lr_widget_overhead.py --device cuda      # on a GPU
"""
from __future__ import annotations

import argparse
import math
import statistics
import time

import torch

import tunewidgets as tw
from tunewidgets.plots.lr import CURVE


def plain(task: tw.Task, settings: dict) -> tuple[int, float, float]:
    t0, c0 = time.perf_counter(), time.process_time()
    res = tw.lr_range_test(task, **settings)
    return len(res), time.perf_counter() - t0, time.process_time() - c0


def widget(finder: "tw.widgets.LRFinder") -> tuple[int, float, float]:
    t0, c0 = time.perf_counter(), time.process_time()
    assert finder.run()
    res = finder.wait()
    elapsed, cpu = time.perf_counter() - t0, time.process_time() - c0
    assert finder.status == "finished", (finder.status, finder.error)
    shown = len(finder.figure.select_one({"name": CURVE}).data["lr"])
    assert shown == len(res) if len(res) <= finder.curve.max_points else shown <= finder.curve.max_points
    return len(res), elapsed, cpu


def main(argv: list[str] | None = None) -> float:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--steps", "--num-iter", dest="steps", type=int, default=3000)
    ap.add_argument("--repeats", type=int, default=9)
    ap.add_argument("--interval", type=float, default=0.25, help="seconds between the widget's plot updates")
    ap.add_argument("--threads", type=int, default=1, help="torch CPU threads (1 gives steady timings)")
    args = ap.parse_args(argv)

    torch.set_num_threads(args.threads)
    task = tw.tasks.digits()
    settings = dict(optimizer="sgd", start_lr=1e-5, end_lr=1.0, steps=args.steps, mode="exp",
                    smoothing=0.98, diverge=math.inf, device=args.device, seed=0)
    finder = tw.widgets.LRFinder(task, start_lr=settings["start_lr"], end_lr=settings["end_lr"],
                                 steps=args.steps, interval=args.interval, diverge=math.inf,
                                 device=args.device, seed=0)
    assert {k: v for k, v in finder.test_settings().items()} == settings, finder.test_settings()

    plain(task, settings)  # warm-up: first-use imports and allocations
    widget(finder)
    times: dict[str, list[float]] = {"plain": [], "widget": []}
    cpu: dict[str, list[float]] = {"plain": [], "widget": []}
    drained: list[float] = []
    for _ in range(args.repeats):
        n_plain, t_plain, c_plain = plain(task, settings)
        n_widget, t_widget, c_widget = widget(finder)
        assert n_plain == n_widget == args.steps, (n_plain, n_widget)
        times["plain"].append(t_plain)
        times["widget"].append(t_widget)
        cpu["plain"].append(c_plain)
        cpu["widget"].append(c_widget)
        drained.append(finder.session.drain_seconds)
    med = {k: statistics.median(v) for k, v in times.items()}
    med_cpu = {k: statistics.median(v) for k, v in cpu.items()}
    print(f"task digits, {args.steps} steps, device {args.device}, {args.repeats} repeats, "
          f"widget interval {args.interval} s, {finder.session.ticks} ticks in the last run")
    for k in ("plain", "widget"):
        print(f"{k:>7}: median {med[k] * 1000:8.1f} ms  ({args.steps / med[k]:7.1f} steps/s)  "
              f"cpu {med_cpu[k] * 1000:8.1f} ms  runs {', '.join(f'{t * 1000:.0f}' for t in times[k])} ms")
    print(f"widget drain and draw: median {statistics.median(drained) * 1000:.1f} ms a run "
          f"({statistics.median(drained) / med['plain'] * 100:.1f}% of the plain run)")
    print(f"cpu ratio widget/plain: {med_cpu['widget'] / med_cpu['plain']:.3f}")
    ratio = med["widget"] / med["plain"]
    print(f"ratio widget/plain: {ratio:.3f}")
    return ratio


if __name__ == "__main__":
    main()
