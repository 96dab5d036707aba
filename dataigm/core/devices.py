"""Choosing the device a stage runs on: the one picker of build, curation, training's evaluation, judging and the
benchmark.

:func:`choose_device` makes the choice from the request, the local rank and the visible GPUs, without torch;
:func:`pick_device` is it for a torch or an onnxruntime stage (torch is imported only for the torch runtime, so
ONNX-only judging never loads it).
"""

from __future__ import annotations

import os
from typing import Any, Mapping, Sequence

from dataigm.core.errors import DataigmError

AUTO = (None, "", "auto")  # the requests that let the machine decide
RUNTIMES = ("torch", "onnx")


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


def choose_device(device: str | None = "auto", local_rank: int = 0, env: Mapping[str, str] | None = None, *,
                  gpus: int | None = None, cuda_usable: bool | None = None) -> str:
    """The device a stage runs on, decided without torch.

    - ``None``/``"auto"``: ``cuda:<local_rank wrapped by the visible GPUs>`` when a GPU is visible and the runtime
      can use CUDA (``cuda_usable`` not False), else ``cpu``;
    - a bare ``cuda``: ``cuda:<local_rank wrapped>`` (one GPU per rank; under ``srun --gpus-per-task 1`` every task
      sees one GPU, its own, and takes index 0);
    - ``cuda:N``: as given once N is among the visible GPUs; anything else (``cpu``, ``mps``) as given.

    ``gpus`` defaults to :func:`gpu_count` of ``env`` (the process environment when None).
    """
    if device in AUTO:
        if cuda_usable is False:
            return "cpu"
        gpus = gpu_count(env) if gpus is None else gpus
        return f"cuda:{gpu_index_for_rank(local_rank, gpus)}" if gpus > 0 else "cpu"
    device = str(device)
    if device != "cuda" and not device.startswith("cuda:"):
        return device
    gpus = gpu_count(env) if gpus is None else gpus
    if device == "cuda":
        return f"cuda:{gpu_index_for_rank(local_rank, gpus)}"
    index = device.partition(":")[2]
    if not index.isdigit():
        raise DeviceError(f"device {device!r}: not a device; use auto, cpu, cuda, cuda:N or mps")
    if gpus < 1:
        raise DeviceError(f"device {device!r}: no CUDA GPU is visible on this machine; use auto or cpu")
    if int(index) >= gpus:
        raise DeviceError(f"device {device!r}: only {gpus} CUDA GPU(s) visible (cuda:0 .. cuda:{gpus - 1})")
    return device


def pick_device(device: str | None = "auto", local_rank: int = 0, env: Mapping[str, str] | None = None, *,
                runtime: str = "torch") -> str:
    """:func:`choose_device` for a stage on ``runtime`` (``torch`` or ``onnx``): ``auto`` takes CUDA only where that
    runtime can use it (torch built with CUDA, onnxruntime with its CUDA provider).

    On torch the choice is checked against torch's devices and a CUDA choice becomes the current device
    (:func:`set_current_device`), so every stage that picks its device here (build, curate, judge, train's
    evaluation, benchmark) runs rank N's work, and its device queries, on GPU N.
    """
    if runtime not in RUNTIMES:
        raise ValueError(f"runtime {runtime!r}: use one of {', '.join(RUNTIMES)}")
    chosen = choose_device(device, local_rank, env, cuda_usable=_cuda_usable(runtime) if device in AUTO else None)
    if runtime == "torch":
        check_device(chosen)
        set_current_device(chosen)
    return chosen


def _cuda_usable(runtime: str) -> bool:
    if runtime == "onnx":
        import onnxruntime

        return "CUDAExecutionProvider" in onnxruntime.get_available_providers()
    import torch

    return torch.cuda.is_available()


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


def driver_gpu_count() -> int | None:
    """How many CUDA devices this process sees (``CUDA_VISIBLE_DEVICES`` applied), through the driver API; None
    when no CUDA driver can be loaded. Torch-free, so an onnxruntime-only stage can count GPUs too."""
    import ctypes

    try:
        cuda = ctypes.CDLL("libcuda.so.1")
    except OSError:
        return None
    count = ctypes.c_int(0)
    if cuda.cuInit(0) != 0 or cuda.cuDeviceGetCount(ctypes.byref(count)) != 0:
        return 0
    return count.value


def gpu_count(env: Mapping[str, str] | None = None) -> int:
    """Visible GPUs: ``CUDA_VISIBLE_DEVICES`` when set, else the driver's count (0 without a CUDA driver)."""
    count = visible_gpu_count(env)
    return (driver_gpu_count() or 0) if count is None else count


def gpu_index_for_rank(local_rank: int, gpu_count: int) -> int:
    """The GPU a local rank uses: ``LOCAL_RANK`` wrapped by the visible GPUs, so that under ``srun --gpus-per-task 1``
    (each task sees one GPU, its own) every task takes index 0, and with one process per GPU each takes its own."""
    if gpu_count < 1:
        raise DeviceError("device=cuda: no CUDA device is visible")
    if local_rank < 0:
        raise DeviceError(f"LOCAL_RANK {local_rank}: must be >= 0")
    return local_rank % gpu_count


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
