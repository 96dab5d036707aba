"""Edge cases of the detector metrics that decide reported numbers: exact ties, unequal calibration bins,
classes absent from the labels. Every expected value is computed by hand in the comments."""

from __future__ import annotations

import json

import numpy as np
import pytest

from dataigm.train.metrics import classification_report, expected_calibration_error, select_threshold


def test_exact_tie_goes_to_the_highest_threshold() -> None:
    # negatives 0.1, 0.5; positives 0.3, 0.7. Cutting at 0.6 gives tpr 1/2, fpr 0; cutting at 0.2 gives tpr 1,
    # fpr 1/2: both balanced accuracy 3/4 exactly (no rounding). The documented rule keeps the highest: 0.6.
    scores = np.array([0.1, 0.3, 0.5, 0.7])
    positives = np.array([False, True, False, True])
    assert select_threshold(scores, positives) == pytest.approx(0.6)


def test_target_fpr_tie_on_tpr_keeps_the_highest_threshold() -> None:
    # positives 0.9, 0.5; negatives 0.7, 0.65, 0.2, 0.1; at most 1 of 4 negatives above the cut. Cutting at 0.8
    # (tp 1, fp 0) and at 0.675 (tp 1, fp 1) tie on tpr 1/2; every lower cut has fp >= 2. The highest wins: 0.8.
    scores = np.array([0.9, 0.5, 0.7, 0.65, 0.2, 0.1])
    positives = np.array([True, True, False, False, False, False])
    assert select_threshold(scores, positives, "target_fpr", 0.25) == pytest.approx(0.8)


def test_ece_weights_bins_by_their_share() -> None:
    # three samples at confidence 0.95, all right (gap 0.05), one at 0.55, wrong (gap 0.55):
    # ECE = 3/4 * 0.05 + 1/4 * 0.55 = 0.175 (an unweighted mean over the two bins would give 0.3)
    probs = np.array([[0.95, 0.05], [0.95, 0.05], [0.05, 0.95], [0.55, 0.45]])
    labels = np.array([0, 0, 1, 1])
    assert expected_calibration_error(probs, labels) == pytest.approx(0.175)


def test_balanced_accuracy_ignores_classes_absent_from_the_labels() -> None:
    # three classes, class "c" never occurs: recalls a = 1/2, b = 1 -> 0.75 (counting c as recall 0 gives 0.5)
    probs = np.array([[0.9, 0.05, 0.05], [0.1, 0.8, 0.1], [0.1, 0.8, 0.1], [0.2, 0.7, 0.1]])
    report = classification_report(probs, np.array([0, 0, 1, 1]), ["a", "b", "c"])
    assert report["balanced_accuracy"] == pytest.approx(0.75)
    assert report["accuracy"] == pytest.approx(0.75)
    # a class neither present nor predicted scores 0, not 1, everywhere
    assert report["per_class"]["c"] == {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 0}


def test_max_balanced_accuracy_accepts_a_false_positive_when_it_pays() -> None:
    # positives 0.9, 0.8, 0.5, 0.45; negatives 0.6, 0.3, 0.2, 0.1. Cutting at 0.7: tpr 1/2, fpr 0 (BA 0.75);
    # at 0.375: tpr 1, fpr 1/4 (BA 0.875). Max balanced accuracy takes 0.375; a no-false-positive rule would take 0.7.
    scores = np.array([0.9, 0.8, 0.5, 0.45, 0.6, 0.3, 0.2, 0.1])
    positives = [1, 1, 1, 1, 0, 0, 0, 0]  # plain 0/1 integers are accepted as booleans
    assert select_threshold(scores, positives) == pytest.approx(0.375)
    assert select_threshold(scores, positives, "target_fpr", 0.0) == pytest.approx(0.7)


def test_the_lowest_candidate_includes_the_lowest_score() -> None:
    # positives 0.1 and 0.9, negative 0.5; any false-positive rate allowed: only a cut at the lowest score itself
    # (0.1, predicted positive because score >= threshold) reaches tpr 1.
    assert select_threshold(np.array([0.1, 0.5, 0.9]), np.array([True, False, True]), "target_fpr", 1.0) == pytest.approx(0.1)


