"""``dataigm audit`` with two real ImageNet judges (real EfficientNet-Lite0 weights) on real photos: the tabby
judge and the Egyptian-cat judge disagree on variants of one cat photo, so the labels give non-trivial numbers."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
from audit_photos import write_labelled_photos

from dataigm.cli import main
from dataigm.evaluation.agreement import cohen_kappa, wilson_interval
from dataigm.evaluation.audit import audit, disagreements
from dataigm.evaluation.labels import LabelsError, binary_labels, read_labels

@pytest.fixture(scope="module")
def photos(tmp_path_factory) -> Path:
    """``cat/`` (8 variants of scikit-image's cat photo) and ``other/`` (3 variants of 5 other photos)."""
    return write_labelled_photos(tmp_path_factory.mktemp("audit") / "photos")


@pytest.fixture(scope="module")
def labels_csv(photos: Path) -> Path:
    path = photos.parent / "labels.csv"
    with path.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["file", "label", "variant"])
        for p in sorted(photos.rglob("*.png")):
            w.writerow([p.relative_to(photos).as_posix(), int(p.parent.name == "cat"), p.stem.split("_")[-1]])
    return path


def _specs(model: Path) -> list[str]:
    return [f"imagenet:281@local-dir:{model}", f"imagenet:285@local-dir:{model}"]  # tabby, Egyptian cat


