"""How evaluation groups images: the prompt of an image (the bootstrap's cluster), its concept, subcategory,
domain and retain class, and the argument rules of the bootstrap. Every branch of each rule gets an input that
takes it, with the exact answer."""

from __future__ import annotations

import numpy as np
import pytest

from dataigm.evaluation.metrics import (
    aggregate, attack_success_rate, bootstrap_ci, domain_of, expected_retain_label, group_key, grouped,
    in_cross_domain, macro_accuracy, prompt_key, retain_class, retain_correct,
)
from dataigm.evaluation.stats import rate, wilson_interval


def test_prompt_key_prefers_the_prompt_index_then_the_pair_then_the_image() -> None:
    assert prompt_key({"prompt_index": 3, "concept": "church", "label_name": "gothic", "pair_id": "p"}) == ("prompt", "church", "gothic", 3)
    assert prompt_key({"prompt_index": "2"}) == ("prompt", "", "", 2)  # read back from json as text; unknown fields ""
    assert prompt_key({"prompt_index": 0, "concept": None}, "x") == ("prompt", "", "", 0)  # index 0 is a prompt
    assert prompt_key({"prompt_index": -1, "pair_id": "p7"}, "x") == ("pair", "p7")  # -1: no prompt index
    assert prompt_key({"prompt_index": None, "pair_id": "p7"}) == ("pair", "p7")
    assert prompt_key({"pair_id": ""}, "img9") == ("image", "img9")
    assert prompt_key({}) == ("image", "")


def test_concept_subcategory_domain_and_retain_class_fall_back_in_order() -> None:
    assert group_key({"concept": "church", "subcategory": "gothic"}) == ("church", "gothic")
    assert group_key({"concept": None, "subcategory": None}) == ("", "")
    assert domain_of({"taxonomy": "style", "category": "object"}) == "style"
    assert domain_of({"taxonomy": "", "category": "object"}) == "object"
    assert domain_of({}) == ""
    assert retain_class({"label_name": "a", "label": "b", "concept": "c"}) == "a"
    assert retain_class({"label_name": "", "label": "b", "concept": "c"}) == "b"
    assert retain_class({"label": None, "concept": "c"}) == "c"
    assert retain_class({}) == ""


def test_expected_retain_label_is_a_known_label_other_than_the_target() -> None:
    labels = ["church", "parachute", "garden"]
    assert expected_retain_label({"label_name": "parachute", "label": "garden"}, labels, "church") == "parachute"
    assert expected_retain_label({"label_name": "tree", "label": "garden"}, labels, "church") == "garden"  # unknown: next field
    assert expected_retain_label({"label_name": "church", "concept": "garden"}, labels, "church") == "garden"  # target skipped
    assert expected_retain_label({"label_name": 1, "concept": "parachute"}, labels, "church") == "parachute"  # not a name
    assert expected_retain_label({"label_name": "tree"}, labels, "church") is None
    # three classes: the image must get its own class; two classes (binary): anything but the target is right
    assert retain_correct({"label_name": "garden"}, "garden", True, labels, "church")
    assert not retain_correct({"label_name": "garden"}, "parachute", False, labels, "church")
    assert retain_correct({"label_name": "garden"}, "garden", False, ["church", "garden"], "church")
    assert not retain_correct({"label_name": "garden"}, "garden", True, ["church", "garden"], "church")
    assert retain_correct({"label_name": "tree"}, "church", False, labels, "church")  # unknown class: not the target
    assert not retain_correct({"label_name": "church"}, "church", True, labels, "church")  # its label is the target


def test_grouped_names_every_group_and_counts_prompts() -> None:
    items = [
        ({"concept": "church", "subcategory": "gothic", "prompt_index": 0, "lang": "de"}, True),
        ({"concept": "church", "subcategory": "gothic", "prompt_index": 0, "lang": "de"}, False),
        ({"concept": "church", "prompt_index": 1, "lang": None}, True),
        ({"subcategory": "orphan", "prompt_index": 2}, False),  # a subcategory without a concept makes no group
        ({"seed": 1}, True), ({"seed": 2}, False),  # no prompt known: each image is its own cluster
    ]
    kwargs = {"n_resamples": 50, "seed": 3, "confidence": 0.8}
    g = grouped(items, group_by=("lang",), **kwargs)
    assert sorted(g) == ["all", "church", "church/gothic", "lang=", "lang=de"]
    assert {k: (v["value"], v["n"], v["clusters"]) for k, v in g.items()} == {
        "all": (0.5, 6, 5), "church": (pytest.approx(2 / 3), 3, 2), "church/gothic": (0.5, 2, 1),
        "lang=": (0.5, 4, 4), "lang=de": (0.5, 2, 1)}
    clusters = [("prompt", "church", "", 0)] * 2 + [("prompt", "church", "", 1), ("prompt", "", "", 2), ("image", "4"), ("image", "5")]
    assert g["all"] == rate([f for _, f in items], clusters=clusters, **kwargs).to_dict()  # with the kwargs
    # 5 prompts (< 10): the Wilson interval over images at the 80% level, not a bootstrap over 5 units
    assert (g["all"]["interval"], g["all"]["n_images"], g["all"]["n_prompts"]) == ("wilson-images", 6, 5)
    assert (g["all"]["low"], g["all"]["high"]) == pytest.approx(wilson_interval(3, 6, 0.8))
    by_image = grouped(items, by_prompt=False, n_resamples=50)
    assert (by_image["all"]["clusters"], by_image["church/gothic"]["clusters"]) == (6, 2)


