"""LRFinder in a real kernel (nbclient): BokehJS loaded inline, drained by a task on the kernel's
loop between cells, and the saved widget state holding the final plot."""
from __future__ import annotations

import json

import pytest

from support.notebooks import cell_outputs_text, run_notebook, saved_bokeh_sources, write_notebook

pytestmark = pytest.mark.notebook

CELLS = [
    "import asyncio, torch\nimport tunewidgets as tw\ntorch.set_num_threads(1)\n"
    "finder = tw.widgets.LRFinder(tw.tasks.spirals(), optimizer='adam', steps=40, device='cpu', "
    "interval=0.05)\nfinder",
    "print('started', finder.run(), finder.session.draining_on_loop)",
    "await finder.wait_async()\n"
    "print('status', finder.status, finder.session.ticks > 0, finder.lr == finder.result.suggested)\n"
    "print('points', len(finder.figure.select_one({'name': 'lr_curve'}).data['lr']), len(finder.result))",
]


def _saved_curve(nb) -> list[float]:
    """The lr column of the plot as the notebook's saved widget state holds it."""
    state = nb.metadata["widgets"]["application/vnd.jupyter.widget-state+json"]["state"]
    bokeh = [w for w in state.values() if w["model_name"] == "BokehModel"]
    assert len(bokeh) == 1
    return saved_bokeh_sources(bokeh[0])["lr_curve"]["lr"]


def test_lr_finder_runs_on_the_kernel_loop_and_saves_its_final_plot(tmp_path):
    nb = run_notebook(write_notebook(tmp_path / "lr_finder.ipynb", CELLS), timeout=120)
    text = cell_outputs_text(nb)
    assert "started True True" in text  # drained by a task on the kernel's loop, not by the cell
    assert "status finished True True" in text and "points 40 40" in text
    first = {mime for out in nb.cells[0].outputs for mime in out.get("data", {})}
    assert "application/vnd.bokehjs_load.v0+json" in first  # BokehJS from the package, not a CDN
    assert "application/vnd.jupyter.widget-view+json" in first
    assert not any("cdn.bokeh.org" in json.dumps(out) for out in nb.cells[0].outputs)
    assert len(_saved_curve(nb)) == 40  # the saved state shows the finished curve, not the empty start
