"""Execute notebooks headlessly with nbclient, the way the notebook tests need it.

``run_notebook`` copies the notebook's folder to a scratch folder and runs the copy there, so
files a notebook writes next to itself (runs folders, reports) never land in the repository.
The kernel gets ``BOKEH_RESOURCES=inline`` so Bokeh never reaches for a CDN.

Example::

    from support.notebooks import run_notebook, cell_outputs_text

    nb = run_notebook("notebooks/01_lr_range_test.ipynb", timeout=120)
    assert "suggested lr" in cell_outputs_text(nb)
"""

from __future__ import annotations

import base64
import gzip
import json
import os
import re
import shutil
import tempfile
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import nbformat
import numpy as np
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError

__all__ = [
    "NotebookCellError",
    "KERNEL_ENV",
    "assert_ran_clean",
    "cell_outputs_text",
    "code_cell",
    "committed_code",
    "shown_bokeh_sources",
    "shown_widget",
    "widget_state",
    "run_notebook",
    "run_notebook_twice",
    "steady_text",
    "saved_bokeh_sources",
    "write_notebook",
]

#: Environment added to the kernel's: Bokeh loads BokehJS from the page, never from a CDN.
KERNEL_ENV: dict[str, str] = {"BOKEH_RESOURCES": "inline"}

#: Folders never copied along with a notebook (caches and outputs of earlier runs).
_IGNORED = shutil.ignore_patterns(
    ".ipynb_checkpoints", "__pycache__", "tunewidgets-runs", "runs", "mlruns"
)

_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")

_KERNELSPEC = {"name": "python3", "display_name": "Python 3 (ipykernel)", "language": "python"}


class NotebookCellError(AssertionError):
    """A cell raised while the notebook ran; the message shows the cell's source and traceback."""

    def __init__(self, notebook: str, index: int, source: str, ename: str, evalue: str,
                 traceback: str) -> None:
        self.notebook, self.index, self.source = notebook, index, source
        self.ename, self.evalue, self.traceback = ename, evalue, traceback
        super().__init__(
            f"{notebook}: cell {index} raised {ename}: {evalue}\n"
            f"----- cell source -----\n{source}\n"
            f"----- traceback -----\n{traceback}"
        )


def run_notebook(
    path: str | os.PathLike[str],
    *,
    timeout: float = 120,
    workdir: str | os.PathLike[str] | None = None,
    env: Mapping[str, str] | None = None,
    kernel_name: str = "python3",
) -> nbformat.NotebookNode:
    """Run every cell of the notebook at ``path`` and return the executed notebook.

    The notebook's folder is copied into ``workdir`` (a scratch folder, removed afterwards,
    when not given) and the kernel's working directory is the copy. ``timeout`` is the limit
    for ONE cell, in seconds. ``env`` adds variables to the kernel's environment (on top of
    ``os.environ`` and :data:`KERNEL_ENV`). A cell error raises :class:`NotebookCellError`
    naming the cell, its source and the traceback; the source notebook is never modified.
    """
    source = Path(path)
    if not source.is_file():
        raise ValueError(f"path: no notebook at {str(source)!r}; give the path of an .ipynb file")
    if not timeout or timeout <= 0:
        raise ValueError(f"timeout: must be a number of seconds > 0, got {timeout!r}; try 120")

    scratch = Path(tempfile.mkdtemp(prefix="tw-notebook-")) if workdir is None else Path(workdir)
    try:
        copy_dir = scratch / source.parent.name
        shutil.copytree(source.parent, copy_dir, ignore=_IGNORED, dirs_exist_ok=True)
        nb = nbformat.read(copy_dir / source.name, as_version=4)
        client = NotebookClient(
            nb,
            timeout=timeout,
            kernel_name=kernel_name,
            resources={"metadata": {"path": str(copy_dir)}},
        )
        kernel_env = {**os.environ, **KERNEL_ENV, **(env or {})}
        try:
            client.execute(env=kernel_env)
        except CellExecutionError as exc:
            raise _cell_error(source.name, nb, exc) from None
        return nb
    finally:
        if workdir is None:
            shutil.rmtree(scratch, ignore_errors=True)


