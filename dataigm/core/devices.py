"""Choosing the device a stage runs on (torch is imported only when a choice is made)."""

from __future__ import annotations


def pick_device(device: str | None = "auto", local_rank: int = 0) -> str:
    """``None``/``"auto"``: ``cuda:<local_rank>`` (one GPU per rank) when a GPU is visible, else ``cpu``.

    Anything else (``cpu``, ``cuda``, ``cuda:1``, ``mps``) is returned as given.
    """
    if device not in (None, "", "auto"):
        return str(device)
    import torch

    if torch.cuda.is_available():
        return f"cuda:{local_rank % torch.cuda.device_count()}"
    return "cpu"
