"""A folder to put first on the ``PYTHONPATH`` of the tests' Ray processes (the Ray executor's tests,
notebook 06): it holds a stub of ``rfc3987_syntax`` that raises ImportError.

Every Ray process imports jsonschema, whose optional IRI check imports ``rfc3987_syntax``; that
module builds some 40 Earley parsers at import: 1.5 s on an idle core, 7 s and more on a loaded
2-core machine, where it makes Ray's node agent miss the raylet's 15 s start-up deadline.
jsonschema imports it under ``suppress(ImportError)``, so the stub only skips that check.

Example:
    >>> folder = stub_folder()
    >>> (folder / "rfc3987_syntax" / "__init__.py").read_text().startswith("raise ImportError")
    True
"""
from __future__ import annotations

import tempfile
from pathlib import Path

__all__ = ["stub_folder"]


def stub_folder() -> Path:
    """A fresh folder holding the ``rfc3987_syntax`` stub; put it first on ``PYTHONPATH``."""
    folder = Path(tempfile.mkdtemp(prefix="tw-ray-stub-"))
    (folder / "rfc3987_syntax").mkdir()
    (folder / "rfc3987_syntax" / "__init__.py").write_text(
        'raise ImportError("not loaded in the tests\' Ray processes: slow to import, not used")\n')
    return folder
