"""How far to trust a verdict: a judge against human labels, judges against each other, and rates corrected for
the judge's errors.

* :func:`confusion` and :func:`classification` give sensitivity, specificity and precision with 95% **Wilson
  score** intervals (:func:`wilson_interval`), and balanced accuracy with a 95% **percentile bootstrap** interval
  over the labelled images (Wilson does not apply to a mean of two proportions).
* :func:`cohen_kappa` and :func:`judge_agreement`: Cohen's kappa and raw agreement between two judges' verdicts,
  kappa's interval by the same bootstrap.
* :func:`threshold_sweep`: ROC and precision-recall points over every score threshold, the threshold with the best
  balanced accuracy, and a caveat when it was chosen on few images.
* :func:`rogan_gladen` and :func:`corrected_rate`: the misclassification-corrected prevalence
  (p + spec - 1) / (sens + spec - 1) (Rogan and Gladen, 1978), clipped to [0, 1], with a bootstrap that resamples
  the judged images (by prompt) *and* the audit's labelled images. The correction divides by Youden's index
  sens + spec - 1: near 0 (a judge barely better than chance) it is unstable, and :data:`UNSTABLE_YOUDEN` flags it.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from statistics import NormalDist
from typing import Any, Hashable, Sequence

import numpy as np

from dataigm.evaluation.metrics import DEFAULT_CONFIDENCE, DEFAULT_RESAMPLES, DEFAULT_SEED, bootstrap_ci, cluster_bootstrap_means

UNSTABLE_YOUDEN = 0.2  # sens + spec - 1 below this: the corrected rate moves by > 5x any error in p
SMALL_SWEEP = 30  # fewer labelled images of either class than this: the best threshold is a guess
INTERVALS = {"sensitivity": "wilson", "specificity": "wilson", "precision": "wilson", "accuracy": "wilson",
             "balanced_accuracy": "percentile bootstrap over labelled images", "kappa": "percentile bootstrap over images"}


@dataclass(frozen=True)
class Confusion:
    """Counts of a binary judge against binary labels (positive = shows the concept)."""

    tp: int
    fp: int
    tn: int
    fn: int

    @property
    def n(self) -> int:
        return self.tp + self.fp + self.tn + self.fn

    def to_dict(self) -> dict[str, int]:
        return asdict(self)


def confusion(labels: Sequence[bool], flags: Sequence[bool]) -> Confusion:
    """Confusion counts of judge ``flags`` against true ``labels`` (same order)."""
    if len(labels) != len(flags):
        raise ValueError(f"confusion: {len(labels)} labels for {len(flags)} verdicts")
    pairs = [(bool(y), bool(f)) for y, f in zip(labels, flags)]
    return Confusion(tp=pairs.count((True, True)), fp=pairs.count((False, True)), tn=pairs.count((False, False)), fn=pairs.count((True, False)))


def wilson_interval(k: int, n: int, confidence: float = DEFAULT_CONFIDENCE) -> tuple[float | None, float | None]:
    """The Wilson score interval of ``k`` successes in ``n`` trials; (None, None) when ``n`` is 0.

    centre = (k + z²/2) / (n + z²), half-width = z / (n + z²) · sqrt(k (n - k) / n + z²/4), z the normal quantile.
    Unlike the Wald interval it stays inside [0, 1] and is not empty at k = 0 or k = n.
    """
    if n == 0:
        return None, None
    z = NormalDist().inv_cdf(1.0 - (1.0 - confidence) / 2.0)
    centre = (k + z * z / 2.0) / (n + z * z)
    half = z / (n + z * z) * math.sqrt(k * (n - k) / n + z * z / 4.0)
    return max(0.0, centre - half), min(1.0, centre + half)


def proportion(k: int, n: int, confidence: float = DEFAULT_CONFIDENCE) -> dict[str, Any]:
    """``{value, low, high, k, n}``: k / n with its Wilson interval (value None when n is 0)."""
    low, high = wilson_interval(k, n, confidence)
    return {"value": k / n if n else None, "low": low, "high": high, "k": k, "n": n}


def _balanced(codes: np.ndarray) -> np.ndarray:
    """Balanced accuracy of each row of ``codes`` (2 * label + flag); NaN where a class is absent."""
    tp, fn = (codes == 3).sum(-1), (codes == 2).sum(-1)
    tn, fp = (codes == 0).sum(-1), (codes == 1).sum(-1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return (tp / (tp + fn) + tn / (tn + fp)) / 2.0


def balanced_accuracy(labels: Sequence[bool], flags: Sequence[bool], **kwargs: Any) -> dict[str, Any]:
    """(sensitivity + specificity) / 2 with a percentile-bootstrap interval over the labelled images."""
    codes = [2 * int(bool(y)) + int(bool(f)) for y, f in zip(labels, flags)]
    if not any(c >= 2 for c in codes) or all(c >= 2 for c in codes):  # a class without images: undefined
        return {"value": None, "low": None, "high": None, "n": len(codes)}
    est = bootstrap_ci(codes, _balanced, **kwargs)
    return {"value": float(_balanced(np.asarray([codes]))[0]), "low": est.low, "high": est.high, "n": est.n}


def classification(labels: Sequence[bool], flags: Sequence[bool], *, confidence: float = DEFAULT_CONFIDENCE,
                   n_resamples: int = DEFAULT_RESAMPLES, seed: int = DEFAULT_SEED) -> dict[str, Any]:
    """A judge against labels: confusion counts, sensitivity, specificity, precision, accuracy (Wilson
    intervals) and balanced accuracy (bootstrap); each metric as ``{value, low, high, k, n}``."""
    c = confusion(labels, flags)
    ba = balanced_accuracy(labels, flags, confidence=confidence, n_resamples=n_resamples, seed=seed)
    return {
        "confusion": c.to_dict(), "n": c.n,
        "sensitivity": proportion(c.tp, c.tp + c.fn, confidence),
        "specificity": proportion(c.tn, c.tn + c.fp, confidence),
        "precision": proportion(c.tp, c.tp + c.fp, confidence),
        "accuracy": proportion(c.tp + c.tn, c.n, confidence),
        "balanced_accuracy": ba,
    }


def _kappa(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Cohen's kappa of each row pair of binary arrays; NaN where chance agreement is 1 (both constant alike)."""
    po = (a == b).mean(-1)
    pa, pb = a.mean(-1), b.mean(-1)
    pe = pa * pb + (1 - pa) * (1 - pb)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(pe < 1.0, (po - pe) / (1.0 - pe), np.nan)


