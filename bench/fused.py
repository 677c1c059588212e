"""Fused trials: K same-shape trials trained side by side against the same K trained one at a time.

The same K configs (different lr, momentum, weight decay and seed; one model shape) train as a
search trains them, through its executor interface with a ``report`` that does nothing: once
with ``FusedExecutor(k=K)`` (one group) and once one after another with the ``LocalExecutor``,
interleaved in one process, ``--repeats`` times. Each side is timed over the whole call (model
builds, first-batch checks, evaluation every epoch and every record included) and the
throughput is the K trials' training samples per second; peak memory is the process's resident memory above what it held before the call (CPU),
or CUDA's peak allocation. The last line is the ratio fused/one-at-a-time of the medians (the
goal on the CPU: >= 3 for 16 small MLP trials on digits).

    python bench/fused.py                       # 16 digits MLPs (width 64), CPU, one thread
    python bench/fused.py --k 64 --device cuda  # on a GPU
"""
from __future__ import annotations

import argparse
import statistics
import threading
import time

import torch

import tunewidgets as tw
from tunewidgets.engine.control import RunStop
from tunewidgets.hpo.executors import LocalExecutor, TrialOutcome, TrialSpec
from tunewidgets.hpo.fused_executor import FusedExecutor


def trial_configs(k: int, epochs: int, device: str) -> list[tw.TrainConfig]:
    g = torch.Generator().manual_seed(0)
    u = torch.rand(k, 3, generator=g).tolist()
    return [tw.TrainConfig(optimizer="sgd", lr=10 ** (-2.5 + 1.5 * a), momentum=0.5 + 0.45 * b,
                           weight_decay=1e-4 * c, seed=i, epochs=epochs, device=device)
            for i, (a, b, c) in enumerate(u)]


class PeakMemory:
    """Peak memory above the start while the block runs: CUDA's allocator, else the resident set (sampled)."""

    def __init__(self, device: torch.device) -> None:
        self.device, self.peak = device, 0

    def __enter__(self) -> "PeakMemory":
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
            torch.cuda.reset_peak_memory_stats(self.device)
            self._base = torch.cuda.memory_allocated(self.device)
        else:
            self._base = _rss()
            self._done = threading.Event()
            self._thread = threading.Thread(target=self._sample, daemon=True)
            self._thread.start()
        return self

    def _sample(self) -> None:
        while not self._done.wait(0.002):
            self.peak = max(self.peak, _rss() - self._base)

    def __exit__(self, *exc: object) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
            self.peak = torch.cuda.max_memory_allocated(self.device) - self._base
        else:
            self._done.set()
            self._thread.join()
            self.peak = max(self.peak, _rss() - self._base)


def _rss() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * 4096


def specs(configs: list[tw.TrainConfig]) -> list[TrialSpec]:
    return [TrialSpec("bench", i, {}, cfg, run_id=None, stop=RunStop()) for i, cfg in enumerate(configs)]


def fused(task: tw.Task, configs: list[tw.TrainConfig]) -> list[TrialOutcome]:
    ex = FusedExecutor(k=len(configs))
    ex.open(task, _count)
    for spec in specs(configs):
        ex.submit(spec)
    return ex.wait()


def one_at_a_time(task: tw.Task, configs: list[tw.TrainConfig]) -> list[TrialOutcome]:
    ex = LocalExecutor()
    ex.open(task, _count)
    out = []
    for spec in specs(configs):
        ex.submit(spec)
        out.extend(ex.wait())
    return out


def _count(spec: TrialSpec, event: str, record: dict) -> None:
    """The search loop's ``report``, doing nothing: both sides fire the same records."""


def timed(fn, task: tw.Task, configs: list[tw.TrainConfig], device: torch.device) -> tuple[float, float, int]:
    with PeakMemory(device) as mem:
        t0, c0 = time.perf_counter(), time.process_time()
        outcomes = fn(task, configs)
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    assert all(o.status == "finished" for o in outcomes), [(o.status, o.reason) for o in outcomes]
    samples = sum(o.final["steps"] for o in outcomes) * task.batch_size
    return samples / wall, samples / cpu, mem.peak


def main(argv: list[str] | None = None) -> float:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--k", type=int, default=16)
    ap.add_argument("--width", type=int, default=64)
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--device", default="cpu")
    args = ap.parse_args(argv)

    torch.set_num_threads(1)
    task = tw.tasks.digits()
    task.model_kwargs = {"width": args.width}
    device = tw.engine.devices.resolve_device(args.device)
    configs = trial_configs(args.k, args.epochs, args.device)
    sides = {"one at a time": one_at_a_time, "fused": fused}
    for fn in sides.values():  # warm-up
        fn(task, configs[:2])
    rates: dict[str, list[float]] = {k: [] for k in sides}
    cpu_rates: dict[str, list[float]] = {k: [] for k in sides}
    peaks: dict[str, list[int]] = {k: [] for k in sides}
    for _ in range(args.repeats):
        for name, fn in sides.items():
            rate, cpu_rate, peak = timed(fn, task, configs, device)
            rates[name].append(rate)
            cpu_rates[name].append(cpu_rate)
            peaks[name].append(peak)
    print(f"device={device} k={args.k} epochs={args.epochs} repeats={args.repeats} "
          f"(digits MLP width {args.width}, batch {task.batch_size}, one torch thread)")
    for name in sides:
        print(f"{name:>14}: median {statistics.median(rates[name]):9.0f} samples/s wall "
              f"(min {min(rates[name]):.0f}, max {max(rates[name]):.0f}); "
              f"{statistics.median(cpu_rates[name]):9.0f} samples per CPU-second; "
              f"peak memory {max(peaks[name]) / 2**20:.1f} MiB")
    cpu_ratio = statistics.median(cpu_rates["fused"]) / statistics.median(cpu_rates["one at a time"])
    print(f"ratio fused/one at a time, samples per CPU-second: {cpu_ratio:.2f}")
    ratio = statistics.median(rates["fused"]) / statistics.median(rates["one at a time"])
    print(f"ratio fused/one at a time, samples per second: {ratio:.2f}")
    return ratio


if __name__ == "__main__":
    main()
