"""Judge validity in eval reports and rates corrected with an audit, with real ImageNet judges (real
EfficientNet-Lite0 weights) on real photos: the original model's "forget images" are eight variants of a cat photo."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from audit_photos import write_eval_tree, write_labelled_photos

from dataigm.evaluation.agreement import Confusion, rogan_gladen
from dataigm.evaluation.validity import audit_counts, validity

TABBY, EGYPTIAN = "imagenet:281", "imagenet:285"


@pytest.fixture(scope="module")
def tree(tmp_path_factory) -> Path:
    """:func:`audit_photos.write_eval_tree`: the original's forget images are 8 cats, method m keeps 4 of them."""
    return write_eval_tree(tmp_path_factory.mktemp("validity"))


def _evaluate(tree: Path, spec: str, **cfg):
    from dataigm.evaluation.evaluate import EvalConfig, evaluate, open_set

    config = EvalConfig(detector=spec, lpips_net=None, fid_feature=None, n_resamples=200, workers=0, **cfg)
    methods = {"m": open_set(tree / "m" / "forget", tree / "m" / "retain")}
    return evaluate(methods, config, original=open_set(tree / "original" / "forget", tree / "original" / "retain", pair=tree / "original" / "pair"))


@pytest.mark.slow
def test_warning_when_the_judge_misses_the_originals_concept(tree, efficientnet_lite0_dir, tmp_path):
    from dataigm.report.write import write_report

    model = f"@local-dir:{efficientnet_lite0_dir}"
    # top-1 == tabby: one of the eight cat variants
    weak = _evaluate(tree, TABBY + model)
    assert weak["validity"]["original_forget"]["value"] == pytest.approx(1 / 8)
    assert len(weak["warnings"]) == 1 and "only 12% of the original model's forget images" in weak["warnings"][0]
    assert weak["validity"]["original_negatives"]["value"] == 0.0 and weak["methods"]["original"]["negative_positive_rate"]["n"] == 8
    paths = write_report(weak, tmp_path / "weak")
    assert "**Warning:** the judge sees the concept in only 12%" in paths["markdown"].read_text()
    assert json.loads(paths["json"].read_text())["warnings"] == weak["warnings"]
    # P(tabby) >= 0.02 finds every cat variant and none of the other photos: no warning
    strong = _evaluate(tree, TABBY + model, threshold=0.02)
    assert strong["validity"]["original_forget"]["value"] == 1.0 and strong["warnings"] == []
    assert strong["methods"]["m"]["forgetting"]["all"]["value"] == 0.5
    assert "Warning" not in write_report(strong, tmp_path / "strong")["markdown"].read_text()


@pytest.mark.slow
def test_reverse_warning_when_the_judge_flags_concept_removed_images(tree, efficientnet_lite0_dir):
    from dataigm.evaluation.evaluate import EvalConfig, evaluate, open_set

    cfg = EvalConfig(detector=f"{TABBY}@local-dir:{efficientnet_lite0_dir}", threshold=0.02, lpips_net=None, fid_feature=None, n_resamples=50, workers=0)
    # the "concept-removed" images still show the cat
    orig = open_set(tree / "original" / "forget", tree / "original" / "retain", pair=tree / "original" / "forget")
    rep = evaluate({"m": open_set(tree / "m" / "forget", tree / "m" / "retain")}, cfg, original=orig)
    assert rep["validity"]["original_negatives"]["value"] == 1.0
    assert [w for w in rep["warnings"] if "concept-removed" in w] and not [w for w in rep["warnings"] if "only" in w]


