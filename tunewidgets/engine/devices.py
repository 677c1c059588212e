"""Device choice: ``"auto"`` picks cuda, then mps, then cpu."""
from __future__ import annotations

import torch

__all__ = ["resolve_device", "amp_mode", "peak_memory", "reset_peak_memory"]


def _mps_available() -> bool:
    mps = getattr(torch.backends, "mps", None)
    return bool(mps is not None and mps.is_available())


def resolve_device(device: str | torch.device = "auto") -> torch.device:
    """Turn ``"auto"``, ``"cpu"``, ``"cuda"``, ``"cuda:1"`` or ``"mps"`` into a usable device.

    Raises ValueError, naming the field, when the device is not present on this machine.
    """
    if isinstance(device, torch.device):
        device = str(device)
    if not isinstance(device, str):
        raise TypeError(f"device: expected a string such as 'auto', 'cpu' or 'cuda', got {device!r}")
    name = device.strip().lower()
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if _mps_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        dev = torch.device(name)
    except RuntimeError:
        raise ValueError(
            f"device: {device!r} is not a device name; use 'auto', 'cpu', 'cuda', 'cuda:N' or 'mps'"
        ) from None
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise ValueError(
                f"device: {device!r} was asked for but CUDA is not available on this machine; "
                "use device='auto' or device='cpu'"
            )
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise ValueError(
                f"device: {device!r} does not exist; this machine has "
                f"{torch.cuda.device_count()} CUDA device(s)"
            )
    elif dev.type == "mps" and not _mps_available():
        raise ValueError(f"device: {device!r} was asked for but MPS is not available; use 'auto' or 'cpu'")
    elif dev.type not in ("cpu", "cuda", "mps"):
        raise ValueError(f"device: {device!r} is not supported; use 'auto', 'cpu', 'cuda' or 'mps'")
    return dev


def amp_mode(amp: bool | str, device: torch.device) -> tuple[torch.dtype | None, bool]:
    """``(autocast dtype or None, whether a grad scaler is needed)`` for a TrainConfig ``amp`` value.

    False: no autocast. True or "bf16": bf16 autocast (CUDA, and CPU too). "fp16": fp16 autocast
    with a grad scaler, CUDA only.
    """
    if amp is False:
        return None, False
    if amp in (True, "bf16"):
        return torch.bfloat16, False
    if device.type != "cuda":
        raise ValueError(f"amp: 'fp16' needs a CUDA device, got {device}; use amp='bf16' or amp=False")
    return torch.float16, True


def reset_peak_memory(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)


def peak_memory(device: torch.device) -> int | None:
    """Peak allocated bytes on a CUDA device since the last reset; None elsewhere."""
    if device.type == "cuda":
        return int(torch.cuda.max_memory_allocated(device))
    return None