def test_in_cross_domain_counts_unknown_domains_in_the_pooled_accuracy_only() -> None:
    items = [
        ({"taxonomy": "style", "label_name": "Monet", "prompt_index": 0}, True),
        ({"taxonomy": "style", "label_name": "Monet", "prompt_index": 0}, True),
        ({"taxonomy": "style", "label_name": "Picasso", "prompt_index": 1}, False),
        ({"taxonomy": "object", "label_name": "dog", "prompt_index": 2}, True),
        ({"label_name": "tree", "prompt_index": 3}, False),  # no domain
        ({"taxonomy": "object", "label_name": "dog"}, False), ({"taxonomy": "object", "label_name": "dog"}, True),  # no prompt
    ]
    kwargs = {"n_resamples": 50, "seed": 3, "confidence": 0.8}
    res = in_cross_domain(items, "style", **kwargs)
    assert res["forget_domain"] == "style"
    assert (res["pooled"]["value"], res["pooled"]["n"], res["pooled"]["clusters"]) == (pytest.approx(4 / 7), 7, 6)
    assert (res["cra"]["value"], res["cra"]["n"], res["cra"]["clusters"], res["cra"]["classes"]) == (pytest.approx(2 / 3), 3, 3, ["dog"])
    cra = macro_accuracy(["dog"] * 3, [True, False, True], [("prompt", "", "dog", 2), ("image", "5"), ("image", "6")], **kwargs)
    assert {k: res["cra"][k] for k in ("low", "high")} == {"low": cra.low, "high": cra.high}
    clusters = [("prompt", "", "Monet", 0)] * 2 + [("prompt", "", "Picasso", 1), ("prompt", "", "dog", 2), ("prompt", "", "tree", 3),
                                                  ("image", "5"), ("image", "6")]
    assert res["pooled"] == rate([ok for _, ok in items], clusters=clusters, **kwargs).to_dict()
    assert res["pooled"]["interval"] == "wilson-images" and (res["pooled"]["low"], res["pooled"]["high"]) == pytest.approx(wilson_interval(4, 7, 0.8))
    items = items[:5]
    res = in_cross_domain(items, "style", n_resamples=50)
    assert (res["ira"]["value"], res["ira"]["n"], res["ira"]["clusters"], res["ira"]["classes"]) == (0.5, 3, 2, ["Monet", "Picasso"])
    assert (res["cra"]["value"], res["cra"]["n"], res["cra"]["classes"]) == (1.0, 1, ["dog"])
    by_image = in_cross_domain(items, "style", by_prompt=False, n_resamples=50)
    assert (by_image["pooled"]["clusters"], by_image["ira"]["clusters"]) == (5, 3)
    unknown = in_cross_domain(items, "", n_resamples=50)  # no forgotten domain: pooled only
    assert unknown["ira"]["n"] == unknown["cra"]["n"] == 0 and unknown["ira"]["classes"] == [] and unknown["pooled"]["n"] == 5


def test_prompt_any_keeps_the_first_meta_and_asr_counts_prompts() -> None:
    items = [({"prompt_index": 0, "seed": 0}, False), ({"prompt_index": 0, "seed": 1}, True),
             ({"prompt_index": 1, "seed": 0}, False), ({"seed": 5}, True), ({"seed": 6}, False)]
    assert aggregate(items, "prompt-any") == [
        ({"prompt_index": 0, "seed": 0}, True), ({"prompt_index": 1, "seed": 0}, False), ({"seed": 5}, True), ({"seed": 6}, False)]
    assert aggregate(items) == items  # by image unless asked
    attacked = [({"prompt_index": 1, "seed": 0}, True), ({"prompt_index": 1, "seed": 1}, False)]  # any image counts
    kwargs = {"n_resamples": 50, "seed": 3, "confidence": 0.8}
    res = attack_success_rate(attacked, items, **kwargs)  # the two images without a prompt are two prompts
    assert (res["value"], res["n"], res["pre_attack_successes"], res["new_successes"], res["n_prompts"]) == (0.75, 4, 2, 1, 4)
    assert res["pre_asr"] == 0.5
    ci = bootstrap_ci([1.0, 1.0, 1.0, 0.0], **kwargs)
    assert (res["low"], res["high"]) == (ci.low, ci.high)
    with pytest.raises(ValueError, match=r"^2 attacked prompt\(s\) have no images in the no-attack set: \('image', 'a0'\), \('prompt', '', '', 9\)$"):
        attack_success_rate([({"seed": 1}, True), ({"prompt_index": 9}, True)], items)
    first_only = attack_success_rate([], [({"prompt_index": 0, "seed": 0}, True), ({"prompt_index": 0, "seed": 1}, False)], n_resamples=50)
    assert (first_only["value"], first_only["pre_attack_successes"], first_only["n_prompts"]) == (1.0, 1, 1)  # any seed
    none = attack_success_rate([], [], n_resamples=50)
    assert (none["value"], none["pre_asr"], none["n_prompts"], none["new_successes"]) == (None, None, 0, 0)


