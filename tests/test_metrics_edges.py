"""Edge cases of the detector metrics that decide reported numbers: exact ties, unequal calibration bins,
classes absent from the labels. Every expected value is computed by hand in the comments."""

from __future__ import annotations

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
    assert report["per_class"]["c"]["support"] == 0
