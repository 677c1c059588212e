"""What a run was made with: Python, torch and tunewidgets versions, platform, git commit.

Example:
    >>> from tunewidgets.engine.env import collect_env
    >>> env = collect_env(device="cpu")
    >>> sorted(env)
    ['device', 'git_commit', 'platform', 'python', 'torch', 'tunewidgets']
    >>> env["device"]
    'cpu'
"""
from __future__ import annotations

import functools
import os
import platform
import subprocess
import sys
from importlib import metadata
from typing import Any

__all__ = ["collect_env", "environment", "git_commit"]

_GIT_TIMEOUT_S = 2.0


def _version(dist: str) -> str | None:
    module = sys.modules.get(dist)  # torch already imported: its own version, no import cost
    version = getattr(module, "__version__", None)
    if version is not None:
        return str(version)
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None


@functools.lru_cache(maxsize=16)
def _git_commit_in(cwd: str) -> str | None:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=cwd, capture_output=True, text=True,
            timeout=_GIT_TIMEOUT_S, check=False,
        )
    except (OSError, subprocess.SubprocessError):  # no git, or it hung
        return None
    commit = out.stdout.strip()
    if out.returncode != 0 or len(commit) < 7:
        return None
    return commit


def git_commit(cwd: str | os.PathLike[str] | None = None) -> str | None:
    """``git rev-parse HEAD`` in ``cwd`` (default: the working folder); None when not a repository.

    The answer is cached per folder, so many runs cost one ``git`` call.
    """
    return _git_commit_in(os.path.abspath(os.fspath(cwd) if cwd is not None else os.getcwd()))


def collect_env(device: Any = None) -> dict[str, Any]:
    """A JSON-able dict describing this process; ``device`` is recorded as text when given."""
    return {
        "python": platform.python_version(),
        "torch": _version("torch"),
        "tunewidgets": _version("tunewidgets"),
        "platform": platform.platform(terse=True),
        "device": None if device is None else str(device),
        "git_commit": git_commit(),
    }


def environment(device: Any = None) -> dict[str, Any]:
    """:func:`collect_env` plus the CUDA device's name when ``device`` is a CUDA device."""
    env = collect_env(device)
    if device is not None and str(device).startswith("cuda"):
        import torch

        env["device_name"] = torch.cuda.get_device_name(torch.device(device))
    return env
