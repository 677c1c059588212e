"""Schedule preview redraw: time from moving a control to the new data in the plot and the patch sent.

One ``SchedulePreview`` per shape in ``tw.schedules.CATALOGUE``, in one process, no kernel. For
each shape a numeric control of the spec (or the base lr slider, for shapes without one) is set
back and forth ``--changes`` times. Each change runs what a slider move in the browser runs: the
control's observer, the spec rebuilt and validated, ``spec.preview``, decimation, ONE assignment
of the source's ``.data``, and the ``BokehModel`` building its patch message (``send`` is wrapped
to timestamp it and count its bytes; without a kernel the comm drops it). Timed: change -> data
assigned, change -> last patch sent, and a plain ``spec.preview()`` of the same spec and run as the
reference. Medians per shape; the last line is the worst shape's change-to-data median and its
ratio to that shape's plain preview (the goal is < 100 ms).

    python bench/schedule_preview_redraw.py                     # 10,000-step run, 100 per epoch
    python bench/schedule_preview_redraw.py --total-steps 1000 --changes 50
"""
from __future__ import annotations

import argparse
import statistics
import time
from typing import Any

import torch

import tunewidgets as tw
from tunewidgets.plots.schedule import SCHEDULE
from tunewidgets.widgets._spec_controls import fit_to_run

_NUMERIC = ("lr", "float", "int")


def pick_control(w: Any) -> tuple[str, Any, list[Any]]:
    """A numeric control of the shown spec and two valid values to alternate between."""
    for field in w.editor.fields.values():
        if field.control.kind not in _NUMERIC or field.control.optional:
            continue
        value, spec = field.value(), w.spec
        if field.control.kind == "int":
            candidates = [value + 1, value - 1]
        else:
            candidates = [value * 1.1, value * 0.9] if value else [field.input.max / 10]
        for other in candidates:
            field.input.value = other
            ok = w.error == "" and w.spec != spec
            field.input.value = value
            if ok:
                return field.name, field.input, [other, value]
    return "base_lr", w.base_lr_slider, [w.base_lr * 1.1, w.base_lr]


class SendMeter:
    """Wraps a BokehModel's ``send``: time of the last call and bytes sent since ``reset()``."""

    def __init__(self, view: Any) -> None:
        self.last, self.bytes = 0.0, 0
        original = view.send

        def send(content: Any, buffers: Any = None) -> None:
            self.last = time.perf_counter()
            self.bytes += len(str(content.get("payload", ""))) + sum(len(b) for b in buffers or ())
            original(content, buffers)

        view.send = send

    def reset(self) -> None:
        self.last, self.bytes = 0.0, 0


def bench_shape(name: str, args: argparse.Namespace) -> dict[str, Any]:
    spec = fit_to_run(tw.schedules.CATALOGUE[name](), args.total_steps)
    w = tw.widgets.SchedulePreview(spec, total_steps=args.total_steps, steps_per_epoch=args.steps_per_epoch)
    assert w.error == "", w.error
    field, control, values = pick_control(w)
    meter = SendMeter(w.plot)
    stamp = {"data": 0.0}
    source = w.figure.select_one({"name": SCHEDULE})

    def on_data(event: Any) -> None:
        if getattr(event, "model", None) is source:
            stamp["data"] = time.perf_counter()

    w.figure.document.on_change(on_data)
    to_data, to_sent, sizes, plain = [], [], [], []
    for i in range(args.changes + 2):  # the first two warm up
        meter.reset()
        stamp["data"] = 0.0
        t0 = time.perf_counter()
        control.value = values[i % 2]
        t1 = time.perf_counter()
        assert w.error == "" and stamp["data"] > 0 and meter.last > 0, (name, w.error)
        p0 = time.perf_counter()
        w._preview(w.spec, w.total_steps, w.steps_per_epoch, w.base_lr)  # plain spec.preview()
        p1 = time.perf_counter()
        if i >= 2:
            to_data.append(stamp["data"] - t0)
            to_sent.append(max(meter.last, t1) - t0)
            sizes.append(meter.bytes)
            plain.append(p1 - p0)
    return {"shape": name, "field": field, "points": len(source.data["step"]),
            "to_data": statistics.median(to_data) * 1e3, "to_sent": statistics.median(to_sent) * 1e3,
            "plain": statistics.median(plain) * 1e3, "kb": statistics.median(sizes) / 1024}


def main(argv: list[str] | None = None) -> float:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--total-steps", type=int, default=10_000)
    ap.add_argument("--steps-per-epoch", type=int, default=100)
    ap.add_argument("--changes", type=int, default=30, help="control changes per shape")
    ap.add_argument("--threads", type=int, default=1, help="torch CPU threads (1 gives steady timings)")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)

    print(f"run: {args.total_steps} steps, {args.steps_per_epoch} per epoch; {args.changes} changes per shape")
    print(f"{'shape':20s} {'control':14s} {'points':>6s} {'->data ms':>10s} {'->sent ms':>10s} "
          f"{'preview ms':>10s} {'patch KB':>9s}")
    rows = [bench_shape(name, args) for name in tw.schedules.CATALOGUE]
    for r in rows:
        print(f"{r['shape']:20s} {r['field']:14s} {r['points']:6d} {r['to_data']:10.2f} {r['to_sent']:10.2f} "
              f"{r['plain']:10.2f} {r['kb']:9.1f}")
    worst = max(rows, key=lambda r: r["to_sent"])
    ratio = worst["to_data"] / worst["plain"]
    print(f"worst shape {worst['shape']}: change-to-data median {worst['to_data']:.2f} ms "
          f"(to patch sent {worst['to_sent']:.2f} ms; goal < 100 ms); ratio to plain preview "
          f"({worst['plain']:.2f} ms) {ratio:.2f}x")
    return worst["to_data"]


if __name__ == "__main__":
    main()