@pytest.mark.slow
def test_eval_audit_corrects_forgetting(tree, efficientnet_lite0_dir, tmp_path, capsys):
    from dataigm.cli import main

    spec = f"{EGYPTIAN}@local-dir:{efficientnet_lite0_dir}"
    photos = write_labelled_photos(tmp_path / "photos")
    assert main(["audit", str(photos), "--labels", str(photos), "--concept", "cat", "--judge", spec, "--json", "--bootstrap", "100"]) == 0
    (tmp_path / "audit.json").write_text(capsys.readouterr().out)
    audit = json.loads((tmp_path / "audit.json").read_text())["judges"][0]
    sens, spec_ = audit["sensitivity"], audit["specificity"]
    assert 0.0 < sens < 1.0 and spec_ == 1.0
    assert main(["eval", "--method", f"m={tree / 'm'}", "--original", str(tree / "original"), "--judge", spec, "--audit", str(tmp_path / "audit.json"),
                 "--lpips-net", "none", "--fid-features", "none", "--bootstrap", "100", "--workers", "0", "--out", str(tmp_path / "r"), "--json"]) == 0
    rep = json.loads(capsys.readouterr().out)
    m = rep["methods"]["m"]
    raw = m["forgetting"]["all"]["value"]
    fixed = m["forgetting_corrected"]["all"]
    assert fixed["raw"] == raw and fixed["value"] == pytest.approx(rogan_gladen(raw, sens, spec_))
    assert fixed["value"] > raw and fixed["low"] <= fixed["value"] <= fixed["high"] and not fixed["unstable"]
    assert m["correction"]["audit_scope"] == "all" and rep["definitions"]["forgetting_corrected"] == "forgetting_corrected/1"
    assert "forgetting corrected" in (tmp_path / "r" / "report.md").read_text()
    assert main(["eval", "--method", f"m={tree / 'm'}", "--judge", spec, "--threshold", "0.5", "--audit", str(tmp_path / "audit.json"),
                 "--lpips-net", "none", "--fid-features", "none", "--out", str(tmp_path / "r2")]) == 2  # audited at another threshold


def test_validity_levels_and_audit_groups():
    row = {"forgetting": {"all": {"value": 0.7, "n": 10}}, "forget_positive_rate": {"value": 0.7, "n": 10},
           "negative_positive_rate": {"value": 0.1, "n": 10}}
    assert len(validity({"original": row})[1]) == 1
    assert validity({"original": row}, level=0.6)[1] == []
    assert validity({"m": row})[0]["note"].startswith("no original")
    entry = {"confusion": {"tp": 5, "fn": 5, "tn": 9, "fp": 1}, "groups": {"method=esd": {"confusion": {"tp": 1, "fn": 0, "tn": 1, "fp": 0}}}}
    assert audit_counts(entry, "esd") == (Confusion(1, 0, 1, 0), "method=esd")
    assert audit_counts(entry, "ga") == (Confusion(5, 1, 9, 5), "all")


@pytest.mark.slow
def test_preservation_top1_as_esd_counts_it(efficientnet_lite0_dir, tmp_path):
    """Retain images of known ImageNet classes (espresso, tripod): correct when top-1 is their own class, rebuilt
    here from the judge's raw top-1 as ESD's table is from imageclassify.py's CSV."""
    from audit_photos import small, variants
    from real_weights import skimage_photo

    from dataigm.evaluation.evaluate import EvalConfig, evaluate, open_set
    from dataigm.judges.imagenet import imagenet_index, imagenet_name
    from dataigm.judges.judge import judge
    from dataigm.prompts import PromptRecord, write_prompt_jsonl

    classes = {"coffee": "967", "camera": "872"}  # espresso, tripod (ImageNet indices: the judge names Imagenette classes only)
    records = []
    for photo, label in classes.items():
        for im in list(variants(skimage_photo(photo)).values())[:4]:
            (tmp_path / "retain").mkdir(exist_ok=True)
            small(im).save(tmp_path / "retain" / f"{len(records)}_0.png")
            records.append(PromptRecord(f"a photo of a {label}", concept=label, category="object", label=label, index=len(records)))
    write_prompt_jsonl(records, tmp_path / "retain.jsonl")
    write_prompt_jsonl([PromptRecord("a cat", concept="cat", category="object", index=0)], tmp_path / "forget.jsonl")
    (tmp_path / "forget").mkdir()
    small(skimage_photo("chelsea")).save(tmp_path / "forget" / "0_0.png")
    spec = f"imagenet:281@local-dir:{efficientnet_lite0_dir}"
    cfg = EvalConfig(detector=spec, lpips_net=None, fid_feature=None, n_resamples=50, workers=0)
    sets = {"m": open_set(tmp_path / "forget", tmp_path / "retain", (tmp_path / "forget.jsonl", tmp_path / "retain.jsonl"))}
    rep = evaluate(sets, cfg)
    top1 = rep["methods"]["m"]["preservation_top1"]
    raw = {p.file: p.extra["top1"] for p in judge(tmp_path / "retain", spec, workers=0, progress=False).predictions}
    for label in classes.values():
        own = [raw[f"{i}_0.png"] == imagenet_index(label) for i, r in enumerate(records) if r.label == label]
        assert top1[f"class={imagenet_name(int(label))}"]["value"] == pytest.approx(sum(own) / len(own))
    assert top1["all"]["n"] == 8 and rep["methods"]["m"]["preservation"]["all"]["value"] == 1.0  # nothing was flagged as tabby
    assert top1["all"]["value"] < 1.0  # a tripod crop loses its class: only the own-class metric sees it


