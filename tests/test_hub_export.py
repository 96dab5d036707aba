"""dataigm export: the Hub layout loads with stock datasets/webdataset, and its card says what it must."""

from __future__ import annotations

import json
import shutil
from collections import Counter
from pathlib import Path

import pytest

from dataigm.cli import main
from dataigm.core.atomic import sha256_file
from dataigm.core.manifest import build_manifest, load_manifest, verify
from dataigm.hub.card import CardOptions, size_category
from dataigm.hub.export import export_dataset

OBJECT_LABELS = ["church", "parachute", "other"]
NUDITY_LABELS = ["not_nude", "nude"]


@pytest.fixture(scope="module")
def source(shapes_with_nudity: Path) -> Path:
    return shapes_with_nudity


def expected_counts(source: Path) -> dict:
    return load_manifest(source)["counts"]


def test_layout_and_manifest(source: Path, exported_repo: Path) -> None:
    src_manifest = load_manifest(source)
    repo_manifest = load_manifest(exported_repo)
    assert sorted(p.relative_to(exported_repo).as_posix() for p in exported_repo.glob("data/*/*/*.tar")) == sorted(
        f"data/{s['path']}" for s in src_manifest["shards"]
    )
    for shard in src_manifest["shards"]:  # the tars are the source tars, byte for byte
        assert sha256_file(exported_repo / "data" / shard["path"]) == shard["sha256"]
    assert [s["path"] for s in repo_manifest["shards"]] == [f"data/{s['path']}" for s in src_manifest["shards"]]
    assert repo_manifest["totals"] == src_manifest["totals"] == {"samples": 190, "failed": 0, "shards": len(src_manifest["shards"])}
    assert repo_manifest["hub"]["data_dir"] == "data"
    assert verify(exported_repo) == []
    assert not list(exported_repo.rglob("_stats"))


def test_card_front_matter(exported_repo: Path, source: Path) -> None:
    from huggingface_hub import DatasetCard, DatasetCardData

    card = DatasetCard.load(exported_repo / "README.md")
    data = card.data
    assert isinstance(data, DatasetCardData)
    assert data.pretty_name == "DataIGM"
    assert data.license == "other" and data.license_name and data.license_link
    assert data.task_categories == ["image-classification", "text-to-image"]
    assert data.size_categories == ["n<1K"]
    assert {"machine-unlearning", "webdataset", "not-for-all-audiences"} <= set(data.tags)
    configs = {c["config_name"]: c for c in data.configs}
    assert sorted(configs) == ["nudity", "object"]
    assert [name for name, c in configs.items() if c.get("default")] == ["object"]  # never the NSFW one
    assert configs["object"]["data_files"] == [  # the `datasets` canonical names; folders keep theirs
        {"split": hf, "path": f"data/object/{s}/*.tar"} for hf, s in (("train", "train"), ("validation", "val"), ("test", "test"))
    ]
    assert [f["split"] for f in configs["nudity"]["data_files"]] == ["train", "test"]
    assert "extra_gated_fields" in data.to_dict() and "nudity" in data.extra_gated_prompt
    infos = {i["config_name"]: i for i in data.dataset_info}
    cls = {i: next(f for f in infos[i]["features"] if f["name"] == "cls") for i in infos}
    assert list(cls["object"]["dtype"]["class_label"]["names"].values()) == OBJECT_LABELS
    assert list(cls["nudity"]["dtype"]["class_label"]["names"].values()) == NUDITY_LABELS
    body = card.text
    assert "Content warning" in body and '"nudity"' in body
    assert "| train | 40 | 40 | 40 | 120 | 0 |" in body and "| test | 2 | 2 | 4 | 0 |" in body
    assert 'load_dataset("acme/dataigm", "object", split="test")' in body
    assert "wds.WebDataset" in body and "snapshot_download" in body
    assert "2506.02761" in body and "Renyang Liu" in body
    assert "| `label_names` | list[string] |" in body
    for section in ("## How it was built", "## Limitations and bias", "## Licences of the sources", "## Citation"):
        assert section in body


