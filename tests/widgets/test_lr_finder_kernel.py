"""LRFinder in a real kernel (nbclient): BokehJS loaded inline, drained by a task on the kernel's
loop between cells, and the saved widget state holding the final plot."""
from __future__ import annotations

import base64
import gzip
import json

import numpy as np
import pytest

from support.notebooks import cell_outputs_text, run_notebook, write_notebook

pytestmark = pytest.mark.notebook

CELLS = [
    "import asyncio, torch\nimport tunewidgets as tw\ntorch.set_num_threads(1)\n"
    "finder = tw.widgets.LRFinder(tw.tasks.spirals(), num_iter=40, device='cpu', interval=0.05)\nfinder",
    "print('started', finder.run(), finder.session.draining_on_loop)",
    "await finder.wait_async()\n"
    "print('status', finder.status, finder.session.ticks > 0, finder.lr == finder.result.suggested)\n"
    "print('points', len(finder.figure.select_one({'name': 'lr_curve'}).data['lr']), len(finder.result))",
]


def _decode(column):
    if isinstance(column, dict) and column.get("type") == "ndarray":
        raw = base64.b64decode(column["array"]["data"])
        raw = gzip.decompress(raw) if raw[:2] == b"\x1f\x8b" else raw
        return np.frombuffer(raw, dtype=column["dtype"])
    return column


def _saved_curve(nb) -> list[float]:
    """The lr column of the plot as the notebook's saved widget state holds it."""
    state = nb.metadata["widgets"]["application/vnd.jupyter.widget-state+json"]["state"]
    bundles = [w["state"]["render_bundle"] for w in state.values() if w["model_name"] == "BokehModel"]
    assert len(bundles) == 1
    bundle = json.loads(bundles[0]) if isinstance(bundles[0], str) else bundles[0]
    found = []

    def walk(node):
        if isinstance(node, dict):
            if node.get("name") == "ColumnDataSource" and node.get("attributes", {}).get("name") == "lr_curve":
                found.append(dict(node["attributes"]["data"]["entries"]))
            for v in node.values():
                walk(v)
        elif isinstance(node, list):
            for v in node:
                walk(v)

    walk(bundle["docs_json"])
    return list(_decode(found[0]["lr"]))


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
