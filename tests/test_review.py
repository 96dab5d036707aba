"""FiftyOne review round trip against a real database (FiftyOne's own mongod in a temp folder, see conftest):
build the review dataset, tag two samples, apply, check they are gone / relabelled in the next version."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from dataigm.cli import main
from dataigm.core.manifest import load_manifest, verify
from dataigm.core.shards import iter_samples, list_shards
from dataigm.curate import curate, parse_curation_config
from dataigm.curate.review import NEEDS_REVIEW_TAG, build_review_dataset, read_review_tags, review_name

CONFIG = {"default": {"filters": {"blank": {}, "phash": {"max_distance": 2, "action": "review", "leak_action": "review"}}}}


@pytest.fixture(scope="module")
def curated(shapes_dataset, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("review") / "v1"
    curate(shapes_dataset, out, parse_curation_config(CONFIG), progress=False)
    return out


def metas(root: Path) -> dict[str, dict]:
    return {s.key: s.meta for s in iter_samples(list_shards(root))}


def test_review_round_trip_with_real_fiftyone(curated, tmp_path):
    import fiftyone as fo

    before = metas(curated)
    name = review_name(curated)
    dataset = build_review_dataset(curated, review_dir=tmp_path / "images")
    assert dataset.name == name and len(dataset) == len(before) == 180
    first = dataset.first()
    assert Path(first.filepath).is_file() and str(tmp_path / "images") in first.filepath
    assert first.ground_truth.label == before[first.key]["label_name"]
    assert first.curation_verdict in ("keep", "review") and isinstance(first.curation_blank_std, float)
    assert first.prompt == before[first.key]["prompt"] and first.split in ("train", "val", "test")
    n_review = sum(m["curation"]["verdict"] == "review" for m in before.values())
    assert dataset.count_sample_tags().get(NEEDS_REVIEW_TAG, 0) == n_review

    # a person tags two samples in the App; here through the same public API, in the persistent database
    train = dataset.match(fo.ViewField("split") == "train").sort_by("key")
    reject, relabel = train.first(), train.skip(1).first()
    assert relabel.ground_truth.label != "parachute" or reject.ground_truth.label != "parachute"
    target = "parachute" if relabel.ground_truth.label != "parachute" else "other"
    reject.tags.append("reject")
    reject.save()
    relabel.tags.extend(["relabel:" + target, "looked_at"])  # other tags are ignored
    relabel.save()
    assert read_review_tags(name) == dict(sorted({reject.key: "reject", relabel.key: "relabel:" + target}.items()))

    # the reviewed labels, as 'dataigm audit --labels' reads them: the rejected sample left out, the relabel applied
    from dataigm.evaluation.labels import read_labels

    assert main(["review", str(curated), "--export-labels", str(tmp_path / "labels.json")]) == 0
    labels = read_labels(tmp_path / "labels.json", tmp_path / "images" / "images")
    assert len(labels) == 179 and all(not f.endswith(f"{reject.key}.png") for f in labels)
    relabelled = next(v for f, v in labels.items() if f.endswith(f"{relabel.key}.png"))
    assert relabelled["label"] == target and relabelled["split"] == "train"
    assert (tmp_path / "images" / "images" / next(iter(labels))).is_file()

    # apply through the CLI: the next version has one sample fewer and one relabelled
    out = tmp_path / "v2"
    assert main(["review", str(curated), "--apply", "--out", str(out)]) == 0
    after = metas(out)
    assert reject.key not in after and len(after) == len(before) - 1
    assert after[relabel.key]["label_name"] == target
    assert after[relabel.key]["label"] == after[relabel.key]["label_names"].index(target)
    assert after[relabel.key]["curation"]["relabeled_from"] == before[relabel.key]["label_name"]
    assert verify(out) == [] and load_manifest(out)["totals"]["samples"] == 179
    report = (out / "curation_report.md").read_text()
    assert "review:reject" in report and f"`{relabel.key}`: {before[relabel.key]['label_name']} -> {target}" in report


def test_conflicting_tags_and_missing_dataset_are_reported(curated, tmp_path):
    copy = tmp_path / "copy"
    shutil.copytree(curated, copy)
    dataset = build_review_dataset(copy, name="conflicts")
    s = dataset.first()
    s.tags.extend(["reject", "relabel:other"])
    s.save()
    with pytest.raises(ValueError, match=rf"sample '{s.key}': conflicting review tags \['reject', 'relabel:other'\]"):
        read_review_tags("conflicts")
    with pytest.raises(FileNotFoundError, match="no FiftyOne dataset 'never-built'"):
        read_review_tags("never-built")
    assert (copy / "_review" / "images" / "object").is_dir()  # default image folder


def test_cli_review_builds_dataset(curated, tmp_path, capsys):
    assert main(["review", str(curated), "--name", "cli-review", "--review-dir", str(tmp_path / "imgs")]) == 0
    assert "'cli-review': 180 samples" in capsys.readouterr().out
    import fiftyone as fo

    assert fo.load_dataset("cli-review").count() == 180


def test_review_of_an_exported_folder_leaves_it_untouched(curated, tmp_path, capsys):
    from dataigm.hub.export import export_dataset

    hub = tmp_path / "hub"
    export_dataset(curated, hub)
    before = {str(p.relative_to(hub)): p.read_bytes() for p in sorted(hub.rglob("*")) if p.is_file()}
    assert main(["review", str(hub), "--name", "exported-review"]) == 0
    assert "'exported-review': 180 samples" in capsys.readouterr().out
    after = {str(p.relative_to(hub)): p.read_bytes() for p in sorted(hub.rglob("*")) if p.is_file()}
    assert after == before  # no _review/ inside what push uploads
    assert len(list((tmp_path / "hub-review" / "images" / "object").rglob("*.png"))) == 180