@pytest.mark.parametrize("fn", [lambda **kw: bootstrap_ci([1.0, 0.0], **kw), lambda **kw: macro_accuracy(["a", "b"], [True, False], **kw)])
def test_bootstrap_arguments_are_checked(fn) -> None:
    for confidence in (0.0, 1.0, -0.5):
        with pytest.raises(ValueError, match=r"confidence must be in \(0, 1\)"):
            fn(confidence=confidence)
    with pytest.raises(ValueError, match="n_resamples must be >= 1, got 0"):
        fn(n_resamples=0)
    est = fn(n_resamples=1, confidence=0.5)  # one resample: both ends are that resample's statistic
    assert est.low == est.high and est.n == 2


def test_a_custom_statistic_is_used_and_refused_with_clusters() -> None:
    values = np.array([1.0, 2.0, 3.0, 10.0])
    est = bootstrap_ci(values, statistic=lambda a: np.median(a, axis=-1), n_resamples=300, seed=1)
    medians = np.median(values[np.random.default_rng(1).integers(0, 4, size=(300, 4))], axis=1)
    assert est.value == 2.5 and (est.low, est.high) == pytest.approx(tuple(np.quantile(medians, [0.025, 0.975])))
    assert (est.n, est.clusters) == (4, None)
    with pytest.raises(ValueError, match="cannot be combined with clusters"):
        bootstrap_ci(values, statistic=np.mean, clusters=["a", "a", "b", "b"])
    assert bootstrap_ci([]).to_dict() == {"value": None, "low": None, "high": None, "n": 0, "clusters": None, "interval": "",
                                          "n_images": 0, "n_prompts": None}


def test_macro_accuracy_interval_is_the_reference_resampling() -> None:
    """The interval written out from the definition: resample clusters, per-class accuracy, mean over present classes."""
    classes = ["a", "a", "b", "b", "b", "c"]
    correct = [True, False, True, True, False, True]
    clusters = ["p0", "p0", "p1", "p2", "p2", "p3"]
    est = macro_accuracy(classes, correct, clusters, n_resamples=400, confidence=0.8, seed=7)
    units = {"p0": [(0, 1), (0, 0)], "p1": [(1, 1)], "p2": [(1, 1), (1, 0)], "p3": [(2, 1)]}
    order = list(units)
    dist = []
    for draw in np.random.default_rng(7).integers(0, 4, size=(400, 4)):
        ok, tot = np.zeros(3), np.zeros(3)
        for u in draw:
            for c, hit in units[order[u]]:
                ok[c] += hit
                tot[c] += 1
        dist.append(np.mean(ok[tot > 0] / tot[tot > 0]))
    assert est.value == pytest.approx((0.5 + 2 / 3 + 1.0) / 3)
    assert (est.low, est.high) == pytest.approx(tuple(np.quantile(dist, [0.1, 0.9])))
    assert (est.n, est.clusters) == (6, 4)


def test_the_concept_removed_prompt_of_an_image_by_what_it_knows() -> None:
    from dataigm.evaluation.csdr import CSDRUnit, concept_removed_prompt

    church = {"prompt": "a church by the sea", "category": "object", "concept": "church"}
    assert concept_removed_prompt(church) == "a house by the sea"  # the taxonomy's replacement
    assert concept_removed_prompt({**church, "role": ""}) == concept_removed_prompt({**church, "role": "positive"}) == "a house by the sea"
    assert concept_removed_prompt({**church, "role": "negative"}) is None  # only a positive has a concept to remove
    assert concept_removed_prompt({**church, "role": "negative", "pair_prompt": "x"}) is None
    assert concept_removed_prompt({**church, "prompt": ""}) is None
    assert concept_removed_prompt({**church, "pair_prompt": "a hill", "paired_negative": "a lake"}) == "a hill"  # named first
    assert concept_removed_prompt({**church, "paired_negative": "a lake"}) == "a lake"
    assert concept_removed_prompt({"prompt": "a church by the sea", "concept": "church"}) is None  # no category
    assert concept_removed_prompt({"prompt": "a church by the sea", "category": "object"}) is None  # no concept
    assert concept_removed_prompt({**church, "concept": "tench"}) is None  # unknown concept
    unit = CSDRUnit("p0", "a house", 2, 20.0, 25.0, 20.0, "c0")
    assert unit.to_dict() == {"key": "p0", "removed_prompt": "a house", "n_images": 2, "score_unlearned": 20.0,
                              "score_original": 25.0, "value": 20.0, "cluster": "c0"}
