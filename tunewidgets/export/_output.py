"""Where a page may be written: the one check of every user-named output path.

A report or an export writes HTML to a path the user names. A slip there must not cost data:
``tw.report(folder, folder / "runs.sqlite")`` would replace a whole store with a page. So
:func:`check_output` refuses, before any work, a path that is a run store's database, its
write-ahead log or shared-memory file, its writers folder, or any other existing file that is
not an HTML page tunewidgets wrote, unless ``overwrite=True``; a folder is named as a folder
(no file can be written there, whatever ``overwrite`` says). The pages tunewidgets writes
carry :data:`GENERATOR` (a ``<meta name="generator">`` tag), so writing one again over
itself needs no flag.

Example:
    >>> import tempfile
    >>> from pathlib import Path
    >>> from tunewidgets.export._output import check_output
    >>> folder = Path(tempfile.mkdtemp())
    >>> _ = (folder / "notes.txt").write_text("my notes")
    >>> check_output(folder / "report.html").name
    'report.html'
    >>> check_output(folder / "notes.txt")
    Traceback (most recent call last):
    ...
    ValueError: path: ... exists and is not an HTML page tunewidgets wrote; pick another file name, or pass overwrite=True to replace it
"""
from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

__all__ = ["check_output", "written_by_tunewidgets", "GENERATOR"]

#: the tag every page tunewidgets writes carries in its head
GENERATOR = '<meta name="generator" content="tunewidgets">'
# the tag in either attribute order (nbconvert reorders them), or a widget page's wrapper (pages
# from before the tag)
_OWN_MARK = re.compile(rb'<meta\s+(name="generator"\s+content="tunewidgets"|content="tunewidgets"\s+name="generator")'
                       rb'\s*/?>|<div class="tunewidgets-widget">')
_HTML_START = re.compile(rb"\s*(<!--.*?-->\s*)*<(!doctype\s+html|html)\b", re.I | re.S)
_SQLITE_HEADER = b"SQLite format 3\x00"
_STORE_SIDES = {"-wal": "write-ahead log", "-shm": "shared-memory file", "-journal": "journal"}
_WRITERS = "-writers"


def written_by_tunewidgets(path: str | os.PathLike[str]) -> bool:
    """True when the file at ``path`` is an HTML page that tunewidgets wrote."""
    try:
        with open(path, "rb") as fh:
            head = fh.read(4096)
            if not _HTML_START.match(head):
                return False
            fh.seek(0)
            text = fh.read()
    except OSError:
        return False
    return _OWN_MARK.search(text) is not None


def _store_part(p: Path) -> str | None:
    """What of a run store ``p`` is, in words, or None."""
    name = p.name
    if p.is_dir() and name.endswith(_WRITERS) and p.with_name(name[: -len(_WRITERS)]).is_file():
        return f"the writers folder of the run store {p.with_name(name[: -len(_WRITERS)])}"
    if p.is_file():
        for suffix, what in _STORE_SIDES.items():
            if name.endswith(suffix) and p.with_name(name[: -len(suffix)]).is_file():
                return f"the {what} of the database {p.with_name(name[: -len(suffix)])}"
        try:
            with open(p, "rb") as fh:
                if fh.read(len(_SQLITE_HEADER)) == _SQLITE_HEADER:
                    return "an SQLite database (a run store's file?)"
        except OSError:
            return None
    return None


def check_output(path: Any, *, overwrite: bool = False, field: str = "path", example: str = "report.html",
                 flag: str = "overwrite=True", create_folder: bool = False) -> Path:
    """The output path ``path`` as a Path, once it is safe to write; else ValueError naming ``field``.

    Args:
        path: the file to write.
        overwrite: replace an existing file that is not a page tunewidgets wrote (never a folder).
        field, example, flag: how the error names the argument, a good file name and the way to
            overwrite (``--overwrite`` on a command line).
        create_folder: the caller creates a missing folder; else a missing folder is refused.
    """
    if isinstance(overwrite, bool) is False:
        raise TypeError(f"overwrite: expected True or False, got {overwrite!r}")
    if isinstance(path, bytes) or not isinstance(path, (str, os.PathLike)) or not str(os.fspath(path)).strip():
        raise TypeError(f"{field}: expected a file path such as {example!r}, got {type(path).__name__} {path!r}")
    p = Path(os.fspath(path)).expanduser()
    part = _store_part(p)
    if p.is_dir():
        what = part or "a folder"
        raise ValueError(f"{field}: {str(p)!r} is {what}, not a file; give a file path, e.g. "
                         f"{str(p.parent / example) if part else str(p / example)!r}")
    if p.exists() or p.is_symlink():
        if not p.is_file():
            raise ValueError(f"{field}: {str(p)!r} exists and is not a regular file; pick another file name")
        if not overwrite and not written_by_tunewidgets(p):
            what = f"is {part}" if part else "exists and is not an HTML page tunewidgets wrote"
            raise ValueError(f"{field}: {str(p)!r} {what}; pick another file name, or pass {flag} to replace it")
        return p
    parent = p.parent
    for above in (parent, *parent.parents):
        if above.exists():
            if not above.is_dir():
                raise ValueError(f"{field}: {str(p)!r} lies inside {str(above)!r}, which is a file, not a folder; "
                                 "pick a path in a folder")
            break
    if not create_folder and not parent.is_dir():
        raise ValueError(f"{field}: the folder {str(parent)!r} does not exist; create it first")
    return p
