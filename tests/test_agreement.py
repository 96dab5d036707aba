"""The audit statistics against direct computations in the test, and against scikit-learn / statsmodels where
they are installed (independent implementations)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from dataigm.evaluation.agreement import (
    CARD_THRESHOLDS, UNSTABLE_YOUDEN, Confusion, balanced_accuracy, classification, cohen_kappa, confusion, corrected_rate,
    judge_agreement, judge_audit, operating_points, proportion, rogan_gladen, threshold_sweep, wilson_interval,
)
from dataigm.evaluation.metrics import bootstrap_ci, cluster_bootstrap_means

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


# --- exact values on inputs with known answers, and the bootstraps rebuilt here ---------------------------------------
def _reference_balanced(codes: np.ndarray) -> np.ndarray:
    """(sensitivity + specificity) / 2 of each row of codes 2 * label + flag, written out per cell."""
    tp, fn, tn, fp = ((codes == c).sum(-1) for c in (3, 2, 0, 1))
    with np.errstate(invalid="ignore", divide="ignore"):
        return 0.5 * tp / (tp + fn) + 0.5 * tn / (tn + fp)


def test_confusion_rejects_unequal_lengths_and_counts_a_dict():
    with pytest.raises(ValueError, match="3 labels for 2 verdicts"):
        confusion([1, 0, 1], [1, 0])
    assert confusion(LABELS, FLAGS).to_dict() == {"tp": 3, "fp": 1, "tn": 8, "fn": 4}
    assert Confusion(tp=1, fp=2, tn=4, fn=8).n == 15


def test_wilson_at_another_confidence_and_a_proportion():
    z = 1.6448536269514722  # the 95th normal percentile: a 90 % interval
    k, n = 12, 40
    centre = (k + z * z / 2) / (n + z * z)
    half = z / (n + z * z) * math.sqrt(k * (n - k) / n + z * z / 4)
    assert wilson_interval(k, n, 0.9) == pytest.approx((centre - half, centre + half), abs=1e-12)
    assert proportion(k, n, 0.9) == {"value": 0.3, "low": wilson_interval(k, n, 0.9)[0], "high": wilson_interval(k, n, 0.9)[1], "k": 12, "n": 40}
    assert proportion(0, 0) == {"value": None, "low": None, "high": None, "k": 0, "n": 0}
    z = 1.959963984540054
    assert wilson_interval(1, 1) == pytest.approx((1 / (1 + z * z), 1.0), abs=1e-12)  # k = n: the low end is 1 / (1 + z²)
    assert wilson_interval(32, 32)[1] == 1.0  # centre + half-width is one ulp above 1 here: clipped


def test_classification_is_every_count_and_interval_exactly():
    m = classification(LABELS, FLAGS, confidence=0.9, n_resamples=300, seed=7)
    assert m["confusion"] == {"tp": 3, "fp": 1, "tn": 8, "fn": 4} and m["n"] == 16
    assert m["sensitivity"] == proportion(3, 7, 0.9) and m["specificity"] == proportion(8, 9, 0.9)
    assert m["precision"] == proportion(3, 4, 0.9) and m["accuracy"] == proportion(11, 16, 0.9)
    codes = [2 * y + f for y, f in zip(LABELS, FLAGS)]
    est = bootstrap_ci(codes, _reference_balanced, n_resamples=300, confidence=0.9, seed=7)
    assert m["balanced_accuracy"] == {"value": pytest.approx((3 / 7 + 8 / 9) / 2), "low": pytest.approx(est.low), "high": pytest.approx(est.high), "n": 16}
    assert est.low != bootstrap_ci(codes, _reference_balanced, n_resamples=300, seed=7).low  # the confidence is passed on


def test_balanced_accuracy_needs_both_classes():
    none = {"value": None, "low": None, "high": None, "n": 3}
    assert balanced_accuracy([1, 1, 1], [1, 0, 0]) == none  # every label positive (one found, two missed)
    assert balanced_accuracy([0, 0, 0], [0, 1, 1]) == none
    m = balanced_accuracy([1, 1, 0, 0], [0, 0, 0, 1], n_resamples=50)  # nothing found: sensitivity 0, specificity 1/2
    assert m["value"] == 0.25 and m["n"] == 4


def test_kappa_edges_and_its_bootstrap_rebuilt():
    with pytest.raises(ValueError, match="3 verdicts against 2"):
        cohen_kappa([1, 0, 1], [1, 0])
    assert cohen_kappa([], []) is None
    assert cohen_kappa([1, 0, 1, 0], [1, 0, 1, 0]) == 1.0 and cohen_kappa([1, 0], [0, 1]) == -1.0
    assert cohen_kappa([1, 1, 0, 0], [1, 0, 1, 0]) == 0.0
    assert cohen_kappa([1, 1, 1, 0], [1, 1, 1, 1]) == 0.0  # one judge constant: p_e = p_o
    a, b = FLAGS, [1, 1, 0, 0, 1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 1]

    def kappa_rows(codes: np.ndarray) -> np.ndarray:
        x, y = (codes >= 2).astype(float), (codes % 2 == 1).astype(float)
        po = (x == y).mean(-1)
        pe = x.mean(-1) * y.mean(-1) + (1 - x.mean(-1)) * (1 - y.mean(-1))
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(pe < 1, (po - pe) / (1 - pe), np.nan)

    est = bootstrap_ci([2 * x + y for x, y in zip(a, b)], kappa_rows, n_resamples=250, confidence=0.8, seed=3)
    agree = judge_agreement(a, b, n_resamples=250, confidence=0.8, seed=3)
    assert agree["kappa_ci"] == pytest.approx([est.low, est.high])
    assert agree["agreement"] == 13 / 16 and agree["agreement_ci"] == list(wilson_interval(13, 16, 0.8)) and agree["n"] == 16
    assert agree["kappa"] == cohen_kappa(a, b)
    assert judge_agreement([], []) == {"kappa": None, "kappa_ci": [None, None], "agreement": None, "agreement_ci": [None, None], "n": 0}
    assert judge_agreement([1, 1], [1, 1])["kappa_ci"] == [None, None]


SWEEP_LABELS = [1, 1, 1, 0, 0, 0, 1, 0]
SWEEP_SCORES = [0.9, 0.7, 0.7, 0.7, 0.2, 0.1, 0.2, 0.9]


def test_threshold_sweep_every_point_exactly():
    sweep = threshold_sweep(SWEEP_LABELS, SWEEP_SCORES)
    expected = [  # threshold, tp, fp, with 4 positives and 4 negatives; ties in scores count together
        (0.9, 1, 1), (0.7, 3, 2), (0.2, 4, 3), (0.1, 4, 4),
    ]
    assert [p["threshold"] for p in sweep["points"]] == [t for t, _, _ in expected]
    for p, (t, tp, fp) in zip(sweep["points"], expected):
        assert p == {"threshold": t, "tpr": tp / 4, "fpr": fp / 4, "precision": tp / (tp + fp), "balanced_accuracy": (tp / 4 + 1 - fp / 4) / 2}
    assert (sweep["n_positive"], sweep["n_negative"]) == (4, 4)
    assert sweep["best"]["threshold"] == 0.7  # 0.625 at 0.7 and at 0.2: the highest threshold wins the tie
    xs, ys = [0, 1 / 4, 2 / 4, 3 / 4, 1], [0, 1 / 4, 3 / 4, 1, 1]
    assert sweep["roc_auc"] == pytest.approx(sum((xs[i + 1] - xs[i]) * (ys[i + 1] + ys[i]) / 2 for i in range(4)))
    sk = pytest.importorskip("sklearn.metrics")
    assert sweep["roc_auc"] == pytest.approx(sk.roc_auc_score(SWEEP_LABELS, SWEEP_SCORES))


def test_threshold_sweep_of_one_class():
    sweep = threshold_sweep([1, 1], [0.4, 0.8])
    assert sweep["points"] == [{"threshold": 0.8, "tpr": 0.5, "fpr": None, "precision": 1.0, "balanced_accuracy": None},
                               {"threshold": 0.4, "tpr": 1.0, "fpr": None, "precision": 1.0, "balanced_accuracy": None}]
    assert sweep["best"] is None and sweep["roc_auc"] is None and (sweep["n_positive"], sweep["n_negative"]) == (2, 0)
    negatives = threshold_sweep([0, 0], [0.4, 0.8])
    assert negatives["points"][0]["tpr"] is None and negatives["points"][0]["precision"] == 0.0 and negatives["roc_auc"] is None


def test_threshold_sweep_caveat_below_thirty_of_a_class():
    labels, scores = [1] * 30 + [0] * 30, [0.9] * 30 + [0.1] * 30
    full = threshold_sweep(labels, scores)
    assert "caveat" not in full and full["roc_auc"] == 1.0 and full["best"]["threshold"] == 0.9
    assert threshold_sweep(labels[:-1], scores[:-1])["caveat"] == (
        "best threshold chosen on 30 positive and 29 negative images (fewer than 30 of a class): it fits these images and "
        "will do worse on new ones")
    assert "30 positive and 29" not in threshold_sweep(labels[1:], scores[1:])["caveat"]


def test_rogan_gladen_at_youden_zero_and_the_clip_edges():
    assert rogan_gladen(0.3, 0.6, 0.4) is None  # sens + spec = 1
    assert rogan_gladen(0.3, 0.4, 0.4) is None
    assert rogan_gladen(0.5, 1.0, 1.0) == 0.5 and rogan_gladen(0.25, 0.75, 0.75) == 0.0 and rogan_gladen(0.75, 0.75, 0.75) == 1.0


def _reference_corrected(flags, counts, clusters, n_resamples, confidence, seed):
    """The corrected rate's interval rebuilt: p from the (cluster) bootstrap, then a multinomial resample of the audit."""
    x = np.asarray(flags, dtype=float)
    rng = np.random.default_rng(seed)
    p, _ = cluster_bootstrap_means(x, clusters if clusters is not None else list(range(x.size)), rng, n_resamples)
    cells = rng.multinomial(counts.n, [counts.tp / counts.n, counts.fn / counts.n, counts.tn / counts.n, counts.fp / counts.n], size=n_resamples)
    with np.errstate(invalid="ignore", divide="ignore"):
        sens, spec = cells[:, 0] / (cells[:, 0] + cells[:, 1]), cells[:, 2] / (cells[:, 2] + cells[:, 3])
    youden = sens + spec - 1
    ok = np.isfinite(youden) & (youden > 0)
    dist = np.minimum(1.0, np.maximum(0.0, (p[ok] + spec[ok] - 1) / youden[ok]))
    a = (1 - confidence) / 2
    return (float(np.quantile(dist, a)), float(np.quantile(dist, 1 - a))) if dist.size else (None, None), int((~ok).sum())