@pytest.mark.slow
def test_audit_two_real_judges(photos, labels_csv, efficientnet_lite0_dir, tmp_path, capsys):
    specs = _specs(efficientnet_lite0_dir)
    argv = ["audit", str(photos), "--labels", str(labels_csv), "--group-by", "variant", "--out", str(tmp_path / "a"), "--json", "--bootstrap", "200"]
    assert main(argv + [a for s in specs for a in ("--judge", s)]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["labels"] == {"positive": 8, "negative": 15, "unlabelled": 0, "not_judged": 0, "rule": "1/0", "file": str(labels_csv)}
    assert report["format"].startswith("dataigm-audit/") and report["group_by"] == ["variant"]
    assert report["intervals"]["n_resamples"] == 200 and report["intervals"]["confidence"] == 0.95
    assert report["intervals"]["sensitivity"] == "wilson" and report["intervals"]["balanced_accuracy"].startswith("percentile bootstrap")
    tabby, egyptian = report["judges"]
    assert [tabby["detector"], egyptian["detector"]] == specs
    # every field a reader uses, for both judges (the second at a position where swapping the two shows)
    for entry, klass in ((tabby, 281), (egyptian, 285)):
        assert entry["describe"]["kind"] == "imagenet" and entry["describe"]["spec"].startswith(f"imagenet:{klass}")
        assert entry["threshold"] == entry["describe"].get("threshold") and entry["failed"] == []
        c = entry["confusion"]
        assert entry["n"] == 23 == sum(c.values())
        assert entry["specificity_ci"] == pytest.approx(list(wilson_interval(c["tn"], c["tn"] + c["fp"])))
        lo, hi = entry["balanced_accuracy_ci"]
        assert lo <= entry["balanced_accuracy"] <= hi and lo < hi
        assert sum(g["confusion"]["tp"] + g["confusion"]["fn"] for k, g in entry["groups"].items() if k.startswith("variant=")) == 8
    # both judges miss cats, to different degrees; neither flags a non-cat photo
    assert tabby["confusion"] == {"tp": 1, "fn": 7, "tn": 15, "fp": 0}
    assert egyptian["confusion"]["tp"] > tabby["confusion"]["tp"] and egyptian["confusion"]["fp"] == 0
    tp = egyptian["confusion"]["tp"]
    assert egyptian["sensitivity"] == pytest.approx(tp / 8) and egyptian["sensitivity_ci"] == pytest.approx(list(wilson_interval(tp, 8)))
    assert tabby["specificity"] == 1.0 and tabby["balanced_accuracy"] == pytest.approx((1 / 8 + 1) / 2)
    assert tabby["precision"] == 1.0 and tabby["precision_ci"][0] < 1.0
    # the tabby probability still separates cats from the rest: the sweep finds a lower threshold
    assert tabby["sweep"]["best"]["balanced_accuracy"] > tabby["balanced_accuracy"] and "caveat" in tabby["sweep"]
    assert tabby["groups"]["variant=full"]["confusion"]["tp"] == 1
    (pair,) = report["agreement"]
    assert (pair["a"], pair["b"], pair["n"]) == (0, 1, 23)
    # the two judges flag different cats (the tabby judge's one cat is not among the Egyptian-cat judge's)
    assert pair["agreement"] == pytest.approx((23 - (tp + 1)) / 23)
    pa, pb = 1 / 23, tp / 23
    pe = pa * pb + (1 - pa) * (1 - pb)
    assert pair["kappa"] == pytest.approx((pair["agreement"] - pe) / (1 - pe)) and pair["kappa"] < 0.2
    assert (tmp_path / "a" / "disagreements.png").is_file() and json.loads((tmp_path / "a" / "audit.json").read_text())["sheet"]


@pytest.mark.slow
def test_folder_layout_and_names_match_csv(photos, labels_csv, efficientnet_lite0_dir):
    spec = _specs(efficientnet_lite0_dir)[1]
    by_csv = audit(photos, labels_csv, [spec], n_resamples=50)
    by_folder = audit(photos, photos, [spec], concept="cat", n_resamples=50)
    assert by_folder.report["judges"][0]["confusion"] == by_csv.report["judges"][0]["confusion"]
    verdicts = [p.positive for p in by_csv.results[0].predictions]
    truth = [by_csv.truth[p.file] for p in by_csv.results[0].predictions]
    assert all(caption.startswith("y1") for _, caption in disagreements(by_csv))  # only missed cats
    assert len(disagreements(by_csv)) == sum(t and not v for t, v in zip(truth, verdicts))


def test_labels_errors_and_rules(tmp_path):
    (tmp_path / "bad.csv").write_text("image,label\na.png,1\n")
    with pytest.raises(LabelsError, match="header"):
        read_labels(tmp_path / "bad.csv", tmp_path)
    (tmp_path / "names.csv").write_text("file,label\na.png,church\nb.png,tower\nc.png,Church\n")
    rows = read_labels(tmp_path / "names.csv", tmp_path)
    assert binary_labels(rows, "church")[0] == {"a.png": True, "b.png": False, "c.png": True}
    with pytest.raises(LabelsError, match="no image is labelled"):
        binary_labels(rows, "cat")
    (tmp_path / "review.json").write_text(json.dumps({"format": "dataigm-review-labels/1", "samples": [{"file": "a.png", "label": "1"}]}))
    assert binary_labels(read_labels(tmp_path / "review.json", tmp_path), None)[0] == {"a.png": True}
    assert cohen_kappa([True, False], [True, False]) == 1.0


def test_audit_of_shards_by_sample_id(tmp_path):
    """Labels of shard samples name them as the walker does (``<shard>#<key>``); unlabelled samples are counted."""
    from dataigm.core.shards import iter_samples, list_shards
    from dataigm.judges.tiny import build_tiny_detector
    from dataigm.synthetic import write_synthetic_dataset

    write_synthetic_dataset(tmp_path / "ds", "nudity", ["not_nude", "nude"], {"test": 3}, shard_size=8)
    samples = [(Path(s.shard).name, s.key, s.meta["label_name"]) for s in iter_samples(list_shards(tmp_path / "ds"))]
    (tmp_path / "labels.csv").write_text("file,label\n" + "".join(f"{shard}#{key},{label}\n" for shard, key, label in samples[:4]))
    det = build_tiny_detector(tmp_path / "det", ("not_nude", "nude"), category="nudity", seed=2)
    result = audit(tmp_path / "ds", tmp_path / "labels.csv", ["nudenet", f"local-dir:{det}"], concept="nude", n_resamples=50)
    labels = result.report["labels"]
    assert labels["unlabelled"] == 2 and labels["positive"] + labels["negative"] == 4
    nudenet = result.report["judges"][0]
    assert nudenet["n"] == 4 and nudenet["confusion"]["fp"] == 0 and nudenet["confusion"]["tp"] == 0  # NudeNet flags no drawn shape
    assert result.report["agreement"][0]["n"] == 4