@pytest.mark.parametrize("forget, negatives, expected", [
    # (original's forget rate, its rate on concept-removed images) at level 0.8: both rules, between and at the levels
    (0.5, 0.5, ["only 50%", "flags 50%"]),   # between the two levels: both warnings
    (0.8, 0.2, []),                           # exactly at each level: no warning (< level, > 1 - level)
    (0.79, 0.2, ["only 79%"]),
    (0.8, 0.21, ["flags 21%"]),
    (0.95, 0.05, []),
    (0.3, 0.7, ["only 30%", "flags 70%"]),
])
def test_validity_between_and_at_the_levels(forget, negatives, expected):
    row = {"forgetting": {"all": {"value": forget, "n": 20}}, "forget_positive_rate": {"value": forget, "n": 20},
           "negative_positive_rate": {"value": negatives, "n": 20}}
    checks, warnings = validity({"original": row})
    assert len(warnings) == len(expected)
    for w, part in zip(warnings, expected):
        assert part in w
    assert checks["original_forget"]["value"] == forget and checks["original_negatives"]["value"] == negatives


# --- fast: every field of the validity checks, the audit file, its entry and the corrected groups ------------------
def _row(forget: float | None, negatives: float | None = None, per_image: float | None = None) -> dict:
    row = {"forgetting": {"all": {"value": forget, "n": 10}}, "images": [{"positive": True}]}
    if per_image is not None:
        row["forget_positive_rate"] = {"value": per_image, "n": 12}
    if negatives is not None:
        row["negative_positive_rate"] = {"value": negatives, "n": 9}
    return row


def test_validity_checks_every_field_and_reads_the_per_image_rate_first():
    checks, warnings = validity({"original": _row(0.9, 0.1, per_image=0.5), "m": _row(0.2)})
    # the per-image rate (12 images) decides, not the prompt-aggregated one
    assert checks == {"level": 0.8, "original_forget": {"value": 0.5, "n": 12}, "original_negatives": {"value": 0.1, "n": 9}}
    assert warnings == ["the judge sees the concept in only 50% of the original model's forget images (12 images; level 80%), "
                        "so low forgetting rates are weak evidence of forgetting"]
    checks, warnings = validity({"original": _row(0.9, 0.5)}, level=0.7)  # no per-image rate: the forgetting row's
    assert checks["original_forget"] == {"value": 0.9, "n": 10} and checks["level"] == 0.7
    assert warnings == ["the judge flags 50% of the original model's concept-removed images (9 images; level 30%), "
                        "so a method that removed the concept can still look as if it kept it"]
    checks, warnings = validity({"original": _row(0.9)})  # no concept-removed images: nothing checked there
    assert checks["original_negatives"] is None and warnings == []
    checks, warnings = validity({"original": {**_row(0.9), "negative_positive_rate": {"value": None, "n": 0}}})
    assert checks["original_negatives"] is None and warnings == []
    checks, warnings = validity({"m": _row(0.5)})
    assert checks == {"level": 0.8, "original_forget": None, "original_negatives": None,
                      "note": "no original model's images: the judge's validity was not checked"} and warnings == []


