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

from dataigm.evaluation.stats import balanced_accuracy, confusion_matrix, roc_auc, roc_curve, select_threshold  # noqa: F401  (one statistics module)


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
