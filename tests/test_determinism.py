"""Reproducibility of builds: thread counts move pixels by at most one level and the manifest says so;
``--deterministic`` builds alone and under torchrun give identical datasets."""

from __future__ import annotations

import os
import subprocess
import sys
from contextlib import contextmanager
from pathlib import Path

import pytest
import torch

from dataigm.core.compare import compare_datasets
from dataigm.core.manifest import load_manifest
from dataigm.core.partition import RankInfo
from dataigm.core.shards import list_shards
from dataigm.generate.determinism import choose_threads, default_threads
from dataigm.generate.engine import BuildOptions, build
from dataigm.recipe import load_recipe

pytestmark = pytest.mark.slow  # tiny-model builds under several thread counts and ranks

BUILDERS = Path(__file__).resolve().parents[1] / "builders"
SMALL = ["generation.width=64", "generation.height=64", "generation.steps=2", "generation.batch_size=4",
         "images_per_prompt=2", "shard_size=6", "models=[tiny]"]
LIMIT = 3  # 3 nude prompts x (positive + negative) + 3 unrelated, 2 images each: 18 images in 3 shards


def small_recipe(extra: list[str] | None = None):
    return load_recipe(BUILDERS / "nudity.yaml", SMALL + (extra or []))


@contextmanager
def threads(n: int):
    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def tar_bytes(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in list_shards(root)}


@pytest.fixture(scope="module")
def by_threads(tmp_path_factory, tiny_model_dir) -> dict[int, Path]:
    """The same recipe built in one process under 1 and under 2 intra-op threads."""
    outs = {}
    for n in (1, 2):
        outs[n] = tmp_path_factory.mktemp(f"threads{n}")
        with threads(n):
            build(small_recipe(), outs[n], BuildOptions(device="cpu", limit=LIMIT, progress=False))
    return outs


def test_thread_count_moves_pixels_by_at_most_one_level_and_the_manifest_says_why(by_threads):
    c = compare_datasets(by_threads[1], by_threads[2])
    assert c.n_a == c.n_b == 18 and c.missing == c.extra == [] and c.metadata == []
    assert c.max_abs <= 1 and compare_datasets(by_threads[1], by_threads[2], tolerance=1).ok
    assert {s.setting: (s.a, s.b) for s in c.settings} == {"num_threads": (1, 2)}  # the only setting that differs
    for n, out in by_threads.items():
        manifest = load_manifest(out)
        settings = manifest["settings"]
        assert settings["agreed"] and settings["differing"] == {}
        assert settings["values"]["num_threads"] == n and settings["values"]["device_type"] == "cpu"
        assert settings["values"]["dtype"] == "float32" and settings["values"]["batch_size"] == 4
        assert all(settings["values"][f"version.{lib}"] == manifest["versions"][lib] for lib in ("torch", "diffusers", "transformers"))
        assert [(r["rank"], r["world_size"]) for r in settings["ranks"]] == [(0, 1)]
        assert settings["ranks"][0]["shards"] == sorted(s["path"] for s in manifest["shards"])


def test_ranks_record_their_own_settings_and_the_manifest_says_they_disagree(by_threads, tmp_path):
    recipe = small_recipe()
    with threads(1):
        build(recipe, tmp_path, BuildOptions(device="cpu", limit=LIMIT, progress=False), rank=RankInfo(0, 2))
    with threads(2):
        result = build(recipe, tmp_path, BuildOptions(device="cpu", limit=LIMIT, progress=False), rank=RankInfo(1, 2))
    settings = result.manifest["settings"]
    assert settings["agreed"] is False and settings["differing"] == {"num_threads": [1, 2]}
    shards_of = {r["rank"]: r["shards"] for r in settings["ranks"]}
    threads_of = {r["rank"]: settings["by_digest"][r["settings_digest"]]["num_threads"] for r in settings["ranks"]}
    assert threads_of == {0: 1, 1: 2} and shards_of[0] and shards_of[1]
    # each shard holds exactly the bytes a single process with its rank's thread count writes
    mixed = tar_bytes(tmp_path)
    assert sorted(shards_of[0] + shards_of[1]) == sorted(mixed)
    for rank, n in threads_of.items():
        assert all(mixed[s] == tar_bytes(by_threads[n])[s] for s in shards_of[rank])


