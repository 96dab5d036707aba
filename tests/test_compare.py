"""`dataigm compare`: keys, pixels, metadata and manifest settings of two dataset folders."""

from __future__ import annotations

import io
import json
import math
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Callable

import numpy as np
import pytest
from PIL import Image

from dataigm.core.compare import compare_datasets, image_diff, settings_diffs
from dataigm.core.shards import RawSample, iter_tar, list_shards


def rewrite_shard(path: Path, edit: Callable[[RawSample], RawSample | None]) -> None:
    """Rewrite one tar in place, each sample passed through ``edit`` (``None`` drops it)."""
    import webdataset as wds

    samples = [edit(s) for s in iter_tar(path)]
    with open(path, "wb") as f:
        writer = wds.TarWriter(f, encoder=False)
        for s in samples:
            if s is not None:
                writer.write({"__key__": s.key, "png": s.image, "json": json.dumps(s.meta).encode(), "cls": str(s.label).encode()})
        writer.close()


def png(arr: np.ndarray, compress_level: int = 6) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format="PNG", compress_level=compress_level)
    return buf.getvalue()


def decoded(data: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(data))).copy()


@pytest.fixture()
def pair(shapes_dataset, tmp_path):
    """A copy of the shapes dataset and a second copy with one image altered, one key removed, one prompt changed."""
    a, b = tmp_path / "a", tmp_path / "b"
    shutil.copytree(shapes_dataset, a)
    shutil.copytree(shapes_dataset, b)
    first = list_shards(b)[0]
    keys = [s.key for s in iter_tar(first)]
    altered, removed, reprompted = keys[0], keys[1], keys[2]

    def edit(s: RawSample) -> RawSample | None:
        if s.key == removed:
            return None
        if s.key == altered:
            arr = decoded(s.image)
            arr[10, 20, 1] = np.clip(int(arr[10, 20, 1]) + 7, 0, 255) if arr[10, 20, 1] < 200 else arr[10, 20, 1] - 7
            arr[30, 5, :] = np.where(arr[30, 5, :] < 200, arr[30, 5, :] + 2, arr[30, 5, :] - 2)
            return RawSample(s.key, png(arr), s.meta, s.label)
        if s.key == reprompted:
            return RawSample(s.key, s.image, {**s.meta, "prompt": "a changed prompt"}, s.label)
        return s

    rewrite_shard(first, edit)
    return a, b, {"altered": altered, "removed": removed, "reprompted": reprompted, "n": sum(1 for p in list_shards(a) for _ in iter_tar(p))}


def test_reports_altered_image_removed_key_and_changed_prompt(pair):
    a, b, k = pair
    c = compare_datasets(a, b)
    assert c.missing == [k["removed"]] and c.extra == [] and c.duplicates == []
    assert c.n_a == k["n"] and c.n_b == k["n"] - 1
    assert [d.key for d in c.differing] == [k["altered"]]
    d = c.differing[0]
    # one channel moved by 7 levels, one pixel's three channels by 2: 2 pixels differ, sum |diff| = 13, sum diff^2 = 61
    n_values = 64 * 64 * 3
    assert d.max_abs == 7 and d.differing_pixels == 2
    assert d.mean_abs == pytest.approx(13 / n_values, abs=1e-6)
    assert d.psnr == pytest.approx(10 * math.log10(255**2 / (61 / n_values)), abs=1e-3)
    assert c.identical == c.identical_bytes == k["n"] - 2
    assert [(f.field, f.n) for f in c.metadata] == [("prompt", 1)]
    assert c.metadata[0].examples[0]["key"] == k["reprompted"] and c.metadata[0].examples[0]["b"] == "a changed prompt"
    assert not c.ok
    reverse = compare_datasets(b, a)
    assert reverse.missing == [] and reverse.extra == [k["removed"]] and not reverse.ok


