"""Search overhead: time per trial beyond the trial's own training, tw.search against plain Optuna.

Both sides run the same objective in the same process: the same space sampled through the same
Optuna sampler class, the same config, the same training (``tunewidgets.engine.Trainer``) with
its metrics written to a store by a ``StoreSink``. A trial's own work, timed the same way on
both sides, is building and training its model with those store writes (they count as training);
everything else a search costs, divided by its trials, is overhead: for Optuna, checking the
space, opening and closing the store, ``study.optimize``'s ask and tell, and the objective's
sampling, config and run row; for tw.search the same steps in its own loop, plus its study row,
the sampler reseeded per trial and the Study's records. Repeats interleaved; medians.

Memory: 1,000 TPE trials in a fresh process per side; the peak resident memory above that
process's own after its warm-up (ru_maxrss).

    python bench/search_overhead.py                    # 100 random trials x 5 repeats, then memory
    python bench/search_overhead.py --memory-trials 0  # time only
"""
from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch
from torch.utils.data import TensorDataset

import tunewidgets as tw
from tunewidgets.engine.loop import Trainer
from tunewidgets.hpo.executors import LocalExecutor
from tunewidgets.hpo.space import Space
from tunewidgets.hpo.targets import apply_params
from tunewidgets.tracking import Store, StoreSink

SPACE = {"lr": tw.space.LogUniform(1e-3, 0.3), "momentum": tw.space.Uniform(0.5, 0.95),
         "model.width": tw.space.Int(4, 32)}


def make_task() -> tw.Task:
    """A tiny classification task: 96 points, 3 batches an epoch, so the overhead is visible."""
    g = torch.Generator().manual_seed(0)
    y = torch.randint(0, 3, (144,), generator=g)
    x = torch.tensor([[2.0, 0.0], [-2.0, 1.0], [0.0, -2.0]])[y] + torch.randn(144, 2, generator=g)
    train, val = TensorDataset(x[:96], y[:96]), TensorDataset(x[96:], y[96:])

    def model(width: int = 8) -> torch.nn.Module:
        return torch.nn.Sequential(torch.nn.Linear(2, width), torch.nn.ReLU(), torch.nn.Linear(width, 3))

    return tw.Task(model=model, train=train, val=val, metrics=("accuracy",), batch_size=32, name="tiny")


BASE = tw.TrainConfig(optimizer="sgd", lr=0.1, momentum=0.9, epochs=1, device="cpu", seed=0)


class TimedLocal(LocalExecutor):
    """The local executor, timing each trial's own work (build, train, its records to the store)."""

    def __init__(self) -> None:
        super().__init__()
        self.trial_seconds = self.trial_cpu = 0.0

    def run_trial(self, spec):
        t0, c0 = time.perf_counter(), time.process_time()
        try:
            return super().run_trial(spec)
        finally:
            self.trial_seconds += time.perf_counter() - t0
            self.trial_cpu += time.process_time() - c0


def run_tw(task: tw.Task, strategy: str, n: int, folder: str) -> tuple[float, float, float, float]:
    """(wall total, wall in trials, CPU total, CPU in trials), seconds."""
    ex = TimedLocal()
    t0, c0 = time.perf_counter(), time.process_time()
    study = tw.search(task, SPACE, base=BASE, strategy=strategy, n_trials=n, store=folder, executor=ex, seed=0,
                      background=False)
    total, cpu = time.perf_counter() - t0, time.process_time() - c0
    counts = study.counts()  # not study.trials: a DataFrame of every trial would count in the memory figure
    assert counts["finished"] == n == sum(counts.values()), counts
    return total, ex.trial_seconds, cpu, ex.trial_cpu


def run_optuna(task: tw.Task, strategy: str, n: int, folder: str) -> tuple[float, float, float, float]:
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    t0, c0 = time.perf_counter(), time.process_time()  # like tw.search: the space check and the store count
    space = Space(SPACE, base=BASE, task=task)
    store = Store(folder)
    own, own_cpu = [0.0], [0.0]
    sampler = (optuna.samplers.RandomSampler(seed=0) if strategy == "random"
               else optuna.samplers.TPESampler(seed=0))
    study = optuna.create_study(direction="maximize", sampler=sampler)

    def objective(trial):
        params = space.suggest(trial)
        cfg = apply_params(BASE, params)
        run_id = store.start_run(kind="trial", study="optuna", params=cfg.to_dict(), seed=cfg.seed)
        t1, c1 = time.perf_counter(), time.process_time()
        run = Trainer(task, cfg, callbacks=[StoreSink(store, run_id, kind="trial")], run_id=run_id,
                      trial=trial.number).fit()
        own[0] += time.perf_counter() - t1
        own_cpu[0] += time.process_time() - c1
        return run.final["val_accuracy"]

    study.optimize(objective, n_trials=n)
    store.close()
    return time.perf_counter() - t0, own[0], time.process_time() - c0, own_cpu[0]