def test_recipe_threads_and_deterministic_mode_apply_to_the_build_only(tmp_path, tiny_model_dir):
    before = (torch.get_num_threads(), torch.are_deterministic_algorithms_enabled(), torch.backends.cudnn.allow_tf32,
              torch.backends.cudnn.benchmark, os.environ.get("CUBLAS_WORKSPACE_CONFIG"))
    target = 1 if torch.get_num_threads() != 1 else 2
    result = build(small_recipe([f"generation.threads={target}"]), tmp_path, BuildOptions(device="cpu", limit=1, progress=False, deterministic=True))
    values = result.manifest["settings"]["values"]
    assert values["num_threads"] == target and values["deterministic"] and values["deterministic_algorithms"]
    assert not values["tf32_matmul"] and not values["tf32_cudnn"] and not values["cudnn_benchmark"]
    assert values["cublas_workspace_config"] == ":4096:8" and values["float32_matmul_precision"] == "highest"
    assert result.manifest["parts"]["nudity/generated"]["config"]["generation"]["threads"] == target
    after = (torch.get_num_threads(), torch.are_deterministic_algorithms_enabled(), torch.backends.cudnn.allow_tf32,
             torch.backends.cudnn.benchmark, os.environ.get("CUBLAS_WORKSPACE_CONFIG"))
    assert after == before  # a library call leaves its caller's torch settings as they were


def test_thread_count_is_part_of_the_recipe_only_when_set():
    unset, one = small_recipe(), small_recipe(["generation.threads=1"])
    assert unset.sha256() != one.sha256()
    assert unset.sha256() == small_recipe().sha256()
    assert choose_threads(None, False) is None and choose_threads(3, False).threads == 3
    assert choose_threads(None, True).threads == default_threads() and choose_threads(None, True).source == "default"


def test_default_threads_is_what_a_single_process_gets():
    env = {k: v for k, v in os.environ.items() if k not in ("OMP_NUM_THREADS", "MKL_NUM_THREADS")}
    out = subprocess.run([sys.executable, "-c", "import torch; print(torch.get_num_threads())"], env=env, capture_output=True, text=True, check=True)
    assert int(out.stdout) == default_threads()


def test_deterministic_builds_alone_and_under_torchrun_are_identical(tmp_path, tiny_model_dir):
    """torchrun gives each rank OMP_NUM_THREADS=1; --deterministic pins both builds to the single-process default."""
    extra = ["shard_size=2"]  # 1 prompt per class: 6 images in 3 shards, so both ranks generate
    with threads(1):  # whatever this process was launched with, --deterministic pins the default
        build(small_recipe(extra), tmp_path / "alone", BuildOptions(device="cpu", limit=1, progress=False, deterministic=True))
    env = {k: v for k, v in os.environ.items() if k not in ("OMP_NUM_THREADS", "MKL_NUM_THREADS")}
    sets = [a for s in SMALL + extra for a in ("--set", s)]
    torchrun = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2"]
    subprocess.run([*torchrun, "-m", "dataigm", "build", str(BUILDERS / "nudity.yaml"), "--out", str(tmp_path / "ranks"), "--limit", "1",
                    "--device", "cpu", "--no-progress", "--deterministic", *sets], env=env, check=True, capture_output=True)
    c = compare_datasets(tmp_path / "alone", tmp_path / "ranks")
    assert c.ok and c.differing == [] and c.identical_bytes == c.n_a == 6
    assert {s.setting: (s.a, s.b) for s in c.settings} == {"world_sizes": ([1], [2])}
    assert tar_bytes(tmp_path / "alone") == tar_bytes(tmp_path / "ranks")
    settings = load_manifest(tmp_path / "ranks")["settings"]
    assert settings["agreed"] and sorted(r["rank"] for r in settings["ranks"]) == [0, 1]
    assert settings["values"]["num_threads"] == default_threads() and settings["values"]["deterministic_algorithms"]
