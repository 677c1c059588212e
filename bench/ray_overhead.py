"""Ray executor: per-trial overhead on a local Ray, and the speedup of two workers over one.

Overhead: the same search of trivial trials (a few hundred weights, 3 batches, one epoch) on the
local executor and on a ``RayExecutor(workers=1)``, one trial at a time on both sides; the
difference of their wall times divided by the trials is what Ray adds to a trial (sending the
trial, streaming its records back, the verdict after its EVAL, its outcome). Workers are
started once before the timed runs (``keep_workers=True``): their start-up (a process and
``import torch``, seconds) is paid once per search, not per trial, and is printed apart.

Speedup: trials that each take one second (the model sleeps in its forward, so the figure is the
executor's, not the shared machine's CPU share) on ``workers=1`` against ``workers=2``.

Runs interleaved; medians. The load of the machine (``os.getloadavg``) is printed with them.

    python bench/ray_overhead.py                     # 40 trivial trials, 8 one-second trials, 3 runs
    python bench/ray_overhead.py --runs 5 --trivial 100
"""
from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time

import torch
from torch.utils.data import TensorDataset

import tunewidgets as tw

SPACE = {"lr": tw.space.LogUniform(1e-3, 0.3), "momentum": tw.space.Uniform(0.5, 0.95)}
BASE = tw.TrainConfig(optimizer="sgd", lr=0.1, momentum=0.9, epochs=1, device="cpu", seed=0)


class Sleepy(torch.nn.Sequential):
    """A tiny MLP whose forward sleeps ``pause`` seconds (a trial of known length on any machine)."""

    def __init__(self, width: int = 8, pause: float = 0.0) -> None:
        super().__init__(torch.nn.Linear(2, width), torch.nn.ReLU(), torch.nn.Linear(width, 3))
        self.pause = pause

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.pause:
            time.sleep(self.pause)
        return super().forward(x)


def make_task(trial_seconds: float) -> tw.Task:
    """96 training points and 48 to validate. Trivial: 3 training batches and one to validate.
    Slow: 2 training batches, one to validate and the first-batch check, 4 forwards that each
    sleep a quarter of ``trial_seconds``."""
    g = torch.Generator().manual_seed(0)
    y = torch.randint(0, 3, (144,), generator=g)
    x = torch.tensor([[2.0, 0.0], [-2.0, 1.0], [0.0, -2.0]])[y] + torch.randn(144, 2, generator=g)
    pause = trial_seconds / 4
    return tw.Task(model=Sleepy, model_kwargs={"pause": pause}, train=TensorDataset(x[:96], y[:96]),
                   val=TensorDataset(x[96:], y[96:]), metrics=("accuracy",), batch_size=48 if pause else 32,
                   name="tiny")


def timed_search(task: tw.Task, n: int, executor) -> float:
    with tempfile.TemporaryDirectory() as folder:
        t0 = time.perf_counter()
        study = tw.search(task, SPACE, base=BASE, strategy="random", n_trials=n, store=folder, executor=executor,
                          seed=0, background=False)
        seconds = time.perf_counter() - t0
    states = study.trials["state"].tolist()
    assert states == ["finished"] * n, states
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--trivial", type=int, default=40, help="trivial trials per overhead run")
    parser.add_argument("--slow", type=int, default=8, help="one-second trials per speedup run")
    parser.add_argument("--address", default=None, help="a running Ray to join (default: start a local one)")
    args = parser.parse_args()
    torch.set_num_threads(1)
    import ray

    t0 = time.perf_counter()
    if args.address:
        ray.init(address=args.address, logging_level="ERROR")
    else:
        ray.init(num_cpus=2, include_dashboard=False, logging_level="ERROR")
    ray_start = time.perf_counter() - t0

    def ray_ex(workers: int):
        return tw.hpo.RayExecutor(workers=workers, keep_workers=True)

    trivial, slow = make_task(0.0), make_task(1.0)
    t0 = time.perf_counter()
    timed_search(trivial, 2, ray_ex(2))  # starts both workers, kept for the timed runs
    warm_up = time.perf_counter() - t0
    timed_search(trivial, 2, "local")  # the driver's own first trial (lazy imports, first model)
    local_s, ray1_s, one_s, two_s = [], [], [], []
    for _ in range(args.runs):
        local_s.append(timed_search(trivial, args.trivial, "local"))
        ray1_s.append(timed_search(trivial, args.trivial, ray_ex(1)))
        one_s.append(timed_search(slow, args.slow, ray_ex(1)))
        two_s.append(timed_search(slow, args.slow, ray_ex(2)))
    tw.hpo.RayExecutor.release()
    ray.shutdown()

    med = statistics.median
    per_trial = [(r - l) / args.trivial * 1000 for r, l in zip(ray1_s, local_s)]
    speedups = [o / t for o, t in zip(one_s, two_s)]
    load = ", ".join(f"{v:.1f}" for v in os.getloadavg())
    print(f"machine: {os.cpu_count()} CPUs, load average {load} (1, 5, 15 min) at the end; Ray start "
          f"{ray_start:.1f} s, first search with 2 fresh workers {warm_up:.1f} s")
    print(f"{'':34}{'median':>10}{'runs':>30}")
    print(f"{'local, ' + str(args.trivial) + ' trivial trials (s)':34}{med(local_s):>10.2f}"
          f"{', '.join(f'{v:.2f}' for v in local_s):>30}")
    print(f"{'ray 1 worker, same trials (s)':34}{med(ray1_s):>10.2f}{', '.join(f'{v:.2f}' for v in ray1_s):>30}")
    print(f"{'ray overhead per trial (ms)':34}{med(per_trial):>10.1f}"
          f"{', '.join(f'{v:.1f}' for v in per_trial):>30}   goal <= 100")
    print(f"{'ray 1 worker, ' + str(args.slow) + ' x 1 s trials (s)':34}{med(one_s):>10.2f}"
          f"{', '.join(f'{v:.2f}' for v in one_s):>30}")
    print(f"{'ray 2 workers, same trials (s)':34}{med(two_s):>10.2f}{', '.join(f'{v:.2f}' for v in two_s):>30}")
    print(f"{'one slow trial on 1 worker (s)':34}{med(one_s) / args.slow:>10.2f}")
    print(f"speedup of 2 workers over 1: {med(speedups):.2f}x (runs {', '.join(f'{v:.2f}' for v in speedups)}; "
          "goal >= 1.8x)")


if __name__ == "__main__":
    main()
