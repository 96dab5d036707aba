"""Detector metrics against hand-computed values, threshold rules on crafted scores, label mapping, shard assignment."""

from __future__ import annotations

import numpy as np
import pytest

from dataigm.train.metrics import (
    balanced_accuracy,
    classification_report,
    confusion_matrix,
    expected_calibration_error,
    predict_labels,
    roc_auc,
    roc_curve,
    select_threshold,
)
from dataigm.train.source import DROP, detector_label_names, label_mapping, mapped_counts


def test_report_matches_hand_computed_values() -> None:
    # true:  0 0 0 1 1 ; argmax pred: 0 1 0 1 0
    probs = np.array([[0.9, 0.1], [0.4, 0.6], [0.7, 0.3], [0.2, 0.8], [0.55, 0.45]])
    labels = np.array([0, 0, 0, 1, 1])
    r = classification_report(probs, labels, ["neg", "pos"], threshold=0.5, positive_label=1)
    assert r["n"] == 5
    assert r["confusion_matrix"] == [[2, 1], [1, 1]]
    assert r["accuracy"] == pytest.approx(3 / 5)
    assert r["balanced_accuracy"] == pytest.approx((2 / 3 + 1 / 2) / 2)
    assert r["per_class"]["neg"] == pytest.approx({"precision": 2 / 3, "recall": 2 / 3, "f1": 2 / 3, "support": 3})
    assert r["per_class"]["pos"] == pytest.approx({"precision": 1 / 2, "recall": 1 / 2, "f1": 1 / 2, "support": 2})
    # positive scores 0.8, 0.45 vs negative 0.1, 0.6, 0.3: pairs won 3 + 2 of 6
    assert r["roc_auc"] == pytest.approx(5 / 6)
    # the threshold moves decisions: at 0.4 the 0.45 positive becomes a hit
    r2 = classification_report(probs, labels, ["neg", "pos"], threshold=0.4, positive_label=1)
    assert r2["confusion_matrix"] == [[2, 1], [0, 2]]
    assert r2["threshold"] == 0.4


def test_roc_auc_ties_count_half_and_curve_endpoints() -> None:
    assert roc_auc(np.array([0.5, 0.5]), np.array([True, False])) == 0.5
    assert roc_auc(np.array([0.8, 0.4, 0.5, 0.1]), np.array([True, True, False, False])) == pytest.approx(0.75)
    assert np.isnan(roc_auc(np.array([0.1, 0.2]), np.array([True, True])))
    from sklearn.metrics import roc_auc_score

    rng = np.random.default_rng(0)  # scores on a coarse grid: many ties across and within classes
    tied, positives = rng.integers(0, 5, 200) / 4, rng.random(200) < 0.4
    assert roc_auc(tied, positives) == pytest.approx(roc_auc_score(positives, tied))
    fpr, tpr, thr = roc_curve(np.array([0.8, 0.4, 0.5, 0.1]), np.array([True, True, False, False]))
    assert fpr.tolist() == [0.0, 0.0, 0.5, 0.5, 1.0]
    assert tpr.tolist() == [0.0, 0.5, 0.5, 1.0, 1.0]
    assert thr[0] == np.inf


def test_ece_hand_computed() -> None:
    # confidences 0.9 (correct) and 0.6 (wrong) fall in different bins: 0.5 * 0.1 + 0.5 * 0.6
    probs = np.array([[0.9, 0.1], [0.6, 0.4]])
    assert expected_calibration_error(probs, np.array([0, 1])) == pytest.approx(0.35)
    # perfectly confident and right: zero
    assert expected_calibration_error(np.array([[1.0, 0.0], [0.0, 1.0]]), np.array([0, 1])) == pytest.approx(0.0)


