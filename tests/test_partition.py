"""Ranks from launcher environments, devices per rank, and the partition of work units (from env dicts, no launch)."""

from __future__ import annotations

import pytest

from dataigm.core.devices import DeviceError, choose_device, driver_gpu_count, gpu_count, gpu_index_for_rank, pick_device, visible_gpu_count
from dataigm.core.partition import RankInfo, parse_array_task, partition, rank_from_env


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


def test_partition_is_disjoint_covering_and_strided() -> None:
    units = list(range(10))
    parts = [partition(units, r, 3) for r in range(3)]
    assert parts == [[0, 3, 6, 9], [1, 4, 7], [2, 5, 8]]
    with pytest.raises(ValueError):
        partition(units, 3, 3)


@pytest.mark.parametrize("env, count", [({}, None), ({"CUDA_VISIBLE_DEVICES": ""}, 0), ({"CUDA_VISIBLE_DEVICES": "3"}, 1),
                                        ({"CUDA_VISIBLE_DEVICES": "0,1,2,3"}, 4), ({"CUDA_VISIBLE_DEVICES": "1,-1,2"}, 1),
                                        ({"CUDA_VISIBLE_DEVICES": "0,,1"}, 1), ({"CUDA_VISIBLE_DEVICES": "GPU-8f3a,GPU-77c1"}, 2)])
def test_visible_gpus_from_the_environment(env, count):
    assert visible_gpu_count(env) == count
    assert gpu_count(env) == (driver_gpu_count() or 0 if count is None else count)  # unset: the driver's count


@pytest.mark.parametrize("local_rank, gpus, index", [(0, 1, 0), (5, 1, 0), (5, 8, 5), (6, 4, 2), (3, 2, 1)])
def test_a_ranks_gpu_wraps_by_the_visible_gpus(local_rank, gpus, index):
    assert gpu_index_for_rank(local_rank, gpus) == index
    assert choose_device("cuda", local_rank, gpus=gpus) == choose_device("auto", local_rank, gpus=gpus) == f"cuda:{index}"


def test_no_visible_gpu_is_a_one_line_error():
    with pytest.raises(DeviceError, match="no CUDA device is visible"):
        gpu_index_for_rank(0, 0)


# --- the one device picker, from env dicts (no GPU needed) -----------------------------------------------------------
TWO_GPUS, ONE_GPU = {"CUDA_VISIBLE_DEVICES": "0,1"}, {"CUDA_VISIBLE_DEVICES": "5"}


@pytest.mark.parametrize("env, devices", [
    (TWO_GPUS, ["cuda:0", "cuda:1", "cuda:0", "cuda:1"]),  # one process per GPU, wrapped past the second
    (ONE_GPU, ["cuda:0"] * 4),  # srun --gpus-per-task 1: each task sees only its own GPU, index 0
    ({"CUDA_VISIBLE_DEVICES": "1,-1,2"}, ["cuda:0"] * 4),  # CUDA stops at an invalid entry: one GPU
    ({"CUDA_VISIBLE_DEVICES": ""}, ["cpu"] * 4),  # set but empty: no GPU
])
def test_auto_and_bare_cuda_are_the_local_ranks_gpu(env, devices):
    assert [choose_device("auto", rank, env) for rank in range(4)] == devices
    assert [choose_device(None, rank, env) for rank in range(4)] == devices
    if devices[0] == "cpu":
        with pytest.raises(DeviceError, match="no CUDA device is visible"):
            choose_device("cuda", 0, env)
    else:
        assert [choose_device("cuda", rank, env) for rank in range(4)] == devices


def test_auto_with_cuda_visible_devices_unset_asks_the_driver():
    expected = "cuda:0" if driver_gpu_count() else "cpu"
    assert choose_device("auto", 0, {}) == expected


