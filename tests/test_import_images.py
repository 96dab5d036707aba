"""Real-image folder import: mixed formats and odd modes, bad files, splits, labels across parts, resume."""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from dataigm.core.manifest import load_manifest, verify
from dataigm.core.shards import iter_samples, list_shards, read_stats
from dataigm.ingest.images import ImageDecodeError, decode_image, import_images, import_recipe_images, split_counts
from dataigm.synthetic import write_synthetic_folder

CLASSES = ["church", "parachute", "other"]


def _jpeg(img: Image.Image, **kwargs) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format="JPEG", quality=95, **kwargs)
    return buf.getvalue()


@pytest.fixture()
def mixed_folder(tmp_path: Path) -> Path:
    """train/test x 3 classes x 4 drawn PNGs, plus odd files: 7 extra good images, 3 bad, 2 ignored."""
    root = tmp_path / "photos"
    write_synthetic_folder(root, CLASSES, 4, splits=["train", "test"])
    church, parachute, other = (root / "train" / c for c in CLASSES)
    exif = Image.Exif()
    exif[0x0112] = 6  # orientation: rotate 90 degrees clockwise to display
    (church / "rotated.jpg").write_bytes(_jpeg(Image.new("RGB", (40, 20), (200, 30, 30)), exif=exif.tobytes()))
    (church / "cmyk.jpg").write_bytes(_jpeg(Image.new("CMYK", (32, 32), (0, 255, 255, 0))))  # red
    Image.new("RGB", (200, 100), (10, 120, 240)).save(parachute / "big.webp", format="WEBP")
    palette = Image.new("P", (24, 24), 1)
    palette.putpalette([0, 0, 0, 0, 200, 0] + [0] * 762)
    palette.save(parachute / "palette_transparent.png", transparency=1)  # fully transparent -> white
    Image.fromarray(np.full((16, 16), 32896, dtype=np.uint16)).save(other / "grey16.png")  # 16-bit mid grey
    Image.new("LA", (16, 16), (50, 255)).save(other / "grey_alpha.png")
    Image.new("RGBA", (16, 16), (0, 0, 255, 255)).save(root / "test" / "other" / "blue_rgba.png")
    (church / "zero.jpg").write_bytes(b"")
    (parachute / "truncated.jpg").write_bytes(_jpeg(Image.effect_noise((64, 64), 50).convert("RGB"))[:700])
    (other / "fake.png").write_text("this is not an image")
    (other / "notes.txt").write_text("ignored: not an image suffix")
    (church / ".DS_Store").write_bytes(b"\x00\x01")
    return root


def _load_webdataset(out: Path, tmp_path: Path):
    from datasets import load_dataset

    files = {split: [str(p) for p in list_shards(out, "object", split)] for split in ("train", "test")}
    return load_dataset("webdataset", data_files=files, cache_dir=str(tmp_path / "hf-cache"))