def timing(n: int, repeats: int) -> tuple[dict[str, list[float]], dict[str, list[float]]]:
    task = make_task()
    out: dict[str, list[float]] = {"tw": [], "optuna": []}
    cpu: dict[str, list[float]] = {"tw": [], "optuna": []}
    tmp = tempfile.TemporaryDirectory()
    run_tw(task, "random", 5, f"{tmp.name}/warm-tw")  # warm-up: imports, first allocations
    run_optuna(task, "random", 5, f"{tmp.name}/warm-optuna")
    for r in range(repeats):
        for name, fn in (("tw", run_tw), ("optuna", run_optuna)):
            total, own, total_cpu, own_cpu = fn(task, "random", n, f"{tmp.name}/{name}-{r}")
            out[name].append((total - own) / n * 1000)
            cpu[name].append((total_cpu - own_cpu) / n * 1000)
    tmp.cleanup()
    return out, cpu


_MEMORY_CHILD = """
import json, resource, sys, tempfile, torch
sys.path.insert(0, {bench!r})
torch.set_num_threads(1)
import search_overhead as b
task = b.make_task()
tmp = tempfile.mkdtemp()
fn = b.run_tw if {side!r} == "tw" else b.run_optuna
fn(task, "bayes" if {side!r} == "tw" else "tpe", 12, tmp + "/warm")
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
total, own, _, _ = fn(task, "bayes" if {side!r} == "tw" else "tpe", {n}, tmp + "/main")
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({{"grown_kb": peak - base, "overhead_ms": (total - own) / {n} * 1000}}))
"""


def memory(n: int) -> dict[str, dict[str, float]]:
    out = {}
    for side in ("optuna", "tw"):
        code = _MEMORY_CHILD.format(bench=str(Path(__file__).resolve().parent), side=side, n=n)
        proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=3600)
        if proc.returncode != 0:
            raise RuntimeError(proc.stderr[-3000:])
        out[side] = json.loads(proc.stdout.strip().splitlines()[-1])
    return out


def main(argv: list[str] | None = None) -> float:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--trials", type=int, default=100, help="random trials per repeat (timing; 0: skip)")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--memory-trials", type=int, default=1000, help="TPE trials for the memory figure (0: skip)")
    args = ap.parse_args(argv)
    torch.set_num_threads(1)

    if args.trials <= 0:
        mem = memory(args.memory_trials)
        return _report_memory(mem, args.memory_trials)
    per_trial, cpu = timing(args.trials, args.repeats)
    med = {k: statistics.median(v) for k, v in per_trial.items()}
    cpu_med = {k: statistics.median(v) for k, v in cpu.items()}
    print(f"random sampler, {args.trials} trials x {args.repeats} repeats (tiny task, 1 epoch, CPU, 1 thread)")
    for name, values in per_trial.items():
        print(f"{name:>7}: overhead per trial median {med[name]:6.2f} ms wall (min {min(values):.2f}, "
              f"max {max(values):.2f}); {cpu_med[name]:6.2f} ms CPU")
    print(f"extra CPU time of tw.search per trial: {cpu_med['tw'] - cpu_med['optuna']:.2f} ms")
    extra = med["tw"] - med["optuna"]
    print(f"extra overhead of tw.search per trial: {extra:.2f} ms wall (goal <= 3 ms)")
    if args.memory_trials <= 0:
        return extra
    return _report_memory(memory(args.memory_trials), args.memory_trials)


def _report_memory(mem: dict[str, dict[str, float]], n: int) -> float:
    for name in ("optuna", "tw"):
        m = mem[name]
        print(f"{name:>7}: {n} TPE trials: peak resident memory +{m['grown_kb'] / 1024:.1f} MB "
              f"over the warmed-up process; overhead per trial {m['overhead_ms']:.2f} ms")
    ratio = max(mem["tw"]["grown_kb"], 1) / max(mem["optuna"]["grown_kb"], 1)
    print(f"ratio tw/optuna peak memory growth at {n} TPE trials: {ratio:.2f} (goal <= 1)")
    return ratio


if __name__ == "__main__":
    main()