def test_calibration_bins_edges_counts_and_empty_bins() -> None:
    from dataigm.train.metrics import calibration_bins

    probs = np.array([[0.25, 0.25, 0.25, 0.25], [0.5, 0.3, 0.1, 0.1], [0.1, 0.6, 0.2, 0.1], [0.0, 0.0, 0.0, 1.0], [0.0, 0.0, 1.0, 0.0]])
    labels = np.array([0, 1, 0, 3, 1])  # right, wrong, wrong, right, wrong
    bins = calibration_bins(probs, labels, n_bins=4)
    # a confidence on an edge belongs to the bin below it (0.25 -> [0, 0.25], 0.5 -> (0.25, 0.5])
    assert bins == [
        {"lower": 0.0, "upper": 0.25, "n": 1, "confidence": 0.25, "accuracy": 1.0},
        {"lower": 0.25, "upper": 0.5, "n": 1, "confidence": 0.5, "accuracy": 0.0},
        {"lower": 0.5, "upper": 0.75, "n": 1, "confidence": 0.6, "accuracy": 0.0},
        {"lower": 0.75, "upper": 1.0, "n": 2, "confidence": 1.0, "accuracy": 0.5},
    ]
    empty = calibration_bins(np.array([[0.9, 0.1]]), np.array([0]), n_bins=2)[0]
    assert empty == {"lower": 0.0, "upper": 0.5, "n": 0, "confidence": 0.0, "accuracy": 0.0}


def test_ece_uses_the_given_number_of_bins() -> None:
    # confidences 0.62 (right) and 0.64 (wrong) share a bin of 15 ([0.6, 0.667)) but not of 16 (edge 0.625):
    # 15 bins: |0.5 - 0.63| = 0.13; 16 bins: 0.5 * 0.38 + 0.5 * 0.64 = 0.51
    probs = np.array([[0.62, 0.38], [0.64, 0.36]])
    labels = np.array([0, 1])
    assert expected_calibration_error(probs, labels) == pytest.approx(0.13)
    assert expected_calibration_error(probs, labels, n_bins=16) == pytest.approx(0.51)
    assert classification_report(probs, labels, ["a", "b"])["ece"] == pytest.approx(0.13)
    assert np.isnan(expected_calibration_error(np.zeros((0, 2)), np.zeros(0, dtype=int)))


def test_balanced_accuracy_counts_a_class_seen_once() -> None:
    # class c occurs once and is missed: recalls a 1, b 1, c 0 -> 2/3
    probs = np.eye(3)[[0, 1, 1]]
    assert classification_report(probs, np.array([0, 1, 2]), ["a", "b", "c"])["balanced_accuracy"] == pytest.approx(2 / 3)


def test_binary_report_in_full() -> None:
    probs = np.array([[0.8, 0.2], [0.3, 0.7], [0.6, 0.4], [0.1, 0.9]])
    labels = np.array([0, 1, 1, 0])
    report = classification_report(probs, labels, ["neg", "pos"], threshold=0.35)
    # p(pos) >= 0.35 -> predictions 0, 1, 1, 1: one false positive
    assert json.dumps(report["confusion_matrix"]) == "[[1, 1], [0, 2]]"  # integer counts in the JSON report
    assert (report["n"], report["accuracy"], report["balanced_accuracy"]) == (4, 0.75, 0.75)
    assert report["chance_balanced_accuracy"] == 0.5 and report["label_names"] == ["neg", "pos"]
    assert report["threshold"] == 0.35 and report["positive_label"] == 1
    assert report["roc_auc"] == pytest.approx(0.5)  # positives 0.7, 0.4 against negatives 0.2, 0.9: 2 of 4 pairs
    assert report["per_class"]["pos"] == {"precision": pytest.approx(2 / 3), "recall": 1.0, "f1": pytest.approx(0.8), "support": 2}
    flipped = classification_report(probs, labels, ["neg", "pos"], threshold=0.35, positive_label=0)
    # p(neg) >= 0.35 -> predictions 0, 1, 0, 1
    assert flipped["confusion_matrix"] == [[1, 1], [1, 1]] and flipped["positive_label"] == 0
    assert flipped["roc_auc"] == pytest.approx(0.5)
    multi = classification_report(np.eye(3)[[0, 1, 2]], np.array([0, 1, 2]), ["a", "b", "c"])
    assert multi["chance_balanced_accuracy"] == pytest.approx(1 / 3) and multi["threshold"] is None


def test_report_rejects_probabilities_that_do_not_fit_the_classes() -> None:
    for bad in (np.array([0.2, 0.8]), np.zeros((2, 3))):
        with pytest.raises(ValueError, match=r"do not match 2 classes \['a', 'b'\]"):
            classification_report(bad, np.array([0, 1]), ["a", "b"])