def test_mixed_folder_import_reads_back_with_datasets(mixed_folder: Path, tmp_path: Path) -> None:
    out = tmp_path / "ds"
    report = import_images(mixed_folder, out, "object", split_from_folders=True, max_size=64, shard_size=5, workers=2, progress=False)

    assert (report.ok, report.failed, report.ignored) == (24 + 7, 3, 1)
    assert report.failures == Counter({"empty file": 1, "truncated": 1, "not an image": 1})
    errors = {e["error"].split(":")[0]: e["error"] for s in read_stats(out) for e in s["errors"]}
    assert "train/church/zero.jpg" in errors["empty file"]
    assert "train/parachute/truncated.jpg" in errors["truncated"]
    assert "train/other/fake.png" in errors["not an image"]

    ds = _load_webdataset(out, tmp_path)
    assert (ds["train"].num_rows, ds["test"].num_rows) == (18, 13)
    by_split = {s: Counter(r["json"]["label_name"] for r in ds[s]) for s in ("train", "test")}
    assert by_split["train"] == {"church": 6, "parachute": 6, "other": 6}
    assert by_split["test"] == {"church": 4, "parachute": 4, "other": 5}
    rows = {r["json"]["original_path"]: r for s in ("train", "test") for r in ds[s]}
    assert len({tuple(sorted(r["json"])) for r in rows.values()}) == 1  # every sample has the same fields
    for path, r in rows.items():
        meta = r["json"]
        assert (meta["source"], meta["role"], meta["model"], meta["seed"]) == ("real", "real", "", -1)
        assert meta["label_names"] == ["church", "other", "parachute"] and r["cls"] == meta["label"]
        assert meta["label_name"] == path.split("/")[1] and meta["split"] == path.split("/")[0]
        assert r["png"].mode == "RGB" and max(r["png"].size) <= 64 and r["png"].size == (meta["width"], meta["height"])
    original = (mixed_folder / "train/church/0000.png").read_bytes()
    assert rows["train/church/0000.png"]["json"]["original_sha256"] == hashlib.sha256(original).hexdigest()
    assert rows["train/church/0000.png"]["json"]["concept"] == "church"  # a taxonomy concept's label
    assert rows["train/other/0000.png"]["json"]["concept"] == ""
    assert rows["train/church/rotated.jpg"]["png"].size == (20, 40)  # EXIF orientation applied
    assert rows["train/parachute/big.webp"]["png"].size == (64, 32)  # downscaled, aspect kept
    red = rows["train/church/cmyk.jpg"]["png"].getpixel((16, 16))
    assert red[0] > 200 and red[1] < 60 and red[2] < 60
    assert rows["train/parachute/palette_transparent.png"]["png"].getpixel((3, 3)) == (255, 255, 255)
    assert rows["train/other/grey16.png"]["png"].getpixel((8, 8)) == (128, 128, 128)
    assert rows["train/other/grey_alpha.png"]["png"].getpixel((8, 8)) == (50, 50, 50)
    assert rows["test/other/blue_rgba.png"]["png"].getpixel((8, 8)) == (0, 0, 255)
    assert rows["train/church/0000.png"]["png"].size == (64, 64)  # never upscaled, never shrunk at the limit

    manifest = load_manifest(out)
    assert manifest["counts"]["object"]["splits"]["train"]["sources"] == {"real": 18}
    assert manifest["counts"]["object"]["splits"]["train"]["failed"] == 3
    assert manifest["parts"]["object/real"]["kind"] == "real" and manifest["incomplete"] == []
    assert verify(out) == []


def test_reimport_is_idempotent_and_byte_identical(mixed_folder: Path, tmp_path: Path) -> None:
    first = import_images(mixed_folder, tmp_path / "a", "object", split_from_folders=True, max_size=64, shard_size=5, progress=False)
    again = import_images(mixed_folder, tmp_path / "a", "object", split_from_folders=True, max_size=64, shard_size=5, progress=False)
    import_images(mixed_folder, tmp_path / "b", "object", split_from_folders=True, max_size=64, shard_size=5, workers=1, progress=False)
    assert (again.shards_written, again.shards_skipped) == (0, first.shards_planned)

    def shard_digests(root: Path) -> dict[str, str]:
        return {s["path"]: s["sha256"] for s in load_manifest(root)["shards"]}

    assert shard_digests(tmp_path / "a") == shard_digests(tmp_path / "b")
    assert first.shards_planned == len(read_stats(tmp_path / "a")) == 8
    empty = [s["shard"] for s in read_stats(tmp_path / "a") if s["ok"] == 0]  # a shard of only undecodable files
    assert len(empty) == 1 and not (tmp_path / "a" / empty[0]).exists()  # has stats, publishes no empty tar
    assert len(shard_digests(tmp_path / "a")) == 7 and empty[0] not in shard_digests(tmp_path / "a")
    keys_a = [s.key for s in iter_samples(list_shards(tmp_path / "a"))]
    assert keys_a == [s.key for s in iter_samples(list_shards(tmp_path / "b"))] and len(set(keys_a)) == 31


