"""The one statistics module: the interval rule of rate() (few prompts: Wilson over images; never a zero-width
interval around a rate strictly between 0 and 1), and the functions train/ and evaluation/ share."""

from __future__ import annotations

import numpy as np
import pytest

from dataigm.evaluation import stats
from dataigm.evaluation.stats import MIN_BOOTSTRAP_PROMPTS, mean_interval, rate, wilson_interval


def test_one_prompt_five_mixed_images_gets_a_wilson_interval() -> None:
    """The issue's case: the original's church rate on one prompt with five seeds, 1 of 5 flagged, read
    20.0% [20.0%, 20.0%]: the cluster bootstrap had one prompt to resample."""
    flags = [True, False, False, False, False]
    est = rate(flags, clusters=[("prompt", "church", "", 0)] * 5)
    assert est.value == 0.2 and (est.n, est.clusters, est.interval) == (5, 1, "wilson-images")
    assert (est.low, est.high) == pytest.approx((0.03622, 0.62447), abs=1e-5)  # Wilson 95%: 1 of 5
    assert est.low < 0.2 < est.high
    d = est.to_dict()
    assert (d["n_images"], d["n_prompts"], d["interval"]) == (5, 1, "wilson-images")
    # the old rule (bootstrap over prompts) collapses to the point: the case this rule replaces
    old = stats.bootstrap_ci([float(f) for f in flags], clusters=[0] * 5)
    assert old.low == old.high == 0.2


