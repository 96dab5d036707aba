"""Deterministic partitioning of work units over ranks (torchrun, accelerate, Slurm steps and job arrays)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Sequence, TypeVar

from dataigm.core.errors import InputError

T = TypeVar("T")


@dataclass(frozen=True)
class RankInfo:
    """Where this process sits in a multi-process launch.

    ``array``: the ranks form a world that never meets (the tasks of a job array, started whenever a GPU frees up):
    no rank may wait for another; each writes its own units and the last one to finish writes the manifest.
    """

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    array: bool = False

    def __post_init__(self) -> None:
        if self.world_size < 1:
            raise InputError(f"world_size must be >= 1, got {self.world_size}")
        if not 0 <= self.rank < self.world_size:
            raise InputError(f"rank must be in [0, {self.world_size}), got {self.rank}")


def parse_array_task(text: str) -> RankInfo:
    """``"I/N"`` (task I of N, counted from 0) as the rank of a world that never meets.

    >>> parse_array_task("3/4")
    RankInfo(rank=3, world_size=4, local_rank=0, array=True)
    """
    index, sep, count = str(text).partition("/")
    if not sep or not index.strip().isdigit() or not count.strip().isdigit():
        raise InputError(f"array task must be I/N (task I of N, from 0), e.g. 0/4, got {text!r}")
    return RankInfo(int(index), int(count), array=True)


def _array_from_env(env: dict[str, str]) -> tuple[int, int] | None:
    """(index, count) of a Slurm array task, counted from 0 whatever ``--array`` says (``1-250``, ``0-99:2``)."""
    if "SLURM_ARRAY_TASK_ID" not in env or "SLURM_ARRAY_TASK_COUNT" not in env:
        return None
    task, count = int(env["SLURM_ARRAY_TASK_ID"]), int(env["SLURM_ARRAY_TASK_COUNT"])
    first, step = int(env.get("SLURM_ARRAY_TASK_MIN") or 0), int(env.get("SLURM_ARRAY_TASK_STEP") or 1)
    if (task - first) % step:
        raise InputError(f"SLURM_ARRAY_TASK_ID={task} is not on the array's grid (min {first}, step {step})")
    index = (task - first) // step
    if not 0 <= index < count:
        raise InputError(f"SLURM_ARRAY_TASK_ID={task} is task {index} of an array of SLURM_ARRAY_TASK_COUNT={count} "
                         "(an array given as a list of ids, such as 1,5,9, is not supported: use a range, or array_task=I/N)")
    return index, count


def rank_from_env(env: dict[str, str] | None = None, array_task: str | None = None) -> RankInfo:
    """Read rank and world size from torchrun/accelerate (RANK, WORLD_SIZE, LOCAL_RANK), a Slurm step, a Slurm job
    array (SLURM_ARRAY_TASK_ID, SLURM_ARRAY_TASK_COUNT), or ``array_task`` ("I/N", for any other scheduler).

    Under Slurm the world is the step's task count (``SLURM_STEP_NUM_TASKS``, set by ``srun``), never the job's
    ``SLURM_NTASKS``: an ``sbatch --ntasks=N`` script that runs the command without ``srun`` is one process, and
    taking rank 0 of N there would silently build 1/N of the shards. A multi-task job outside a step is refused.

    A job array's tasks are ranks of a world that never meets (``array=True``). ``array_task`` wins over the
    environment; a Slurm array task running an ``srun`` step of S tasks is S ranks of the array's world.
    """
    env = dict(os.environ if env is None else env)
    if array_task is not None:
        return parse_array_task(array_task)
    if "WORLD_SIZE" in env:
        return RankInfo(int(env.get("RANK", 0)), int(env["WORLD_SIZE"]), int(env.get("LOCAL_RANK", 0)))
    array = _array_from_env(env)
    step = None
    if "SLURM_STEP_NUM_TASKS" in env and "SLURM_PROCID" in env:
        step = RankInfo(int(env["SLURM_PROCID"]), int(env["SLURM_STEP_NUM_TASKS"]), int(env.get("SLURM_LOCALID", 0)))
    if array is not None:
        index, count = array
        inner = step or RankInfo()
        return RankInfo(index * inner.world_size + inner.rank, count * inner.world_size, inner.local_rank, array=True)
    if step is not None:
        return step
    if int(env.get("SLURM_NTASKS") or 1) > 1:  # unset or empty: one task
        raise InputError(
            f"Slurm job with SLURM_NTASKS={env['SLURM_NTASKS']} but not inside an srun step (no SLURM_STEP_NUM_TASKS): "
            "launch one task per GPU with srun, or run the job with a single task (Slurm ntasks=1)"
        )
    return RankInfo()


def refuse_array(rank: RankInfo, stage: str) -> None:
    """Refuse a job-array world for a stage whose ranks meet at barriers (they would wait for tasks that may never run
    at the same time)."""
    if rank.array:
        raise InputError(f"{stage} waits for all its ranks at barriers, so it cannot run as a job array (task {rank.rank} "
                         f"of {rank.world_size}); run it as one process, under torchrun or in one srun step")


def partition(units: Sequence[T], rank: int, world_size: int) -> list[T]:
    """The units rank ``rank`` of ``world_size`` owns: every ``world_size``-th one, starting at ``rank``.

    The slices of all ranks are disjoint and their union is ``units``; the assignment depends only on the
    order of ``units``, so every rank computes the same partition without talking to the others.
    """
    RankInfo(rank, world_size)
    return list(units[rank::world_size])