@pytest.mark.parametrize("clustered", [False, True])
def test_corrected_rate_every_field_against_the_rebuilt_bootstrap(clustered):
    flags = [True] * 12 + [False] * 28
    clusters = [i // 4 for i in range(40)] if clustered else None
    counts = Confusion(tp=8, fn=2, tn=17, fp=3)
    got = corrected_rate(flags, counts, clusters, n_resamples=300, confidence=0.8, seed=5)
    (low, high), undefined = _reference_corrected(flags, counts, clusters, 300, 0.8, 5)
    sens, spec = 0.8, 17 / 20
    assert got == {"raw": 0.3, "sensitivity": sens, "specificity": spec, "n": 40, "n_audit": 30, "method": "rogan-gladen",
                   "value": pytest.approx((0.3 + spec - 1) / (sens + spec - 1)), "youden": pytest.approx(sens + spec - 1),
                   "unstable": False, "low": pytest.approx(low), "high": pytest.approx(high), "undefined_resamples": undefined}


@pytest.mark.filterwarnings("error::RuntimeWarning")  # undefined resamples are expected: counted, not warned about
def test_corrected_rate_on_a_tiny_audit_counts_the_undefined_resamples():
    flags = [True, False, False, True, False]
    counts = Confusion(tp=2, fn=1, tn=1, fp=1)  # sens 2/3, spec 1/2: many resamples at or below chance
    got = corrected_rate(flags, counts, n_resamples=400, seed=2)
    (low, high), undefined = _reference_corrected(flags, counts, None, 400, 0.95, 2)
    assert 0 < got["undefined_resamples"] == undefined < 400
    assert (got["low"], got["high"]) == pytest.approx((low, high)) and got["unstable"] and got["youden"] == pytest.approx(1 / 6)
    hopeless = corrected_rate(flags, Confusion(tp=0, fn=2, tn=0, fp=2), n_resamples=50)  # sens 0, spec 0: never defined
    assert hopeless["value"] is None and hopeless["low"] is None and hopeless["high"] is None and hopeless["undefined_resamples"] == 50


def test_corrected_rate_without_both_classes_in_the_audit_or_without_flags():
    note = "the audit needs labelled images of both classes"
    no_negatives = corrected_rate([True, False], Confusion(tp=3, fn=1, tn=0, fp=0))
    assert no_negatives == {"raw": 0.5, "sensitivity": 0.75, "specificity": None, "n": 2, "n_audit": 4, "value": None, "low": None,
                            "high": None, "method": "rogan-gladen", "note": note}
    no_positives = corrected_rate([True, False], Confusion(tp=0, fn=0, tn=3, fp=1))
    assert no_positives["sensitivity"] is None and no_positives["specificity"] == 0.75 and no_positives["note"] == note
    balanced = Confusion(tp=2, fn=2, tn=3, fp=1)
    assert corrected_rate([True, False], balanced)["sensitivity"] == 0.5  # tp == fn: still a sensitivity
    empty = corrected_rate([], balanced)
    assert empty["raw"] is None and empty["n"] == 0 and empty["note"] == note and "youden" not in empty


def test_operating_points_at_the_card_thresholds():
    labels = [1, 1, 1, 1, 0, 0, 0, 0]
    scores = [0.95, 0.5, 0.3, 0.05, 0.7, 0.3, 0.1, 0.0]  # 0.5, 0.3 and 0.1 sit exactly on thresholds: counted (>=)
    points = operating_points(labels, scores)
    assert [p["threshold"] for p in points] == list(CARD_THRESHOLDS)
    found = {0.1: (3, 3), 0.2: (3, 2), 0.3: (3, 2), 0.4: (2, 1), 0.5: (2, 1), 0.6: (1, 1), 0.7: (1, 1), 0.8: (1, 0), 0.9: (1, 0)}
    for p in points:
        tp, fp = found[p["threshold"]]
        assert p == {"threshold": p["threshold"], "sensitivity": tp / 4, "specificity": (4 - fp) / 4, "precision": tp / (tp + fp)}
    assert operating_points([0, 0], [0.2, 0.6], (0.5, 0.9)) == [
        {"threshold": 0.5, "sensitivity": None, "specificity": 0.5, "precision": 0.0},
        {"threshold": 0.9, "sensitivity": None, "specificity": 1.0, "precision": None}]
    assert operating_points([1], [0.6], (0.5,)) == [{"threshold": 0.5, "sensitivity": 1.0, "specificity": None, "precision": 1.0}]


def test_judge_audit_is_classification_plus_its_sweep():
    labels, scores = SWEEP_LABELS, SWEEP_SCORES
    audit = judge_audit(labels, scores, 0.7, n_resamples=120, seed=4, confidence=0.9)
    flags = [s >= 0.7 for s in scores]  # the three ties at 0.7 are flagged
    assert {k: audit[k] for k in ("confusion", "n", "sensitivity", "specificity", "precision", "accuracy", "balanced_accuracy")} == \
        classification(labels, flags, n_resamples=120, seed=4, confidence=0.9)
    assert audit["confusion"] == {"tp": 3, "fp": 2, "tn": 2, "fn": 1}
    sweep = threshold_sweep(labels, scores)
    assert audit["threshold"] == 0.7 and audit["best"] == sweep["best"] and audit["roc_auc"] == sweep["roc_auc"]
    assert audit["caveat"] == sweep["caveat"] and audit["operating_points"] == operating_points(labels, scores)
    assert judge_audit([1] * 30 + [0] * 30, [0.9] * 30 + [0.1] * 30, 0.5, n_resamples=20)["caveat"] is None


@pytest.mark.filterwarnings("error::RuntimeWarning")
def test_resamples_without_a_class_are_left_out_silently():
    """A bootstrap resample of a few images often lacks a class (balanced accuracy) or is constant (kappa): such
    resamples are NaN and left out of the interval, without a warning per resample."""
    labels, flags = [1, 0, 0, 0], [1, 0, 1, 0]
    est = bootstrap_ci([2 * y + f for y, f in zip(labels, flags)], _reference_balanced, n_resamples=200, seed=1)
    assert balanced_accuracy(labels, flags, n_resamples=200, seed=1) == {"value": 0.5 * 1 + 0.5 * 2 / 3, "low": est.low, "high": est.high, "n": 4}
    agree = judge_agreement([1, 0, 0], [1, 0, 1], n_resamples=200, seed=1)
    assert agree["kappa"] == pytest.approx(0.4) and agree["kappa_ci"][0] <= 0.4 <= agree["kappa_ci"][1]
