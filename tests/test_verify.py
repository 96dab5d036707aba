"""Verification and resume bookkeeping: what `dataigm verify` reports, with which exit code, and when a shard
counts as done."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from dataigm.cli import main
from dataigm.core.manifest import MANIFEST, build_manifest, verify
from dataigm.core.shards import ShardSpec, is_done, list_shards
from dataigm.synthetic import write_synthetic_dataset


@pytest.fixture()
def dataset(tmp_path: Path) -> Path:
    root = tmp_path / "ds"
    write_synthetic_dataset(root, "object", ["church", "other"], {"train": 6, "test": 3}, shard_size=4, size=32)
    return root


def run_verify(root: Path, *flags: str, capsys) -> tuple[int, str, str]:
    code = main(["verify", str(root), *flags])
    out = capsys.readouterr()
    return code, out.out, out.err


def test_intact_dataset_passes_deep_and_fast(dataset, capsys) -> None:
    assert len(list_shards(dataset)) == 5  # 12 train samples in 3 shards, 6 test samples in 2
    for flags in ((), ("--fast",)):
        code, out, err = run_verify(dataset, *flags, capsys=capsys)
        assert (code, err) == (0, "") and out.startswith("ok:")


def test_planned_but_unfinished_shard_is_reported(dataset, capsys) -> None:
    spec = ShardSpec("object", "train", 1, "synthetic")
    spec.tar_path(dataset).unlink()
    spec.stats_path(dataset).unlink()
    build_manifest(dataset)  # as a killed build leaves it: the part planned the shard, nothing finished it
    assert [str(p) for p in verify(dataset)] == [f"{spec.relpath}: planned but never finished"]
    code, _, err = run_verify(dataset, "--fast", capsys=capsys)
    assert code == 1 and f"FAIL {spec.relpath}: planned but never finished" in err and "1 problem(s)" in err


def test_count_mismatch_is_found_deep_but_not_fast(dataset, capsys) -> None:
    manifest = json.loads((dataset / MANIFEST).read_text())
    entry = manifest["shards"][0]
    entry["n"] += 1
    (dataset / MANIFEST).write_text(json.dumps(manifest))
    code, _, err = run_verify(dataset, capsys=capsys)
    assert code == 1 and f"FAIL {entry['path']}: {entry['n'] - 1} samples != manifest {entry['n']}" in err
    code, _, err = run_verify(dataset, "--fast", capsys=capsys)  # checksums only: the count is not read
    assert (code, err) == (0, "")


def test_changed_bytes_and_unlisted_tar_are_reported(dataset, capsys) -> None:
    first, second = list_shards(dataset)[:2]
    shutil.copy(first, second)  # a shard replaced by another's bytes
    stray = first.with_name("object-train-extra-000000.tar")
    shutil.copy(first, stray)
    code, _, err = run_verify(dataset, "--fast", capsys=capsys)
    rel = lambda p: p.relative_to(dataset).as_posix()  # noqa: E731
    assert code == 1 and f"FAIL {rel(second)}: sha256 " in err and f"FAIL {rel(stray)}: not in manifest" in err
    assert "2 problem(s)" in err


def test_every_problem_of_every_shard_is_listed_exactly(dataset) -> None:
    """Missing, changed and unreadable shards, two of each: each is reported, and the check goes on after it."""
    from dataigm.core.atomic import sha256_file

    manifest = json.loads((dataset / MANIFEST).read_text())
    shards = [dataset / e["path"] for e in manifest["shards"]]
    rel = [e["path"] for e in manifest["shards"]]
    shards[0].unlink()
    shards[1].unlink()
    shards[2].write_bytes(shards[3].read_bytes())  # changed bytes
    shards[4].write_bytes(b"not a tar at all")  # unreadable, though its checksum is the one the manifest lists
    manifest["shards"][4]["sha256"] = sha256_file(shards[4])
    (dataset / MANIFEST).write_text(json.dumps(manifest))
    changed = sha256_file(shards[2])
    problems = [(p.shard, p.problem) for p in verify(dataset)]
    assert problems[:3] == [(rel[0], "missing"), (rel[1], "missing"),
                            (rel[2], f"sha256 {changed[:16]}... != manifest {manifest['shards'][2]['sha256'][:16]}...")]
    assert problems[3][0] == rel[4] and problems[3][1].startswith("unreadable: ") and len(problems) == 4
    assert [(p.shard, p.problem) for p in verify(dataset, deep=False)] == problems[:3]  # --fast reads no tar


def test_an_exported_folder_checks_every_tar_below_its_data_folder(dataset, tmp_path) -> None:
    from dataigm.hub.export import export_dataset

    out = tmp_path / "hub"
    export_dataset(dataset, out)
    assert verify(out) == []
    first = sorted((out / "data").rglob("*.tar"))[0]
    (out / "data" / "extra").mkdir()
    shutil.copy(first, out / "data" / "extra" / "stray.tar")
    (out / "data" / ".cache").mkdir()
    shutil.copy(first, out / "data" / ".cache" / "hidden.tar")  # a hidden folder is not published
    shutil.copy(first, out / "stray-at-top.tar")  # outside data/: not published either
    assert [(p.shard, p.problem) for p in verify(out)] == [("data/extra/stray.tar", "not in manifest")]


def test_a_shard_is_done_only_with_both_tar_and_stats(dataset) -> None:
    spec = ShardSpec("object", "train", 0, "synthetic")
    assert is_done(dataset, spec)
    stats = spec.stats_path(dataset).read_bytes()
    spec.stats_path(dataset).unlink()  # what a kill between publishing the tar and writing its stats leaves
    assert not is_done(dataset, spec)
    spec.stats_path(dataset).write_bytes(stats)
    spec.tar_path(dataset).unlink()
    assert not is_done(dataset, spec)


@pytest.mark.slow
def test_build_resume_redoes_a_shard_whose_stats_are_missing(tiny_model_dir, tmp_path) -> None:
    from dataigm.generate.engine import BuildOptions, build
    from dataigm.recipe import load_recipe

    recipe = load_recipe(Path(__file__).resolve().parents[1] / "builders" / "church.yaml", [
        "generation.width=64", "generation.height=64", "generation.steps=1", "images_per_prompt=1", "shard_size=4", "models=[tiny]"])
    out = tmp_path / "built"
    first = build(recipe, out, BuildOptions(device="cpu", limit=3, progress=False))
    tars = {p: p.read_bytes() for p in list_shards(out)}
    victim = sorted(tars)[0]
    stats = out / "_stats" / victim.relative_to(out).with_suffix(".json")
    stats.unlink()  # the tar was published, the kill came before its stats
    second = build(recipe, out, BuildOptions(device="cpu", limit=3, progress=False))
    assert second.samples_written == json.loads(stats.read_text())["ok"] > 0  # only that shard was redone
    assert first.samples_written > second.samples_written
    assert {p: p.read_bytes() for p in list_shards(out)} == tars and verify(out) == []


def test_an_empty_shard_is_done_without_a_tar_and_an_aborted_one_leaves_nothing(tmp_path) -> None:
    from dataigm.core.shards import ShardSink

    spec = ShardSpec("object", "test", 0, "x")
    sink = ShardSink(tmp_path, spec, planned=2)
    sink.fail("k1", "decode: broken")
    sink.fail("k2", "decode: broken")
    stats = sink.close()
    assert (stats.ok, stats.failed, stats.error_counts) == (0, 2, {"decode": 2})
    assert not spec.tar_path(tmp_path).exists() and is_done(tmp_path, spec)  # stats but no tar: done, nothing published
    spec.stats_path(tmp_path).write_text(json.dumps({**json.loads(spec.stats_path(tmp_path).read_text()), "ok": 3}))
    assert not is_done(tmp_path, spec)  # stats that claim samples need their tar
    other = ShardSpec("object", "test", 1, "x")
    sink = ShardSink(tmp_path, other, planned=1)
    sink.abort()
    sink.abort()  # a second abort (an error path after the first) finds nothing left and does not raise
    assert not other.tar_path(tmp_path).exists() and not other.stats_path(tmp_path).exists()
    assert list(other.tar_path(tmp_path).parent.iterdir()) == []  # no temp file left either


def test_failures_are_counted_by_kind_and_the_first_ones_kept(tmp_path) -> None:
    from dataigm.core.shards import MAX_RECORDED_ERRORS, ShardSink

    sink = ShardSink(tmp_path, ShardSpec("object", "test", 0, "x"), planned=MAX_RECORDED_ERRORS + 2)
    sink.fail("k0", "decode: truncated: at byte 7")  # the kind is the text before the first colon
    sink.fail("k1", "x" * 600)  # no colon: the kind is the reason, cut to 80 characters; the reason to 500
    for i in range(2, MAX_RECORDED_ERRORS + 2):
        sink.fail(f"k{i}", "decode: empty file")
    stats = sink.close()
    assert stats.failed == MAX_RECORDED_ERRORS + 2
    assert stats.error_counts == {"decode": MAX_RECORDED_ERRORS + 1, "x" * 80: 1}
    assert len(stats.errors) == MAX_RECORDED_ERRORS  # only the first ones are kept
    assert stats.errors[:2] == [{"key": "k0", "error": "decode: truncated: at byte 7"}, {"key": "k1", "error": "x" * 500}]


def test_written_samples_are_counted_by_label_source_and_model(tmp_path) -> None:
    from dataigm.core.manifest import package_versions, part_path
    from dataigm.core.schema import SampleMeta
    from dataigm.core.shards import ShardSink

    spec = ShardSpec("object", "test", 0, "x")
    sink = ShardSink(tmp_path, spec, planned=3)
    for i, (label, model) in enumerate((("church", "tiny"), ("church", "tiny"), ("other", ""))):
        sink.write(SampleMeta(key=f"k{i}", category="object", split="test", label=0, label_name=label, label_names=["church", "other"], model=model,
                              source="real" if not model else "generated"), b"png")
    stats = sink.close()
    assert (stats.ok, stats.labels, stats.models, stats.sources) == (3, {"church": 2, "other": 1}, {"tiny": 2}, {"generated": 2, "real": 1})
    assert part_path(tmp_path, "object", "") == tmp_path / "_parts" / "object" / "generated.json"
    versions = package_versions(("numpy", "no-such-package-here"))
    assert set(versions) == {"dataigm", "python", "numpy", "no-such-package-here"} and versions["no-such-package-here"] == ""
    assert versions["numpy"] == np.__version__ and versions["python"].count(".") == 2


def test_a_shard_is_hashed_as_it_is_written_and_its_file_closed_before_it_is_published(tmp_path) -> None:
    from dataigm.core.atomic import sha256_file
    from dataigm.core.schema import SampleMeta
    from dataigm.core.shards import ShardSink, iter_tar

    spec = ShardSpec("object", "test", 0, "x")
    sink = ShardSink(tmp_path, spec, planned=40)
    rng = np.random.default_rng(0)
    images = [rng.bytes(int(n)) for n in rng.integers(1, 30_000, size=40)]  # tar blocks of every alignment
    for i, image in enumerate(images):
        sink.write(SampleMeta(key=f"k{i:02d}", category="object", split="test", label=0, label_name="church",
                              label_names=["church", "other"]), image)
    stats = sink.close()
    tar = spec.tar_path(tmp_path)
    assert stats.sha256 == sha256_file(tar) and stats.bytes == tar.stat().st_size
    assert sink._file._file.closed and [s.image for s in iter_tar(tar)] == images


def test_counts_table_and_model_records(dataset) -> None:
    from dataigm.core.manifest import counts_table, load_manifest, read_model_records, write_model_record

    assert counts_table(load_manifest(dataset)) == [
        ("object", "test", "church", 3), ("object", "test", "other", 3), ("object", "train", "church", 6), ("object", "train", "other", 6)]
    write_model_record(dataset, {"tag": "tiny", "revision": "abc"})
    write_model_record(dataset, {"tag": "esd", "revision": "def"})
    assert read_model_records(dataset) == {"esd": {"tag": "esd", "revision": "def"}, "tiny": {"tag": "tiny", "revision": "abc"}}
    assert build_manifest(dataset)["models"]["esd"]["revision"] == "def"