def cell_outputs_text(nb_or_cell: nbformat.NotebookNode) -> str:
    """All text a notebook (or one cell) printed or displayed, as one string.

    Joins stream text, ``text/plain`` of results and displays, and errors as
    ``"Name: value"``; ANSI colour codes are removed.
    """
    cells = nb_or_cell.cells if "cells" in nb_or_cell else [nb_or_cell]
    parts: list[str] = []
    for cell in cells:
        for output in cell.get("outputs", []):
            kind = output.get("output_type")
            if kind == "stream":
                parts.append(_text(output.get("text", "")))
            elif kind in ("execute_result", "display_data"):
                parts.append(_text(output.get("data", {}).get("text/plain", "")))
            elif kind == "error":
                parts.append(f"{output.get('ename')}: {output.get('evalue')}")
    return _ANSI.sub("", "\n".join(p for p in parts if p))


# A duration takes the spaces before it: a width-padded one (``f"{t:4.1f} s"``) reads " 9.8 s" in
# one run and "10.2 s" in the next (or "( 9.8 s)" and "(10.2 s)"), and both mask to " <time>".
_TIMINGS = re.compile(r" *(?:\b\d+(?:\.\d+)?(?:e[-+]?\d+)?\s*(?:ms|s|seconds?|min)\b"
                      r"|\d{4}-\d{2}-\d{2}[ T]\d{2}:\d{2}:\d{2}(?:\.\d+)?(?:[+-]\d{2}:?\d{2}|Z)?)")


_ADDRESS = re.compile(r"\bat 0x[0-9a-f]+")
_WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"


def steady_text(nb: nbformat.NotebookNode) -> list[str]:
    """What each code cell printed or displayed (:func:`cell_outputs_text`), with what differs
    from one run to the next by nature masked: durations (``1.2 s``, ``30 ms``), timestamps,
    object addresses, and a widget's repr (its model ids), which reads ``<widget>``."""
    out = []
    for c in nb.cells:
        if c.cell_type != "code":
            continue
        outputs = [{"output_type": "stream", "text": "<widget>"} if _WIDGET_VIEW in o.get("data", {}) else o
                   for o in c.get("outputs", [])]
        text = cell_outputs_text(nbformat.from_dict({**c, "outputs": outputs}))
        out.append(_ADDRESS.sub("at <address>", _TIMINGS.sub(" <time>", text)))
    return out


def assert_same_text(first: nbformat.NotebookNode, second: nbformat.NotebookNode) -> None:
    """Both runs of a notebook printed and displayed the same text, cell by cell (:func:`steady_text`)."""
    a_text, b_text = steady_text(first), steady_text(second)
    assert len(a_text) == len(b_text)
    for i, (a, b) in enumerate(zip(a_text, b_text)):
        assert a == b, f"code cell {i} printed other text the second time:\n{a}\n---\n{b}"


def run_notebook_twice(path: str | os.PathLike[str], workdir: str | os.PathLike[str], *,
                       timeout: float = 120) -> tuple[nbformat.NotebookNode, nbformat.NotebookNode, float]:
    """Run the notebook at ``path`` twice in one folder (``workdir``: what the first run wrote,
    runs folders included, is there for the second), as a person running it again would.
    Returns both executed notebooks and the seconds the second run took."""
    import time

    first = run_notebook(path, timeout=timeout, workdir=workdir)
    began = time.perf_counter()
    second = run_notebook(path, timeout=timeout, workdir=workdir)
    return first, second, time.perf_counter() - began


def write_notebook(path: str | os.PathLike[str], cells: Iterable[str]) -> Path:
    """Write a notebook whose code cells hold ``cells`` (a cell starting with ``"# md\\n"``
    becomes a markdown cell with the rest of its text) and return its path.

    The notebook names the ``python3`` kernel, so JupyterLab starts it without asking.

    >>> import tempfile, pathlib
    >>> p = write_notebook(pathlib.Path(tempfile.mkdtemp()) / "t.ipynb", ["1 + 1"])
    >>> nbformat.read(p, as_version=4).cells[0].source
    '1 + 1'
    """
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = dict(_KERNELSPEC)
    nb.metadata["language_info"] = {"name": "python"}
    for text in cells:
        if text.startswith("# md\n"):
            nb.cells.append(nbformat.v4.new_markdown_cell(text[len("# md\n"):]))
        else:
            nb.cells.append(nbformat.v4.new_code_cell(text))
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, target)
    return target


def _text(value: str | list[str]) -> str:
    return "".join(value) if isinstance(value, list) else value


def _cell_error(name: str, nb: nbformat.NotebookNode, exc: CellExecutionError) -> NotebookCellError:
    for index, cell in enumerate(nb.cells):
        for output in cell.get("outputs", []):
            if output.get("output_type") == "error":
                return NotebookCellError(
                    name, index, cell.source, output.get("ename", ""), output.get("evalue", ""),
                    _ANSI.sub("", "\n".join(output.get("traceback", []))),
                )
    # Errors with no error output (a cell timeout, a dead kernel): keep nbclient's message.
    return NotebookCellError(name, -1, "", type(exc).__name__, str(exc.evalue or ""),
                             _ANSI.sub("", str(exc)))