def cohen_kappa(a: Sequence[bool], b: Sequence[bool]) -> float | None:
    """Cohen's kappa (p_o - p_e) / (1 - p_e) of two binary verdict lists; None when p_e is 1."""
    if len(a) != len(b):
        raise ValueError(f"cohen_kappa: {len(a)} verdicts against {len(b)}")
    if not a:
        return None
    k = float(_kappa(np.asarray(a, dtype=float), np.asarray(b, dtype=float)))
    return None if math.isnan(k) else k


def judge_agreement(a: Sequence[bool], b: Sequence[bool], **kwargs: Any) -> dict[str, Any]:
    """Kappa (with a percentile-bootstrap interval over images), raw agreement (Wilson) and the count of images."""
    same = sum(bool(x) == bool(y) for x, y in zip(a, b))
    out = {"kappa": cohen_kappa(a, b), "kappa_ci": [None, None], "agreement": same / len(a) if a else None,
           "agreement_ci": list(wilson_interval(same, len(a), kwargs.get("confidence", DEFAULT_CONFIDENCE))), "n": len(a)}
    if out["kappa"] is not None:
        codes = [2 * int(bool(x)) + int(bool(y)) for x, y in zip(a, b)]
        est = bootstrap_ci(codes, lambda c: _kappa(c // 2, c % 2), **kwargs)
        out["kappa_ci"] = [est.low, est.high]
    return out


def threshold_sweep(labels: Sequence[bool], scores: Sequence[float]) -> dict[str, Any]:
    """ROC and precision-recall points at every distinct score (a verdict is ``score >= threshold``), the
    threshold with the best balanced accuracy (the highest such threshold on ties) and the trapezoid ROC AUC."""
    y, s = np.asarray(labels, dtype=bool), np.asarray(scores, dtype=np.float64)
    n_pos, n_neg = int(y.sum()), int((~y).sum())
    points = []
    for t in sorted(set(s.tolist()), reverse=True):
        flag = s >= t
        tp, fp = int((flag & y).sum()), int((flag & ~y).sum())
        tpr = tp / n_pos if n_pos else None
        fpr = fp / n_neg if n_neg else None
        ba = (tpr + 1.0 - fpr) / 2.0 if tpr is not None and fpr is not None else None
        points.append({"threshold": t, "tpr": tpr, "fpr": fpr, "precision": tp / (tp + fp) if tp + fp else None, "balanced_accuracy": ba})
    scored = [p for p in points if p["balanced_accuracy"] is not None]
    best = max(scored, key=lambda p: round(p["balanced_accuracy"], 12)) if scored else None  # rounded: float ties are ties
    out: dict[str, Any] = {"points": points, "n_positive": n_pos, "n_negative": n_neg, "best": best, "roc_auc": _auc(points, n_pos, n_neg)}
    if min(n_pos, n_neg) < SMALL_SWEEP:
        out["caveat"] = (f"best threshold chosen on {n_pos} positive and {n_neg} negative images (fewer than {SMALL_SWEEP} of a "
                         "class): it fits these images and will do worse on new ones")
    return out


def _auc(points: list[dict[str, Any]], n_pos: int, n_neg: int) -> float | None:
    if not (n_pos and n_neg):
        return None
    xs = [0.0] + [p["fpr"] for p in points]
    ys = [0.0] + [p["tpr"] for p in points]
    return float(np.trapezoid(ys, xs)) if hasattr(np, "trapezoid") else float(np.trapz(ys, xs))


def rogan_gladen(p: float, sensitivity: float, specificity: float) -> float | None:
    """The prevalence corrected for the judge's errors, (p + spec - 1) / (sens + spec - 1), clipped to [0, 1];
    None when sens + spec <= 1 (a judge no better than chance carries no information to correct with)."""
    youden = sensitivity + specificity - 1.0
    if youden <= 0.0:
        return None
    return min(1.0, max(0.0, (p + specificity - 1.0) / youden))


def _audit_draws(counts: Confusion, rng: np.random.Generator, n_resamples: int) -> tuple[np.ndarray, np.ndarray]:
    """Sensitivity and specificity of ``n_resamples`` resamples of the audit's labelled images (NaN when a
    resample has no image of a class)."""
    cells = rng.multinomial(counts.n, np.array([counts.tp, counts.fn, counts.tn, counts.fp]) / counts.n, size=n_resamples)
    with np.errstate(invalid="ignore", divide="ignore"):
        return cells[:, 0] / (cells[:, 0] + cells[:, 1]), cells[:, 2] / (cells[:, 2] + cells[:, 3])


def corrected_rate(
    flags: Sequence[bool], counts: Confusion, clusters: Sequence[Hashable] | None = None, *, n_resamples: int = DEFAULT_RESAMPLES,
    confidence: float = DEFAULT_CONFIDENCE, seed: int = DEFAULT_SEED,
) -> dict[str, Any]:
    """The Rogan-Gladen corrected share of ``flags`` given an audit's confusion ``counts`` for the same judge.

    Each bootstrap resample draws the judged images (whole ``clusters``, i.e. prompts, when given) and, apart,
    the audit's labelled images, recomputes p, sensitivity and specificity, and corrects; resamples where the
    correction is undefined (sens + spec <= 1) are left out and counted in ``undefined_resamples``.
    """
    sens = counts.tp / (counts.tp + counts.fn) if counts.tp + counts.fn else None
    spec = counts.tn / (counts.tn + counts.fp) if counts.tn + counts.fp else None
    x = np.asarray([float(bool(f)) for f in flags])
    out: dict[str, Any] = {"raw": float(x.mean()) if x.size else None, "sensitivity": sens, "specificity": spec, "n": int(x.size),
                           "n_audit": counts.n, "value": None, "low": None, "high": None, "method": "rogan-gladen"}
    if sens is None or spec is None or not x.size:
        return {**out, "note": "the audit needs labelled images of both classes"}
    out["youden"] = sens + spec - 1.0
    out["unstable"] = out["youden"] < UNSTABLE_YOUDEN
    out["value"] = rogan_gladen(out["raw"], sens, spec)
    rng = np.random.default_rng(seed)
    units = clusters if clusters is not None else list(range(x.size))
    p_draws, _ = cluster_bootstrap_means(x, units, rng, n_resamples)
    sens_d, spec_d = _audit_draws(counts, rng, n_resamples)
    youden = sens_d + spec_d - 1.0
    ok = np.isfinite(youden) & (youden > 0)
    dist = np.clip((p_draws[ok] + spec_d[ok] - 1.0) / youden[ok], 0.0, 1.0)
    out["undefined_resamples"] = int((~ok).sum())
    if dist.size:
        alpha = (1.0 - confidence) / 2.0
        out["low"], out["high"] = (float(v) for v in np.quantile(dist, [alpha, 1.0 - alpha]))
    return out


CARD_THRESHOLDS = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9)


def operating_points(labels: Sequence[bool], scores: Sequence[float], thresholds: Sequence[float] = CARD_THRESHOLDS) -> list[dict[str, Any]]:
    """Sensitivity, specificity and precision at fixed ``thresholds`` (``score >= t``): a sweep short enough for a card."""
    y, s = np.asarray(labels, dtype=bool), np.asarray(scores, dtype=np.float64)  # pragma: no mutate, confusion() takes bool() of each label; >= compares ints and floats alike
    out = []
    for t in thresholds:
        c = confusion(y.tolist(), (s >= t).tolist())
        out.append({"threshold": t, "sensitivity": c.tp / (c.tp + c.fn) if c.tp + c.fn else None,
                    "specificity": c.tn / (c.tn + c.fp) if c.tn + c.fp else None, "precision": c.tp / (c.tp + c.fp) if c.tp + c.fp else None})
    return out


def judge_audit(labels: Sequence[bool], scores: Sequence[float], threshold: float, **kw: Any) -> dict[str, Any]:
    """A binary detector on labelled data, as a card shows it: sensitivity, specificity, precision, accuracy and
    balanced accuracy (``{value, low, high}`` each), the confusion counts, the best threshold and fixed-threshold
    operating points of its sweep."""
    flags = [float(x) >= threshold for x in scores]
    stats = classification(labels, flags, **kw)
    sweep = threshold_sweep(labels, scores)
    return {**stats, "threshold": threshold, "best": sweep["best"], "roc_auc": sweep["roc_auc"], "caveat": sweep.get("caveat"),
            "operating_points": operating_points(labels, scores)}
