"""Sink overhead: what each sink (store, TensorBoard, MLflow) adds per step to ``tw.train`` on digits.

The same seeded run (digits MLP, batch 64, validation each epoch) without sinks and with each
sink; repeats interleaved in one process; medians of the whole call's wall time (setup, the
sinks' start and end, evaluation and the prediction images included). Per sink it prints the
extra milliseconds per step (the run's fixed costs spread over its steps) and the ratio of
steps per second with/without; the last line is the ratio with all three sinks at once.

    python bench/sink_overhead.py                 # 5 epochs (115 steps), 5 repeats, CPU
    python bench/sink_overhead.py --epochs 20     # longer runs: fixed costs weigh less
"""
from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import torch

import tunewidgets as tw

os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")  # no usage reports from MLflow during timing
from tunewidgets.engine.events import EventBus, Events
from tunewidgets.tracking import Store, StoreSink, TensorBoardSink
from tunewidgets.tracking.mlflow_sink import MLflowSink


def timed(task: tw.Task, cfg: tw.TrainConfig, **kwargs: Any) -> tuple[int, float, float]:
    """Steps, wall seconds and CPU seconds (all threads of the process) of one ``tw.train`` call."""
    t0, c0 = time.perf_counter(), time.process_time()
    run = tw.train(task, cfg, **kwargs)
    seconds, cpu = time.perf_counter() - t0, time.process_time() - c0
    assert run.status == "finished" and not run.sink_errors, (run.status, run.sink_errors)
    return run.final["steps"], seconds, cpu


def digits_records() -> dict[str, Any]:
    """The START, one LOG (25 steps), one EVAL (with 16 examples) and the END records of a digits run."""
    got: dict[str, Any] = {}
    trainer = tw.Trainer(tw.tasks.digits(), tw.TrainConfig(epochs=2, device="cpu"), eval_examples=16)
    for event in ("start", "log", "eval", "end"):
        trainer.on(event, lambda record, _e=event: got.setdefault(_e, dict(record)))
    trainer.fit()
    got["start"] = {k: v for k, v in got["start"].items() if k not in ("trainer", "config")}
    return got


def per_record(root: Path, repeats: int) -> None:
    """Median CPU milliseconds of each sink's handling of one record, on a bare bus."""
    records = digits_records()
    steps = len(records["log"]["rows"])
    makers = {
        "store": lambda: StoreSink(store),
        "tensorboard": lambda: TensorBoardSink(root / "tb-records", image_shape=(1, 8, 8)),
        "mlflow": lambda: MLflowSink(f"sqlite:///{root / 'mlflow.db'}"),
    }
    store = Store(root / "records")
    print(f"one record, median CPU ms over {repeats} runs of 20 LOG and 2 EVAL records each (LOG = {steps} steps; "
          "MLflow buffers metrics and writes them at its END here)")
    for name, make in makers.items():
        costs: dict[str, list[float]] = {"log": [], "eval": [], "start+end": []}
        for _ in range(repeats):
            bus, sink = EventBus(), make()
            sink.attach(bus)
            c0 = time.process_time()
            bus.fire(Events.START, dict(records["start"]))
            c1 = time.process_time()
            for _ in range(20):
                bus.fire(Events.LOG, records["log"])
            c2 = time.process_time()
            for _ in range(2):
                bus.fire(Events.EVAL, records["eval"])
            c3 = time.process_time()
            bus.fire(Events.END, dict(records["end"]))
            sink.close()
            c4 = time.process_time()
            costs["log"].append((c2 - c1) / 20 * 1e3)
            costs["eval"].append((c3 - c2) / 2 * 1e3)
            costs["start+end"].append((c1 - c0 + c4 - c3) * 1e3)
        log = statistics.median(costs["log"])
        print(f"{name:>13}: LOG {log:6.2f} ms ({log / steps:5.3f} ms per step), EVAL "
              f"{statistics.median(costs['eval']):6.2f} ms, START+END {statistics.median(costs['start+end']):7.1f} ms")
    store.close()


def main(argv: list[str] | None = None) -> float:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--epochs", type=int, default=5)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--device", default="cpu")
    args = ap.parse_args(argv)

    torch.set_num_threads(1)
    task = tw.tasks.digits()
    cfg = tw.TrainConfig(optimizer="sgd", lr=0.05, momentum=0.9, epochs=args.epochs, device=args.device, seed=0)
    tmp = tempfile.TemporaryDirectory()
    root = Path(tmp.name)
    uri = f"sqlite:///{root / 'mlflow.db'}"
    variants = {
        "none": lambda: timed(task, cfg),
        "store": lambda: timed(task, cfg, store=root / "runs"),
        "tensorboard": lambda: timed(task, cfg, tensorboard=root / "tb"),
        "tb no images": lambda: timed(task, cfg, callbacks=[TensorBoardSink(root / "tb", images=0)]),
        "mlflow": lambda: timed(task, cfg, mlflow=uri),
        "all three": lambda: timed(task, cfg, store=root / "runs", tensorboard=root / "tb", mlflow=uri),
    }
    for fn in variants.values():  # warm-up (MLflow creates its database here)
        fn()
    per_record(root, args.repeats)
    seconds: dict[str, list[float]] = {k: [] for k in variants}
    cpu: dict[str, list[float]] = {k: [] for k in variants}
    steps = 0
    for _ in range(args.repeats):
        for name, fn in variants.items():
            steps, s, c = fn()
            seconds[name].append(s)
            cpu[name].append(c)
    med = {k: statistics.median(v) for k, v in seconds.items()}
    cpu_med = {k: statistics.median(v) for k, v in cpu.items()}
    print(f"device={args.device} epochs={args.epochs} steps={steps} repeats={args.repeats} (digits MLP, batch 64)")
    base = med["none"]
    for name, value in med.items():
        extra = (value - base) / steps * 1e3
        cpu_extra = (cpu_med[name] - cpu_med["none"]) / steps * 1e3
        print(f"{name:>13}: median {value * 1e3:7.1f} ms per run, {steps / value:6.1f} steps/s, "
              f"{extra:+6.2f} ms wall and {cpu_extra:+6.2f} ms CPU per step vs none "
              f"(wall min {min(seconds[name]) * 1e3:.1f}, max {max(seconds[name]) * 1e3:.1f} ms)")
    for name in ("store", "tensorboard", "tb no images", "mlflow"):
        print(f"ratio {name}/none steps per second: {base / med[name]:.3f}")
    tmp.cleanup()
    ratio = base / med["all three"]
    print(f"ratio all three/none steps per second: {ratio:.3f}")
    return ratio


if __name__ == "__main__":
    main()