def _decode_column(column: Any) -> list[Any]:
    """A data-source column as saved by Bokeh: a plain list, or a (gzipped) base64 ndarray."""
    if isinstance(column, dict) and column.get("type") == "ndarray":
        raw = base64.b64decode(column["array"]["data"])
        raw = gzip.decompress(raw) if raw[:2] == b"\x1f\x8b" else raw
        return np.frombuffer(raw, dtype=column["dtype"]).tolist()
    return list(column)


def saved_bokeh_sources(bokeh_entry: Mapping[str, Any]) -> dict[str, dict[str, list[Any]]]:
    """Named data sources of a BokehModel in a saved notebook's widget state: ``{name: {column: values}}``.

    ``bokeh_entry`` is one value of ``nb.metadata["widgets"][...]["state"]`` whose model is a BokehModel.
    """
    bundle = bokeh_entry["state"]["render_bundle"]
    bundle = json.loads(bundle) if isinstance(bundle, str) else bundle
    found: dict[str, dict[str, list[Any]]] = {}

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            attributes = node.get("attributes", {})
            if node.get("name") == "ColumnDataSource" and attributes.get("name"):
                found[attributes["name"]] = {k: _decode_column(v) for k, v in attributes["data"]["entries"]}
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(bundle["docs_json"])
    return found


# -- reading an executed or committed notebook ----------------------------------------------------
def code_cell(nb: nbformat.NotebookNode, marker: str) -> nbformat.NotebookNode:
    """The one code cell whose source contains ``marker``."""
    found = [c for c in nb.cells if c.cell_type == "code" and marker in c.source]
    assert len(found) == 1, f"expected one code cell containing {marker!r}, found {len(found)}"
    return found[0]


def widget_state(nb: nbformat.NotebookNode) -> dict[str, Any]:
    """The saved widget models of an executed notebook, by model id."""
    return nb.metadata["widgets"]["application/vnd.jupyter.widget-state+json"]["state"]


def shown_widget(cell: nbformat.NotebookNode) -> str:
    """The model id of the one widget a cell displays."""
    ids = [o["data"]["application/vnd.jupyter.widget-view+json"]["model_id"] for o in cell.outputs
           if "application/vnd.jupyter.widget-view+json" in o.get("data", {})]
    assert len(ids) == 1, f"expected one widget shown by the cell, found {len(ids)}: {cell.source[:200]}"
    return ids[0]


def shown_bokeh_sources(nb: nbformat.NotebookNode, marker: str) -> dict[str, dict[str, list[Any]]]:
    """The named data sources of the one Bokeh figure the cell with ``marker`` shows."""
    return saved_bokeh_sources(widget_state(nb)[shown_widget(code_cell(nb, marker))])


def assert_ran_clean(nb: nbformat.NotebookNode) -> None:
    """No cell raised and nothing went to stderr (no warnings in front of a workshop audience)."""
    outputs = [o for c in nb.cells for o in c.get("outputs", [])]
    assert [o for o in outputs if o.get("output_type") == "error"] == []
    assert [o["text"] for o in outputs if o.get("output_type") == "stream" and o.get("name") == "stderr"] == []


def committed_code(path: str | os.PathLike[str]) -> tuple[nbformat.NotebookNode, list[nbformat.NotebookNode]]:
    """The notebook as committed and its code cells, checked: valid, the python3 kernel, no outputs."""
    nb = nbformat.read(path, as_version=4)
    nbformat.validate(nb)
    assert nb.metadata["kernelspec"]["name"] == "python3"
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert code and all(c.outputs == [] and c.execution_count is None for c in code)
    return nb, code


def paced_model_source(name: str, seconds: float) -> str:
    """Cell source of ``class <name>``: the task's own model, ``seconds`` slower a step, so that a
    browser test can watch a run stream and act on it (needs ``torch``, ``time`` and ``task``)."""
    return (f"class {name}(torch.nn.Module):\n"
            f"    \"\"\"The task's model at {seconds * 1000:g} ms a step, so that a test can watch and act.\"\"\"\n"
            "    def __init__(self):\n"
            "        super().__init__()\n"
            "        self.inner = task.build_model()\n"
            "    def forward(self, x):\n"
            f"        time.sleep({seconds})\n"
            "        return self.inner(x)\n")
