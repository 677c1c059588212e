"""A notebook as one offline HTML page: nbconvert's lab template, with every script inline.

nbconvert's own HTML loads require.js, the widget manager, jupyter_bokeh and MathJax from
public CDNs, so offline its widgets and plots stay empty. :func:`export_notebook` renders the
notebook with a template that inlines what the page uses instead: BokehJS (when it holds a
plot), the widget manager and jupyter_bokeh (when it holds widgets), MathJax (when it holds
math), and drops the outputs that load BokehJS in the notebook (the page has it already).

Widgets render from the widget state saved in the notebook. JupyterLab does not save it by
default; without it every widget would show as text like ``LRFinder(children=(HBox(...``, so a
notebook whose widget outputs have no saved state is refused unless ``execute=True`` runs it
first (with nbclient, which saves the state of every widget the cells create).

Example:
    >>> import nbformat, tunewidgets as tw
    >>> nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell("Loss $L = -\\\\log p$")])
    >>> nbformat.write(nb, "math.ipynb")
    >>> out = tw.export_notebook("math.ipynb", "math.html")
    >>> html = out.read_text()
    >>> "window.MathJax" in html, tw.export.external_references(html)
    (True, [])
"""
from __future__ import annotations

import copy
import json
import os
import re
import subprocess
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from tunewidgets.export._output import GENERATOR, check_output
from tunewidgets.export._runtime import (
    bokehjs_scripts, mathjax_scripts, requirejs_script, widget_manager_scripts,
)

__all__ = ["export_notebook", "MissingWidgetStateError", "NotebookExecutionError", "NotebookTimeoutError",
           "external_references"]

TEMPLATES = Path(__file__).with_name("templates")
TEMPLATE_NAME = "tunewidgets_offline"

WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"
WIDGET_STATE = "application/vnd.jupyter.widget-state+json"
BOKEH_LOAD = "application/vnd.bokehjs_load.v0+json"
BOKEH_EXEC = "application/vnd.bokehjs_exec.v0+json"
_BOKEH_BANNER = re.compile(r"Loading BokehJS \.\.\.")
_NB_DOCS_JSON = re.compile(r"const docs_json = (\{.*?\});\s*const render_items", re.S)
_MATH = re.compile(r"\$\$|\$[^$\s][^$\n]*\$|\\\(|\\\[|\\begin\{")
_SCRIPT_BODY = re.compile(r"(<script\b[^>]*>).*?</script>", re.S | re.I)
_RESOURCE_ATTR = re.compile(
    r"<(?:img|script|iframe|audio|video|source|embed|link|object|track)\b[^>]*?\s(?:src|href|data|poster)\s*=\s*"
    r"[\"']?([^\"'\s>]+)", re.I)
_CSS_URL = re.compile(r"url\(\s*[\"']?([^\"')]+)", re.I)
_LOCAL = ("data:", "blob:", "#", "about:", "javascript:")


class MissingWidgetStateError(ValueError):
    """The notebook shows widgets but holds no saved state for them: run it first."""


class NotebookExecutionError(RuntimeError):
    """A cell raised while the notebook ran for the export."""


class NotebookTimeoutError(NotebookExecutionError):
    """A cell ran longer than the export's ``timeout``."""


