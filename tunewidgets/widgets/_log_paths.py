"""Paths given to a widget's ``store=`` and ``tensorboard=``, checked when the widget is made: a
file where a folder must go is refused then, naming the argument, rather than at the first Launch.
Nothing is created (a missing folder is made by the first run that writes there).

Example:
    >>> import os, tempfile
    >>> from tunewidgets.widgets._log_paths import check_log_paths
    >>> folder = tempfile.mkdtemp()
    >>> check_log_paths(os.path.join(folder, "runs"), True)      # missing folders are fine
    >>> note = os.path.join(folder, "notes.txt")
    >>> with open(note, "w") as fh:
    ...     _ = fh.write("x")
    >>> check_log_paths(os.path.join(folder, "runs"), note)
    Traceback (most recent call last):
    ...
    ValueError: tensorboard: ...notes.txt is a file, not a folder; pass a folder such as 'runs/tensorboard' (or True)
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any

__all__ = ["check_log_paths"]


def check_log_paths(store: Any, tensorboard: Any = None) -> None:
    """Raise ValueError when ``store`` (a path) is a file that is no SQLite store or lies inside a
    file, or ``tensorboard`` (a path) is a file or lies inside one. Other values pass (their type
    is checked by the widget's logging settings)."""
    if isinstance(store, (str, os.PathLike)) and not isinstance(store, bytes) and str(store).strip():
        path = Path(os.fspath(store)).expanduser()
        if path.exists():
            from tunewidgets.tracking._schema import resolve_db_path

            resolve_db_path(path)  # an existing folder or file: creates nothing, names a bad file
        else:
            _no_file_above("store path", path, "tunewidgets-runs")
    if (isinstance(tensorboard, (str, os.PathLike)) and not isinstance(tensorboard, (bytes, bool))
            and str(tensorboard).strip()):
        path = Path(os.fspath(tensorboard)).expanduser()
        if path.exists() and not path.is_dir():
            raise ValueError(f"tensorboard: {path} is a file, not a folder; pass a folder such as "
                             "'runs/tensorboard' (or True)")
        _no_file_above("tensorboard", path, "runs/tensorboard")


def _no_file_above(name: str, path: Path, example: str) -> None:
    for parent in path.parents:
        if parent.exists():
            if not parent.is_dir():
                raise ValueError(f"{name}: {path} lies inside {parent}, which is a file, not a folder; "
                                 f"pick a path in a folder, e.g. {example!r}")
            return
