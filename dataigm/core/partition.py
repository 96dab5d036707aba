"""Deterministic partitioning of work units over ranks (torchrun, accelerate, Slurm)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Sequence, TypeVar

from dataigm.core.errors import InputError

T = TypeVar("T")


@dataclass(frozen=True)
class RankInfo:
    """Where this process sits in a multi-process launch."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    def __post_init__(self) -> None:
        if self.world_size < 1:
            raise InputError(f"world_size must be >= 1, got {self.world_size}")
        if not 0 <= self.rank < self.world_size:
            raise InputError(f"rank must be in [0, {self.world_size}), got {self.rank}")


def rank_from_env(env: dict[str, str] | None = None) -> RankInfo:
    """Read rank and world size from torchrun/accelerate (RANK, WORLD_SIZE, LOCAL_RANK) or a Slurm step.

    Under Slurm the world is the step's task count (``SLURM_STEP_NUM_TASKS``, set by ``srun``), never the job's
    ``SLURM_NTASKS``: an ``sbatch --ntasks=N`` script that runs the command without ``srun`` is one process, and
    taking rank 0 of N there would silently build 1/N of the shards. A multi-task job outside a step is refused.
    """
    env = dict(os.environ if env is None else env)
    if "WORLD_SIZE" in env:
        return RankInfo(int(env.get("RANK", 0)), int(env["WORLD_SIZE"]), int(env.get("LOCAL_RANK", 0)))
    if "SLURM_STEP_NUM_TASKS" in env and "SLURM_PROCID" in env:
        return RankInfo(int(env["SLURM_PROCID"]), int(env["SLURM_STEP_NUM_TASKS"]), int(env.get("SLURM_LOCALID", 0)))
    if int(env.get("SLURM_NTASKS") or 1) > 1:  # unset or empty: one task
        raise InputError(
            f"Slurm job with SLURM_NTASKS={env['SLURM_NTASKS']} but not inside an srun step (no SLURM_STEP_NUM_TASKS): "
            "launch one task per GPU with srun, or run the job with a single task (Slurm ntasks=1)"
        )
    return RankInfo()


def partition(units: Sequence[T], rank: int, world_size: int) -> list[T]:
    """The units rank ``rank`` of ``world_size`` owns: every ``world_size``-th one, starting at ``rank``.

    The slices of all ranks are disjoint and their union is ``units``; the assignment depends only on the
    order of ``units``, so every rank computes the same partition without talking to the others.
    """
    RankInfo(rank, world_size)
    return list(units[rank::world_size])