@pytest.mark.slow  # end to end: the faster tests state its parts
def test_resume_after_kill_gives_the_same_dataset(tmp_path: Path) -> None:
    folder = tmp_path / "many"
    write_synthetic_folder(folder, ["a", "b", "c"], 40, size=160)
    args = [sys.executable, "-m", "dataigm", "import-images", str(folder), "-c", "object", "-o", str(tmp_path / "killed"),
            "--max-size", "64", "--shard-size", "10", "--workers", "1", "--no-progress"]
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    stats_dir = tmp_path / "killed" / "_stats"
    deadline = time.monotonic() + 120
    while not list(stats_dir.rglob("*.json")) and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.01)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    finished = len(list(stats_dir.rglob("*.json")))
    assert 1 <= finished < 14, f"the kill should land mid-run ({finished} of 14 shards finished)"  # 96/12/12 -> 10+2+2

    resumed = import_images(folder, tmp_path / "killed", "object", max_size=64, shard_size=10, progress=False)
    assert resumed.shards_planned == 14
    assert resumed.shards_skipped == finished and resumed.shards_written == 14 - finished
    assert not list((tmp_path / "killed").rglob(".*.tmp-*"))
    import_images(folder, tmp_path / "clean", "object", max_size=64, shard_size=10, progress=False)
    clean = {s["path"]: s["sha256"] for s in load_manifest(tmp_path / "clean")["shards"]}
    assert {s["path"]: s["sha256"] for s in load_manifest(tmp_path / "killed")["shards"]} == clean
    assert verify(tmp_path / "killed") == []


def test_split_fractions_are_exact_per_class_and_stable(tmp_path: Path) -> None:
    folder = tmp_path / "flat"
    write_synthetic_folder(folder, ["church", "parachute"], 8)
    report = import_images(folder, tmp_path / "ds", "object", splits={"train": 0.5, "val": 0.25, "test": 0.25}, shard_size=100, progress=False)
    counts = report.manifest["counts"]["object"]["splits"]
    assert {s: counts[s]["labels"] for s in counts} == {s: {"church": n, "parachute": n} for s, n in (("train", 4), ("val", 2), ("test", 2))}
    assignment = {s.meta["original_path"]: s.meta["split"] for s in iter_samples(list_shards(tmp_path / "ds"))}
    import_images(folder, tmp_path / "ds2", "object", splits={"train": 0.5, "val": 0.25, "test": 0.25}, progress=False)
    assert {s.meta["original_path"]: s.meta["split"] for s in iter_samples(list_shards(tmp_path / "ds2"))} == assignment
    assert split_counts(7, {"train": 0.8, "val": 0.1, "test": 0.1}) == {"train": 5, "val": 1, "test": 1}  # largest remainders
    assert sum(split_counts(1003, {"train": 0.8, "val": 0.1, "test": 0.1}).values()) == 1003


def test_real_part_joins_a_generated_part_with_its_labels(shapes_dataset: Path, tmp_path: Path) -> None:
    out = tmp_path / "ds"
    shutil.copytree(shapes_dataset, out)
    folder = tmp_path / "photos"
    write_synthetic_folder(folder, ["Church Photos", "parachutes", "misc"], 3, splits=["train"])

    with pytest.raises(ValueError, match=r"\['Church Photos', 'misc', 'parachutes'\].*\['church', 'parachute', 'other'\]"):
        import_images(folder, out, "object", split_from_folders=True, progress=False)

    mapping = {"Church Photos": "church", "parachutes": "parachute", "misc": "other"}
    report = import_images(folder, out, "object", split_from_folders=True, class_map=mapping, progress=False)
    assert report.label_names == ["church", "parachute", "other"]  # the generated part's order
    train = report.manifest["counts"]["object"]["splits"]["train"]
    assert train["sources"] == {"generated": 120, "real": 9}
    assert train["labels"] == {"church": 43, "parachute": 43, "other": 43}
    real = [s for s in iter_samples(list_shards(out, "object", "train")) if s.meta["source"] == "real"]
    assert {(s.meta["subcategory"], s.meta["label_name"], s.label) for s in real} == {
        ("Church Photos", "church", 0), ("parachutes", "parachute", 1), ("misc", "other", 2)}
    assert verify(out) == []


