"""The statistics of dataigm, in one place: every rate, interval and agreement measure the evaluation, the audit
and detector training report.

* Intervals: :func:`bootstrap_ci` (percentile bootstrap, over images or whole prompts: the cluster bootstrap,
  :func:`cluster_bootstrap_means`), :func:`wilson_interval` / :func:`proportion`, and :func:`rate`, which chooses
  between them by :data:`MIN_BOOTSTRAP_PROMPTS` (see its docstring and docs/judging.md, "Intervals");
  :func:`macro_accuracy` (UnlearnCanvas' IRA/CRA).
* A judge against labels: :class:`Confusion` / :func:`confusion`, :func:`classification` (sensitivity,
  specificity, precision with Wilson intervals; balanced accuracy by bootstrap), :func:`threshold_sweep`,
  :func:`operating_points`, :func:`judge_audit`.
* Detectors on validation data (multi-class): :func:`confusion_matrix`, :func:`balanced_accuracy`,
  :func:`roc_curve`, :func:`roc_auc`, :func:`select_threshold` (the rules of :data:`THRESHOLD_RULES`).
* Judges against each other: :func:`cohen_kappa`, :func:`judge_agreement`.
* Rates corrected for a judge's errors: :func:`rogan_gladen`, :func:`corrected_rate` (Rogan and Gladen, 1978):
  (p + spec - 1) / (sens + spec - 1), clipped to [0, 1]; near a Youden index of 0 it is unstable
  (:data:`UNSTABLE_YOUDEN`).

Example::

    >>> from dataigm.evaluation.stats import rate
    >>> est = rate([True, False, False, False, False], clusters=[("p", 0)] * 5)
    >>> est.interval, round(est.low, 3), round(est.high, 3)
    ('wilson', 0.036, 0.624)
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from statistics import NormalDist
from typing import Any, Callable, Hashable, Iterable, Sequence

import numpy as np

from dataigm.core.errors import InputError

DEFAULT_RESAMPLES = 1000
DEFAULT_CONFIDENCE = 0.95
DEFAULT_SEED = 0


MIN_BOOTSTRAP_PROMPTS = 10  # fewer prompts than this: a rate's interval is Wilson's over images (see rate())
INTERVAL_METHODS = {
    "bootstrap-prompts": "percentile bootstrap over prompts (cluster bootstrap)",
    "bootstrap-images": "percentile bootstrap over images (assumes independent images)",
    "wilson-images": "Wilson score interval over images (assumes independent images)",
}


@dataclass(frozen=True)
class Estimate:
    """A statistic over ``n`` items with an interval [low, high] made by ``interval`` (:data:`INTERVAL_METHODS`).

    ``clusters`` is the number of prompts behind the interval when images were grouped by prompt (None when each
    image was its own unit). :meth:`to_dict` also gives them as ``n_images`` and ``n_prompts``.
    """

    value: float | None
    low: float | None
    high: float | None
    n: int
    clusters: int | None = None
    interval: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "n_images": self.n, "n_prompts": self.clusters}


def _check(n_resamples: int, confidence: float) -> None:
    if not 0.0 < confidence < 1.0:
        raise InputError(f"confidence must be in (0, 1), got {confidence}")
    if n_resamples < 1:
        raise InputError(f"n_resamples must be >= 1, got {n_resamples}")


def cluster_index(clusters: Sequence[Hashable]) -> tuple[np.ndarray, int]:
    """Dense ids 0..K-1 of ``clusters`` (in order of first appearance) and K."""
    ids: dict[Hashable, int] = {}
    dense = np.fromiter((ids.setdefault(c, len(ids)) for c in clusters), dtype=np.int64, count=len(clusters))  # pragma: no mutate, count only preallocates
    return dense, len(ids)


def bootstrap_ci(
    values: Sequence[float], statistic: Callable[[np.ndarray], np.ndarray] | None = None, *, clusters: Sequence[Hashable] | None = None,
    n_resamples: int = DEFAULT_RESAMPLES, confidence: float = DEFAULT_CONFIDENCE, seed: int = DEFAULT_SEED,
) -> Estimate:
    """Percentile bootstrap of the mean (or ``statistic``) over ``values``, with a fixed seed.

    Without ``clusters`` every value is resampled on its own: ``rng.integers(0, n, (n_resamples, n))`` draws the
    resamples and ``statistic`` maps an array (n_resamples, n) to (n_resamples,). With ``clusters`` (one label per
    value, e.g. the prompt of each image) whole clusters are resampled: ``rng.integers(0, K, (n_resamples, K))``
    draws K of the K clusters, and each resample's statistic is the mean over every value of the drawn clusters
    (the cluster bootstrap; several seeds of one prompt are not independent, so image-level resampling gives
    intervals that are too narrow). ``statistic`` is not supported with clusters; resamples where it is NaN
    (undefined, e.g. a ratio whose class was not drawn) are left out of the interval. An empty input gives ``None``.
    """
    _check(n_resamples, confidence)
    x = np.asarray(values, dtype=np.float64)  # pragma: no mutate, the means below are float64 for ints and bools too
    if x.size == 0:
        return Estimate(None, None, None, 0, 0 if clusters is not None else None)
    rng = np.random.default_rng(seed)
    alpha = (1.0 - confidence) / 2.0
    if clusters is None:
        stat = statistic or (lambda a: a.mean(axis=-1))  # pragma: no mutate, 2-D: axis -1 is axis 1
        dist = stat(x[rng.integers(0, x.size, size=(n_resamples, x.size))])  # pragma: no mutate, integers(n) is integers(0, n)
        low, high = np.nanquantile(dist, [alpha, 1.0 - alpha])  # a statistic may be undefined (NaN) on some resamples
        return Estimate(float(stat(x[None, :])[0]), float(low), float(high), int(x.size), None, "bootstrap-images")
    if statistic is not None:
        raise InputError("bootstrap_ci: a custom statistic cannot be combined with clusters")
    dist, k = cluster_bootstrap_means(x, clusters, rng, n_resamples)
    low, high = np.quantile(dist, [alpha, 1.0 - alpha])
    return Estimate(float(x.mean()), float(low), float(high), int(x.size), k, "bootstrap-prompts")


def cluster_bootstrap_means(values: np.ndarray, clusters: Sequence[Hashable], rng: np.random.Generator, n_resamples: int) -> tuple[np.ndarray, int]:
    """The means of ``n_resamples`` cluster-bootstrap resamples of ``values`` (whole clusters drawn with
    replacement, K of K), and K. The distribution :func:`bootstrap_ci` takes its interval from; callers that
    combine it with other resampled quantities (:mod:`dataigm.evaluation.agreement`) use it directly."""
    x = np.asarray(values, dtype=np.float64)  # pragma: no mutate, float64 already for the callers
    if len(clusters) != x.size:
        raise InputError(f"bootstrap_ci: {len(clusters)} cluster labels for {x.size} values")
    dense, k = cluster_index(clusters)
    # dense ids cover 0..k-1, so minlength changes nothing; astype(None) is float64 too
    sums, counts = np.bincount(dense, weights=x, minlength=k), np.bincount(dense, minlength=k).astype(np.float64)  # pragma: no mutate
    idx = rng.integers(0, k, size=(n_resamples, k))  # pragma: no mutate, integers(k) is integers(0, k)
    return sums[idx].sum(axis=1) / counts[idx].sum(axis=1), k


def macro_accuracy(
    classes: Sequence[Hashable], correct: Sequence[bool], clusters: Sequence[Hashable] | None = None, *,
    n_resamples: int = DEFAULT_RESAMPLES, confidence: float = DEFAULT_CONFIDENCE, seed: int = DEFAULT_SEED,
) -> Estimate:
    """Per-class accuracy averaged over classes (UnlearnCanvas' IRA/CRA), with a (cluster) bootstrap interval.

    UnlearnCanvas ``machine_unlearning/evaluation/quantitative/accuracy.py`` adds ``1 / (images of the class)`` to
    ``acc[class]`` for each correct image; IRA and CRA average ``acc`` over the retained classes. A class absent
    from a bootstrap resample is left out of that resample's average. ``n`` counts images; empty input gives None.
    """
    _check(n_resamples, confidence)
    if len(classes) != len(correct):
        raise InputError(f"macro_accuracy: {len(classes)} classes for {len(correct)} verdicts")
    if not classes:
        return Estimate(None, None, None, 0, 0 if clusters is not None else None)
    cls, n_cls = cluster_index(classes)
    units, k = cluster_index(clusters) if clusters is not None else (np.arange(len(classes)), len(classes))
    ok = np.zeros((k, n_cls))
    tot = np.zeros((k, n_cls))
    np.add.at(ok, (units, cls), np.asarray(correct, dtype=np.float64))  # pragma: no mutate, booleans add into floats alike
    np.add.at(tot, (units, cls), 1.0)
    value = float(np.mean(ok.sum(0) / tot.sum(0)))
    idx = np.random.default_rng(seed).integers(0, k, size=(n_resamples, k))  # pragma: no mutate, integers(k) is integers(0, k)
    ok_r, tot_r = ok[idx].sum(axis=1), tot[idx].sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):  # pragma: no mutate, silences warnings only
        dist = np.nanmean(np.where(tot_r > 0, ok_r / tot_r, np.nan), axis=1)  # pragma: no mutate, 0 / 0 is NaN already
    alpha = (1.0 - confidence) / 2.0
    low, high = np.quantile(dist, [alpha, 1.0 - alpha])
    return Estimate(value, float(low), float(high), len(classes), k if clusters is not None else None,
                    "bootstrap-prompts" if clusters is not None else "bootstrap-images")


def rate(flags: Iterable[bool], clusters: Sequence[Hashable] | None = None, **kwargs: Any) -> Estimate:
    """The share of true ``flags`` with its interval, by this rule (docs/judging.md, "Intervals"):

    * ``clusters`` (the prompt of each image) with at least :data:`MIN_BOOTSTRAP_PROMPTS` prompts: the percentile
      bootstrap over prompts (:func:`bootstrap_ci`), since the seeds of one prompt are not independent images;
    * fewer prompts: the bootstrap has too few units to resample (one prompt gives a single point), so the Wilson
      score interval over images, which assumes independent images;
    * no ``clusters``: the percentile bootstrap over images;
    * and whenever the bootstrap collapses to a point around a rate strictly between 0 and 1 (every prompt at the
      same rate), the Wilson interval over images instead: no interval has zero width unless the rate is 0 or 1.

    ``kwargs``: ``n_resamples``, ``confidence``, ``seed``. Example: ``rate([1, 0, 0, 0, 0], clusters=["p"] * 5)``
    is 0.2 with the Wilson interval [0.036, 0.624].
    """
    x = [float(bool(f)) for f in flags]
    n_prompts = len(set(clusters)) if clusters is not None else None
    if n_prompts is not None and x and n_prompts < MIN_BOOTSTRAP_PROMPTS:
        return wilson_estimate(x, n_prompts, kwargs.get("confidence", DEFAULT_CONFIDENCE))
    est = bootstrap_ci(x, clusters=clusters, **kwargs)
    if est.value is not None and 0.0 < est.value < 1.0 and est.low == est.high:
        return wilson_estimate(x, n_prompts, kwargs.get("confidence", DEFAULT_CONFIDENCE))
    return est


def wilson_estimate(flags: Sequence[float], n_prompts: int | None, confidence: float = DEFAULT_CONFIDENCE) -> Estimate:
    """The share of ``flags`` (0/1) with the Wilson score interval over images, recording ``n_prompts``."""
    k, n = int(sum(flags)), len(flags)
    low, high = wilson_interval(k, n, confidence)
    return Estimate(k / n if n else None, low, high, n, n_prompts, "wilson-images")


def mean_interval(values: Sequence[float], clusters: Sequence[Hashable] | None = None, **kwargs: Any) -> Estimate:
    """The mean of ``values`` (LPIPS, CLIP scores, CSDR) with a percentile bootstrap: over prompts when ``clusters``
    holds at least :data:`MIN_BOOTSTRAP_PROMPTS` of them, else over images (which assumes independent images)."""
    n_prompts = len(set(clusters)) if clusters is not None else None
    if n_prompts is not None and n_prompts < MIN_BOOTSTRAP_PROMPTS:
        est = bootstrap_ci(values, **kwargs)
        return Estimate(est.value, est.low, est.high, est.n, n_prompts, est.interval)
    return bootstrap_ci(values, clusters=clusters, **kwargs)


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


def balanced_accuracy_ci(labels: Sequence[bool], flags: Sequence[bool], **kwargs: Any) -> dict[str, Any]:
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
    ba = balanced_accuracy_ci(labels, flags, confidence=confidence, n_resamples=n_resamples, seed=seed)
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
    out: dict[str, Any] = {"points": points, "n_positive": n_pos, "n_negative": n_neg, "best": best, "roc_auc": (roc_auc(s, y) if n_pos and n_neg else None)}
    if min(n_pos, n_neg) < SMALL_SWEEP:
        out["caveat"] = (f"best threshold chosen on {n_pos} positive and {n_neg} negative images (fewer than {SMALL_SWEEP} of a "
                         "class): it fits these images and will do worse on new ones")
    return out


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


# --- detectors on validation data (shared with dataigm.train) ----------------------------------------------------
THRESHOLD_RULES: tuple[str, ...] = ("max_balanced_accuracy", "target_fpr")  # dataigm.train.recipe.ThresholdRule


def confusion_matrix(labels: np.ndarray, preds: np.ndarray, n_classes: int) -> np.ndarray:
    """``cm[true, pred]`` counts."""
    cm = np.zeros((n_classes, n_classes), dtype=np.int64)
    np.add.at(cm, (np.asarray(labels, dtype=np.int64), np.asarray(preds, dtype=np.int64)), 1)
    return cm


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