def test_tolerance_only_forgives_pixels(pair, tmp_path):
    a, b, k = pair
    assert not compare_datasets(a, b, tolerance=255).ok  # a missing key and a changed prompt are never tolerated
    only_pixels = tmp_path / "only_pixels"
    shutil.copytree(a, only_pixels)
    first = list_shards(only_pixels)[0]
    altered = {s.key: s for s in iter_tar(list_shards(b)[0])}[k["altered"]]
    rewrite_shard(first, lambda s: altered if s.key == k["altered"] else s)
    assert not compare_datasets(a, only_pixels, tolerance=6).ok
    c = compare_datasets(a, only_pixels, tolerance=7)
    assert c.ok and c.max_abs == 7 and len(c.differing) == 1


def test_same_pixels_in_other_png_bytes_are_identical(shapes_dataset, tmp_path):
    b = tmp_path / "b"
    shutil.copytree(shapes_dataset, b)
    first = list_shards(b)[0]
    reencoded = next(iter_tar(first)).key
    rewrite_shard(first, lambda s: RawSample(s.key, png(decoded(s.image), compress_level=0), s.meta, s.label) if s.key == reencoded else s)
    c = compare_datasets(shapes_dataset, b)
    assert c.ok and c.differing == [] and c.identical == c.n_a and c.identical_bytes == c.n_a - 1


def test_image_diff_of_other_sizes_names_them():
    small, large = np.zeros((32, 32, 3), np.uint8), np.zeros((64, 64, 3), np.uint8)
    d = image_diff("k", png(small), png(large))
    assert d is not None and d.max_abs == 255 and "32x32" in d.note and "64x64" in d.note
    assert image_diff("k", png(small), png(small, compress_level=0)) is None


def test_settings_that_differ_between_manifests():
    def manifest(threads: list[int], sha: str) -> dict:
        ranks = [{"settings": {"num_threads": t, "dtype": "float32"}} for t in threads]
        values = {"dtype": "float32"} | ({"num_threads": threads[0]} if len(set(threads)) == 1 else {})
        differing = {} if len(set(threads)) == 1 else {"num_threads": sorted(set(threads))}
        return {"parts": {"nudity/generated": {"config_sha256": sha}}, "models": {"tiny": {"revision": "r", "dtype": "float32"}},
                "settings": {"agreed": not differing, "values": values, "differing": differing,
                             "ranks": [{"world_size": len(threads), **r} for r in ranks]}}

    diffs = {d.setting: (d.a, d.b) for d in settings_diffs(manifest([2], "x"), manifest([1, 2], "y"))}
    assert diffs == {"num_threads": (2, [1, 2]), "ranks_agreed": (True, False), "world_sizes": ([1], [2]),
                     "recipe_sha256[nudity/generated]": ("x", "y")}
    assert settings_diffs(manifest([1], "x"), manifest([1], "x")) == []


def run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "dataigm", "compare", *map(str, args)], capture_output=True, text=True)


def test_cli_json_is_one_object_and_exit_codes(pair, shapes_dataset):
    a, b, k = pair
    cli = run_cli(a, b, "--json")
    assert cli.returncode == 1
    report = json.loads(cli.stdout)  # the whole of stdout is one JSON object
    assert report["missing"] == [k["removed"]] and report["ok"] is False and report["max_abs"] == 7
    assert report["differing"][0]["key"] == k["altered"] and report["metadata"][0]["field"] == "prompt"
    text = run_cli(a, b, "--no-progress")
    assert text.returncode == 1 and k["removed"] in text.stdout and "prompt" in text.stdout and "DIFFERENT" in text.stdout
    same = run_cli(shapes_dataset, a, "--no-progress")
    assert same.returncode == 0 and "same: identical" in same.stdout
    ignored = run_cli(a, b, "--json", "--ignore-field", "prompt")
    assert [f["field"] for f in json.loads(ignored.stdout)["metadata"]] == []


def test_cli_errors_are_one_line(shapes_dataset, tmp_path):
    for args, expected in [((shapes_dataset, tmp_path / "nope"), "is not a folder"), ((shapes_dataset, tmp_path), "holds no shards"),
                           ((shapes_dataset, shapes_dataset, "--tolerance", "300"), "0-255")]:
        cli = run_cli(*args)
        assert cli.returncode == 2 and expected in cli.stderr and len(cli.stderr.strip().splitlines()) == 1
