"""One precision policy for every stage: which dtype ``auto`` means on a device.

bf16 counts only where the GPU runs it natively (Ampere and newer): ``torch.cuda.is_bf16_supported()`` without
``including_emulation=False`` also says yes on pre-Ampere GPUs, which then run bf16 emulated, slowly and with
other numerics. Generation resolves ``auto`` to bf16 or fp16 with :func:`native_bf16`; judges run in fp32 unless
asked otherwise (:data:`JUDGE_PRECISIONS`), since their thresholds were chosen in fp32. torch is imported lazily.
"""

from __future__ import annotations

from typing import Any

from dataigm.core.errors import DataigmError

JUDGE_PRECISIONS = ("fp32", "auto", "fp16", "bf16")
DEFAULT_JUDGE_PRECISION = "fp32"


def native_bf16(device: str | None = None) -> bool:
    """Whether ``device`` (default: the current CUDA device) runs bf16 natively; False on CPU and without CUDA."""
    import torch

    if device is not None and not str(device).startswith("cuda"):
        return False
    if not torch.cuda.is_available():
        return False
    if device is not None and ":" in str(device):
        with torch.cuda.device(int(str(device).split(":", 1)[1])):
            return bool(torch.cuda.is_bf16_supported(including_emulation=False))
    return bool(torch.cuda.is_bf16_supported(including_emulation=False))


def check_precision(precision: str, allowed: tuple[str, ...] = JUDGE_PRECISIONS) -> str:
    """``precision`` itself, or a one-line error that lists the allowed values."""
    if precision not in allowed:
        raise DataigmError(f"precision {precision!r} is not one of {', '.join(allowed)}")
    return precision


def autocast_dtype(device: str, precision: str = DEFAULT_JUDGE_PRECISION) -> Any:
    """The autocast dtype for inference on ``device``: None (fp32) on CPU and for ``fp32``; ``auto`` is native bf16
    where the GPU has it, else fp16."""
    import torch

    check_precision(precision)
    if precision == "fp32" or not str(device).startswith("cuda"):
        return None
    if precision == "fp16":
        return torch.float16
    if precision == "bf16" or native_bf16(device):
        return torch.bfloat16
    return torch.float16