@pytest.mark.parametrize("streaming", [False, True], ids=["download", "streaming"])
def test_every_config_and_split_loads(exported_repo: Path, source: Path, streaming: bool) -> None:
    import datasets
    from huggingface_hub import DatasetCard
    from PIL import Image

    counts = expected_counts(source)
    configs = DatasetCard.load(exported_repo / "README.md").data.configs
    for config in configs:
        name = config["config_name"]
        for entry in config["data_files"]:
            split = entry["path"].split("/")[2]  # the folder (val) behind the published split (validation)
            assert entry["split"] == {"val": "validation"}.get(split, split)
            ds = datasets.load_dataset(str(exported_repo), name, split=entry["split"], streaming=streaming)
            label_names = ds.features["cls"].names
            assert label_names == counts[name]["label_names"]
            rows = list(ds)
            assert len(rows) == counts[name]["splits"][split]["n"]
            assert Counter(label_names[r["cls"]] for r in rows) == Counter(counts[name]["splits"][split]["labels"])
            first = rows[0]
            assert isinstance(first["png"], Image.Image) and first["png"].size == (64, 64)
            assert first["json"]["label_names"] == label_names
            assert first["json"]["category"] == name and first["json"]["split"] == split
            assert label_names[first["cls"]] == first["json"]["label_name"]


def test_default_config_loads_without_a_name(exported_repo: Path) -> None:
    import datasets

    ds = datasets.load_dataset(str(exported_repo), split="validation")
    assert len(ds) == 30 and ds.features["cls"].names == OBJECT_LABELS


def test_webdataset_reads_the_same_tars(exported_repo: Path) -> None:
    import webdataset as wds

    tars = sorted(str(p) for p in (exported_repo / "data" / "object" / "test").glob("*.tar"))
    rows = list(wds.WebDataset(tars, shardshuffle=False).decode("pil").to_tuple("png", "cls", "json"))
    assert len(rows) == 30
    assert Counter(meta["label_name"] for _, _, meta in rows) == {"church": 10, "parachute": 10, "other": 10}
    assert all(OBJECT_LABELS[cls] == meta["label_name"] and img.size == (64, 64) for img, cls, meta in rows)


def test_reexport_keeps_unchanged_and_removes_stale(source: Path, tmp_path: Path) -> None:
    out = tmp_path / "repo"
    first = export_dataset(source, out, link=False)
    assert first.linked == 0 and first.unchanged == 0
    again = export_dataset(source, out, categories=["object"])
    assert again.unchanged == again.shards and again.samples == 180
    assert again.removed and all(p.startswith("data/nudity/") for p in again.removed)
    assert not list((out / "data" / "nudity").rglob("*.tar"))
    assert sorted(load_manifest(out)["counts"]) == ["object"]
    assert "not-for-all-audiences" not in (out / "README.md").read_text()
    assert verify(out) == []


def test_refuses_bad_inputs(source: Path, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"unknown categories \['style'\].*valid: nudity, object"):
        export_dataset(source, tmp_path / "a", categories=["style"])
    with pytest.raises(FileNotFoundError, match="manifest.json"):
        export_dataset(tmp_path, tmp_path / "b")
    with pytest.raises(ValueError, match=r"repo_id='acme' is not of the form ORG/NAME"):
        export_dataset(source, tmp_path / "d", options=CardOptions(repo_id="acme"))
    assert not (tmp_path / "d").exists()
    broken = tmp_path / "broken"
    shutil.copytree(source, broken)
    tar = sorted(broken.glob("object/test/*.tar"))[0]
    data = bytearray(tar.read_bytes())
    data[1000] ^= 0xFF
    tar.write_bytes(bytes(data))
    with pytest.raises(ValueError, match=r"fails verification.*object/test/.*sha256"):
        export_dataset(broken, tmp_path / "c")
    assert not (tmp_path / "c" / "README.md").exists()


