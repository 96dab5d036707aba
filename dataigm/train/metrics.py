"""Detector metrics on predicted probabilities, in plain numpy: accuracy, balanced accuracy, per-class
precision/recall/F1, confusion matrix, ROC curve and AUC (binary), expected calibration error, and the rules
that choose a binary decision threshold on validation data.

Binary convention: ``score`` is the probability of the positive class; a sample is predicted positive when
``score >= threshold``.
"""

from __future__ import annotations

import math
from typing import Any, Sequence

import numpy as np

from dataigm.core.errors import InputError
from dataigm.train.recipe import THRESHOLD_RULES


def confusion_matrix(labels: np.ndarray, preds: np.ndarray, n_classes: int) -> np.ndarray:
    """``cm[true, pred]`` counts."""
    cm = np.zeros((n_classes, n_classes), dtype=np.int64)
    np.add.at(cm, (np.asarray(labels, dtype=np.int64), np.asarray(preds, dtype=np.int64)), 1)
    return cm


def per_class_scores(cm: np.ndarray, label_names: Sequence[str]) -> dict[str, dict[str, float]]:
    """Precision, recall, F1 and support per class (0 where undefined)."""
    out = {}
    for i, name in enumerate(label_names):
        tp = float(cm[i, i])
        predicted, actual = float(cm[:, i].sum()), float(cm[i, :].sum())
        precision = tp / predicted if predicted else 0.0
        recall = tp / actual if actual else 0.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        out[name] = {"precision": precision, "recall": recall, "f1": f1, "support": int(actual)}
    return out


def balanced_accuracy(cm: np.ndarray) -> float:
    """Mean recall over the classes present in the labels."""
    support = cm.sum(axis=1)
    present = support > 0
    if not present.any():
        return math.nan
    return float(np.mean(np.diag(cm)[present] / support[present]))


