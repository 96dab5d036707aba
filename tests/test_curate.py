"""The curation engine end to end on a crafted dataset: verdicts per filter, pair bookkeeping, cross-split leaks,
the fixed ``curation`` schema, determinism, resume, rank independence, contact sheets, report and CLI."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
from PIL import Image

from dataigm.cli import main
from dataigm.core.manifest import load_manifest, verify
from dataigm.core.schema import SampleMeta
from dataigm.core.shards import ShardSpec, iter_samples, list_shards
from dataigm.curate import curate, parse_curation_config
from dataigm.curate.engine import score_path
from dataigm.curate.filters import all_fields
from dataigm.core.sheets import sheet_size
from dataigm.synthetic import draw_pattern, png_bytes, write_samples

from curation_helpers import curate_on_two_ranks, tree_digest

BUILDERS = Path(__file__).resolve().parents[1] / "builders"
LABELS = ["church", "other"]
BLACK = png_bytes(Image.new("RGB", (64, 64)))
CORRUPT = png_bytes(draw_pattern("ring", 99))[:200]


def _meta(key: str, split: str, role: str, pair: str) -> SampleMeta:
    label = 0 if role == "positive" else 1
    return SampleMeta(key=key, category="object", split=split, label=label, label_name=LABELS[label], label_names=LABELS, role=role,
                      concept="church", pair_id=pair, prompt=f"a church {pair}" if label == 0 else f"a house {pair}",
                      image_index=0, model="m", seed=int(pair[1:]) if pair[1:].isdigit() else 0)


def _near(image_bytes: bytes) -> bytes:
    img = Image.open(io.BytesIO(image_bytes)).convert("RGB")
    return png_bytes(img.resize((62, 62)).resize((64, 64)))


def crafted_images() -> dict[str, bytes]:
    """Image bytes per key: 6 train pairs over two shards, 2 test pairs; each problem planted once."""
    images = {}
    for i in range(8):
        images[f"p{i}-pos"] = png_bytes(draw_pattern("disc", 1000 + i * 17))
        images[f"p{i}-neg"] = png_bytes(draw_pattern("hstripes", 2000 + i * 31))
    images["p0-pos"] = BLACK  # safety-checker black: dropped; its negative follows the pair policy
    images["p1-neg"] = CORRUPT  # unreadable
    images["p3-pos"] = images["p2-pos"]  # exact duplicate within train: the later key (p3) goes
    images["p6-pos"] = _near(images["p4-pos"])  # near duplicate of a train image in test: a leak
    return images


def write_crafted(root: Path) -> Path:
    images = crafted_images()
    shards = {
        spec: [(_meta(f"p{i}-{role[:3]}", spec.split, role, f"p{i}"), images[f"p{i}-{role[:3]}"]) for i in pairs for role in ("positive", "negative")]
        for spec, pairs in ((ShardSpec("object", "train", 0), range(0, 3)), (ShardSpec("object", "train", 1), range(3, 6)),
                            (ShardSpec("object", "test", 0), range(6, 8)))
    }
    write_samples(root, "object", LABELS, shards, part="generated")
    return root


@pytest.fixture(scope="module")
def crafted(tmp_path_factory) -> Path:
    return write_crafted(tmp_path_factory.mktemp("crafted"))


CONFIG = {"default": {"filters": {"blank": {}, "phash": {"max_distance": 4}}}}


@pytest.fixture(scope="module")
def curated(crafted, tmp_path_factory):
    out = tmp_path_factory.mktemp("curated") / "out"
    return curate(crafted, out, parse_curation_config(CONFIG), progress=False)


def written(root: Path) -> dict[str, dict]:
    return {s.key: s.meta for s in iter_samples(list_shards(root))}


def test_each_planted_problem_gets_its_verdict(curated):
    d = curated.decisions
    assert (d["p0-pos"].verdict, d["p0-pos"].reasons) == ("drop", ["blank:black"])
    assert (d["p1-neg"].verdict, d["p1-neg"].reasons) == ("drop", ["unreadable"])
    assert (d["p3-pos"].verdict, d["p3-pos"].reasons) == ("drop", ["phash:duplicate"])
    assert (d["p3-pos"].fields["dup_of"], d["p3-pos"].fields["dup_distance"], d["p3-pos"].fields["leak"]) == ("p2-pos", 0, False)
    assert (d["p6-pos"].verdict, d["p6-pos"].reasons) == ("drop", ["phash:leak"])
    assert d["p6-pos"].fields["dup_of"] == "p4-pos" and d["p6-pos"].fields["leak"] is True
    dropped = {k for k, v in d.items() if v.verdict == "drop"}
    assert dropped == {"p0-pos", "p1-neg", "p3-pos", "p6-pos"}
    assert set(written(curated.out)) == set(crafted_images()) - dropped


def test_pair_bookkeeping_with_keep_policy(curated):
    d = curated.decisions
    assert d["p0-neg"].verdict == "keep" and d["p0-neg"].pair_status == "partner_dropped"
    assert d["p1-pos"].pair_status == "partner_dropped" and d["p2-pos"].pair_status == "complete"
    assert d["p0-pos"].pair_status == "dropped"
    assert curated.pair_stats["object"] == {
        "pairs": 8, "complete": 4, "positive_dropped": 3, "negative_kept_alone": 3, "negative_dropped_with_positive": 0,
        "negative_dropped": 1, "positive_kept_alone": 1, "positive_dropped_with_negative": 0, "both_dropped": 0, "unpaired": 0,
    }


def test_pair_policy_drop_takes_the_partner_along(crafted, tmp_path):
    config = parse_curation_config({**CONFIG, "categories": {"object": {"pairs": {"on_positive_dropped": "drop", "on_negative_dropped": "drop"}}}})
    result = curate(crafted, tmp_path / "out", config, progress=False)
    d = result.decisions
    assert (d["p0-neg"].verdict, d["p0-neg"].reasons) == ("drop", ["pair:positive_dropped"])
    assert (d["p1-pos"].verdict, d["p1-pos"].reasons) == ("drop", ["pair:negative_dropped"])
    assert result.pair_stats["object"]["negative_dropped_with_positive"] == 3
    assert result.pair_stats["object"]["positive_dropped_with_negative"] == 1
    assert len(written(tmp_path / "out")) == 16 - 8
    assert "pair:positive_dropped" in (tmp_path / "out" / "curation_report.md").read_text()


def test_curated_dataset_keeps_the_generation_settings(crafted, tmp_path):
    """The per-rank settings the images were generated under travel with them into the curated dataset."""
    import shutil

    from dataigm.core.manifest import build_manifest
    from dataigm.core.run_settings import record_rank_settings

    source = tmp_path / "source"
    shutil.copytree(crafted, source)
    for rank in (0, 1):
        record_rank_settings(source, "object", "", rank, 2, {"device": "cpu", "dtype": "float32", "threads": 2 + rank}, [])
    settings = build_manifest(source)["settings"]
    assert settings["differing"] == {"threads": [2, 3]}
    result = curate(source, tmp_path / "out", parse_curation_config(CONFIG), progress=False)
    assert result.manifest["settings"] == settings
    assert sorted(p.name for p in (tmp_path / "out" / "_settings" / "object" / "generated").iterdir()) == sorted(
        p.name for p in (source / "_settings" / "object" / "generated").iterdir())


def test_curated_folder_is_a_valid_dataset_with_one_curation_schema(curated):
    out = curated.out
    assert verify(out) == []
    manifest = load_manifest(out)
    assert manifest["totals"]["samples"] == 12 and manifest["totals"]["failed"] == 0
    assert manifest["counts"]["object"]["splits"]["test"]["labels"] == {"church": 1, "other": 2}
    assert [p.relative_to(out).as_posix() for p in list_shards(out)] == [
        "object/test/object-test-000000.tar", "object/train/object-train-000000.tar", "object/train/object-train-000001.tar"]
    metas = written(out)
    keys = {json.dumps(sorted((k, type(v).__name__) for k, v in m["curation"].items())) for m in metas.values()}
    assert len(keys) == 1, "every sample must carry the same curation keys and types"
    assert set(all_fields()) <= set(next(iter(metas.values()))["curation"])
    assert metas["p0-neg"]["curation"]["pair_status"] == "partner_dropped"
    assert metas["p2-pos"]["curation"]["phash"] and metas["p2-pos"]["curation"]["nudenet_score"] == -1.0
    assert SampleMeta.from_dict(metas["p2-pos"]).label_name == "church"


def test_curated_shards_load_with_stock_datasets(curated):
    from datasets import load_dataset

    files = [str(p) for p in list_shards(curated.out, "object", "train")]
    ds = load_dataset("webdataset", data_files={"train": files}, split="train")
    assert len(ds) == 9
    assert {r["json"]["curation"]["verdict"] for r in ds} == {"keep"}
    assert sorted(r["json"]["key"] for r in ds if r["json"]["curation"]["pair_status"] == "partner_dropped") == ["p0-neg", "p1-pos", "p3-neg"]


def test_report_and_decision_table(curated):
    md = curated.report.read_text()
    assert "| object | train | church | 6 | 4 | 0 | 2 |" in md
    assert "| object | train | blank:black | 1 | 0 | 0 | 1 |" not in md  # reasons are per category, not split
    assert "| object | blank:black | 1 | 0 | 0 | 1 |" in md and "| object | phash:leak | 1 | 0 | 0 | 1 |" in md
    assert "`p6-pos` duplicates `p4-pos`" in md
    rows = [json.loads(x) for x in (curated.out / "_curation" / "decisions.jsonl").read_text().splitlines()]
    assert len(rows) == 16 and sum(r["verdict"] == "drop" for r in rows) == 4


def test_contact_sheets_have_the_expected_size(curated):
    sheets = curated.out / "_curation" / "sheets"
    assert sorted(p.name for p in sheets.glob("*.png")) == [
        "object-dropped.png", "object-test-church.png", "object-test-other.png", "object-train-church.png", "object-train-other.png"]
    with Image.open(sheets / "object-train-church.png") as im:
        assert im.size == sheet_size(4, 96) == (4 * 96, 20 + 96 + 26)
    with Image.open(sheets / "object-dropped.png") as im:
        assert im.size == sheet_size(4, 96)
    with Image.open(sheets / "object-train-other.png") as im:  # 6 negatives in train, one unreadable
        assert im.size == sheet_size(5, 96)


def test_same_input_twice_gives_identical_output(crafted, curated, tmp_path):
    again = curate(crafted, tmp_path / "again", parse_curation_config(CONFIG), progress=False)
    assert tree_digest(again.out) == tree_digest(curated.out)


def test_resume_redoes_only_missing_shards(crafted, curated, tmp_path):
    import shutil

    out = tmp_path / "resume"
    shutil.copytree(curated.out, out)
    spec = ShardSpec("object", "train", 1)
    spec.tar_path(out).unlink()
    spec.stats_path(out).unlink()
    score_path(out, ShardSpec("object", "test", 0)).unlink()
    (out / "object" / "train" / ".object-train-000001.tar.tmp-99999").write_bytes(b"half a shard")  # a killed writer
    kept_mtime = ShardSpec("object", "train", 0).tar_path(out).stat().st_mtime_ns
    curate(crafted, out, parse_curation_config(CONFIG), progress=False)
    assert ShardSpec("object", "train", 0).tar_path(out).stat().st_mtime_ns == kept_mtime
    assert not list(out.rglob(".*.tmp-*"))
    assert tree_digest(out) == tree_digest(curated.out)


def test_two_ranks_give_the_same_output_as_one(crafted, curated, tmp_path):
    out = tmp_path / "ranks"
    curate_on_two_ranks(crafted, out, parse_curation_config(CONFIG))
    assert tree_digest(out) == tree_digest(curated.out)


def test_a_different_config_into_the_same_folder_is_refused(crafted, curated):
    with pytest.raises(ValueError, match="records a different curation"):
        curate(crafted, curated.out, parse_curation_config({"default": {"filters": {"blank": {"min_std": 9.0}}}}), progress=False)
    with pytest.raises(ValueError, match="is the input dataset folder"):
        curate(crafted, crafted, progress=False)


def test_review_tags_reject_accept_relabel(crafted, tmp_path):
    tags = {"p2-pos": "reject", "p3-pos": "accept", "p4-neg": "relabel:church", "p1-neg": "accept", "ghost": "reject"}
    result = curate(crafted, tmp_path / "tagged", parse_curation_config(CONFIG), review_tags=tags, progress=False)
    d = result.decisions
    assert (d["p2-pos"].verdict, d["p2-pos"].reasons) == ("drop", ["review:reject"])
    assert d["p3-pos"].verdict == "keep"  # a person overrides the duplicate filter
    assert d["p1-neg"].verdict == "drop"  # but not an unreadable image
    assert result.unmatched_tags == ["ghost"]
    metas = written(tmp_path / "tagged")
    assert (metas["p4-neg"]["label"], metas["p4-neg"]["label_name"], metas["p4-neg"]["curation"]["relabeled_from"]) == (0, "church", "other")
    assert metas["p4-neg"]["curation"]["review_tag"] == "relabel:church"
    with pytest.raises(ValueError, match=r"class 'cat' not in label_names \['church', 'other'\]"):
        curate(crafted, tmp_path / "bad", review_tags={"p2-pos": "relabel:cat"}, progress=False)
    with pytest.raises(ValueError, match=r"review tag 'delete' on sample 'p2-pos': allowed tags are reject, accept"):
        curate(crafted, tmp_path / "early", review_tags={"p2-pos": "delete"}, progress=False)
    assert not (tmp_path / "early" / "_curation" / "scores").exists(), "a malformed tag is refused before any scoring"


def test_cli_curate_with_shipped_config(crafted, tmp_path, capsys):
    out = tmp_path / "cli"
    assert main(["curate", str(crafted), "--out", str(out), "--config", str(BUILDERS / "curation" / "default.yaml"), "--no-progress"]) == 0
    printed = capsys.readouterr().out
    assert "kept / review / dropped" in printed and "blank:black" in printed
    assert verify(out) == [] and load_manifest(out)["totals"]["samples"] == 12
    bad = tmp_path / "bad.yaml"
    bad.write_text("default:\n  filters:\n    blurry: {}\n")
    assert main(["curate", str(crafted), "--out", str(tmp_path / "x"), "--config", str(bad)]) == 2
    assert "unknown filter 'blurry'; valid: blank, clip, detector, embedding, nudenet, phash" in capsys.readouterr().err
    tags = tmp_path / "tags.json"
    tags.write_text('["p2-pos"]')
    assert main(["curate", str(crafted), "--out", str(tmp_path / "y"), "--review-tags", str(tags)]) == 2
    assert f"--review-tags {tags}: expected a JSON object" in capsys.readouterr().err


def write_shards(root: Path, shards: dict[ShardSpec, list[tuple[str, str, bytes]]]) -> Path:
    """A one-part dataset of the given shards, each a list of (key, role, image bytes)."""
    write_samples(root, "object", LABELS, {spec: [(_meta(key, spec.split, role, key), image) for key, role, image in samples]
                                           for spec, samples in shards.items()}, part="generated")
    return root


def test_dropped_sheet_collects_drops_of_later_shards(tmp_path):
    """The first shard fills every kept sheet; the only drop sits in the second shard and still gets its sheet."""
    root = write_shards(tmp_path / "in", {
        ShardSpec("object", "train", 0): [("a-pos", "positive", png_bytes(draw_pattern("disc", 1))),
                                          ("a-neg", "negative", png_bytes(draw_pattern("hstripes", 2)))],
        ShardSpec("object", "train", 1): [("b-pos", "positive", BLACK)],
    })
    config = parse_curation_config({**CONFIG, "sheet_thumbs": 1})
    result = curate(root, tmp_path / "out", config, progress=False)
    assert result.decisions["b-pos"].verdict == "drop"
    sheets = sorted(p.name for p in (tmp_path / "out" / "_curation" / "sheets").glob("*.png"))
    assert sheets == ["object-dropped.png", "object-train-church.png", "object-train-other.png"]


def test_a_key_in_two_shards_is_refused(tmp_path):
    image = png_bytes(draw_pattern("disc", 1))
    root = write_shards(tmp_path / "in", {ShardSpec("object", "train", 0): [("same", "positive", image)],
                                          ShardSpec("object", "train", 1): [("same", "positive", image)]})
    with pytest.raises(ValueError, match=r"sample key 'same' appears in object/train/object-train-000000.tar and in "
                                         r"object/train/object-train-000001.tar"):
        curate(root, tmp_path / "out", parse_curation_config(CONFIG), progress=False)


def test_curate_without_config_is_the_shipped_default_yaml(tmp_path):
    """``dataigm curate DIR`` and ``dataigm curate DIR --config builders/curation/default.yaml`` keep the same samples
    (they used to disagree on NudeNet misses: review in code, drop in the YAML)."""
    from dataigm.curate.config import default_config, load_curation_config

    shipped = BUILDERS / "curation" / "default.yaml"
    assert default_config() == load_curation_config(shipped)
    names = ["nude", "not_nude"]
    samples = []
    for i, (role, pattern) in enumerate([("positive", "disc"), ("negative", "hstripes"), ("positive", "ring"), ("negative", "vstripes")]):
        label = 0 if role == "positive" else 1
        meta = SampleMeta(key=f"n{i}-{role[:3]}", category="nudity", split="train", label=label, label_name=names[label], label_names=names,
                          role=role, concept="nudity", pair_id=f"n{i // 2}", prompt=f"picture {i}", image_index=0, model="m", seed=i)
        samples.append((meta, png_bytes(draw_pattern(pattern, 10 + i))))
    data = tmp_path / "nudity"
    write_samples(data, "nudity", names, {ShardSpec("nudity", "train", 0): samples}, part="generated")
    assert main(["curate", str(data), "--out", str(tmp_path / "plain"), "--no-progress"]) == 0
    assert main(["curate", str(data), "--out", str(tmp_path / "yaml"), "--config", str(shipped), "--no-progress"]) == 0
    kept = {name: sorted(s.key for s in iter_samples(list_shards(tmp_path / name))) for name in ("plain", "yaml")}
    assert kept["plain"] == kept["yaml"] == ["n1-neg", "n3-neg"]  # NudeNet sees no nudity on drawings: both positives dropped
