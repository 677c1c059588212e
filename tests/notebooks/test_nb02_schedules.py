"""Notebook 02 (schedules) runs headless with nbclient, in time, and shows what its text says."""
from __future__ import annotations

import re
import time
from pathlib import Path

import pytest

from support.notebooks import cell_outputs_text, run_notebook, shown_widget
from support.notebooks import code_cell as cell_with, widget_state as widget_states

pytestmark = pytest.mark.notebook

NOTEBOOK = Path(__file__).resolve().parents[2] / "notebooks" / "02_schedules.ipynb"
BUDGET_S = 90  # the whole notebook on a 2-core machine
HANG_S = 600  # a cell that runs this long hangs: the timeout catches hangs, not slowness


@pytest.fixture(scope="module")
def executed():
    t0 = time.perf_counter()
    nb = run_notebook(NOTEBOOK, timeout=HANG_S)
    return nb, time.perf_counter() - t0


def test_runs_headless_within_budget(executed):
    nb, elapsed = executed
    print(f"\nnotebook 02 ran in {elapsed:.1f} s (target {BUDGET_S} s on 2 CPU cores)")
    code = [c for c in nb.cells if c.cell_type == "code" and c.source.strip()]
    assert code and all(c.get("execution_count") for c in code)  # every cell ran (its time is reported, not asserted)


def test_previews_and_validation_messages(executed):
    nb, _ = executed
    text = cell_outputs_text(nb)
    assert "6 epochs x 23 steps = 138 optimizer steps" in text
    assert re.search(r"peak step\s+42: lr 4\.00e-01, momentum 0\.850", text)
    assert "highest lr of each 2-epoch cycle: 0.400, 0.210, 0.115" in text
    assert "OneCycle.max_lr: must be > 0, got -1" in text
    assert "Cyclic.max_lr: must be above base_lr (0.5), got 0.4" in text
    assert "Warmup.steps: the warm-up (200 steps) must be shorter than the run (138 steps)" in text


def test_widget_is_shown_and_driven_from_code(executed):
    nb, _ = executed
    states = widget_states(nb)
    preview = states[shown_widget(cell_with(nb, "preview = tw.widgets.SchedulePreview("))]
    assert "tw-schedule-preview" in preview["state"]["_dom_classes"]
    bokeh = [s for s in states.values() if s["model_name"] == "BokehModel"]
    assert any("schedule_lr" in s["state"]["render_bundle"] for s in bokeh)
    text = cell_outputs_text(cell_with(nb, "preview.pin()"))
    # the code to copy writes learning rates as the sliders show them
    assert "showing: tw.schedules.Cyclic(base_lr=2.00e-2, max_lr=4.00e-1, step_size_up=23, mode='triangular2')" in text
    assert "pinned:  tw.schedules.OneCycle(max_lr=4.00e-1)" in text
    # the spec goes into a TrainConfig
    assert "tw.schedules.Cyclic(" in cell_outputs_text(cell_with(nb, "schedule=preview.spec"))


def test_three_schedules_trained_and_compared(executed):
    nb, _ = executed
    text = cell_outputs_text(cell_with(nb, "runs[name] = tw.train("))
    found = {m[0]: (float(m[1]) / 100, float(m[2])) for m in
             re.findall(r"^(constant|one-cycle|cyclic): val accuracy ([\d.]+)%, val loss ([\d.]+)", text, re.M)}
    assert set(found) == {"constant", "one-cycle", "cyclic"}
    assert all(acc > 0.9 for acc, _loss in found.values()), found
    # what the text says: ending with a small learning rate gives a lower validation loss
    assert found["one-cycle"][1] < found["constant"][1] and found["cyclic"][1] < found["constant"][1], found
    figure = widget_states(nb)[shown_widget(cell_with(nb, "schedule_comparison_figure(runs)"))]
    bundle = figure["state"]["render_bundle"]
    assert all(f"compare_steps_{i}" in bundle for i in range(3))
    assert "cdn.bokeh.org" not in bundle