def export_notebook(notebook: str | os.PathLike[str], out: str | os.PathLike[str] | None = None, *,
                    execute: bool = False, timeout: float = 600, title: str | None = None,
                    kernel_name: str | None = None, overwrite: bool = False) -> Path:
    """Write ``notebook`` (an ``.ipynb`` file) as one self-contained HTML file and return its path.

    Every widget and plot renders in the page with the network cut off; nothing is loaded
    from outside the file. ``out`` defaults to the notebook's path with ``.html``.

    Args:
        notebook: a notebook saved with its outputs (and, when it shows widgets, with its widget
            state: in JupyterLab, Settings > Save Widget State Automatically, then save), or any
            notebook when ``execute`` is True.
        execute: run all cells first, in the notebook's folder, with the kernel the notebook
            names (the saved notebook is left as it is). Needed when widget state was not saved.
        timeout: seconds one cell may run when executing.
        title: the page title (default: the notebook's title, or its file name).
        kernel_name: the kernel to execute with (default: the notebook's, else ``python3``).
        overwrite: replace an existing ``out`` that is not a page tunewidgets wrote (by default
            such a file, a run store's file or a folder is refused before anything runs).

    Raises:
        ValueError: a notebook that is not there or cannot be read, a bad ``out``.
        MissingWidgetStateError: widget outputs without saved state and ``execute`` False.
        NotebookExecutionError: a cell raised while executing (``NotebookTimeoutError``: it ran past
            ``timeout``).

    Same as ``python -m tunewidgets.export NOTEBOOK.ipynb -o OUT.html [--execute] [--overwrite]``.

    Example:
        >>> import nbformat, tunewidgets as tw
        >>> nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell("# Results")])
        >>> nbformat.write(nb, "results.ipynb")
        >>> tw.export_notebook("results.ipynb").name
        'results.html'
    """
    import nbformat

    source = Path(notebook)
    if source.suffix != ".ipynb" or not source.is_file():
        raise ValueError(f"notebook: no .ipynb file at {str(source)!r}; give the path of a saved notebook")
    target = Path(out) if out is not None else source.with_suffix(".html")
    example = source.with_suffix(".html").name
    target = check_output(target, overwrite=overwrite, field="out", example=example,
                          flag="overwrite=True (--overwrite)")
    if target.suffix.lower() not in (".html", ".htm"):
        raise ValueError(f"out: {str(target)!r} should end in .html, e.g. {example!r}")
    if not timeout or timeout <= 0:
        raise ValueError(f"timeout: must be a number of seconds > 0, got {timeout!r}; e.g. 600")

    nb = _read(nbformat, source)
    if execute:
        nb = _execute(nb, source, timeout=timeout, kernel_name=kernel_name)
    elif _never_run(nb):
        warnings.warn(f"{source.name} holds no outputs: the page shows its code only; export with "
                      "execute=True (--execute) to run it first", stacklevel=2)
    _check_widget_state(nb, source.name, executed=execute)
    text = notebook_html(nb, title=title or nb.metadata.get("title") or source.stem, path=source.parent)
    outside = external_references(text)
    if outside:
        shown = ", ".join(outside[:5]) + (", ..." if len(outside) > 5 else "")
        warnings.warn(f"{source.name}: the page refers to {len(outside)} file(s) outside it, which will not "
                      f"load offline: {shown}; put images in the notebook (as attachments or outputs)",
                      stacklevel=2)
    target.write_text(text, encoding="utf-8")
    return target


def _read(nbformat: Any, source: Path) -> Any:
    """The notebook at ``source``, or ValueError naming it when it is not a readable notebook."""
    try:
        nb = nbformat.read(source, as_version=4)
    except (ValueError, KeyError, TypeError, AttributeError, UnicodeDecodeError, RecursionError) as exc:
        detail = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ValueError(f"notebook: {source.name} is not a readable notebook ({detail[:200]}); "
                         "open it in JupyterLab and save it again, or check that it is an .ipynb file") from None
    if not isinstance(getattr(nb, "cells", None), list):
        raise ValueError(f"notebook: {source.name} is not a readable notebook (it has no list of cells)")
    return nb


def notebook_html(nb: Any, *, title: str, path: str | os.PathLike[str] = ".") -> str:
    """The offline page of an in-memory notebook (its widget state already saved in it)."""
    from nbconvert import HTMLExporter

    nb = copy.deepcopy(nb)
    _drop_bokeh_loaders(nb)
    state = nb.metadata.get("widgets", {}).get(WIDGET_STATE, {}).get("state", {})
    docs, has_exec = _bokeh_documents(nb, state)
    has_bokeh_widget = any(e.get("model_module") == "@bokeh/jupyter_bokeh" for e in state.values())
    head = [GENERATOR]
    if docs is None or docs or has_exec:
        head.append(bokehjs_scripts(docs))  # None: a plot that cannot be read back; all components
    head.append(requirejs_script())
    offline = {
        "head_scripts": "\n".join(head),
        "widget_scripts": widget_manager_scripts(jupyter_bokeh=has_bokeh_widget) if state else "",
        "mathjax": mathjax_scripts() if _has_math(nb) else "",
    }
    exporter = HTMLExporter(template_name=TEMPLATE_NAME, extra_template_basedirs=[str(TEMPLATES)],
                            embed_images=True)
    body, _resources = exporter.from_notebook_node(
        nb, resources={"tunewidgets": offline, "metadata": {"name": title, "path": str(path)}})
    return body


def external_references(page: str) -> list[str]:
    """Addresses of files that ``page`` would load from outside itself (images, scripts, styles).

    Script bodies are skipped (their text is code, not requests); links a reader clicks
    (``<a href>``) are not loads and are not listed.
    """
    markup = _SCRIPT_BODY.sub(r"\1</script>", page)
    found = [m.group(1) for m in _RESOURCE_ATTR.finditer(markup)]
    found += [m.group(1).strip() for m in _CSS_URL.finditer(markup)]
    return sorted({url for url in found if not url.lower().startswith(_LOCAL)})


