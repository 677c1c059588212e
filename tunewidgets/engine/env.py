"""The environment a run records: versions, device, git commit."""
from __future__ import annotations

import functools
import platform
import subprocess
from typing import Any

import torch

__all__ = ["environment"]


@functools.lru_cache(maxsize=1)
def _git_commit() -> str | None:
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, timeout=2)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None if out.returncode == 0 else None


def environment(device: torch.device | str | None = None) -> dict[str, Any]:
    """Versions of python, torch and tunewidgets, the device and the git commit of the cwd (if any)."""
    from tunewidgets import __version__

    env: dict[str, Any] = {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "tunewidgets": __version__,
        "platform": platform.platform(),
        "device": None if device is None else str(device),
        "git_commit": _git_commit(),
    }
    if device is not None and torch.device(device).type == "cuda":
        env["device_name"] = torch.cuda.get_device_name(torch.device(device))
    return env