def test_empty_predictions_report_nan_not_zero() -> None:
    report = classification_report(np.zeros((0, 2)), np.zeros(0, dtype=int), ["a", "b"], threshold=0.5)
    assert report["n"] == 0 and report["confusion_matrix"] == [[0, 0], [0, 0]]
    assert all(np.isnan(report[k]) for k in ("accuracy", "balanced_accuracy", "ece", "roc_auc"))


def test_confusion_matrix_takes_labels_read_as_floats() -> None:
    from dataigm.train.metrics import confusion_matrix

    cm = confusion_matrix(np.array([0.0, 1.0, 1.0]), np.array([0.0, 0.0, 1.0]), 2)  # e.g. labels read back from JSON
    assert cm.dtype == np.int64 and cm.tolist() == [[1, 0], [1, 1]]


def test_threshold_is_inclusive_and_only_binary_reports_carry_it() -> None:
    from dataigm.train.metrics import predict_labels

    probs = np.array([[0.5, 0.5], [0.6, 0.4]])
    assert predict_labels(probs, 0.5).tolist() == [1, 0]  # p(positive) == threshold counts as positive
    multi = classification_report(np.eye(3)[[0, 1, 2]], np.array([0, 1, 2]), ["a", "b", "c"], threshold=0.5)
    assert multi["threshold"] is None and multi["positive_label"] is None  # a threshold means nothing for 3 classes
    # the report passes its bin count on to ECE (same inputs as test_ece_uses_the_given_number_of_bins)
    report = classification_report(np.array([[0.62, 0.38], [0.64, 0.36]]), np.array([0, 1]), ["a", "b"], n_bins=16)
    assert report["ece"] == pytest.approx(0.51)


def test_target_fpr_allows_the_floor_of_its_share_of_negatives() -> None:
    # 100 negatives: 0.01 .. 0.30 and 70 below 0.01; 30 positives at 0.015 .. 0.305, one above each of the top 30
    # negatives, so every extra false positive allowed buys a true positive. 0.29 * 100 is 28.999999999999996 in
    # floats and still allows 29 false positives (cut between 0.015 and 0.01); 0.285 allows 28 (the floor).
    negatives = np.r_[np.linspace(0.001, 0.009, 70), np.arange(1, 31) / 100]
    scores = np.r_[negatives, np.arange(1, 31) / 100 + 0.005]
    positives = np.r_[np.zeros(100, dtype=bool), np.ones(30, dtype=bool)]
    assert select_threshold(scores, positives, "target_fpr", 0.29) == pytest.approx(0.0125)
    assert select_threshold(scores, positives, "target_fpr", 0.285) == pytest.approx(0.0225)


def test_calibration_defaults_to_15_bins() -> None:
    from dataigm.train.metrics import calibration_bins

    probs, labels = np.array([[0.3, 0.7], [0.6, 0.4]]), np.array([1, 1])
    bins = calibration_bins(probs, labels)
    assert len(bins) == 15 and bins[10]["n"] == 1 and bins[8]["n"] == 1  # 0.7 in (0.667, 0.733], 0.6 in (0.533, 0.6]
    assert expected_calibration_error(probs, labels) == pytest.approx(0.5 * 0.3 + 0.5 * 0.6)


def test_roc_accepts_plain_integer_labels() -> None:
    from dataigm.train.metrics import roc_auc, roc_curve

    scores, labels = np.array([0.9, 0.8, 0.3, 0.1, 0.05]), [1, 0, 1, 0, 0]  # 0/1 integers, not booleans
    fpr, tpr, thresholds = roc_curve(scores, labels)
    assert fpr.tolist() == pytest.approx([0, 0, 1 / 3, 1 / 3, 2 / 3, 1]) and tpr.tolist() == [0, 0.5, 0.5, 1, 1, 1]
    assert thresholds.tolist() == [np.inf, 0.9, 0.8, 0.3, 0.1, 0.05]
    assert roc_auc(scores, labels) == pytest.approx(5 / 6)  # 5 of the 6 positive-negative pairs are ordered
    fpr, tpr, _ = roc_curve(np.array([0.7, 0.4]), [1, 0])  # one positive: its rate goes 0 -> 1
    assert tpr.tolist() == [0, 1, 1] and fpr.tolist() == [0, 0, 1]