def _execute(nb: Any, source: Path, *, timeout: float, kernel_name: str | None) -> Any:
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError, CellTimeoutError

    name = kernel_name or nb.metadata.get("kernelspec", {}).get("name") or "python3"
    started: list[int] = []  # the cells begun, in order: the last is the one that ran out of time

    def on_cell_start(cell: Any, cell_index: int) -> None:
        started.append(cell_index)

    client = NotebookClient(nb, timeout=timeout, kernel_name=name, store_widget_state=True,
                            resources={"metadata": {"path": str(source.parent.resolve())}},
                            on_cell_start=on_cell_start)
    env = {**os.environ, "BOKEH_RESOURCES": "inline"}  # no notebook output reaches for a CDN
    try:
        # the kernel's own stderr (its start-up warnings, the traceback of a kernel stopped at a
        # timeout) is not the notebook's output: errors reach the caller as one exception
        client.execute(env=env, stderr=subprocess.DEVNULL)
    except CellExecutionError as exc:
        index = next((i for i, c in enumerate(nb.cells)
                      if any(o.get("output_type") == "error" for o in c.get("outputs", []))), None)
        where = f"cell {index}" if index is not None else "a cell"
        raise NotebookExecutionError(f"{source.name}: {where} raised {exc.ename}: {exc.evalue}; fix the "
                                     "notebook, or export it as saved (without execute)") from exc
    except CellTimeoutError as exc:
        where = f"cell {started[-1]}" if started else "a cell"
        raise NotebookTimeoutError(f"{source.name}: {where} ran longer than the timeout of {timeout:g} s; "
                                     "give a larger timeout (--timeout) or make the cell quicker") from exc
    return nb


def _never_run(nb: Any) -> bool:
    code = [c for c in nb.cells if c.cell_type == "code" and c.source.strip()]
    return bool(code) and not any(c.get("outputs") for c in code)


def _widget_views(nb: Any) -> Iterator[tuple[int, str]]:
    for index, cell in enumerate(nb.cells):
        for output in cell.get("outputs", []):
            view = output.get("data", {}).get(WIDGET_VIEW)
            if view and view.get("model_id"):
                yield index, view["model_id"]


def _check_widget_state(nb: Any, name: str, *, executed: bool) -> None:
    views = list(_widget_views(nb))
    if not views:
        return
    state = nb.metadata.get("widgets", {}).get(WIDGET_STATE, {}).get("state", {})
    missing = [(i, m) for i, m in views if m not in state]
    cells = sorted({i for i, _ in missing})
    if missing and len(missing) == len(views) and not executed:
        raise MissingWidgetStateError(
            f"{name}: its {len(views)} widget output(s) (cells {_cells(cells)}) have no saved widget state, "
            "so they would show as text such as 'LRFinder(children=...)'. JupyterLab saves widget state "
            "only with Settings > Save Widget State Automatically. Export with execute=True "
            f"(python -m tunewidgets.export {name} -o OUT.html --execute) to run the notebook first, "
            "or turn that setting on, run all cells and save the notebook.")
    if missing:
        warnings.warn(f"{name}: {len(missing)} of {len(views)} widget output(s) (cells {_cells(cells)}) have no "
                      "saved state (their widgets were closed, or come from an earlier kernel); they show "
                      "as text", stacklevel=3)


def _cells(indices: list[int]) -> str:
    return ", ".join(map(str, indices[:8])) + (", ..." if len(indices) > 8 else "")


def _drop_bokeh_loaders(nb: Any) -> None:
    """Remove the outputs that load BokehJS into a notebook (``output_notebook``, the widgets'
    inline loader) and its "Loading BokehJS ..." banner: the page carries BokehJS itself."""
    for cell in nb.cells:
        if "outputs" not in cell:
            continue
        cell.outputs = [o for o in cell.outputs if not (
            BOKEH_LOAD in o.get("data", {})
            or _BOKEH_BANNER.search(str(o.get("data", {}).get("text/html", ""))))]


def _bokeh_documents(nb: Any, state: dict[str, Any]) -> tuple[list[dict[str, Any]] | None, bool]:
    """The Bokeh documents the page draws (None if one cannot be read), and whether static
    plots (``bokeh.io.show``) are among them."""
    docs: list[dict[str, Any]] | None = []
    for entry in state.values():
        if entry.get("model_module") == "@bokeh/jupyter_bokeh":
            bundle = entry.get("state", {}).get("render_bundle")
            bundle = json.loads(bundle) if isinstance(bundle, str) else bundle
            if bundle:
                docs.extend(bundle.get("docs_json", {}).values())
    has_exec = False
    for cell in nb.cells:
        for output in cell.get("outputs", []):
            data = output.get("data", {})
            if BOKEH_EXEC in data:
                has_exec = True
                match = _NB_DOCS_JSON.search(str(data.get("application/javascript", "")))
                try:
                    found = json.loads(match.group(1)) if match else None
                except ValueError:
                    found = None
                if found is None or docs is None:
                    docs = None
                else:
                    docs.extend(found.values())
    return docs, has_exec


def _has_math(nb: Any) -> bool:
    for cell in nb.cells:
        if cell.cell_type == "markdown" and _MATH.search(cell.source):
            return True
        for output in cell.get("outputs", []):
            data = output.get("data", {})
            if "text/latex" in data or _MATH.search(str(data.get("text/markdown", ""))):
                return True
    return False
