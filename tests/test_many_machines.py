"""Stops and job arrays on real tiny-model builds: Ctrl-C and SIGTERM keep the batch in flight, print one line and
exit 130/143, and the rerun resumes to the bytes of a build never stopped; four job-array tasks started at different
times (one stopped by SIGTERM and rerun) give the bytes of one process, and the last task writes the manifest once."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from dataigm.cli import main
from dataigm.core.manifest import MANIFEST, load_manifest, verify
from dataigm.core.shards import checkpoint_paths, list_shards, read_checkpoint
from dataigm.generate.engine import BuildOptions, build
from dataigm.generate.plan import plan_build
from dataigm.recipe import load_recipe

BUILDERS = Path(__file__).resolve().parents[1] / "builders"
# 24 images in 7 shards of up to 4, generated in batches of 2
SMALL = ["generation.width=64", "generation.height=64", "generation.steps=2", "generation.batch_size=2",
         "images_per_prompt=2", "shard_size=4"]
ARGS = ["build", str(BUILDERS / "nudity.yaml"), "--limit", "4", "--device", "cpu", "--no-progress", "--model", "tiny",
        "--deterministic"] + [a for s in SMALL for a in ("--set", s)]
LAUNCHER_VARS = ("WORLD_SIZE", "RANK", "LOCAL_RANK", "SLURM_NTASKS", "SLURM_PROCID", "SLURM_STEP_NUM_TASKS",
                 "SLURM_ARRAY_TASK_ID", "SLURM_ARRAY_TASK_COUNT", "SLURM_ARRAY_TASK_MIN", "SLURM_ARRAY_TASK_STEP")

pytestmark = pytest.mark.slow


def recipe():
    return load_recipe(BUILDERS / "nudity.yaml", SMALL + ["models=[tiny]"])


def tar_bytes(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in list_shards(root)}


def clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in LAUNCHER_VARS}
    return env | {"PYTHONUNBUFFERED": "1", "HF_HUB_OFFLINE": "1"} | extra


def kept_images(out: Path) -> int:
    """Images a stopped build left that a rerun will not generate again: finished shards and checkpoints."""
    done = sum(json.loads(p.read_text())["ok"] for p in (out / "_stats").rglob("*.json"))
    held = sum(json.loads(p.read_text())["ok"] for p in out.rglob(".*.tar.partial.json"))
    return done + held


def wait_for(path_glob: tuple[Path, str], proc: subprocess.Popen, timeout: float = 300) -> None:
    folder, pattern = path_glob
    deadline = time.time() + timeout
    while not list(folder.glob(pattern)):
        assert proc.poll() is None, "the build ended before the signal"
        assert time.time() < deadline
        time.sleep(0.02)


@pytest.fixture(scope="module")
def reference(tmp_path_factory, tiny_model_dir) -> Path:
    out = tmp_path_factory.mktemp("reference")
    build(recipe(), out, BuildOptions(device="cpu", limit=4, progress=False, deterministic=True))
    return out


@pytest.mark.parametrize("signum, code", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_a_stopped_build_keeps_its_batch_prints_one_line_and_resumes(reference, tmp_path, monkeypatch, signum, code) -> None:
    out = tmp_path / "out"
    proc = subprocess.Popen([sys.executable, "-m", "dataigm", *ARGS, "--out", str(out)], env=clean_env(),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    wait_for((out, "_stats/*/*/*.json"), proc)  # the first shard is done: the build is in its next batches
    at_signal = kept_images(out)
    proc.send_signal(signum)
    stdout, stderr = proc.communicate(timeout=300)
    assert proc.returncode == code
    assert "Traceback" not in stderr and "Error" not in stderr
    lines = [line for line in stderr.splitlines() if line.startswith("dataigm build:")]
    assert len(lines) == 1 and lines[0].startswith(f"dataigm build: interrupted by {signal.Signals(signum).name}: ")
    assert lines[0].endswith("; run the same command again to resume")
    assert not (out / MANIFEST).exists() and not list(out.rglob(".*.tmp-*"))
    kept = kept_images(out)
    assert kept >= at_signal + 2  # what was done, and at least the batch in flight (2 images): nothing generated is lost
    if "checkpointed" in lines[0]:
        (state,) = out.rglob(".*.tar.partial.json")
        assert json.loads(state.read_text())["ok"] % 2 == 0  # whole batches
    # the rerun (here in this process) generates exactly what was not kept, and gives the same bytes
    for name in ("WORLD_SIZE", "SLURM_ARRAY_TASK_ID", "SLURM_NTASKS"):
        monkeypatch.delenv(name, raising=False)
    assert main([*ARGS, "--out", str(out)]) == 0
    total = load_manifest(reference)["totals"]["samples"]
    assert load_manifest(out)["totals"]["samples"] == total == 24
    stats = [json.loads(p.read_text()) for p in (out / "_stats").rglob("*.json")]
    assert sum(s["ok"] for s in stats) == 24
    assert tar_bytes(out) == tar_bytes(reference)
    assert verify(out) == [] and not list(out.rglob(".*.partial*"))


def test_job_array_of_four_tasks_one_preempted_builds_one_process_bytes(reference, tmp_path, monkeypatch, capsys) -> None:
    out = tmp_path / "array"
    plan = plan_build(recipe(), limit=4)
    owned = {i: [s.spec for s in plan.shards[i::4]] for i in range(4)}
    assert [len(owned[i]) for i in range(4)] == [2, 2, 2, 1]

    def task(i: int) -> int:
        for name in LAUNCHER_VARS:
            monkeypatch.delenv(name, raising=False)
        monkeypatch.setenv("SLURM_ARRAY_TASK_ID", str(i))
        monkeypatch.setenv("SLURM_ARRAY_TASK_COUNT", "4")
        return main([*ARGS, "--out", str(out)])

    # task 1 starts first and is preempted (SIGTERM) once its first shard is done, in its second shard (2 batches)
    proc = subprocess.Popen([sys.executable, "-m", "dataigm", *ARGS, "--out", str(out)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=clean_env(SLURM_ARRAY_TASK_ID="1", SLURM_ARRAY_TASK_COUNT="4"))
    wait_for((out, owned[1][0].stats_relpath), proc)
    proc.send_signal(signal.SIGTERM)
    _, stderr = proc.communicate(timeout=300)
    assert proc.returncode == 143 and "interrupted by SIGTERM: " in stderr and "Traceback" not in stderr
    second = owned[1][1]
    held = read_checkpoint(out, second, 4)  # the batch in flight kept, unless the stop came at the shard's end
    assert (held is not None and held["ok"] == 2) or second.stats_path(out).exists()
    # tasks 0 and 2 run later, then task 1 again (the requeue): none of them finds every shard done
    for i in (0, 2, 1):
        assert task(i) == 0
        assert not (out / MANIFEST).exists()
        assert "other ranks, array tasks or parts are still running" in capsys.readouterr().err
    assert all(s.stats_path(out).exists() for i in (0, 1, 2) for s in owned[i])
    assert not any(p.exists() for p in checkpoint_paths(out, second))
    # the last task writes the manifest
    assert task(3) == 0
    assert (out / MANIFEST).exists() and "still running" not in capsys.readouterr().err
    inode = (out / MANIFEST).stat().st_ino
    assert main(["finalize", str(out)]) == 0  # by hand afterwards: already current, not rewritten
    assert "already current" in capsys.readouterr().out and (out / MANIFEST).stat().st_ino == inode
    assert tar_bytes(out) == tar_bytes(reference)
    assert load_manifest(out)["shards"] == load_manifest(reference)["shards"]
    assert verify(out) == []