def test_auto_is_the_cpu_where_the_runtime_cannot_use_cuda():
    assert choose_device("auto", 1, TWO_GPUS, cuda_usable=False) == "cpu"
    assert choose_device("auto", 1, TWO_GPUS, cuda_usable=True) == "cuda:1"


@pytest.mark.parametrize("device, env, expected", [
    ("cpu", TWO_GPUS, "cpu"), ("cpu", {"CUDA_VISIBLE_DEVICES": ""}, "cpu"), ("mps", {}, "mps"),
    ("cuda:1", TWO_GPUS, "cuda:1"), ("cuda:0", ONE_GPU, "cuda:0"),  # explicit: kept, not wrapped by the rank
])
def test_an_explicit_device_is_kept(device, env, expected):
    assert [choose_device(device, rank, env) for rank in range(4)] == [expected] * 4


@pytest.mark.parametrize("device, env, message", [
    ("cuda:2", TWO_GPUS, r"device 'cuda:2': only 2 CUDA GPU\(s\) visible \(cuda:0 .. cuda:1\)"),
    ("cuda:0", {"CUDA_VISIBLE_DEVICES": ""}, "device 'cuda:0': no CUDA GPU is visible on this machine"),
    ("cuda:x", TWO_GPUS, "device 'cuda:x': not a device"),
])
def test_an_explicit_gpu_that_is_not_visible_is_a_one_line_error(device, env, message):
    with pytest.raises(DeviceError, match=message):
        choose_device(device, 0, env)


@pytest.mark.parametrize("env, device, expected", [
    ({"RANK": "11", "WORLD_SIZE": "16", "LOCAL_RANK": "3", "CUDA_VISIBLE_DEVICES": "0,1,2,3,4,5,6,7"}, "cuda", "cuda:3"),  # torchrun
    ({"SLURM_PROCID": "11", "SLURM_STEP_NUM_TASKS": "16", "SLURM_LOCALID": "3", "CUDA_VISIBLE_DEVICES": "3"}, "cuda", "cuda:0"),
    ({"WORLD_SIZE": "8", "RANK": "6", "LOCAL_RANK": "6", "CUDA_VISIBLE_DEVICES": "0,1,2,3"}, "auto", "cuda:2"),
    ({"RANK": "1", "WORLD_SIZE": "2", "LOCAL_RANK": "1", "CUDA_VISIBLE_DEVICES": "0,1"}, "cuda:0", "cuda:0"),
])
def test_a_launchers_local_rank_picks_the_gpu(env, device, expected):
    assert choose_device(device, rank_from_env(env).local_rank, env) == expected


def test_pick_device_checks_the_choice_against_the_runtime():
    """Here torch has no CUDA and onnxruntime no CUDA provider: auto is the CPU on both, whatever is listed; an
    explicit CUDA device is refused by torch, while the torch-free onnxruntime choice is only the index."""
    import onnxruntime
    import torch

    if torch.cuda.is_available() or "CUDAExecutionProvider" in onnxruntime.get_available_providers():
        pytest.skip("a machine without CUDA (tools/gpu_check.py checks the picker on a GPU)")
    assert pick_device("auto", 1, TWO_GPUS) == pick_device("auto", 1, TWO_GPUS, runtime="onnx") == "cpu"
    assert pick_device("cpu", 3, TWO_GPUS) == "cpu"
    with pytest.raises(DeviceError, match="no CUDA GPU is visible"):
        pick_device("cuda", 1, TWO_GPUS)
    assert pick_device("cuda", 3, TWO_GPUS, runtime="onnx") == "cuda:1"
    with pytest.raises(ValueError, match="runtime 'jax'"):
        pick_device("auto", runtime="jax")