def test_recipe_real_images_entry(tmp_path: Path) -> None:
    from dataigm.recipe import load_recipe

    write_synthetic_folder(tmp_path / "real_church", ["church_photos", "houses"], 5)
    (tmp_path / "map.yaml").write_text("church_photos: church\nhouses: other\n")
    (tmp_path / "church.yaml").write_text(
        "name: church\ncategory: church\ntaxonomy: object\nlabels: [other, church]\n"
        "classes:\n  - name: church\n    concept: church\n    negatives: other\n    prompts: {prompts: ['a church']}\n"
        "splits: {train: 0.6, test: 0.4}\n"
        "real_images:\n  - {folder: real_church, class_map_file: map.yaml, max_size: 32, shard_size: 4}\n"
    )
    recipe = load_recipe(tmp_path / "church.yaml")
    [report] = import_recipe_images(recipe, tmp_path / "ds", progress=False)
    assert report.label_names == ["other", "church"]
    counts = report.manifest["counts"]["church"]
    assert counts["taxonomy"] == "object"
    assert {s: sp["labels"] for s, sp in counts["splits"].items()} == {"train": {"church": 3, "other": 3}, "test": {"church": 2, "other": 2}}
    sample = next(iter_samples(list_shards(tmp_path / "ds", "church")))
    assert sample.meta["taxonomy"] == "object" and sample.meta["width"] == 32
    assert report.manifest["parts"]["church/real"]["config"]["class_map"] == {"church_photos": "church", "houses": "other"}


@pytest.mark.parametrize(
    "mode, make, expected",
    [
        ("CMYK", lambda: Image.new("CMYK", (8, 8), (0, 0, 0, 0)), (255, 255, 255)),
        ("P", lambda: Image.new("RGB", (8, 8), (10, 20, 30)).quantize(4), (10, 20, 30)),
        ("1", lambda: Image.new("1", (8, 8), 1), (255, 255, 255)),
        ("L", lambda: Image.new("L", (8, 8), 77), (77, 77, 77)),
        ("I;16", lambda: Image.fromarray(np.full((8, 8), 65535, dtype=np.uint16)), (255, 255, 255)),
        ("F", lambda: Image.fromarray(np.full((8, 8), 0.5, dtype=np.float32)), (128, 128, 128)),
        ("RGBA", lambda: Image.new("RGBA", (8, 8), (0, 0, 0, 0)), (255, 255, 255)),
    ],
)
def test_decode_any_mode_to_rgb(mode: str, make, expected: tuple[int, int, int]) -> None:
    img = make()
    assert img.mode == mode
    buf = io.BytesIO()
    img.save(buf, format="TIFF")
    decoded = decode_image(buf.getvalue(), max_size=1024)
    out = Image.open(io.BytesIO(decoded.png))
    assert (out.format, out.mode, out.size) == ("PNG", "RGB", (8, 8))
    assert out.getpixel((4, 4)) == expected
    assert decoded.original_mode == mode


def test_missing_empty_and_misshaped_folders(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="not found"):
        import_images(tmp_path / "nowhere", tmp_path / "ds", "object")
    (tmp_path / "empty" / "church").mkdir(parents=True)
    (tmp_path / "empty" / "church" / "notes.txt").write_text("x")
    with pytest.raises(ValueError, match="no image files found"):
        import_images(tmp_path / "empty", tmp_path / "ds", "object")
    write_synthetic_folder(tmp_path / "flat", ["church"], 1)
    with pytest.raises(ValueError, match=r"expects only split folders \['dev', 'test', 'train', 'val', 'valid', 'validation'\] at the top, found folder\(s\) \['church'\]"):
        import_images(tmp_path / "flat", tmp_path / "ds", "object", split_from_folders=True)
    with pytest.raises(ValueError, match="unknown split"):
        import_images(tmp_path / "flat", tmp_path / "ds", "object", splits={"training": 1.0})
    with pytest.raises(ValueError, match="must be >= 0 and sum to 1"):
        import_images(tmp_path / "flat", tmp_path / "ds", "object", splits={"train": float("nan"), "test": 1.0})
    assert not (tmp_path / "ds").exists()


