"""What makes two builds give the same pixels: capturing every such setting, and ``--deterministic``.

Two builds of one recipe (same seeds, same batch size and dtype, which the recipe fixes) can still differ in
the last bit of a float, and so by one level in a pixel, when anything changes the order of floating-point
reductions or the kernels chosen:

- the device and its model (another GPU or CPU instruction set runs other kernels);
- the CPU intra-op thread count (``torch.get_num_threads()``): ``torchrun`` sets ``OMP_NUM_THREADS=1``, so a
  rank uses one thread where a single process uses one per physical core;
- cuDNN autotuning (``torch.backends.cudnn.benchmark``), TF32 matmuls and convolutions, non-deterministic
  CUDA kernels (``torch.use_deterministic_algorithms``);
- the torch, diffusers and transformers versions, CUDA and cuDNN.

:func:`capture_settings` records them all; each rank writes its own (:mod:`dataigm.core.run_settings`) and the
manifest says whether the ranks agreed. :func:`apply_deterministic` pins them the same way under ``torchrun``
and in a single process, as PyTorch's reproducibility notes describe
(https://pytorch.org/docs/stable/notes/randomness.html).
"""

from __future__ import annotations

import logging
import os
import platform
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

from dataigm.core.versions import installed_version
from dataigm.core.partition import RankInfo
from dataigm.core.run_settings import record_rank_settings

log = logging.getLogger(__name__)

# cuBLAS needs a fixed workspace for deterministic matmuls (CUDA >= 10.2); ":16:8" is the smaller alternative.
CUBLAS_WORKSPACE_CONFIG = ":4096:8"
VERSIONED = ("torch", "diffusers", "transformers")


def default_threads() -> int:
    """The intra-op thread count PyTorch picks in a single process with no ``OMP_NUM_THREADS``: one per physical core."""
    try:
        import psutil

        cores = psutil.cpu_count(logical=False)
    except ImportError:  # psutil is optional; logical CPUs are the closest stand-in
        cores = None
    return max(1, int(cores or os.cpu_count() or 1))


def device_name(device: str) -> str:
    """The GPU's name, or the CPU's model name, for ``device``."""
    import torch

    if device.startswith("cuda") and torch.cuda.is_available():
        return torch.cuda.get_device_name(torch.device(device))
    if device.startswith("mps"):
        return "Apple MPS"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def capture_settings(device: str, dtype: str, batch_size: int, deterministic: bool = False) -> dict[str, Any]:
    """Every setting of this process that can change generated pixels, as a flat JSON-able dict.

    ``dtype`` is the resolved torch dtype name (``float32``, not ``auto``).
    """
    import torch

    cuda = torch.backends.cuda.matmul
    cudnn = torch.backends.cudnn
    settings: dict[str, Any] = {
        "device_type": torch.device(device).type,
        "device_name": device_name(device),
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "dtype": dtype,
        "batch_size": batch_size,
        "num_threads": torch.get_num_threads(),
        "deterministic": deterministic,
        "deterministic_algorithms": torch.are_deterministic_algorithms_enabled(),
        "cudnn_benchmark": bool(cudnn.benchmark),
        "cudnn_deterministic": bool(cudnn.deterministic),
        "tf32_matmul": bool(cuda.allow_tf32),
        "tf32_cudnn": bool(cudnn.allow_tf32),
        "float32_matmul_precision": torch.get_float32_matmul_precision(),
        "fp16_reduced_precision_reduction": bool(cuda.allow_fp16_reduced_precision_reduction),
        "cublas_workspace_config": os.environ.get("CUBLAS_WORKSPACE_CONFIG", ""),
        "version.cuda": torch.version.cuda or "",
        "version.cudnn": str(cudnn.version() or "") if cudnn.is_available() else "",
    }
    settings.update({f"version.{name}": installed_version(name) for name in VERSIONED})
    return settings


@dataclass(frozen=True)
class ThreadChoice:
    """The thread count a build runs with and where it came from."""

    threads: int
    source: str  # "recipe", "default" (single-process default under --deterministic) or "environment"