def roc_curve(scores: np.ndarray, positives: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(fpr, tpr, thresholds) for thresholds at every distinct score, from high to low, starting at (0, 0)."""
    scores = np.asarray(scores, dtype=np.float64)  # pragma: no mutate, callers pass floats: the dtype only pins them
    positives = np.asarray(positives, dtype=bool)
    order = np.argsort(-scores, kind="stable")  # pragma: no mutate, a tie is counted at its last member: any order
    s, y = scores[order], positives[order]
    last_of_tie = np.r_[np.nonzero(np.diff(s))[0], len(s) - 1]
    tp = np.cumsum(y)[last_of_tie]
    fp = np.cumsum(~y)[last_of_tie]
    n_pos, n_neg = max(int(y.sum()), 1), max(int((~y).sum()), 1)
    fpr = np.r_[0.0, fp / n_neg]
    tpr = np.r_[0.0, tp / n_pos]
    thresholds = np.r_[np.inf, s[last_of_tie]]
    return fpr, tpr, thresholds


def roc_auc(scores: np.ndarray, positives: np.ndarray) -> float:
    """Area under the ROC curve: P(score of a random positive > a random negative), ties counting one half."""
    scores = np.asarray(scores, dtype=np.float64)  # pragma: no mutate, callers pass floats: the dtype only pins them
    positives = np.asarray(positives, dtype=bool)
    n_pos, n_neg = int(positives.sum()), int((~positives).sum())
    if n_pos == 0 or n_neg == 0:
        return math.nan
    _, tie_group, tie_size = np.unique(scores, return_inverse=True, return_counts=True)
    last_rank = np.cumsum(tie_size)  # 1-based rank of the last member of each tie group
    ranks = (last_rank - (tie_size - 1) / 2)[tie_group]  # tied scores share their average rank
    return float((ranks[positives].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def calibration_bins(probs: np.ndarray, labels: np.ndarray, n_bins: int = 15) -> list[dict[str, float]]:
    """Top-label confidence bins: for each equal-width bin, count, mean confidence and accuracy."""
    probs = np.asarray(probs, dtype=np.float64)  # pragma: no mutate, callers pass floats: the dtype only pins them
    confidence = probs.max(axis=1)
    correct = probs.argmax(axis=1) == np.asarray(labels)
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    index = np.digitize(confidence, edges[1:-1], right=True)  # the n_bins - 1 inner edges give 0 .. n_bins - 1
    bins = []
    for b in range(n_bins):
        mask = index == b
        n = int(mask.sum())
        bins.append({
            "lower": float(edges[b]), "upper": float(edges[b + 1]), "n": n,
            "confidence": float(confidence[mask].mean()) if n else 0.0,
            "accuracy": float(correct[mask].mean()) if n else 0.0,
        })
    return bins


def expected_calibration_error(probs: np.ndarray, labels: np.ndarray, n_bins: int = 15) -> float:
    """ECE: sum over bins of (bin share) * |accuracy - mean confidence| of the top label."""
    total = len(labels)
    if total == 0:
        return math.nan
    return float(sum(b["n"] / total * abs(b["accuracy"] - b["confidence"]) for b in calibration_bins(probs, labels, n_bins)))


def _candidate_thresholds(scores: np.ndarray) -> np.ndarray:
    """Midpoints between consecutive distinct scores, plus one below all and one above all, high to low."""
    u = np.unique(scores)
    mids = (u[:-1] + u[1:]) / 2
    return np.r_[np.nextafter(u[-1], np.inf), mids[::-1], u[0]]


def select_threshold(scores: np.ndarray, positives: np.ndarray, rule: str = "max_balanced_accuracy", target_fpr: float = 0.05) -> float:
    """Choose the binary decision threshold on validation scores.

    * ``max_balanced_accuracy``: the threshold with the highest balanced accuracy;
    * ``target_fpr``: the highest true-positive rate whose false-positive rate stays <= ``target_fpr``.

    Candidates are midpoints between distinct scores; ties go to the highest threshold (fewest positives).
    """
    if rule not in THRESHOLD_RULES:
        raise InputError(f"unknown threshold rule {rule!r}; valid: {', '.join(THRESHOLD_RULES)}")
    scores = np.asarray(scores, dtype=np.float64)  # pragma: no mutate, callers pass floats: the dtype only pins them
    positives = np.asarray(positives, dtype=bool)
    if positives.all() or not positives.any():  # an empty set is all() too
        raise InputError(f"threshold selection needs both positive and negative samples (got {int(positives.sum())} of {len(scores)} positive)")
    n_pos, n_neg = int(positives.sum()), int((~positives).sum())
    allowed_fp = math.floor(target_fpr * n_neg + 1e-9)  # the tolerance keeps 0.29 * 100 = 28.999999999999996 at 29
    best_t, best = math.nan, -np.inf  # the highest candidate always qualifies, so this is always replaced
    for t in _candidate_thresholds(scores):
        pred = scores >= t
        tp, fp = int((pred & positives).sum()), int((pred & ~positives).sum())
        # Compared in integers, so thresholds that tie in real arithmetic tie here too (floats would let
        # rounding pick): balanced accuracy = (tp * n_neg - fp * n_pos + n_pos * n_neg) / (2 * n_pos * n_neg).
        if rule == "max_balanced_accuracy":
            value = tp * n_neg - fp * n_pos
        elif fp <= allowed_fp:
            value = tp
        else:
            continue  # pragma: no mutate, break is equivalent: fp only grows as the threshold falls
        if value > best:  # strict: among equals the first, i.e. highest, threshold wins
            best_t, best = float(t), value
    return best_t


def predict_labels(probs: np.ndarray, threshold: float | None = None, positive_label: int = 1) -> np.ndarray:
    """Arg-max, or for a binary detector with a threshold: positive iff p(positive) >= threshold."""
    probs = np.asarray(probs)
    if threshold is None or probs.shape[1] != 2:
        return probs.argmax(axis=1)
    return np.where(probs[:, positive_label] >= threshold, positive_label, 1 - positive_label)


def classification_report(
    probs: np.ndarray, labels: np.ndarray, label_names: Sequence[str], threshold: float | None = None, positive_label: int = 1, n_bins: int = 15
) -> dict[str, Any]:
    """All metrics of one set of predictions as a JSON-ready dict."""
    probs, labels = np.asarray(probs, dtype=np.float64), np.asarray(labels, dtype=np.int64)  # pragma: no mutate, callers pass floats and ints: the dtypes only pin them
    n_classes = len(label_names)
    if probs.ndim != 2 or probs.shape[1] != n_classes:
        raise ValueError(f"probabilities of shape {probs.shape} do not match {n_classes} classes {list(label_names)}")
    preds = predict_labels(probs, threshold, positive_label)
    cm = confusion_matrix(labels, preds, n_classes)
    n = int(len(labels))
    report: dict[str, Any] = {
        "n": n,
        "accuracy": float((preds == labels).mean()) if n else math.nan,  # pragma: no mutate, only avoids numpy's empty-mean warning
        "balanced_accuracy": balanced_accuracy(cm),
        "chance_balanced_accuracy": 1.0 / n_classes,
        "per_class": per_class_scores(cm, label_names),
        "confusion_matrix": cm.tolist(),
        "label_names": list(label_names),
        "ece": expected_calibration_error(probs, labels, n_bins),
        "threshold": threshold if n_classes == 2 else None,
        "positive_label": positive_label if n_classes == 2 else None,
    }
    if n_classes == 2:
        report["roc_auc"] = roc_auc(probs[:, positive_label], labels == positive_label)
    return report