@pytest.mark.parametrize("n_prompts", [1, 2, 5, 9, 10, 12, 40])
def test_no_zero_width_interval_around_a_rate_strictly_between_0_and_1(n_prompts: int) -> None:
    # every prompt has exactly 1 of 5 images flagged: a bootstrap over prompts gives the same mean on every resample
    flags = [i % 5 == 0 for i in range(5 * n_prompts)]
    clusters = [i // 5 for i in range(5 * n_prompts)]
    est = rate(flags, clusters=clusters, n_resamples=200)
    assert est.value == pytest.approx(0.2) and est.high - est.low > 0.05 and est.low < 0.2 < est.high
    assert est.interval == "wilson-images" and est.clusters == n_prompts
    assert (est.low, est.high) == pytest.approx(wilson_interval(n_prompts, 5 * n_prompts))


def test_many_prompts_keep_the_cluster_bootstrap() -> None:
    rng = np.random.default_rng(3)
    flags = (rng.random(60) < np.repeat(rng.random(12), 5)).tolist()
    clusters = [i // 5 for i in range(60)]
    est = rate(flags, clusters=clusters, n_resamples=300, seed=4)
    assert est.interval == "bootstrap-prompts" and est.clusters == 12 >= MIN_BOOTSTRAP_PROMPTS
    ref = stats.bootstrap_ci([float(f) for f in flags], clusters=clusters, n_resamples=300, seed=4)
    assert (est.low, est.high) == (ref.low, ref.high)
    # 9 prompts: below the rule's minimum, Wilson over the 45 images
    few = rate(flags[:45], clusters=clusters[:45])
    assert few.interval == "wilson-images" and (few.low, few.high) == pytest.approx(wilson_interval(sum(flags[:45]), 45))


def test_rates_of_0_and_1_may_have_zero_width_only_under_the_bootstrap_and_wilson_stays_inside() -> None:
    all_clean = rate([False] * 5, clusters=[0] * 5)
    assert all_clean.value == 0.0 and all_clean.low == 0.0 and 0.4 < all_clean.high < 0.45  # Wilson: [0, 0.434]
    assert rate([], clusters=[]).value is None


def test_mean_interval_resamples_images_with_few_prompts() -> None:
    values = [0.1, 0.2, 0.3, 0.4, 0.5]
    few = mean_interval(values, clusters=[0] * 5, n_resamples=500, seed=2)
    assert few.interval == "bootstrap-images" and few.clusters == 1 and few.low < few.value < few.high
    assert (few.low, few.high) == (stats.bootstrap_ci(values, n_resamples=500, seed=2).low, stats.bootstrap_ci(values, n_resamples=500, seed=2).high)


@pytest.mark.parametrize("n_prompts", [9, 10, 12])
def test_mean_interval_bootstraps_prompts_from_ten_on_and_keeps_its_settings(n_prompts: int) -> None:
    """At the boundary and on both sides: 9 prompts resample images, 10 and 12 resample prompts; the seed, resamples
    and confidence reach the bootstrap on either path (30 distinct values: two settings cannot meet by chance)."""
    rng = np.random.default_rng(5)
    values = rng.random(3 * n_prompts).tolist()
    clusters = [f"p{i // 3}" for i in range(3 * n_prompts)]
    settings = {"n_resamples": 300, "seed": 7, "confidence": 0.9}
    est = mean_interval(values, clusters=clusters, **settings)
    by_prompt = n_prompts >= MIN_BOOTSTRAP_PROMPTS
    ref = stats.bootstrap_ci(values, clusters=clusters if by_prompt else None, **settings)
    assert est.interval == ("bootstrap-prompts" if by_prompt else "bootstrap-images")
    assert (est.value, est.low, est.high, est.n, est.clusters) == (ref.value, ref.low, ref.high, 3 * n_prompts, n_prompts)
    default = stats.bootstrap_ci(values, clusters=clusters if by_prompt else None)
    assert (est.low, est.high) != (default.low, default.high)


def test_mean_interval_without_prompts_resamples_images() -> None:
    values = np.random.default_rng(6).random(25).tolist()
    est, ref = mean_interval(values, seed=3), stats.bootstrap_ci(values, seed=3)
    assert (est.value, est.low, est.high, est.clusters, est.interval) == (ref.value, ref.low, ref.high, None, "bootstrap-images")


def test_train_metrics_and_agreement_use_the_stats_module() -> None:
    """No second copy: the old import paths hand out the stats module's own functions."""
    from dataigm.evaluation import agreement
    from dataigm.train import metrics as train_metrics
    from dataigm.train.recipe import THRESHOLD_RULES

    for name in ("confusion_matrix", "balanced_accuracy", "roc_curve", "roc_auc", "select_threshold"):
        assert getattr(train_metrics, name) is getattr(stats, name)
    for name in ("wilson_interval", "cohen_kappa", "rogan_gladen", "threshold_sweep", "corrected_rate", "Confusion"):
        assert getattr(agreement, name) is getattr(stats, name)
    assert agreement.balanced_accuracy is stats.balanced_accuracy_ci
    assert stats.THRESHOLD_RULES == THRESHOLD_RULES


def test_threshold_sweep_auc_is_the_rank_auc() -> None:
    labels = [True, True, False, True, False, False, True, False]
    scores = [0.9, 0.8, 0.8, 0.6, 0.5, 0.3, 0.3, 0.1]  # ties across classes count one half
    sweep = stats.threshold_sweep(labels, scores)
    pairs = [(p, n) for p, yp in zip(scores, labels) if yp for n, yn in zip(scores, labels) if not yn]
    expected = sum(1.0 if p > n else 0.5 if p == n else 0.0 for p, n in pairs) / len(pairs)
    assert sweep["roc_auc"] == pytest.approx(expected) == pytest.approx(0.75)


def test_eval_config_splits_into_parts_that_cover_each_field_once() -> None:
    """EvalConfig stays the one flat spelling; each part of the evaluation gets only its own fields."""
    from dataclasses import fields

    from dataigm.evaluation.evaluate import EvalConfig
    from dataigm.evaluation.settings import PARTS, StatsSettings

    names = [f.name for part in PARTS.values() for f in fields(part)]
    assert sorted(names) == sorted(f.name for f in fields(EvalConfig)) and len(names) == len(set(names))
    # the same default and type in the flat spelling and in its part (csdr_prompts once drifted: "pair" beside "igmu")
    flat = {f.name: f for f in fields(EvalConfig)}
    for part in PARTS.values():
        for f in fields(part):
            assert (flat[f.name].default, flat[f.name].default_factory, str(flat[f.name].type)) == (f.default, f.default_factory, str(f.type)), f.name
    cfg = EvalConfig(detector="nudenet", more_detectors=("opennsfw",), n_resamples=7, group_by=("lang",), batch_size=3, lpips_net=None)
    assert cfg.stats == StatsSettings(group_by=("lang",), n_resamples=7) and cfg.stats.kwargs() == {"n_resamples": 7, "confidence": 0.95, "seed": 0}
    assert (cfg.run.batch_size, cfg.metrics.lpips_net, cfg.judging.specs) == (3, None, ["nudenet", "opennsfw"])
    with pytest.raises(ValueError, match="bootstrap_unit 'cluster' not in"):
        EvalConfig(detector="nudenet", bootstrap_unit="cluster").check()
    with pytest.raises(ValueError, match="validity_level"):
        EvalConfig(detector="nudenet", validity_level=2.0).check()


def test_rate_bootstraps_prompts_at_exactly_ten_and_passes_the_confidence_to_wilson_below() -> None:
    rng = np.random.default_rng(8)
    flags = (rng.random(40) < np.repeat(rng.random(10), 4)).tolist()
    clusters = [i // 4 for i in range(40)]
    at_ten = rate(flags, clusters=clusters, n_resamples=300, seed=1)
    ref = stats.bootstrap_ci([float(f) for f in flags], clusters=clusters, n_resamples=300, seed=1)
    assert at_ten.interval == "bootstrap-prompts" and (at_ten.low, at_ten.high, at_ten.clusters) == (ref.low, ref.high, 10)
    nine = rate(flags[:36], clusters=clusters[:36], confidence=0.8)
    assert nine.interval == "wilson-images" and (nine.low, nine.high) == pytest.approx(wilson_interval(sum(flags[:36]), 36, 0.8))
    assert (nine.low, nine.high) != pytest.approx(wilson_interval(sum(flags[:36]), 36))


def test_a_rate_of_0_over_many_prompts_keeps_its_bootstrap_point() -> None:
    """Zero width is right at 0 and 1 (no resample can flag an image): only a rate strictly inside falls back to Wilson."""
    clean = rate([False] * 36, clusters=[i // 3 for i in range(36)], n_resamples=100)
    assert (clean.value, clean.low, clean.high, clean.interval) == (0.0, 0.0, 0.0, "bootstrap-prompts")
    flagged = rate([True] * 36, clusters=[i // 3 for i in range(36)], n_resamples=100)
    assert (flagged.value, flagged.low, flagged.high, flagged.interval) == (1.0, 1.0, 1.0, "bootstrap-prompts")


def test_wilson_estimate_of_no_images_has_no_value() -> None:
    assert stats.wilson_estimate([], 0).value is None
    assert stats.wilson_estimate([1.0, 0.0, 0.0, 0.0], 2).value == 0.25


def test_macro_accuracy_names_its_resampling_unit() -> None:
    classes, correct = ["a", "a", "b", "b", "c", "c"], [True, False, True, True, False, True]
    by_prompt = stats.macro_accuracy(classes, correct, clusters=[0, 0, 1, 1, 2, 2], n_resamples=50)
    by_image = stats.macro_accuracy(classes, correct, n_resamples=50)
    assert by_prompt.value == by_image.value == pytest.approx((0.5 + 1.0 + 0.5) / 3)
    assert (by_prompt.interval, by_prompt.clusters) == ("bootstrap-prompts", 3)
    assert (by_image.interval, by_image.clusters) == ("bootstrap-images", None)


@pytest.mark.parametrize("labels", [[True, True, True], [False, False, False]])
def test_roc_auc_of_one_class_is_undefined(labels: list[bool]) -> None:
    assert np.isnan(stats.roc_auc(np.array([0.2, 0.5, 0.9]), np.array(labels)))


def test_the_wilson_fallback_of_a_collapsed_bootstrap_keeps_the_confidence() -> None:
    # 12 prompts, each with 1 of 5 images flagged: every prompt resample has the mean 0.2, so Wilson over the images
    flags, clusters = [i % 5 == 0 for i in range(60)], [i // 5 for i in range(60)]
    est = rate(flags, clusters=clusters, n_resamples=100, confidence=0.8)
    assert est.interval == "wilson-images" and (est.low, est.high) == pytest.approx(wilson_interval(12, 60, 0.8))
    assert (est.low, est.high) != pytest.approx(wilson_interval(12, 60))
