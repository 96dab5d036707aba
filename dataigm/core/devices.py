"""Choosing the device a stage runs on (torch is imported only when a choice is made)."""

from __future__ import annotations

import os
from typing import Any, Mapping, Sequence

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
    A CUDA choice becomes the current device (:func:`set_current_device`), so every stage that picks its device
    here (build, curate, judge, train's evaluation) runs rank N's work, and its device queries, on GPU N.
    """
    if device not in (None, "", "auto"):
        chosen = check_device(str(device))
    else:
        import torch

        chosen = f"cuda:{gpu_index_for_rank(local_rank, torch.cuda.device_count())}" if torch.cuda.is_available() else "cpu"
    set_current_device(chosen)
    return chosen


def visible_gpu_count(env: Mapping[str, str] | None = None) -> int | None:
    """GPUs this process may use as ``CUDA_VISIBLE_DEVICES`` lists them (Slurm's ``--gpus-per-task`` sets it);
    ``None`` when it is unset (every GPU of the machine is visible: ask the driver)."""
    env = os.environ if env is None else env
    visible = env.get("CUDA_VISIBLE_DEVICES")
    if visible is None:
        return None
    count = 0
    for entry in visible.split(","):
        if not entry.strip() or entry.strip().startswith("-"):  # CUDA ignores an invalid entry and all after it
            break
        count += 1
    return count


def gpu_index_for_rank(local_rank: int, gpu_count: int) -> int:
    """The GPU a local rank uses: ``LOCAL_RANK`` wrapped by the visible GPUs, so that under ``srun --gpus-per-task 1``
    (each task sees one GPU, its own) every task takes index 0, and with one process per GPU each takes its own."""
    if gpu_count < 1:
        raise DeviceError("--device cuda: no CUDA device is visible")
    if local_rank < 0:
        raise DeviceError(f"LOCAL_RANK {local_rank}: must be >= 0")
    return local_rank % gpu_count


def gpu_count(env: Mapping[str, str] | None = None) -> int:
    """Visible GPUs: ``CUDA_VISIBLE_DEVICES`` when set, else torch's count (0 without CUDA)."""
    count = visible_gpu_count(env)
    if count is not None:
        return count
    import torch

    return torch.cuda.device_count() if torch.cuda.is_available() else 0


def set_current_device(device: str) -> None:
    """Make ``device`` torch's current CUDA device (``torch.cuda.set_device``): kernels that read "the current
    device" (``is_bf16_supported``, a bare ``"cuda"``, NCCL, onnxruntime's default) then see this rank's GPU, not
    cuda:0. A no-op for other devices."""
    if not device.startswith("cuda:"):  # a bare "cuda" is the current device already
        return
    import torch

    torch.cuda.set_device(torch.device(device))


def onnx_cuda_providers(device: str) -> list[Any]:
    """onnxruntime's providers for ``cuda`` / ``cuda:N``: the CUDA provider on GPU N, then the CPU (for ops the CUDA
    provider lacks)."""
    _, _, index = device.partition(":")
    return [("CUDAExecutionProvider", {"device_id": int(index or 0)}), "CPUExecutionProvider"]


def check_onnx_providers(device: str | None, providers: Sequence[str], what: str = "onnxruntime session") -> None:
    """Raise :class:`DeviceError` when CUDA was asked for and the session runs without the CUDA provider (onnxruntime
    only logs "Falling back to CPUExecutionProvider": a GPU run silently on the CPU, hours slower)."""
    if device and device.startswith("cuda") and "CUDAExecutionProvider" not in providers:
        raise DeviceError(f"{what}: device {device!r} asked for, but the session runs on {', '.join(providers) or 'nothing'} "
                          "(install onnxruntime-gpu matching your CUDA, or use device cpu)")