def test_refuses_to_write_a_token(source: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    token = "hf_" + "x1" * 17
    leaky = tmp_path / "leaky"
    shutil.copytree(source, leaky)
    part = leaky / "_parts" / "object" / "synthetic.json"
    record = json.loads(part.read_text())
    record["config"]["hub_token"] = token
    part.write_text(json.dumps(record))
    build_manifest(leaky)
    with pytest.raises(ValueError, match="Hub token") as info:
        export_dataset(leaky, tmp_path / "out")
    assert token not in str(info.value)
    assert not (tmp_path / "out").exists()  # refused before any tar is placed


def test_cli_export(source: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "cli-repo"
    assert main(["export-dataset", str(source), "--out", str(out), "--categories", "nudity", "--repo-id", "acme/x", "--copy"]) == 0
    assert f'load_dataset("{out}", "nudity")' in capsys.readouterr().out
    assert sorted(load_manifest(out)["counts"]) == ["nudity"]
    assert main(["export-dataset", str(source), "--out", str(tmp_path / "bad"), "--categories", "style"]) == 2
    assert "unknown categories" in capsys.readouterr().err


@pytest.mark.parametrize("n,bucket", [(0, "n<1K"), (999, "n<1K"), (1000, "1K<n<10K"), (250_000, "100K<n<1M"),
                                      (5 * 10**9, "1B<n<10B"), (5 * 10**10, "10B<n<100B"), (10**12, "n>1T")])
def test_size_category(n: int, bucket: str) -> None:
    assert size_category(n) == bucket


def test_category_of_shard_paths() -> None:
    from dataigm.hub import category_of

    assert category_of("object/train/object-train-000000.tar") == "object"
    assert category_of("data/object/train/object-train-000000.tar") == "object"
    assert category_of("data/train/data-train-000000.tar") == "data"  # a category named like the repo's data folder


def test_demo_stage_exports_and_loads(source: Path, tmp_path: Path) -> None:
    from rich.console import Console

    from dataigm.demo import DemoContext
    from dataigm.hub.demo import stage

    console = Console(record=True, width=200)
    ctx = DemoContext(tmp_path, console, {"dataset": source})
    stage(ctx)
    text = console.export_text()
    assert ctx.artifacts["hub_repo"] == tmp_path / "hub"
    assert f'datasets.load_dataset("{tmp_path / "hub"}", "object")' in text
    assert "exported 190 samples of nudity, object" in text
    assert "│ train      │     40 │        40 │    40 │  120 │" in text
    assert "│ validation │     10 │        10 │    10 │   30 │" in text


def test_a_split_emptied_by_curation_publishes_no_shard(source: Path, tmp_path: Path) -> None:
    """Review tags reject every nudity test sample: the curated shard leaves stats but no tar, and the export
    lists no nudity test split anywhere; everything published reads with webdataset's default empty check."""
    import webdataset as wds
    from huggingface_hub import DatasetCard

    from dataigm.core.shards import iter_samples, list_shards, read_stats
    from dataigm.curate import curate
    from dataigm.curate.config import CurationConfig

    rejected = {s.key: "reject" for s in iter_samples(list_shards(source, "nudity", "test"))}
    assert len(rejected) == 4
    curated = tmp_path / "curated"
    curate(source, curated, CurationConfig(), review_tags=rejected, progress=False)
    empty = [s for s in read_stats(curated) if s["category"] == "nudity" and s["split"] == "test"]
    assert empty and all(s["ok"] == 0 for s in empty) and not list_shards(curated, "nudity", "test")
    assert verify(curated) == []
    repo = tmp_path / "repo"
    export_dataset(curated, repo)
    manifest = json.loads((repo / "manifest.json").read_text())
    assert sorted(manifest["counts"]["nudity"]["splits"]) == ["train"]
    assert not any(s["path"].startswith("data/nudity/test/") for s in manifest["shards"]) and not (repo / "data" / "nudity" / "test").exists()
    configs = {c["config_name"]: c for c in DatasetCard.load(repo / "README.md").data.configs}
    assert [f["split"] for f in configs["nudity"]["data_files"]] == ["train"]
    assert len(configs["object"]["data_files"]) == 3
    for tar in sorted(repo.glob("data/*/*/*.tar")):  # raises "No samples found" on an empty tar
        assert sum(1 for _ in wds.WebDataset(str(tar), shardshuffle=False)) > 0
    assert sum(s["n"] for s in manifest["shards"]) == manifest["totals"]["samples"] == 190 - 4
    # The curated parts carry what curation did (PartRecord.curation), and the card lists it; an uncurated card says so.
    from dataigm.core.manifest import part_records

    records = part_records(manifest["parts"])
    assert records and all(r.curation is not None and r.kind in ("generated", "synthetic", "real") for r in records.values())
    assert {name for r in records.values() for name in r.curation.filters} == {"phash"}  # phash always runs
    card = (repo / "README.md").read_text()
    assert "No curation filters" not in card
    assert "| phash | action=drop, conflict_action=drop, leak_action=drop, max_distance=4 |" in card


def test_uncurated_card_says_no_curation(exported_repo: Path) -> None:
    assert "No curation filters were recorded for this export." in (exported_repo / "README.md").read_text()


def test_card_field_docs_come_from_the_sample_schema(exported_repo: Path) -> None:
    import dataclasses

    from dataigm.core.schema import SampleMeta, field_docs
    from dataigm.hub.card import FIELD_DOCS, model_licenses

    docs = field_docs()
    assert list(docs) == [f.name for f in dataclasses.fields(SampleMeta)] and all(docs.values())
    assert {k: FIELD_DOCS[k] for k in docs} == docs
    card = (exported_repo / "README.md").read_text()
    assert docs["pair_id"] in card and docs["taxonomy"] in card
    assert model_licenses()["CompVis/stable-diffusion-v1-4"] == "creativeml-openrail-m"