def test_ordered_map_keeps_order_and_stops_on_close() -> None:
    from dataigm.ingest.images import _ordered_map

    calls = []

    def slow_square(i: int) -> int:
        calls.append(i)
        time.sleep(0.01 * (i % 3))  # out-of-order completion
        return i * i

    assert list(_ordered_map(slow_square, range(30), workers=3)) == [i * i for i in range(30)]
    calls.clear()
    results = _ordered_map(slow_square, range(1000), workers=2)
    assert [next(results) for _ in range(3)] == [0, 1, 4]
    results.close()  # what import_images does when a shard fails
    time.sleep(0.1)
    assert len(calls) <= 3 + 2 * 4  # the look-ahead is bounded and nothing is submitted after the close


@pytest.mark.parametrize("val_name", ["validation", "val", "valid", "dev"])
def test_split_folders_are_detected_by_name(tmp_path: Path, val_name: str) -> None:
    write_synthetic_folder(tmp_path / "photos", ["church", "other"], 2, splits=["train", val_name, "test"], size=16)
    report = import_images(tmp_path / "photos", tmp_path / "ds", "object", progress=False)
    assert report.label_names == ["church", "other"]  # the classes, not "train"/"test"
    splits = report.manifest["counts"]["object"]["splits"]
    assert {s: sp["labels"] for s, sp in splits.items()} == {s: {"church": 2, "other": 2} for s in ("train", "val", "test")}
    assert report.manifest["parts"]["object/real"]["config"]["split_from_folders"] is True
    for sample in iter_samples(list_shards(tmp_path / "ds", "object", "val")):  # every sample keeps its folder's split
        assert sample.meta["original_path"].startswith(f"{val_name}/")


def test_no_split_from_folders_reads_split_names_as_classes(tmp_path: Path) -> None:
    write_synthetic_folder(tmp_path / "photos", ["church"], 5, splits=["train", "test"], size=16)
    report = import_images(tmp_path / "photos", tmp_path / "ds", "object", split_from_folders=False, splits={"train": 0.6, "test": 0.4},
                           progress=False)
    assert report.label_names == ["test", "train"]
    assert report.manifest["counts"]["object"]["splits"]["train"]["labels"] == {"test": 3, "train": 3}


def test_mixed_split_and_class_folders_are_refused_in_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from dataigm.cli import main

    write_synthetic_folder(tmp_path / "photos", ["church"], 1, splits=["train"], size=16)
    write_synthetic_folder(tmp_path / "photos", ["parachute"], 1, size=16)
    code = main(["import-images", str(tmp_path / "photos"), "-c", "object", "-o", str(tmp_path / "ds"), "--no-progress"])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and "mix split names ['train'] and other names ['parachute']" in err
    assert not (tmp_path / "ds").exists()
    with pytest.raises(ValueError, match="has split folders"):  # fractions cannot apply to given splits
        import_images(_split_only(tmp_path), tmp_path / "ds", "object", splits={"train": 1.0})
    assert main(["import-images", str(tmp_path / "photos"), "-c", "object", "-o", str(tmp_path / "ds"), "--no-split-from-folders",
                 "--no-progress"]) == 0
    assert load_manifest(tmp_path / "ds")["counts"]["object"]["label_names"] == ["parachute", "train"]