def test_agrees_with_sklearn_on_random_predictions() -> None:
    from sklearn.metrics import balanced_accuracy_score, f1_score, roc_auc_score

    rng = np.random.default_rng(0)
    labels = rng.integers(0, 3, 200)
    logits = rng.normal(size=(200, 3)) + 1.5 * np.eye(3)[labels]
    probs = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    preds = probs.argmax(1)
    r = classification_report(probs, labels, ["a", "b", "c"])
    assert r["balanced_accuracy"] == pytest.approx(balanced_accuracy_score(labels, preds))
    assert [r["per_class"][n]["f1"] for n in "abc"] == pytest.approx(f1_score(labels, preds, average=None).tolist())
    assert r["threshold"] is None and "roc_auc" not in r
    binary = labels == 0
    assert roc_auc(probs[:, 0], binary) == pytest.approx(roc_auc_score(binary, probs[:, 0]))
    assert balanced_accuracy(confusion_matrix(labels, preds, 3)) == pytest.approx(balanced_accuracy_score(labels, preds))


def test_threshold_max_balanced_accuracy_separates_crafted_scores() -> None:
    scores = np.array([0.1, 0.2, 0.3, 0.6, 0.7])
    positives = np.array([False, False, False, True, True])
    assert select_threshold(scores, positives) == pytest.approx(0.45)
    # one overlapping negative: cutting at 0.675 (2 of 3 positives, no negative) and at 0.4 (all positives, one
    # negative) both give balanced accuracy 5/6 exactly; the documented tie rule takes the highest threshold
    scores = np.array([0.1, 0.2, 0.65, 0.6, 0.7, 0.9])
    positives = np.array([False, False, False, True, True, True])
    t = select_threshold(scores, positives)
    assert t == pytest.approx(0.675)
    assert predict_labels(np.c_[1 - scores, scores], t, 1).tolist() == [0, 0, 0, 0, 1, 1]


def test_threshold_target_fpr() -> None:
    scores = np.array([0.1, 0.2, 0.3, 0.8, 0.5, 0.6, 0.9])
    positives = np.array([False, False, False, False, True, True, True])
    assert select_threshold(scores, positives, "target_fpr", 0.0) == pytest.approx(0.85)  # no false positive allowed
    assert select_threshold(scores, positives, "target_fpr", 0.25) == pytest.approx(0.4)  # one of four negatives allowed
    assert select_threshold(scores, positives, "target_fpr") == pytest.approx(0.85)  # default 5 %: none of four


def test_threshold_rejects_bad_input() -> None:
    with pytest.raises(ValueError, match="max_balanced_accuracy, target_fpr"):
        select_threshold(np.array([0.1, 0.9]), np.array([False, True]), "youden")
    with pytest.raises(ValueError, match="both positive and negative"):
        select_threshold(np.array([0.1, 0.9]), np.array([True, True]))


def test_detector_labels_binary_multiclass_and_mapping() -> None:
    names, pos = detector_label_names(["church", "parachute", "other"], positive="church")
    assert (names, pos) == (["not_church", "church"], 1)
    assert label_mapping(["church", "parachute", "other"], names, pos) == [1, 0, 0]
    names, pos = detector_label_names(["not_nude", "nude"], positive="nude")
    assert (names, pos) == (["not_nude", "nude"], 1)
    names, pos = detector_label_names(["tench", "church", "dog", "cat"], classes=["church", "tench"], other_class="other")
    assert (names, pos) == (["church", "tench", "other"], -1)
    mapping = label_mapping(["tench", "church", "dog", "cat"], names, -1, "other")
    assert mapping == [1, 0, 2, 2]
    assert label_mapping(["tench", "church", "dog"], ["church", "tench"]) == [1, 0, DROP]
    assert mapped_counts({"tench": 3, "church": 5, "dog": 2, "cat": 1}, ["tench", "church", "dog", "cat"], mapping, 3) == [5, 3, 3]
    with pytest.raises(ValueError, match="valid: \\['a', 'b'\\]"):
        detector_label_names(["a", "b"], positive="c")
