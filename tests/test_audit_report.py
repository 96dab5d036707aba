"""Every field of the audit report, per judge and per image, against an answer computed here from each judge's own
verdicts: two tiny judges with thresholds at their median score (mixed verdicts that differ between the judges),
labels in two groups, unlabelled images and a labelled file that cannot be read. Fast: the audit's mutation tests."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import dataigm
from dataigm.evaluation.audit import AUDIT_FORMAT, audit, disagreements, sheet_items
from dataigm.evaluation.stats import INTERVALS, balanced_accuracy_ci, cohen_kappa, judge_agreement, threshold_sweep, wilson_interval
from dataigm.judges.tiny import build_tiny_detector

N_LABELLED = 12
GROUP = {i: "A" if i % 3 else "B" for i in range(N_LABELLED)}  # the labels' column: 8 in A, 4 in B
NAME = {i: f"{i // 4}_{i % 4}.png" for i in range(N_LABELLED + 2)}  # <prompt index>_<seed>.png: prompts 0, 1, 2 (and 3)
INDEX = {name: i for i, name in NAME.items()}
BROKEN = "0-unreadable.png"  # labelled, cannot be read, and sorts first


def _label(i: int) -> str:
    return "church" if i in (0, 1, 4, 6, 7, 10) else "other"


@pytest.fixture(scope="module")
def setup(tmp_path_factory) -> dict:
    root = tmp_path_factory.mktemp("audit-report")
    images = root / "images"
    images.mkdir()
    rng = np.random.default_rng(11)
    for i in range(N_LABELLED + 2):  # the last two have no label
        Image.fromarray(rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)).save(images / NAME[i])
    (images / BROKEN).write_bytes(b"not an image")
    labels = root / "labels.csv"
    with labels.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["file", "label", "batch"])
        for i in range(N_LABELLED):
            w.writerow([NAME[i], _label(i), GROUP[i]])
        w.writerow([BROKEN, "church", "A"])
    specs, scores = [], []
    for seed in (1, 3):  # each judge's threshold at its median score over the labelled images: mixed verdicts
        det = build_tiny_detector(root / f"probe-{seed}", ("other", "church"), category="object", seed=seed)
        s = dataigm.load_judge(f"local-dir:{det}", device="cpu")([images / NAME[i] for i in range(N_LABELLED)]).scores
        threshold = float(np.sort(s)[N_LABELLED // 2])
        det = build_tiny_detector(root / f"judge-{seed}", ("other", "church"), category="object", seed=seed, threshold=threshold)
        specs.append(f"local-dir:{det}")
        scores.append(s)
    return {"images": images, "labels": labels, "specs": specs, "scores": scores}


@pytest.fixture(scope="module")
def result(setup: dict):
    # batch: a column of the labels; prompt_index: from the file names; absent: in neither
    return audit(setup["images"], setup["labels"], setup["specs"], group_by=["batch", "prompt_index", "absent"], n_resamples=200, seed=5,
                 device="cpu:0")


def _verdicts(setup: dict, judge: int) -> dict[str, bool]:
    j = dataigm.load_judge(setup["specs"][judge], device="cpu")
    v = j([setup["images"] / NAME[i] for i in range(N_LABELLED)])
    return {NAME[i]: bool(p) for i, p in enumerate(v.positive)}


def _expected(y: list[bool], flags: list[bool]) -> dict:
    tp = sum(a and b for a, b in zip(y, flags))
    fp = sum(b and not a for a, b in zip(y, flags))
    tn = sum(not a and not b for a, b in zip(y, flags))
    fn = sum(a and not b for a, b in zip(y, flags))
    return {"confusion": {"tp": tp, "fp": fp, "tn": tn, "fn": fn}, "n": len(y),
            "sensitivity": (tp / (tp + fn), wilson_interval(tp, tp + fn)), "specificity": (tn / (tn + fp), wilson_interval(tn, tn + fp)),
            "precision": (tp / (tp + fp) if tp + fp else None, wilson_interval(tp, tp + fp)),
            "accuracy": ((tp + tn) / len(y), wilson_interval(tp + tn, len(y)))}


def _check_metrics(got: dict, y: list[bool], flags: list[bool]) -> None:
    want = _expected(y, flags)
    assert (got["confusion"], got["n"]) == (want["confusion"], want["n"])
    for name in ("sensitivity", "specificity", "precision", "accuracy"):
        value, (low, high) = want[name]
        assert got[name] == pytest.approx(value) and got[f"{name}_ci"] == pytest.approx([low, high]), name
    ba = balanced_accuracy_ci(y, flags, n_resamples=200, seed=5)
    assert got["balanced_accuracy"] == pytest.approx(ba["value"]) and got["balanced_accuracy_ci"] == pytest.approx([ba["low"], ba["high"]])


def test_the_verdicts_are_mixed_and_differ_between_the_judges(setup: dict) -> None:
    a, b = _verdicts(setup, 0), _verdicts(setup, 1)
    assert 0 < sum(a.values()) < N_LABELLED and 0 < sum(b.values()) < N_LABELLED and a != b


def test_labels_counts_and_settings(setup: dict, result) -> None:
    report = result.report
    positives = sum(_label(i) == "church" for i in range(N_LABELLED))
    assert report["format"] == AUDIT_FORMAT and report["images"] == result.images.source == str(setup["images"])
    assert {k: v for k, v in report["labels"].items() if k != "rule"} == {
        "positive": positives, "negative": N_LABELLED - positives, "unlabelled": 2, "not_judged": 1, "file": str(setup["labels"])}
    assert "church" in report["labels"]["rule"]
    assert report["intervals"] == {**INTERVALS, "confidence": 0.95, "n_resamples": 200, "seed": 5}
    assert report["group_by"] == ["batch", "prompt_index", "absent"]
    assert result.truth == {NAME[i]: _label(i) == "church" for i in range(N_LABELLED)} | {BROKEN: True}


@pytest.mark.parametrize("judge", [0, 1])
def test_each_judge_entry_against_its_own_verdicts(setup: dict, result, judge: int) -> None:
    entry = result.report["judges"][judge]
    verdicts = _verdicts(setup, judge)
    files = sorted(verdicts)
    y = [_label(INDEX[f]) == "church" for f in files]
    flags = [verdicts[f] for f in files]
    assert entry["detector"] == setup["specs"][judge]
    assert entry["threshold"] == pytest.approx(float(np.sort(setup["scores"][judge])[N_LABELLED // 2]))
    assert (entry["describe"]["kind"], entry["describe"]["name"], entry["describe"]["device"]) == ("dataigm", setup["specs"][judge], "cpu:0")
    assert entry["failed"] == [BROKEN]
    _check_metrics(entry, y, flags)
    sweep = threshold_sweep(y, [float(s) for s in setup["scores"][judge]])
    assert entry["sweep"]["best"] == pytest.approx(sweep["best"]) and entry["sweep"]["roc_auc"] == pytest.approx(sweep["roc_auc"])
    assert len(entry["sweep"]["points"]) == len(sweep["points"])
    groups = {f"batch={g}": [f for f in files if GROUP[INDEX[f]] == g] for g in ("A", "B")}
    groups |= {f"prompt_index={k}": [f for f in files if INDEX[f] // 4 == k] for k in (0, 1, 2)}
    groups["absent="] = files
    assert sorted(entry["groups"]) == sorted(groups)
    for group, members in groups.items():
        _check_metrics(entry["groups"][group], [_label(INDEX[f]) == "church" for f in members], [verdicts[f] for f in members])


def test_agreement_of_the_two_judges(setup: dict, result) -> None:
    a, b = _verdicts(setup, 0), _verdicts(setup, 1)
    files = sorted(a)
    [pair] = result.report["agreement"]
    assert (pair["a"], pair["b"], pair["n"]) == (0, 1, N_LABELLED)
    assert pair["kappa"] == pytest.approx(cohen_kappa([a[f] for f in files], [b[f] for f in files]))
    want = judge_agreement([a[f] for f in files], [b[f] for f in files], n_resamples=200, seed=5)  # the audit's settings
    assert {k: v for k, v in pair.items() if k not in ("a", "b")} == want
    assert pair["agreement"] == pytest.approx(sum(a[f] == b[f] for f in files) / N_LABELLED)


def test_disagreements_and_their_sheet_name_each_image_with_every_verdict(setup: dict, result) -> None:
    a, b = _verdicts(setup, 0), _verdicts(setup, 1)
    want = [(f, f"y{int(_label(INDEX[f]) == 'church')} A{int(a[f])} B{int(b[f])}") for f in sorted(a)
            if len({a[f], b[f], _label(INDEX[f]) == "church"}) > 1]
    assert want and disagreements(result) == want
    items = sheet_items(result)
    assert [(path, caption) for _, path, caption in items] == want
    assert all(data == (setup["images"] / path).read_bytes() for data, path, _ in items)


def test_the_default_audit_as_a_user_runs_it(setup: dict) -> None:
    """No settings: 1,000 resamples with seed 0, the first judge's target as the concept, on the CPU here."""
    report = dataigm.audit(setup["images"], setup["labels"], setup["specs"][:1]).report
    assert report["intervals"] == {**INTERVALS, "confidence": 0.95, "n_resamples": 1000, "seed": 0}
    verdicts = _verdicts(setup, 0)
    files = sorted(verdicts)
    ba = balanced_accuracy_ci([_label(INDEX[f]) == "church" for f in files], [verdicts[f] for f in files])
    assert report["judges"][0]["balanced_accuracy_ci"] == pytest.approx([ba["low"], ba["high"]])
    assert report["judges"][0]["groups"] == {} and report["group_by"] == [] and report["agreement"] == []


def test_a_labelled_file_missing_from_the_images_is_named(setup: dict, tmp_path: Path) -> None:
    from dataigm.evaluation.labels import LabelsError

    labels = tmp_path / "labels.csv"
    labels.write_text(setup["labels"].read_text() + "ghost.png,church,A\n")
    with pytest.raises(LabelsError, match=r"^1 labelled file\(s\) are not below .*images: ghost.png$"):
        audit(setup["images"], labels, setup["specs"][:1], n_resamples=10)