def _split_only(tmp_path: Path) -> Path:
    write_synthetic_folder(tmp_path / "split_only", ["church"], 2, splits=["train", "test"], size=16)
    return tmp_path / "split_only"


def test_recipe_real_images_detects_split_folders(tmp_path: Path) -> None:
    from dataigm.recipe import load_recipe

    write_synthetic_folder(tmp_path / "real", ["church", "other"], 2, splits=["train", "validation"], size=16)
    (tmp_path / "church.yaml").write_text(
        "name: church\ncategory: church\ntaxonomy: object\nlabels: [other, church]\n"
        "classes:\n  - name: church\n    concept: church\n    negatives: other\n    prompts: {prompts: ['a church']}\n"
        "splits: {train: 0.6, test: 0.4}\n"
        "real_images:\n  - {folder: real, max_size: 16}\n"
    )
    [report] = import_recipe_images(load_recipe(tmp_path / "church.yaml"), tmp_path / "ds", progress=False)
    splits = report.manifest["counts"]["church"]["splits"]
    assert {s: sp["labels"] for s, sp in splits.items()} == {"train": {"church": 2, "other": 2}, "val": {"church": 2, "other": 2}}


def test_source_from_name(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from dataigm.cli import main

    for i, name in enumerate(["LAION_0001.png", "LAION_0002.png", "REAL_n01440764_1.png", "SD-GEN_00003.png", "photo.png"]):
        for cls in ("church", "other"):
            (tmp_path / "photos" / cls).mkdir(parents=True, exist_ok=True)
            Image.new("RGB", (16, 16), (i * 40, 0, 0)).save(tmp_path / "photos" / cls / name)
    pattern = r"^(?P<source>[A-Za-z]+(?:-[A-Za-z]+)?)_"
    assert main(["import-images", str(tmp_path / "photos"), "-c", "object", "-o", str(tmp_path / "ds"), "--split-fractions",
                 "train=1.0", "--source-from-name", pattern, "--no-progress"]) == 0
    assert "LAION=4, REAL=2, SD-GEN=2, real=2" in capsys.readouterr().out
    manifest = load_manifest(tmp_path / "ds")
    assert manifest["counts"]["object"]["splits"]["train"]["sources"] == {"LAION": 4, "REAL": 2, "SD-GEN": 2, "real": 2}
    assert manifest["parts"]["object/real"]["config"]["source_from_name"] == pattern
    by_file = {s.meta["original_path"]: s.meta["source"] for s in iter_samples(list_shards(tmp_path / "ds"))}
    assert by_file["church/SD-GEN_00003.png"] == "SD-GEN" and by_file["other/photo.png"] == "real"
    for bad, message in (("(unclosed", "not a valid regular expression"), ("^([A-Z]+)_", "no named group 'source'")):
        assert main(["import-images", str(tmp_path / "photos"), "-c", "object", "-o", str(tmp_path / "ds2"), "--source-from-name", bad]) == 2
        err = capsys.readouterr().err
        assert message in err and err.count("\n") == 1


def test_cli_import_and_one_line_errors(mixed_folder: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from dataigm.cli import main

    (tmp_path / "map.json").write_text(json.dumps({"other": "church"}))
    code = main(["import-images", str(mixed_folder), "-c", "object", "-o", str(tmp_path / "ds"), "--split-from-folders",
                 "--labels", "church,parachute", "--class-map", str(tmp_path / "map.json"), "--max-size", "32", "--no-progress"])
    assert code == 0
    out = capsys.readouterr().out
    assert "31 images imported, 3 failed" in out
    manifest = load_manifest(tmp_path / "ds")
    assert manifest["counts"]["object"]["splits"]["test"]["labels"] == {"church": 9, "parachute": 4}
    code = main(["import-images", str(tmp_path / "missing"), "-c", "object", "-o", str(tmp_path / "ds2")])
    assert code == 2 and "error: image folder" in capsys.readouterr().err


def test_demo_stage_adds_a_real_part_to_each_category(tmp_path: Path) -> None:
    from rich.console import Console

    from dataigm.demo import DemoContext
    from dataigm.ingest.demo import stage
    from dataigm.synthetic import write_synthetic_dataset

    dataset = tmp_path / "dataset"
    write_synthetic_dataset(dataset, "church", ["other", "church"], {"train": 4, "val": 1, "test": 1}, part="")
    console = Console(record=True, width=120)
    ctx = DemoContext(tmp_path, console, {"dataset": dataset})
    stage(ctx)
    assert ctx.artifacts["dataset"] == dataset
    counts = load_manifest(dataset)["counts"]["church"]["splits"]
    assert {s: sp["sources"] for s, sp in counts.items()} == {
        "train": {"generated": 8, "real": 6}, "val": {"generated": 2, "real": 6}, "test": {"generated": 2, "real": 6}}
    assert counts["train"]["failed"] == 1  # the demo's empty file
    real = [s for s in iter_samples(list_shards(dataset, "church")) if s.meta["source"] == "real"]
    assert Counter(Path(s.meta["original_path"]).suffix for s in real) == {".png": 12, ".jpg": 4, ".webp": 2}
    assert {s.meta["label_name"] for s in real} == {"other", "church"} and all(s.meta["width"] == 64 for s in real)
    assert "church: 18 real images imported" in console.export_text()
    assert verify(dataset) == []


def test_large_jpeg_is_reduced_then_downscaled_with_orientation() -> None:
    exif = Image.Exif()
    exif[0x0112] = 6
    data = _jpeg(Image.new("RGB", (1600, 1200), (30, 160, 90)), exif=exif.tobytes())
    decoded = decode_image(data, max_size=64)
    out = Image.open(io.BytesIO(decoded.png))
    assert decoded.original_size == (1600, 1200) and decoded.original_format == "JPEG"
    assert out.size == (48, 64)  # rotated to portrait, longest side 64
    assert all(abs(a - b) <= 3 for a, b in zip(out.getpixel((24, 32)), (30, 160, 90)))
    with pytest.raises(ImageDecodeError, match="empty file: x.jpg: 0 bytes"):
        decode_image(b"", 64, "x.jpg")


def test_class_map_must_map_folder_names_to_label_names(tmp_path: Path) -> None:
    from dataigm.ingest.images import load_class_map

    good = tmp_path / "map.yaml"
    good.write_text("church_photos: church\nhouses: other\n", encoding="utf-8")
    assert load_class_map(good) == {"church_photos": "church", "houses": "other"}
    for bad in ("- church\n- other\n", "church_photos: 1\n", "1: church\n", "just text\n"):
        good.write_text(bad, encoding="utf-8")
        with pytest.raises(ValueError, match="a class map must be a mapping of folder name -> label name"):
            load_class_map(good)
    good.write_text("a: [b\n", encoding="utf-8")
    with pytest.raises(ValueError, match="not valid YAML/JSON"):
        load_class_map(good)
    with pytest.raises(FileNotFoundError, match="class map .* not found"):
        load_class_map(tmp_path / "none.yaml")


def test_taxonomy_and_labels_agree_with_the_other_parts_of_the_category(tmp_path: Path) -> None:
    """A new part takes the taxonomy and label names of the category's other parts, and may not contradict them."""
    from dataigm.core.manifest import write_part
    from dataigm.ingest.images import resolve_labels, resolve_taxonomy

    root = tmp_path / "ds"
    assert resolve_taxonomy(root, "style", "real") == "style"  # no other part: a taxonomy category names itself
    assert resolve_taxonomy(root, "churches", "real") == "" and resolve_taxonomy(root, "churches", "real", "object") == "object"
    write_part(root, "churches", "generated", {"category": "churches", "taxonomy": "object", "label_names": ["church", "other"]})
    write_part(root, "paintings", "generated", {"category": "paintings", "label_names": ["monet", "other"]})  # no taxonomy
    assert resolve_taxonomy(root, "churches", "real") == "object"  # from the other part
    assert resolve_taxonomy(root, "churches", "generated") == ""  # a part is not its own other part
    assert resolve_taxonomy(root, "paintings", "real") == ""  # "paintings" is no taxonomy category
    with pytest.raises(ValueError, match=r"taxonomy 'style' differs from that of the dataset's 'churches' parts \['object'\]"):
        resolve_taxonomy(root, "churches", "real", "style")
    assert resolve_taxonomy(root, "churches", "real", "object") == "object"

    names, mapping = resolve_labels(root, "churches", "real", ["church", "houses"], {"houses": "other", "trees": "other"})
    assert (names, mapping) == (["church", "other"], {"church": "church", "houses": "other"})  # the parts' order
    assert resolve_labels(root, "new", "real", ["b", "a"], {"b": "x"}) == (["a", "x"], {"b": "x", "a": "a"})  # derived, sorted
    with pytest.raises(ValueError, match=r"label names \['other', 'church'\] differ from those of the dataset's 'churches' parts"):
        resolve_labels(root, "churches", "real", ["church"], {}, ["other", "church"])
    with pytest.raises(ValueError, match=r"class folder\(s\) \['houses'\] map to \['houses'\], not among the label names of the dataset's 'churches' parts"):
        resolve_labels(root, "churches", "real", ["church", "houses"], {})
    with pytest.raises(ValueError, match=r"not among the given label names \['church', 'other'\]"):
        resolve_labels(root, "new", "real", ["tree"], {}, ["church", "other"])
    write_part(root, "churches", "more", {"category": "churches", "taxonomy": "object", "label_names": ["church", "house"]})
    with pytest.raises(ValueError, match="parts of 'churches' disagree on label names"):
        resolve_labels(root, "churches", "real", ["church"], {})
    assert resolve_labels(root, "churches", "more", ["church"], {}, ["church", "other"])[0] == ["church", "other"]  # not itself


def test_arguments_are_checked_at_their_bounds_before_any_work(tmp_path: Path) -> None:
    from dataigm.ingest.images import DEFAULT_SPLITS, _check_import

    flat, split = tmp_path / "flat", tmp_path / "split"
    (flat / "church").mkdir(parents=True)
    (split / "train" / "church").mkdir(parents=True)
    out = tmp_path / "ds"
    ok = {"max_size": 8, "shard_size": 1, "png_compress_level": 0}

    def check(folder: Path = flat, category: str = "object", part: str = "real", from_folders: bool | None = None,
              splits: dict | None = None, **over: int) -> tuple:
        return _check_import(folder, out, category, part, from_folders, splits, **{**ok, **over})

    assert check() == (False, DEFAULT_SPLITS) and check(png_compress_level=9) == (False, DEFAULT_SPLITS)
    assert check(split) == (True, None) and check(split, from_folders=False) == (False, DEFAULT_SPLITS)
    assert check(splits={"train": 0.5, "test": 0.5}) == (False, {"train": 0.5, "test": 0.5})
    assert check(flat, from_folders=True) == (True, None)
    for over, message in (({"max_size": 7}, "max_size must be >= 8, got 7"), ({"shard_size": 0}, "shard_size must be >= 1, got 0"),
                          ({"png_compress_level": -1}, "png_compress_level must be in 0..9, got -1"),
                          ({"png_compress_level": 10}, "png_compress_level must be in 0..9, got 10")):
        with pytest.raises(ValueError, match=message):
            check(**over)
    with pytest.raises(ValueError, match="category 'Object' must be lowercase letters, digits and '_' \\(e.g. 'object'\\)"):
        check(category="Object")
    with pytest.raises(ValueError, match="part 'real-1' must be lowercase"):
        check(part="real-1")
    with pytest.raises(ValueError, match="has split folders"):
        check(split, splits={"train": 1.0})
    with pytest.raises(ValueError, match="not both"):
        check(flat, from_folders=True, splits={"train": 1.0})
