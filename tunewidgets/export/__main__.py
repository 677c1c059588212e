"""``python -m tunewidgets.export NOTEBOOK.ipynb -o OUT.html [--execute] [--overwrite]``: a notebook as
one offline HTML file (see :func:`tunewidgets.export.export_notebook`).

Every error (a notebook that cannot be read, a cell that runs past ``--timeout``, an
output path that is a folder or a file it must not replace) is one line on stderr and exit
code 2, with no traceback; a cell that raises is exit code 1; 0 is success."""
from __future__ import annotations

import argparse
import sys
import time
import warnings

from tunewidgets.export._notebook import (
    MissingWidgetStateError, NotebookExecutionError, NotebookTimeoutError, export_notebook,
)

__all__ = ["main"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tunewidgets.export",
        description="Write a notebook as one self-contained HTML file whose widgets and plots render "
                    "offline. The notebook needs saved widget state, or --execute.")
    parser.add_argument("notebook", help="the .ipynb file")
    parser.add_argument("-o", "--output", help="the .html file to write (default: the notebook's name with .html)")
    parser.add_argument("--execute", action="store_true",
                        help="run all cells first (in the notebook's folder), saving the widget state; "
                             "needed when the notebook was saved without it (JupyterLab's default)")
    parser.add_argument("--timeout", type=float, default=600, help="seconds one cell may run (default 600)")
    parser.add_argument("--title", help="the page title (default: the notebook's file name)")
    parser.add_argument("--overwrite", action="store_true",
                        help="replace an existing output file that is not a page tunewidgets wrote")
    args = parser.parse_args(argv)

    began = time.perf_counter()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            out = export_notebook(args.notebook, args.output, execute=args.execute, timeout=args.timeout,
                                  title=args.title, overwrite=args.overwrite)
        except (ValueError, TypeError, MissingWidgetStateError, NotebookTimeoutError) as exc:
            print(f"error: {_one_line(exc)}", file=sys.stderr)
            return 2
        except NotebookExecutionError as exc:  # the notebook's own code raised
            print(f"error: {_one_line(exc)}", file=sys.stderr)
            return 1
        except OSError as exc:  # a write that failed: a full disk, no permission
            print(f"error: {_one_line(exc)}", file=sys.stderr)
            return 2
    for warning in caught:
        if issubclass(warning.category, UserWarning):
            print(f"warning: {warning.message}", file=sys.stderr)
    size = out.stat().st_size / 1e6
    print(f"wrote {out} ({size:.1f} MB) in {time.perf_counter() - began:.1f} s; it renders offline")
    return 0


def _one_line(exc: BaseException) -> str:
    """The error's message on one line (a message of several lines is joined)."""
    return " ".join(part.strip() for part in str(exc).splitlines() if part.strip()) or type(exc).__name__


if __name__ == "__main__":
    sys.exit(main())
