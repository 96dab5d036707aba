"""The audit statistics against direct computations in the test, and against scikit-learn / statsmodels where
they are installed (independent implementations)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from dataigm.judge.agreement import (
    UNSTABLE_YOUDEN, Confusion, classification, cohen_kappa, confusion, corrected_rate, judge_agreement, rogan_gladen,
    threshold_sweep, wilson_interval,
)

LABELS = [1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0]
FLAGS = [1, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]  # 3 of 7 positives found, 1 of 9 negatives flagged


def test_confusion_counts_by_hand():
    c = confusion(LABELS, FLAGS)
    assert (c.tp, c.fn, c.tn, c.fp, c.n) == (3, 4, 8, 1, 16)


def test_wilson_interval_by_formula():
    z = 1.959963984540054
    k, n = 3, 7
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z / (1 + z * z / n) * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    low, high = wilson_interval(k, n)
    assert low == pytest.approx(centre - half, abs=1e-12) and high == pytest.approx(centre + half, abs=1e-12)
    assert wilson_interval(0, 5)[0] == 0.0 and wilson_interval(5, 5)[1] == 1.0
    assert wilson_interval(0, 0) == (None, None)


def test_wilson_against_scipy():
    stats = pytest.importorskip("scipy.stats")
    for k, n in ((3, 7), (0, 9), (12, 40)):
        ci = stats.binomtest(k, n).proportion_ci(confidence_level=0.95, method="wilson")
        assert wilson_interval(k, n) == pytest.approx((ci.low, ci.high), abs=1e-10)


def test_wilson_against_statsmodels():
    proportion_confint = pytest.importorskip("statsmodels.stats.proportion").proportion_confint
    for k, n in ((3, 7), (0, 9), (12, 40)):
        assert wilson_interval(k, n) == pytest.approx(proportion_confint(k, n, alpha=0.05, method="wilson"), abs=1e-10)


def test_classification_values():
    m = classification(LABELS, FLAGS, n_resamples=400)
    assert m["sensitivity"]["value"] == pytest.approx(3 / 7)
    assert m["specificity"]["value"] == pytest.approx(8 / 9)
    assert m["precision"]["value"] == pytest.approx(3 / 4)
    assert m["balanced_accuracy"]["value"] == pytest.approx((3 / 7 + 8 / 9) / 2)
    assert list(wilson_interval(3, 7)) == [m["sensitivity"]["low"], m["sensitivity"]["high"]]
    ba = m["balanced_accuracy"]
    assert ba["low"] < ba["value"] < ba["high"]


def test_balanced_accuracy_against_sklearn():
    metrics = pytest.importorskip("sklearn.metrics")
    m = classification(LABELS, FLAGS, n_resamples=10)
    assert m["balanced_accuracy"]["value"] == pytest.approx(metrics.balanced_accuracy_score(LABELS, FLAGS))
    assert m["precision"]["value"] == pytest.approx(metrics.precision_score(LABELS, FLAGS))


def test_kappa_by_hand_and_against_sklearn():
    a, b = FLAGS, [1, 1, 0, 0, 1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 1]
    po = sum(x == y for x, y in zip(a, b)) / len(a)
    pa, pb = sum(a) / len(a), sum(b) / len(b)
    pe = pa * pb + (1 - pa) * (1 - pb)
    assert cohen_kappa(a, b) == pytest.approx((po - pe) / (1 - pe))
    sk = pytest.importorskip("sklearn.metrics")
    assert cohen_kappa(a, b) == pytest.approx(sk.cohen_kappa_score(a, b))
    agree = judge_agreement(a, b, n_resamples=300)
    assert agree["agreement"] == pytest.approx(po) and agree["n"] == 16
    assert agree["kappa_ci"][0] <= agree["kappa"] <= agree["kappa_ci"][1]
    assert cohen_kappa([1, 1], [1, 1]) is None  # chance agreement 1: undefined


def test_threshold_sweep_roc_and_best():
    labels = [1, 1, 1, 0, 0, 0]
    scores = [0.9, 0.8, 0.3, 0.6, 0.2, 0.1]
    sweep = threshold_sweep(labels, scores)
    at = {p["threshold"]: p for p in sweep["points"]}
    assert (at[0.8]["tpr"], at[0.8]["fpr"]) == (2 / 3, 0.0)
    assert (at[0.3]["tpr"], at[0.3]["fpr"]) == (1.0, 1 / 3)
    assert sweep["best"]["threshold"] == 0.8 and sweep["best"]["balanced_accuracy"] == pytest.approx(5 / 6)
    assert "caveat" in sweep
    sk = pytest.importorskip("sklearn.metrics")
    assert sweep["roc_auc"] == pytest.approx(sk.roc_auc_score(labels, scores))


def test_rogan_gladen_by_formula():
    assert rogan_gladen(0.3, 0.9, 0.8) == pytest.approx((0.3 + 0.8 - 1) / (0.9 + 0.8 - 1))
    assert rogan_gladen(0.05, 0.9, 0.8) == 0.0  # below the false-positive floor: clipped
    assert rogan_gladen(0.99, 0.5, 0.95) == 1.0
    assert rogan_gladen(0.4, 0.5, 0.5) is None


def test_corrected_rate_interval_includes_audit_uncertainty():
    flags = [True] * 30 + [False] * 70
    tight = corrected_rate(flags, Confusion(tp=900, fn=100, tn=950, fp=50), n_resamples=500)
    loose = corrected_rate(flags, Confusion(tp=9, fn=1, tn=9, fp=1), n_resamples=500)
    expected = (0.3 + 0.95 - 1) / (0.9 + 0.95 - 1)
    assert tight["value"] == pytest.approx(expected) and tight["raw"] == pytest.approx(0.3)
    assert loose["high"] - loose["low"] > tight["high"] - tight["low"]  # a 20-image audit widens the interval
    assert not tight["unstable"]
    weak = corrected_rate(flags, Confusion(tp=55, fn=45, tn=55, fp=45), n_resamples=200)
    assert weak["youden"] == pytest.approx(0.1) and weak["youden"] < UNSTABLE_YOUDEN and weak["unstable"]


def test_corrected_rate_resamples_by_cluster():
    flags = [True, True, False, False] * 10
    clusters = [i // 2 for i in range(40)]  # pairs of identical verdicts: a prompt's seeds
    counts = Confusion(tp=90, fn=10, tn=90, fp=10)
    by_image = corrected_rate(flags, counts, n_resamples=800)
    by_prompt = corrected_rate(flags, counts, clusters, n_resamples=800)
    assert by_prompt["value"] == by_image["value"]
    assert by_prompt["high"] - by_prompt["low"] > by_image["high"] - by_image["low"]
    assert np.isfinite(by_prompt["low"])
