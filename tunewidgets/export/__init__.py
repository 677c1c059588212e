"""Offline HTML: notebooks and widgets as single files that render with no network.

- :func:`export_notebook` (``tw.export_notebook``; on the command line
  ``python -m tunewidgets.export NOTEBOOK.ipynb -o OUT.html [--execute]``) writes a notebook as
  one HTML file in which every widget and plot renders from disk, offline.
- ``widget.to_html(path)`` does the same for one tunewidgets widget, as it is now
  (``tunewidgets.widgets._embed.write_widget_html`` for any other ipywidget).

The scripts such a page needs are inline: BokehJS from the installed bokeh, and the widget
manager, require.js, the jupyter_bokeh bundle and MathJax shipped in ``js/`` (pinned versions,
fetched by ``tools/fetch_js.py``; ``js/manifest.json`` has their checksums). Importing this
package loads neither nbconvert nor Bokeh; exporting does.

Example:
    >>> import nbformat, tunewidgets as tw
    >>> nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("print(2 + 2)")])
    >>> nbformat.write(nb, "small.ipynb")
    >>> out = tw.export_notebook("small.ipynb", "small.html", execute=True)
    >>> ">4" in out.read_text().replace("\\n", "")
    True
"""
from __future__ import annotations

from tunewidgets.export._notebook import (
    MissingWidgetStateError, NotebookExecutionError, NotebookTimeoutError, export_notebook, external_references,
)

__all__ = ["export_notebook", "external_references", "MissingWidgetStateError", "NotebookExecutionError",
           "NotebookTimeoutError"]
