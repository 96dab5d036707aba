"""Ranks from launcher environments, devices per rank, and the partition of work units (from env dicts, no launch)."""

from __future__ import annotations

import pytest

from dataigm.core.partition import RankInfo, device_for_rank, partition, rank_from_env


@pytest.mark.parametrize("env, expected", [
    ({}, RankInfo(0, 1, 0)),
    ({"WORLD_SIZE": "4", "RANK": "3", "LOCAL_RANK": "1"}, RankInfo(3, 4, 1)),
    ({"WORLD_SIZE": "2"}, RankInfo(0, 2, 0)),  # accelerate on the main process may leave RANK/LOCAL_RANK unset
    ({"WORLD_SIZE": "2", "RANK": "1"}, RankInfo(1, 2, 0)),
    ({"SLURM_STEP_NUM_TASKS": "8", "SLURM_PROCID": "5", "SLURM_LOCALID": "1", "SLURM_NTASKS": "8"}, RankInfo(5, 8, 1)),
    ({"SLURM_STEP_NUM_TASKS": "2", "SLURM_PROCID": "1"}, RankInfo(1, 2, 0)),
    ({"SLURM_NTASKS": "1"}, RankInfo(0, 1, 0)),  # a one-task job outside srun is just one process
    ({"SLURM_STEP_NUM_TASKS": "4"}, RankInfo(0, 1, 0)),  # no SLURM_PROCID: not a Slurm task
    ({"WORLD_SIZE": "2", "RANK": "1", "SLURM_STEP_NUM_TASKS": "8", "SLURM_PROCID": "5"}, RankInfo(1, 2, 0)),  # torchrun wins
])
def test_rank_from_env(env, expected) -> None:
    assert rank_from_env(env) == expected


def test_sbatch_with_many_tasks_outside_srun_is_refused() -> None:
    with pytest.raises(ValueError, match=r"SLURM_NTASKS=4 but not inside an srun step"):
        rank_from_env({"SLURM_NTASKS": "4", "SLURM_PROCID": "0"})
    with pytest.raises(ValueError, match=r"SLURM_NTASKS=2 but not inside an srun step"):  # two tasks are already many
        rank_from_env({"SLURM_NTASKS": "2"})
    assert rank_from_env({"SLURM_NTASKS": ""}) == RankInfo(0, 1, 0)  # set but empty: one process


def test_rank_info_refuses_impossible_ranks() -> None:
    with pytest.raises(ValueError, match=r"world_size must be >= 1, got 0"):
        RankInfo(0, 0)
    with pytest.raises(ValueError, match=r"rank must be in \[0, 2\), got 2"):
        RankInfo(2, 2)
    with pytest.raises(ValueError, match=r"rank must be in \[0, 2\), got -1"):
        RankInfo(-1, 2)


def test_device_for_rank() -> None:
    assert device_for_rank("cuda", 3, 8) == "cuda:3"
    assert device_for_rank("cuda", 3, 2) == "cuda:1"  # fewer visible GPUs than local ranks: wraps
    assert device_for_rank("cuda", 0, 1) == "cuda:0"
    assert device_for_rank("cuda:5", 3, 8) == "cuda:5" and device_for_rank("cpu", 1, 0) == "cpu"
    with pytest.raises(ValueError, match="no CUDA device is visible"):
        device_for_rank("cuda", 0, 0)


def test_partition_is_disjoint_covering_and_strided() -> None:
    units = list(range(10))
    parts = [partition(units, r, 3) for r in range(3)]
    assert parts == [[0, 3, 6, 9], [1, 4, 7], [2, 5, 8]]
    with pytest.raises(ValueError):
        partition(units, 3, 3)


@pytest.mark.parametrize("env, count", [({}, None), ({"CUDA_VISIBLE_DEVICES": ""}, 0), ({"CUDA_VISIBLE_DEVICES": "3"}, 1),
                                        ({"CUDA_VISIBLE_DEVICES": "0,1,2,3"}, 4), ({"CUDA_VISIBLE_DEVICES": "1,-1,2"}, 1),
                                        ({"CUDA_VISIBLE_DEVICES": "GPU-8f3a,GPU-77c1"}, 2)])
def test_visible_gpus_from_the_environment(env, count):
    from dataigm.core.devices import visible_gpu_count

    assert visible_gpu_count(env) == count


@pytest.mark.parametrize("local_rank, gpus, index", [(0, 1, 0), (5, 1, 0), (5, 8, 5), (6, 4, 2), (3, 2, 1)])
def test_a_ranks_gpu_wraps_by_the_visible_gpus(local_rank, gpus, index):
    from dataigm.core.devices import gpu_index_for_rank

    assert gpu_index_for_rank(local_rank, gpus) == index
    assert device_for_rank("cuda", local_rank, gpus) == f"cuda:{index}"


def test_no_visible_gpu_is_a_one_line_error():
    from dataigm.core.devices import DeviceError, gpu_index_for_rank

    with pytest.raises(DeviceError, match="no CUDA device is visible"):
        gpu_index_for_rank(0, 0)
