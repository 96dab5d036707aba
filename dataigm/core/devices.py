"""Choosing the device a stage runs on (torch is imported only when a choice is made)."""

from __future__ import annotations

from dataigm.core.errors import DataigmError


class DeviceError(DataigmError, ValueError):
    """A device that is not a torch device string or is not present on this machine."""


def check_device(device: str) -> str:
    """``device`` if this machine has it (``cpu``, ``cuda``, ``cuda:N``, ``mps``...), else :class:`DeviceError` in one line."""
    import torch

    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError, ValueError):
        raise DeviceError(f"device {device!r}: not a device; use auto, cpu, cuda, cuda:N or mps") from None
    if dev.type == "cuda":
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if count == 0:
            raise DeviceError(f"device {device!r}: no CUDA GPU is visible on this machine; use auto or cpu")
        if dev.index is not None and dev.index >= count:
            raise DeviceError(f"device {device!r}: only {count} CUDA GPU(s) visible (cuda:0 .. cuda:{count - 1})")
    elif dev.type == "mps" and not torch.backends.mps.is_available():
        raise DeviceError(f"device {device!r}: MPS is not available on this machine; use auto or cpu")
    return str(device)


def pick_device(device: str | None = "auto", local_rank: int = 0) -> str:
    """``None``/``"auto"``: ``cuda:<local_rank>`` (one GPU per rank) when a GPU is visible, else ``cpu``.

    Anything else (``cpu``, ``cuda``, ``cuda:1``, ``mps``) is returned as given, once checked to exist here.
    """
    if device not in (None, "", "auto"):
        return check_device(str(device))
    import torch

    if torch.cuda.is_available():
        return f"cuda:{local_rank % torch.cuda.device_count()}"
    return "cpu"
