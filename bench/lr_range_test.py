"""LR range test overhead: ``tw.lr_range_test`` against a hand-written PyTorch loop and torch-lr-finder.

All three build a fresh model with the same init, draw the same batches (one seeded
permutation per pass over the data), use plain SGD and the same exponential ramp over
``--steps`` steps, and fetch each step's loss to the host (the divergence rule needs it).
Each timing covers one whole call: model and optimizer built, the steps, and whatever the
tool does around them (state saved and restored, suggestions). Repeats are interleaved in one
process; the table shows medians. The last line is the ratio ours/raw (goal: <= 1.03).

    python bench/lr_range_test.py                    # digits MLP, batch 64, CPU
    python bench/lr_range_test.py --steps 300 --repeats 11
    python bench/lr_range_test.py --device cuda      # on a GPU
    python bench/lr_range_test.py --own --steps 50      # your own model, optimizer and DataLoader

``--own`` passes ``model=``, ``optimizer=`` (torch SGD), ``loss=`` and a shuffled
``DataLoader`` instead of a task (the raw loop draws from the same kind of loader), so the
range test also saves and restores the model and optimizer, as it does for a user's objects.
"""
from __future__ import annotations

import argparse
import contextlib
import io
import statistics
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

import tunewidgets as tw


def make_task(batch_size: int = 64) -> tw.Task:
    """The digits task (MLP) when it exists, else a synthetic stand-in of the same shapes."""
    tasks = getattr(tw, "tasks", None)
    if tasks is not None and hasattr(tasks, "digits"):
        task = tasks.digits(batch_size=batch_size)
        return tw.Task(model=task.model, train=task.train, val=None, loss="cross_entropy", batch_size=batch_size)
    g = torch.Generator().manual_seed(0)
    x = torch.rand(1437, 64, generator=g)
    y = (x @ torch.randn(64, 10, generator=g)).argmax(1)

    def model() -> torch.nn.Module:
        return torch.nn.Sequential(torch.nn.Linear(64, 128), torch.nn.ReLU(), torch.nn.Linear(128, 10))
    return tw.Task(model=model, train=torch.utils.data.TensorDataset(x, y), loss="cross_entropy",
                   batch_size=batch_size)


CLOCKS: dict[str, Callable[[], float]] = {"wall": time.perf_counter, "cpu": time.thread_time}
_clock = [time.perf_counter]


def clock() -> float:
    """The clock the timings use: wall time, or with ``--clock cpu`` this thread's CPU time (steadier on a
    busy machine; CPU runs with one torch thread only, since other threads' work is not counted)."""
    return _clock[0]()


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _fresh(task: tw.Task, device: torch.device, seed: int) -> tuple[torch.nn.Module, Any]:
    torch.manual_seed(seed)
    model = task.build_model().to(device)
    batches = task.train_batches(task.batch_size, torch.Generator().manual_seed(seed), device)
    return model, batches


def _raw_ramp(model: torch.nn.Module, opt: torch.optim.Optimizer, batches: Any, device: torch.device,
              num_iter: int, start_lr: float, end_lr: float, move: bool) -> list[float]:
    """The hand-written loop: same exponential ramp, one loss fetch per step, a new pass when data runs out."""
    lrs = (start_lr * (end_lr / start_lr) ** (np.arange(num_iter) / (num_iter - 1))).tolist()
    it = iter(batches)
    losses = []
    model.train()
    for lr in lrs:
        try:
            x, y = next(it)
        except StopIteration:
            it = iter(batches)
            x, y = next(it)
        if move:
            x, y = x.to(device), y.to(device)
        opt.param_groups[0]["lr"] = lr
        opt.zero_grad(set_to_none=True)
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        opt.step()
        losses.append(loss.item())
    return losses


def run_raw(task: tw.Task, device: torch.device, num_iter: int, start_lr: float, end_lr: float,
            seed: int = 0) -> tuple[int, float]:
    """What a careful person writes by hand, building the model and batches inside the timing."""
    _sync(device)
    t0 = clock()
    with torch.random.fork_rng(devices=[]):
        model, batches = _fresh(task, device, seed)
        opt = torch.optim.SGD(model.parameters(), lr=start_lr)
        losses = _raw_ramp(model, opt, batches, device, num_iter, start_lr, end_lr, move=False)
    _sync(device)
    return len(losses), clock() - t0


def _own_objects(task: tw.Task, device: torch.device, seed: int) -> tuple[torch.nn.Module, Any, Any]:
    """A user's own model, SGD optimizer and shuffled DataLoader (seeded generator)."""
    torch.manual_seed(seed)
    model = task.build_model().to(device)
    opt = torch.optim.SGD(model.parameters(), lr=1e-7)
    loader = torch.utils.data.DataLoader(task.train, batch_size=task.batch_size, shuffle=True,
                                         generator=torch.Generator().manual_seed(seed))
    return model, opt, loader


def run_raw_own(task: tw.Task, device: torch.device, num_iter: int, start_lr: float, end_lr: float,
                seed: int = 0) -> tuple[int, float]:
    """The raw loop on the user's own objects (built outside the timing, as a user has them)."""
    model, opt, loader = _own_objects(task, device, seed)
    _sync(device)
    t0 = clock()
    losses = _raw_ramp(model, opt, loader, device, num_iter, start_lr, end_lr, move=True)
    _sync(device)
    return len(losses), clock() - t0


