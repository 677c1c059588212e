"""Waiting for a run in a cell while the page sends widget messages: each cell still ends.

JupyterLab marks a cell done (its ``[*]`` becomes a number) when the kernel's ``idle`` status
for that cell's request arrives. With ipykernel 7.4 a cell that *awaits* while comm messages
come in (BokehJS and the widgets send them as plots change) can have its ``idle`` published
under an earlier cell's request, so the page shows ``[*]`` forever after the cell ended. A cell
that blocks in ``widget.wait()`` never lets a comm message in mid-cell, so every cell gets its
own ``idle``. This module drives a real kernel the way a page does (Run All queues every cell,
comm messages stream in meanwhile) and checks that, and that the notebooks use the blocking
form.
"""
from __future__ import annotations

import ast
import collections
import inspect
import json
import queue
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.notebook

NOTEBOOKS = sorted((Path(__file__).resolve().parents[2] / "notebooks").glob("*.ipynb"))
SETUP = """
import torch
import tunewidgets as tw
from comm import create_comm
torch.set_num_threads(1)
finder = tw.widgets.LRFinder(tw.tasks.spirals(), optimizer="adam", steps=15, device="cpu", interval=0.02)
probe = create_comm(target_name="tunewidgets-probe")  # what the page's messages are sent to
print(probe.comm_id)
"""
CELLS = 6


def _run_queued_cells_under_comm_traffic(kc, comm_id: str) -> tuple[dict[str, int], set[str],
                                                                      dict[int, list[str]]]:
    ids = {kc.execute(f"finder.run()\nresult = finder.wait()\nprint('cell {i}', len(result))"): i
           for i in range(CELLS)}  # queued at once, as Run All does
    idle: set[str] = set()
    printed: dict[int, list[str]] = collections.defaultdict(list)
    deadline = time.monotonic() + 300  # a hang, not a speed limit: each cell takes well under a second
    while len(idle) < len(ids) and time.monotonic() < deadline:
        # one page message, then whatever the kernel published meanwhile: the wait below only
        # paces the page's messages (a slower machine sends fewer per cell); what is asserted,
        # that every cell ends with its own idle and output, holds at any pace
        kc.shell_channel.send(kc.session.msg("comm_msg", {"comm_id": comm_id, "data": {"n": 1}}))
        while True:
            try:
                msg = kc.get_iopub_msg(timeout=0.005)
            except queue.Empty:
                break
            parent = msg["parent_header"].get("msg_id")
            if parent not in ids:
                continue
            if msg["msg_type"] == "status" and msg["content"]["execution_state"] == "idle":
                idle.add(parent)
            elif msg["msg_type"] == "stream":
                printed[ids[parent]].append(msg["content"]["text"])
    return ids, idle, printed


def test_cells_that_wait_for_a_run_each_end_while_comm_messages_stream_in():
    from jupyter_client.manager import start_new_kernel

    km, kc = start_new_kernel(kernel_name="python3")
    try:
        outputs: list[dict] = []
        reply = kc.execute_interactive(SETUP, timeout=120, output_hook=outputs.append)
        assert reply["content"]["status"] == "ok", reply["content"]
        comm_id = next(m["content"]["text"].strip() for m in outputs if m["msg_type"] == "stream")
        ids, idle, printed = _run_queued_cells_under_comm_traffic(kc, comm_id)
    finally:
        kc.stop_channels()
        km.shutdown_kernel(now=True)
    assert sorted(ids[p] for p in idle) == list(range(CELLS))  # every cell ended on the page
    assert {i: "".join(text) for i, text in printed.items()} == {i: f"cell {i} 15\n" for i in range(CELLS)}


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebooks_wait_for_runs_in_blocking_cells(path):
    """No shipped notebook cell awaits at its top level (see the module doc)."""
    from IPython.core.inputtransformer2 import TransformerManager

    for index, cell in enumerate(json.loads(path.read_text())["cells"]):
        if cell["cell_type"] == "code":
            python = TransformerManager().transform_cell("".join(cell["source"]))  # magics as calls
            code = compile(python, f"{path.name} cell {index}", "exec", flags=ast.PyCF_ALLOW_TOP_LEVEL_AWAIT)
            assert not code.co_flags & inspect.CO_COROUTINE, (
                f"{path.name} cell {index} awaits at its top level; wait with .wait() instead")