def test_onnx_device_choice_does_not_import_torch():
    import subprocess
    import sys

    code = ("import sys; from dataigm.core.devices import pick_device; "
            "print(pick_device('cuda', 1, {'CUDA_VISIBLE_DEVICES': '7'}, runtime='onnx'), pick_device('auto', runtime='onnx'), "
            "'torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert out[0] == "cuda:0" and out[2] == "False"


@pytest.mark.parametrize("env, expected", [
    ({"SLURM_ARRAY_TASK_ID": "3", "SLURM_ARRAY_TASK_COUNT": "4"}, RankInfo(3, 4, 0, array=True)),
    ({"SLURM_ARRAY_TASK_ID": "1", "SLURM_ARRAY_TASK_COUNT": "250", "SLURM_ARRAY_TASK_MIN": "1"}, RankInfo(0, 250, 0, array=True)),
    ({"SLURM_ARRAY_TASK_ID": "6", "SLURM_ARRAY_TASK_COUNT": "4", "SLURM_ARRAY_TASK_MIN": "0", "SLURM_ARRAY_TASK_STEP": "2"},
     RankInfo(3, 4, 0, array=True)),
    # an array task of 2 tasks in an srun step: ranks 2*index + procid of 2*count
    ({"SLURM_ARRAY_TASK_ID": "2", "SLURM_ARRAY_TASK_COUNT": "3", "SLURM_STEP_NUM_TASKS": "2", "SLURM_PROCID": "1", "SLURM_LOCALID": "1"},
     RankInfo(5, 6, 1, array=True)),
    # an array task with several tasks outside srun is one process of the array (no refusal for arrays)
    ({"SLURM_ARRAY_TASK_ID": "0", "SLURM_ARRAY_TASK_COUNT": "2", "SLURM_NTASKS": "4"}, RankInfo(0, 2, 0, array=True)),
    ({"SLURM_ARRAY_TASK_ID": "0"}, RankInfo(0, 1, 0)),  # no count: not read as an array
    ({"WORLD_SIZE": "2", "RANK": "1", "SLURM_ARRAY_TASK_ID": "3", "SLURM_ARRAY_TASK_COUNT": "4"}, RankInfo(1, 2, 0)),  # torchrun wins
])
def test_job_array_tasks_are_ranks_of_a_world_that_never_meets(env, expected) -> None:
    assert rank_from_env(env) == expected


def test_array_task_flag_and_bad_arrays() -> None:
    assert rank_from_env({"WORLD_SIZE": "8", "RANK": "1"}, array_task="2/5") == RankInfo(2, 5, 0, array=True)
    assert parse_array_task(" 0 / 1 ") == RankInfo(0, 1, 0, array=True)
    for bad in ("2", "a/4", "1/", "-1/4"):
        with pytest.raises(ValueError, match=r"array task must be I/N .* got"):
            parse_array_task(bad)
    with pytest.raises(ValueError, match=r"rank must be in \[0, 4\), got 4"):
        parse_array_task("4/4")
    with pytest.raises(ValueError, match=r"SLURM_ARRAY_TASK_ID=9 is task 9 of an array of SLURM_ARRAY_TASK_COUNT=4"):
        rank_from_env({"SLURM_ARRAY_TASK_ID": "9", "SLURM_ARRAY_TASK_COUNT": "4"})  # --array=1,5,9 lists
    with pytest.raises(ValueError, match=r"SLURM_ARRAY_TASK_ID=3 is not on the array's grid \(min 0, step 2\)"):
        rank_from_env({"SLURM_ARRAY_TASK_ID": "3", "SLURM_ARRAY_TASK_COUNT": "4", "SLURM_ARRAY_TASK_STEP": "2"})


def test_stages_with_barriers_refuse_a_job_array() -> None:
    from dataigm.core.partition import refuse_array

    refuse_array(RankInfo(1, 4), "curation")  # torchrun/srun ranks meet: fine
    with pytest.raises(ValueError, match=r"curation waits for all its ranks at barriers, so it cannot run as a job array \(task 1 of 4\)"):
        refuse_array(rank_from_env({"SLURM_ARRAY_TASK_ID": "1", "SLURM_ARRAY_TASK_COUNT": "4"}), "curation")