def choose_threads(recipe_threads: int | None, deterministic: bool) -> ThreadChoice | None:
    """The thread count to pin: the recipe's when set; under ``--deterministic`` the single-process default.

    ``None``: leave the process as launched (``torchrun`` gives 1 thread per rank, a single process one per core).
    """
    if recipe_threads is not None:
        return ThreadChoice(recipe_threads, "recipe")
    if deterministic:
        return ThreadChoice(default_threads(), "default")
    return None


def apply_threads(choice: ThreadChoice | None) -> None:
    """Pin torch's intra-op thread count (and with it OpenMP's and MKL's), whatever the launcher set."""
    if choice is None:
        return
    import torch

    if torch.get_num_threads() != choice.threads:
        log.info("intra-op threads: %d -> %d (%s)", torch.get_num_threads(), choice.threads, choice.source)
        torch.set_num_threads(choice.threads)


def apply_deterministic() -> None:
    """Deterministic kernels, no cuDNN autotuning, no TF32, full-precision float32 matmuls.

    Call before the first CUDA operation: cuBLAS reads ``CUBLAS_WORKSPACE_CONFIG`` when it creates its handle.
    An operation with no deterministic implementation then raises instead of silently varying.
    """
    import torch

    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", CUBLAS_WORKSPACE_CONFIG)
    torch.use_deterministic_algorithms(True)
    torch.backends.cudnn.benchmark = False
    torch.backends.cudnn.deterministic = True
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    torch.set_float32_matmul_precision("highest")


def _snapshot() -> Callable[[], None]:
    """A function putting back every process-wide switch :func:`prepare` may change."""
    import torch

    threads = torch.get_num_threads()
    algorithms = (torch.are_deterministic_algorithms_enabled(), torch.is_deterministic_algorithms_warn_only_enabled())
    cudnn = (torch.backends.cudnn.benchmark, torch.backends.cudnn.deterministic, torch.backends.cudnn.allow_tf32)
    matmul = (torch.backends.cuda.matmul.allow_tf32, torch.get_float32_matmul_precision())
    workspace = os.environ.get("CUBLAS_WORKSPACE_CONFIG")

    def restore() -> None:
        if torch.get_num_threads() != threads:
            torch.set_num_threads(threads)
        torch.use_deterministic_algorithms(algorithms[0], warn_only=algorithms[1])
        torch.backends.cudnn.benchmark, torch.backends.cudnn.deterministic, torch.backends.cudnn.allow_tf32 = cudnn
        torch.backends.cuda.matmul.allow_tf32 = matmul[0]
        torch.set_float32_matmul_precision(matmul[1])
        if workspace is None:
            os.environ.pop("CUBLAS_WORKSPACE_CONFIG", None)
        else:
            os.environ["CUBLAS_WORKSPACE_CONFIG"] = workspace

    return restore


def prepare(recipe_threads: int | None, deterministic: bool) -> Callable[[], None]:
    """Apply ``--deterministic`` (when asked) and the recipe's thread count for one build.

    Returns the function that puts the process back as it was (a library call must not change its caller's
    torch settings for good); the command line calls it when the build ends.
    """
    restore = _snapshot()
    if deterministic:
        apply_deterministic()
    apply_threads(choose_threads(recipe_threads, deterministic))
    return restore


def record_build_settings(root: Path, category: str, part: str, rank: RankInfo, device: str, dtype: str, batch_size: int,
                          deterministic: bool, shards: Sequence[str]) -> dict[str, Any]:
    """Capture this rank's settings (``dtype`` as in the recipe, ``auto`` resolved) and record them for ``shards``."""
    from dataigm.generate.pipeline import resolve_dtype

    resolved = str(resolve_dtype(dtype, device)).removeprefix("torch.")
    settings = capture_settings(device, resolved, batch_size, deterministic)
    record_rank_settings(root, category, part, rank.rank, rank.world_size, settings, shards)
    return settings
