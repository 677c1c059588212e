"""Engine overhead: ``tw.train`` against a hand-written PyTorch loop doing the same work.

Same model init, data, batch order (one seeded permutation per epoch), optimizer and number
of steps; repeats interleaved in one process; medians of steps per second. The last line is
the ratio tw/raw (1.0 = no overhead; the goal is >= 0.98 on the CPU, >= 0.97 with the store).

    python bench/engine_overhead.py                 # digits MLP, batch 64, CPU
    python bench/engine_overhead.py --store         # also tw.train writing a SQLite store
    python bench/engine_overhead.py --device cuda   # on a GPU
"""
from __future__ import annotations

import argparse
import statistics
import tempfile
import time

import torch

import tunewidgets as tw


def raw_loop(task: tw.Task, cfg: tw.TrainConfig, device: torch.device) -> tuple[int, float, float]:
    """The reference: what a careful person writes by hand (losses kept on device, fetched at the end)."""
    with torch.random.fork_rng(devices=[device.index or 0] if device.type == "cuda" else []):
        torch.manual_seed(cfg.seed)
        model = task.build_model(**cfg.model_kwargs).to(device)
        generator = torch.Generator().manual_seed(cfg.seed)
        x_all, y_all = (t.to(device) for t in task.train.tensors)
        opt = torch.optim.SGD(model.parameters(), lr=cfg.lr, momentum=cfg.momentum)
        loss_fn = torch.nn.CrossEntropyLoss()
        bs, n = cfg.batch_size or task.batch_size, x_all.shape[0]
        steps, losses = 0, []
        _sync(device)
        t0, c0 = time.perf_counter(), time.process_time()
        for _ in range(cfg.epochs):
            model.train()
            order = torch.randperm(n, generator=generator).to(device)
            for i in range(0, n, bs):
                idx = order[i:i + bs]
                loss = loss_fn(model(x_all[idx]), y_all[idx])
                loss.backward()
                opt.step()
                opt.zero_grad(set_to_none=True)
                losses.append(loss.detach())
                steps += 1
                if len(losses) >= cfg.log_every:
                    torch.stack(losses).tolist()
                    losses = []
        if losses:
            torch.stack(losses).tolist()
        _sync(device)
        return steps, time.perf_counter() - t0, time.process_time() - c0


def tw_loop(task: tw.Task, cfg: tw.TrainConfig, store: str | None) -> tuple[int, float, float]:
    """tw.train; wall time is the run's own train_time, CPU time spans the whole call (setup included)."""
    c0 = time.process_time()
    run = tw.train(task, cfg, store=store)
    cpu = time.process_time() - c0
    assert run.status == "finished", run.status
    return run.final["steps"], run.perf["train_time"], cpu


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def main(argv: list[str] | None = None) -> float:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--store", action="store_true", help="also time tw.train with a SQLite store")
    args = ap.parse_args(argv)

    torch.set_num_threads(1)
    task = tw.tasks.digits()
    # No validation during timing: both sides do the same training work only.
    task = tw.Task(model=task.model, train=task.train, val=None, loss="cross_entropy", batch_size=64)
    cfg = tw.TrainConfig(optimizer="sgd", lr=0.05, momentum=0.9, epochs=args.epochs, device=args.device,
                         eval_every=args.epochs, seed=0)
    device = tw.engine.devices.resolve_device(args.device)
    variants = {"raw": lambda: raw_loop(task, cfg, device), "tw": lambda: tw_loop(task, cfg, None)}
    tmp = tempfile.TemporaryDirectory()
    if args.store:
        variants["tw+store"] = lambda: tw_loop(task, cfg, f"{tmp.name}/runs")
    for fn in variants.values():  # warm-up
        fn()
    rates: dict[str, list[float]] = {k: [] for k in variants}
    cpu_rates: dict[str, list[float]] = {k: [] for k in variants}
    for _ in range(args.repeats):
        for name, fn in variants.items():
            steps, seconds, cpu = fn()
            rates[name].append(steps / seconds)
            cpu_rates[name].append(steps / cpu)
    med = {k: statistics.median(v) for k, v in rates.items()}
    cpu_med = {k: statistics.median(v) for k, v in cpu_rates.items()}
    print(f"device={device} epochs={args.epochs} repeats={args.repeats} batch=64 (digits MLP)")
    for name, value in med.items():
        spread = (min(rates[name]), max(rates[name]))
        print(f"{name:>9}: median {value:9.1f} steps/s wall (min {spread[0]:.1f}, max {spread[1]:.1f}); "
              f"{cpu_med[name]:9.1f} steps per CPU-second")
    # CPU time of tw includes model build and first-batch check; it bounds the overhead from above
    print(f"ratio tw/raw steps per CPU-second (incl. setup): {cpu_med['tw'] / cpu_med['raw']:.3f}")
    tmp.cleanup()
    if args.store:
        print(f"ratio tw+store/raw steps per second: {med['tw+store'] / med['raw']:.3f}")
    ratio = med["tw"] / med["raw"]
    print(f"ratio tw/raw steps per second: {ratio:.3f}")
    return ratio


if __name__ == "__main__":
    main()