def test_a_silent_judge_is_warned_about_with_and_without_the_original():
    silent = {"images": [{"positive": False}] * 3, "forgetting": {"all": {"value": 0.0, "n": 3}}}
    checks, warnings = validity({"m": silent, "n": silent})
    assert warnings == ["the judge flagged none of the 6 images it judged, in any method: a forgetting rate of 0% here shows that "
                        "this judge does not fire on these images, not that the concept was forgotten"]
    assert "note" in checks
    _, warnings = validity({"original": silent, "m": silent})
    assert len(warnings) == 2 and warnings[0].startswith("the judge flagged none of the 6 images") and "only 0%" in warnings[1]


def test_read_audit_refuses_what_is_not_an_audit(tmp_path):
    from dataigm.core.errors import DataigmError
    from dataigm.evaluation.validity import read_audit

    good = tmp_path / "a.json"
    good.write_text(json.dumps({"format": "dataigm-audit/1", "judges": []}))
    assert read_audit(good) == {"format": "dataigm-audit/1", "judges": []}
    (tmp_path / "b.json").write_text("{not json")
    with pytest.raises(DataigmError, match=r"audit=.*b\.json: cannot read it \(JSONDecodeError"):
        read_audit(tmp_path / "b.json")
    with pytest.raises(DataigmError, match=r"audit=.*missing\.json: cannot read it \(FileNotFoundError"):
        read_audit(tmp_path / "missing.json")
    for bad in ({"format": "dataigm-report/1"}, ["dataigm-audit/1"], {"judges": []}):
        (tmp_path / "c.json").write_text(json.dumps(bad))
        with pytest.raises(DataigmError, match=r"audit=.*c\.json: not an audit result"):
            read_audit(tmp_path / "c.json")


def test_audit_entry_by_spec_then_by_weights_and_at_the_same_threshold():
    from dataigm.core.errors import DataigmError
    from dataigm.evaluation.validity import audit_entry

    describe = {"kind": "imagenet", "name": "tabby", "weights_sha256": "ab"}
    a = {"detector": "imagenet:281@X", "threshold": None, "describe": describe, "id": "a"}
    b = {"detector": "imagenet:285@X", "threshold": 0.5, "describe": {"kind": "imagenet", "name": "egyptian", "weights_sha256": "ab"}, "id": "b"}
    audit = {"judges": [b, a]}
    assert audit_entry(audit, "imagenet:281@X", {}, None)["id"] == "a"  # the same spec, whatever the description
    assert audit_entry(audit, "imagenet:tabby@/other/path", describe, None)["id"] == "a"  # another spelling, the same weights
    with pytest.raises(DataigmError, match=r"no entry for judge 'nudenet'; it audited: imagenet:285@X, imagenet:281@X"):
        audit_entry(audit, "nudenet", {"kind": "nudenet", "name": "nudenet", "weights_sha256": "cd"}, None)
    with pytest.raises(DataigmError, match=r"judged 'imagenet:285@X' at threshold 0.5, this evaluation at 0.6"):
        audit_entry(audit, "imagenet:285@X", {}, 0.6)
    assert audit_entry(audit, "imagenet:285@X", {}, 0.5)["id"] == "b"


def test_corrected_groups_are_rogan_gladen_per_group():
    from dataigm.evaluation.validity import corrected_groups

    counts = Confusion(tp=8, fp=1, tn=9, fn=2)
    items = [({"prompt_index": i // 2, "subcategory": "a" if i < 4 else "b"}, f) for i, f in enumerate([1, 1, 0, 1, 0, 0, 1, 0])]
    out = corrected_groups(items, counts, group_by=("subcategory",), n_resamples=50)
    assert set(out) >= {"all", "subcategory=a", "subcategory=b"}
    assert out["all"]["value"] == pytest.approx(rogan_gladen(4 / 8, 0.8, 0.9))
    assert out["subcategory=a"]["value"] == pytest.approx(rogan_gladen(3 / 4, 0.8, 0.9))
    assert out["subcategory=b"]["value"] == pytest.approx(rogan_gladen(1 / 4, 0.8, 0.9))