def run_ours_own(task: tw.Task, device: torch.device, num_iter: int, start_lr: float, end_lr: float,
                 seed: int = 0) -> tuple[int, float]:
    model, opt, loader = _own_objects(task, device, seed)
    _sync(device)
    t0 = clock()
    res = tw.lr_range_test(model=model, optimizer=opt, loss="cross_entropy", data=loader, start_lr=start_lr,
                           end_lr=end_lr, steps=num_iter, diverge=np.inf)
    _sync(device)
    return len(res.lrs), clock() - t0


def run_ours(task: tw.Task, device: torch.device, num_iter: int, start_lr: float, end_lr: float,
             seed: int = 0) -> tuple[int, float]:
    _sync(device)
    t0 = clock()
    res = tw.lr_range_test(task, optimizer="sgd", start_lr=start_lr, end_lr=end_lr, steps=num_iter,
                           device=str(device), seed=seed, diverge=np.inf)
    _sync(device)
    return len(res.lrs), clock() - t0


def run_torch_lr_finder(task: tw.Task, device: torch.device, num_iter: int, start_lr: float, end_lr: float,
                        seed: int = 0) -> tuple[int, float]:
    from torch_lr_finder import LRFinder, TrainDataLoaderIter

    _sync(device)
    t0 = clock()
    with torch.random.fork_rng(devices=[]):
        model, batches = _fresh(task, device, seed)
        opt = torch.optim.SGD(model.parameters(), lr=start_lr)
        sink = io.StringIO()
        with contextlib.redirect_stdout(sink), contextlib.redirect_stderr(sink):
            finder = LRFinder(model, opt, torch.nn.CrossEntropyLoss(), device=device)
            finder.range_test(TrainDataLoaderIter(batches), start_lr=start_lr, end_lr=end_lr,
                              num_iter=num_iter, step_mode="exp", diverge_th=float("inf"))
            finder.reset()
    _sync(device)
    return len(finder.history["lr"]), clock() - t0


CONTENDERS: dict[str, Callable[..., tuple[int, float]]] = {
    "raw loop": run_raw, "tw.lr_range_test": run_ours, "torch-lr-finder": run_torch_lr_finder,
}
OWN_CONTENDERS: dict[str, Callable[..., tuple[int, float]]] = {
    "raw loop": run_raw_own, "tw.lr_range_test": run_ours_own,
}


def measure(task: tw.Task, device: torch.device, num_iter: int, repeats: int, start_lr: float = 1e-7,
            end_lr: float = 1.0, names: tuple[str, ...] | None = None,
            contenders: dict[str, Callable[..., tuple[int, float]]] = CONTENDERS) -> dict[str, list[float]]:
    """Seconds per call of each contender, repeats interleaved (after one warm-up call each)."""
    names = tuple(contenders) if names is None else names
    times: dict[str, list[float]] = {name: [] for name in names}
    for name in names:
        contenders[name](task, device, num_iter, start_lr, end_lr)
    for _ in range(repeats):
        for name in names:
            steps, seconds = contenders[name](task, device, num_iter, start_lr, end_lr)
            if steps != num_iter:
                raise RuntimeError(f"{name} did {steps} steps instead of {num_iter}")
            times[name].append(seconds)
    return times


def main(argv: list[str] | None = None) -> float:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--steps", "--num-iter", dest="steps", type=int, default=100)
    ap.add_argument("--repeats", type=int, default=9)
    ap.add_argument("--threads", type=int, default=1, help="torch CPU threads (1 gives steadier timings)")
    ap.add_argument("--clock", choices=sorted(CLOCKS), default="wall")
    ap.add_argument("--own", action="store_true", help="your own model, optimizer and DataLoader instead of a task")
    args = ap.parse_args(argv)
    if args.clock == "cpu" and (args.threads != 1 or args.device != "cpu"):
        ap.error("--clock cpu counts only this thread: use it with --threads 1 on the CPU")
    _clock[0] = CLOCKS[args.clock]

    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    task = make_task()
    times = measure(task, device, args.steps, args.repeats,
                    contenders=OWN_CONTENDERS if args.own else CONTENDERS)
    med = {name: statistics.median(ts) for name, ts in times.items()}
    raw = med["raw loop"]
    kind = "own model/optimizer/DataLoader" if args.own else "task"
    print(f"LR range test ({kind}), {args.steps} steps, digits-sized MLP, batch {task.batch_size}, {device}, "
          f"{args.repeats} interleaved repeats (medians, {args.clock} clock)")
    print(f"{'':<20}{'ms/call':>10}{'us/step':>10}{'vs raw':>9}")
    for name, m in med.items():
        print(f"{name:<20}{m * 1e3:>10.2f}{m / args.steps * 1e6:>10.1f}{m / raw:>9.3f}")
    ratio = med["tw.lr_range_test"] / raw
    print(f"ratio ours/raw: {ratio:.3f}")
    return ratio


if __name__ == "__main__":
    main()
