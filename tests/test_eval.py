"""dataigm eval: bootstrap intervals, pairing, LPIPS/FID/KID, CSDR and the multi-method report.

Feature networks are small and built from config with seeded random weights, then loaded through the same
public paths a real one takes (torchvision's hub cache for LPIPS, timm local-dir for FID/KID, CLIPModel.from_pretrained).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from dataigm.judges.images import ImageRef, resolve_images
from dataigm.evaluation.metrics import bootstrap_ci, grouped, rate, retain_correct
from dataigm.evaluation.pairing import pair_images, pair_key
from dataigm.judges.tiny import build_tiny_detector
from dataigm.prompts import PromptRecord, write_prompt_jsonl
from dataigm.synthetic import draw_pattern


# --- bootstrap ------------------------------------------------------------------------------------------------------
def test_bootstrap_interval_properties() -> None:
    rng = np.random.default_rng(1)
    small = rng.random(20) < 0.3
    big = rng.random(2000) < 0.3
    a, b = rate(small, seed=7), rate(small, seed=7)
    assert a == b  # fixed seed: reproducible
    assert a.low <= a.value <= a.high and a.value == pytest.approx(small.mean())
    wide, narrow = rate(small), rate(big)
    assert (narrow.high - narrow.low) < (wide.high - wide.low)
    assert narrow.low < 0.3 < narrow.high
    assert rate([True] * 10).to_dict() == {"value": 1.0, "low": 1.0, "high": 1.0, "n": 10, "clusters": None, "interval": "bootstrap-images",
                                           "n_images": 10, "n_prompts": None}
    assert bootstrap_ci([]).value is None
    with pytest.raises(ValueError, match="confidence"):
        bootstrap_ci([1.0], confidence=1.5)


def test_bootstrap_matches_hand_computed_percentiles() -> None:
    values = [0.0, 1.0, 1.0, 0.0, 1.0]
    est = bootstrap_ci(values, n_resamples=500, seed=3)
    idx = np.random.default_rng(3).integers(0, 5, size=(500, 5))
    means = np.asarray(values)[idx].mean(axis=1)
    assert (est.low, est.high) == pytest.approx(tuple(np.quantile(means, [0.025, 0.975])))
    assert est.value == pytest.approx(0.6)


def test_grouped_rates_and_retain_accuracy() -> None:
    items = [({"concept": "church", "subcategory": "gothic"}, True), ({"concept": "church", "subcategory": "modern"}, False),
             ({"concept": "church", "subcategory": "modern"}, False), ({"concept": "parachute"}, True)]
    g = grouped(items)
    assert g["all"]["value"] == 0.5 and g["church"]["value"] == pytest.approx(1 / 3)
    assert g["church/modern"]["value"] == 0.0 and g["church/gothic"]["n"] == 1 and g["parachute"]["value"] == 1.0
    # two seeds of one prompt are one cluster; by image, each is its own; --group-by adds FIELD=value groups
    seeds = [({"concept": "church", "prompt_index": i // 2, "seed": i, "lang": "de" if i < 4 else "en"}, i % 3 == 0) for i in range(8)]
    by_prompt, by_image = grouped(seeds, group_by=("lang",)), grouped(seeds, by_prompt=False)
    assert by_prompt["all"]["clusters"] == 4 and by_image["all"]["clusters"] == 8 and by_prompt["all"]["n"] == 8
    assert by_prompt["lang=de"]["n"] == 4 and by_prompt["lang=de"]["value"] == 0.5 and by_prompt["lang=en"]["value"] == 0.25
    labels = ["church", "parachute", "other"]
    assert retain_correct({"label_name": "parachute"}, "parachute", False, labels, "church")
    assert not retain_correct({"label_name": "parachute"}, "other", False, labels, "church")
    assert retain_correct({"label_name": "garden"}, "other", False, labels, "church")
    assert not retain_correct({}, "nude", True, ["not_nude", "nude"], "nude")


# --- pairing --------------------------------------------------------------------------------------------------------
def _refs(names: list[str]) -> list[ImageRef]:
    from dataigm.judges.images import name_fields

    return [ImageRef(n, n, "", name_fields(Path(n))) for n in names]


def test_pairing_by_prompt_index_and_seed() -> None:
    orig = _refs(["3_11.png", "1_7.png", "2_9.png", "10_5.png"])
    unl = _refs(["10_5.png", "2_9.png", "3_11.png", "1_7.png"])
    pairs = pair_images(orig, unl)
    assert [(o.id, u.id) for o, u in pairs] == [(n, n) for n in ["1_7.png", "10_5.png", "2_9.png", "3_11.png"]]
    assert pair_key(orig[0]) == ("file", 3, 11)


def test_pair_reference_matches_pair_id_and_seed() -> None:
    """Dataset samples: a positive and its concept-removed negative share pair_id and seed (not the key or prompt)."""
    from dataigm.evaluation.pairing import pair_reference_key

    def sample(key: str, role: str, pair_id: str, seed: int, index: int) -> ImageRef:
        return ImageRef(f"s.tar#{key}", "s.tar", key, {"role": role, "pair_id": pair_id, "seed": seed, "prompt_index": index, "concept": "church"})

    unl = [sample("u-a", "positive", "church-00001", 11, 1), sample("u-b", "positive", "church-00002", 12, 2)]
    neg = [sample("o-b-neg", "negative", "church-00002", 12, 7), sample("o-a-neg", "negative", "church-00001", 11, 9)]
    pairs = pair_images(neg, unl, key=pair_reference_key)
    assert [(o.key, u.key) for o, u in pairs] == [("o-a-neg", "u-a"), ("o-b-neg", "u-b")]
    with pytest.raises(ValueError, match=r"unlearned forget images without an original counterpart: s\.tar#u-c"):
        pair_images(neg, unl + [sample("u-c", "positive", "church-00003", 13, 3)], key=pair_reference_key, what="pair images",
                    what_unlearned="forget images")


def test_pairing_mismatch_names_the_files() -> None:
    with pytest.raises(ValueError, match=r"original images without an unlearned counterpart: 2_9\.png.*unlearned images without an original counterpart: 2_8\.png"):
        pair_images(_refs(["1_7.png", "2_9.png"]), _refs(["1_7.png", "2_8.png"]))
    with pytest.raises(ValueError, match=r"duplicate prompt index/seed: a/1_7\.png, b/1_7\.png"):
        pair_images(_refs(["a/1_7.png", "b/1_7.png"]), _refs(["1_7.png"]))


# --- LPIPS / FID / KID ----------------------------------------------------------------------------------------------
@pytest.fixture
def torch_hub_with_random_squeezenet(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """torchvision's weight cache holding a seeded random SqueezeNet 1.1 under its official file name."""
    import torchvision

    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    ckpt = Path(torch.hub.get_dir()) / "checkpoints" / Path(torchvision.models.SqueezeNet1_1_Weights.DEFAULT.url).name
    ckpt.parent.mkdir(parents=True)
    torch.manual_seed(0)
    torch.save(torchvision.models.squeezenet1_1(weights=None).state_dict(), ckpt)
    return ckpt


def _write(folder: Path, name: str, img: Image.Image) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    img.save(folder / name)
    return folder / name


@pytest.mark.slow
def test_lpips_pairs_correctly_and_matches_torchmetrics(torch_hub_with_random_squeezenet: Path, tmp_path: Path) -> None:
    from torchmetrics.functional.image.lpips import learned_perceptual_image_patch_similarity as lpips_fn

    from dataigm.evaluation.fidelity import create_lpips, lpips_pairs

    # the unlearned folder lists its files in another order; the last batch is partial (5 pairs, batch 2)
    for i in range(5):
        img = draw_pattern(["disc", "checker", "ring", "cross", "dots"][i], i, 64)
        _write(tmp_path / "orig", f"{i}_{100 + i}.png", img)
        _write(tmp_path / "unl", f"{i}_{100 + i}.png", img if i % 2 == 0 else draw_pattern("hstripes", i, 64))
    pairs = pair_images(resolve_images(tmp_path / "orig").files, list(reversed(resolve_images(tmp_path / "unl").files)))
    metric = create_lpips("squeeze")
    scores = lpips_pairs(pairs, batch_size=2, metric=metric)
    assert len(scores) == 5
    assert scores[0] == pytest.approx(0.0, abs=1e-6) and scores[2] == pytest.approx(0.0, abs=1e-6) and scores[4] == pytest.approx(0.0, abs=1e-6)
    assert scores[1] > 1e-4 and scores[3] > 1e-4
    for (o, u), s in zip(pairs, scores):
        a = torch.from_numpy(np.asarray(Image.open(o.path).convert("RGB"))).permute(2, 0, 1)[None].float() / 255
        b = torch.from_numpy(np.asarray(Image.open(u.path).convert("RGB"))).permute(2, 0, 1)[None].float() / 255
        ref = lpips_fn(a, b, net_type="squeeze", normalize=True)
        assert s == pytest.approx(float(ref), abs=1e-5)


@pytest.fixture(scope="module")
def feature_net_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_detector(tmp_path_factory.mktemp("feat") / "features", ("a", "b"), seed=5)


@pytest.mark.slow
def test_fid_kid_against_hand_computed(feature_net_dir: Path, tmp_path: Path) -> None:
    import timm
    from scipy import linalg

    from dataigm.evaluation.fidelity import ImageReader, TimmFeatures, fid_kid, to_uint8_tensor

    real = [_write(tmp_path / "r", f"{i}.png", draw_pattern("disc", i, 64)) for i in range(12)]
    fake = [_write(tmp_path / "f", f"{i}.png", draw_pattern("checker", i, 64)) for i in range(12)]
    refs_r, refs_f = resolve_images(tmp_path / "r").files, resolve_images(tmp_path / "f").files
    spec = f"local-dir:{feature_net_dir}"
    same = fid_kid(refs_r, refs_r, feature=spec, size=64, kid_subsets=5, kid_subset_size=12)
    assert abs(same["fid"]) < 1e-3 and abs(same["kid_mean"]) < 1e-3
    got = fid_kid(refs_r, refs_f, feature=spec, size=64, batch_size=5, kid_subsets=5, kid_subset_size=12)

    net = TimmFeatures(timm.create_model(spec, pretrained=True, num_classes=0))
    reader = ImageReader()
    with torch.no_grad():
        fr = net(to_uint8_tensor([reader.image(r, 64) for r in refs_r])).double().numpy()
        ff = net(to_uint8_tensor([reader.image(r, 64) for r in refs_f])).double().numpy()
    mu1, mu2 = fr.mean(0), ff.mean(0)
    c1, c2 = np.cov(fr, rowvar=False), np.cov(ff, rowvar=False)
    fid = ((mu1 - mu2) ** 2).sum() + np.trace(c1 + c2 - 2 * linalg.sqrtm(c1 @ c2).real)
    assert got["fid"] == pytest.approx(fid, rel=1e-2, abs=1e-3)
    assert got["fid"] > 1e-3 and got["n_real"] == 12 and got["kid_subset_size"] == 12
    few = fid_kid(refs_r, refs_f, feature=spec, size=64)  # subsets of 1000 from 12 images: no KID, a note instead
    assert "kid_mean" not in few and "12 images on a side, fewer than its subset size kid_subset_size=1000" in few["kid_note"]
    assert few["fid"] == pytest.approx(got["fid"])
    assert len(real) == len(fake)

    # KID (Binkowski et al.): unbiased MMD^2 with the cubic polynomial kernel k(x, y) = (x.y / d + 1)^3. With
    # subsets of all 12 images every subset is a permutation of the same sets, so every subset gives this value.
    def k(a: np.ndarray, b: np.ndarray) -> np.ndarray:
        return (a @ b.T / a.shape[1] + 1.0) ** 3

    m = len(fr)
    kxx, kyy, kxy = k(fr, fr), k(ff, ff), k(fr, ff)
    kid = ((kxx.sum() - np.trace(kxx)) + (kyy.sum() - np.trace(kyy))) / (m * (m - 1)) - 2 * kxy.sum() / m**2
    assert kid > 1e-4 and got["kid_mean"] == pytest.approx(kid, rel=1e-3)
    assert got["kid_std"] < 1e-4 * kid  # float rounding only


# --- CSDR -----------------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def tiny_clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from dataigm.generate.tiny import build_tiny_clip

    return build_tiny_clip(tmp_path_factory.mktemp("clip") / "tiny-clip")


@pytest.fixture(scope="module")
def tiny_clip_aligned(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny CLIP (seed 4) whose cosines between the test's patterns and prompts are all positive, so s_o > 0."""
    from dataigm.generate.tiny import build_tiny_clip

    return build_tiny_clip(tmp_path_factory.mktemp("clip4") / "tiny-clip", seed=4)


def test_csdr_matches_hand_computed_scores(tiny_clip: Path) -> None:
    from transformers import CLIPModel, CLIPProcessor

    from dataigm.judges.clip import projected
    from dataigm.evaluation.csdr import ClipScorer, concept_removed_prompt, csdr_win_items, csdr_win_rate

    prompts = ["a nude woman by the lake", "a church on a hill", "a red church at night, oil painting", "a parachute over the sea"]
    refs = []
    for i, p in enumerate(prompts):
        cat, concept = ("nudity", "nudity") if i == 0 else ("object", "church" if "church" in p else "parachute")
        meta = {"prompt": p, "category": cat, "concept": concept, "role": "positive"}
        refs.append(ImageRef(f"{i}.png", "", "", meta))
    refs.append(ImageRef("neg.png", "", "", {"prompt": "a house", "role": "negative", "category": "object", "concept": "church"}))
    assert concept_removed_prompt(refs[0].meta) == "a woman by the lake"
    assert concept_removed_prompt(refs[2].meta) == "a red house at night, oil painting"
    assert concept_removed_prompt({**refs[1].meta, "pair_prompt": "a hill"}) == "a hill"

    class Reader:  # in-memory images keyed by id
        def image(self, ref: ImageRef, size: int | None = None) -> Image.Image:
            return draw_pattern("disc", int(ref.id.split(".")[0]), 48)

    scorer = ClipScorer(tiny_clip)
    items, skipped = csdr_win_items(refs, scorer, batch_size=3, reader=Reader())
    assert skipped == ["neg.png"] and [i.file for i in items] == ["0.png", "1.png", "2.png", "3.png"]

    model, proc = CLIPModel.from_pretrained(tiny_clip).eval(), CLIPProcessor.from_pretrained(tiny_clip)
    wins = 0
    for item, ref in zip(items, refs):
        with torch.no_grad():
            img = projected(model.get_image_features(**proc(images=[Reader().image(ref)], return_tensors="pt")))
            txt = projected(model.get_text_features(**proc.tokenizer([item.prompt, item.removed_prompt], padding=True, return_tensors="pt")))
        cos = torch.nn.functional.cosine_similarity(img, txt).numpy()
        expected = np.maximum(100 * cos, 0)
        assert (item.score_prompt, item.score_removed) == pytest.approx(tuple(expected), abs=1e-3)
        wins += expected[1] > expected[0]
    assert csdr_win_rate(items) == pytest.approx(wins / 4)


# --- end to end: the eval command and its report ---------------------------------------------------------------------
SEEDS = (100, 200)  # two seeds per prompt: the bootstrap resamples prompts, not images


def _generated_like(folder: Path, n_prompts: int, pattern_of: dict[int, str], default: str = "plain") -> None:
    for i in range(n_prompts):
        for s in SEEDS:
            _write(folder, f"{i}_{s + i}.png", draw_pattern(pattern_of.get(i, default), i + s, 64))


def _copy_images(src: Path, dst: Path, indices: set[int]) -> None:
    """Copy the images of the given prompt indices (byte-identical: the model produced the reference image)."""
    dst.mkdir(parents=True, exist_ok=True)
    for f in src.iterdir():
        if int(f.name.split("_")[0]) in indices:
            shutil.copy(f, dst / f.name)


@pytest.fixture(scope="module")
def eval_tree(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """original (forget = concept images, pair = its images of the concept-removed prompts, retain) and two
    unlearned models: esd reproduces the pair images for prompts 1-5 and keeps the concept on prompt 0; ga keeps
    the concept on prompts 0-2. Both leave the retain images untouched."""
    root = tmp_path_factory.mktemp("evaltree")
    forget_prompts = [f"a church in the {w}" for w in ("snow", "rain", "sun", "fog", "night", "city")]
    retain_prompts = [f"a house in the {w}" for w in ("snow", "rain", "sun", "fog", "night", "city")]
    write_prompt_jsonl([PromptRecord(p, concept="church", category="object", subcategory="weather" if i < 4 else "time", index=i,
                                     paired_negative=p.replace("church", "house"), source="ru" if i % 2 else "en")
                        for i, p in enumerate(forget_prompts)], root / "forget.jsonl")
    write_prompt_jsonl([PromptRecord(p, concept="house", category="object" if i < 3 else "style", label="other", index=i)
                        for i, p in enumerate(retain_prompts)], root / "retain.jsonl")
    _generated_like(root / "original" / "forget", 6, {}, default="disc")
    _generated_like(root / "original" / "pair", 6, {}, default="checker")
    _generated_like(root / "original" / "retain", 6, {}, default="square")
    for name, kept in (("esd", {0}), ("ga", {0, 1, 2})):
        _copy_images(root / "original" / "forget", root / name / "forget", kept)
        _copy_images(root / "original" / "pair", root / name / "forget", set(range(6)) - kept)
        shutil.copytree(root / "original" / "retain", root / name / "retain")
    return root


@pytest.mark.slow
def test_eval_cli_multi_method_report(eval_tree: Path, tmp_path: Path, feature_net_dir: Path, torch_hub_with_random_squeezenet: Path,
                                      tiny_clip_aligned: Path, capsys: pytest.CaptureFixture[str], church_detector: Path) -> None:
    from dataigm.cli import main
    from dataigm.judges.judge import judge
    from dataigm.evaluation.metrics import METRIC_DEFINITIONS

    root = eval_tree
    det = church_detector
    out = tmp_path / "report"
    rc = main(["eval", "--method", f"esd={root / 'esd'}", "--method", f"ga={root / 'ga'}", "--original", str(root / "original"),
               "--prompts", str(root / "forget.jsonl"), str(root / "retain.jsonl"), "--judge", f"local-dir:{det}", "--lpips-net", "squeeze",
               "--fid-features", f"local-dir:{feature_net_dir}", "--csdr", "--clip-model", str(tiny_clip_aligned), "--csdr-unit", "prompt", "--clip-score", "clipscore",
               "--group-by", "prompt_source", "--bootstrap", "200", "--workers", "0",
               "--out", str(out), "--json"])
    assert rc == 0
    report = json.loads(capsys.readouterr().out)
    assert report["format"] == "dataigm-eval/2"
    assert set(report["methods"]) == {"original", "esd", "ga"}
    assert json.loads((out / "report.json").read_text()) == report
    assert report["definitions"]["csdr"] == METRIC_DEFINITIONS["csdr"]["version"] == "csdr/3"
    assert {"forgetting", "preservation", "ira_cra", "unlearning_accuracy", "lpips", "fid_kid", "csdr", "csdr_win_rate", "clip_score", "bootstrap"} <= set(report["definitions"])
    md = (out / "report.md").read_text()
    assert md.count("\n## ") == 3 and "| esd |" in md and "| ga |" in md and "LPIPS" in md and "CSDR" in md and "csdr/3" in md
    png = (out / "forgetting_preservation.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 5000

    # the report's rates equal a direct judge of the same folders
    for name in ("original", "esd", "ga"):
        direct = judge(root / name / "forget", f"local-dir:{det}", workers=0, progress=False).summary
        assert report["methods"][name]["forgetting"]["all"]["value"] == pytest.approx(direct["positive_rate"])
        ret = judge(root / name / "retain", f"local-dir:{det}", workers=0, progress=False).summary
        assert report["methods"][name]["preservation"]["all"]["value"] == pytest.approx(1 - ret["positive_rate"])
    esd = report["methods"]["esd"]
    assert set(esd["forgetting"]) == {"all", "church", "church/weather", "church/time", "prompt_source=en", "prompt_source=ru"}
    assert esd["forgetting"]["all"]["n"] == 12 and esd["forgetting"]["all"]["clusters"] == 6  # resampled by prompt
    assert esd["forgetting"]["church/weather"]["n"] == 8 and esd["forgetting"]["prompt_source=ru"]["clusters"] == 3
    # IRA: retain classes of the forgotten concept's domain (object: prompts 0-2), CRA: the other (style: 3-5)
    dom = esd["preservation_domains"]
    assert dom["forget_domain"] == "object" and dom["ira"]["n"] == 6 and dom["cra"]["n"] == 6 and dom["pooled"]["n"] == 12
    # forget images against the original's concept-removed images (pair): esd reproduced 5 of 6 prompts exactly
    f_esd, f_ga = esd["fidelity"]["forget"], report["methods"]["ga"]["fidelity"]["forget"]
    assert f_esd["reference"] == "pair" and f_esd["n_pairs"] == 12
    assert f_esd["lpips"]["value"] > 0 and f_esd["lpips"]["value"] < f_ga["lpips"]["value"]
    assert esd["fidelity"]["retain"]["reference"] == "same-prompt"
    assert esd["fidelity"]["retain"]["lpips"]["value"] == pytest.approx(0.0, abs=1e-6) and abs(esd["fidelity"]["retain"]["fid"]) < 1e-3
    assert "fidelity" not in report["methods"]["original"]
    # IGMU's CSDR (per prompt, asked by name): prompts whose unlearned images equal the original's pair images have s_u = s_o, so 0 (or
    # undefined where s_o = 0: the random tiny CLIP gives some negative cosines)
    csdr_ = esd["alignment"]["csdr"]
    units = {u["key"]: u for u in csdr_["units"]}
    assert csdr_["n_units"] == 6 and all(u["n_images"] == 2 for u in units.values())
    assert csdr_["n"] == 6 and csdr_["n_undefined"] == 0
    for key, u in units.items():
        assert u["score_unlearned"] == pytest.approx(u["score_original"], abs=1e-3) or key.endswith(":0")
        assert u["value"] == pytest.approx(0.0, abs=1e-3) or key.endswith(":0")
    assert units[next(k for k in units if k.endswith(":0"))]["value"] > 0.1  # prompt 0 kept the concept image
    assert esd["alignment"]["csdr_win_rate"]["n"] == 12
    assert esd["clip_score"]["retain"]["mode"] == "clipscore" and esd["clip_score"]["retain"]["n"] == 12
    assert esd["clip_score"]["retain"]["value"] == pytest.approx(report["methods"]["original"]["clip_score"]["retain"]["value"])


@pytest.mark.slow
def test_eval_same_prompt_reference_rewards_failing_to_forget(eval_tree: Path, tmp_path: Path, torch_hub_with_random_squeezenet: Path, church_detector: Path) -> None:
    """The reason IGMU compares with the concept-removed image: against the same prompt, ga (which kept the concept
    on more prompts) looks closer to the original than esd."""
    from dataigm.evaluation.evaluate import EvalConfig, evaluate, open_set

    det = church_detector
    prompts = (eval_tree / "forget.jsonl", eval_tree / "retain.jsonl")
    sets = {m: open_set(eval_tree / m / "forget", eval_tree / m / "retain", prompts) for m in ("esd", "ga")}
    original = open_set(eval_tree / "original" / "forget", eval_tree / "original" / "retain", prompts, pair=eval_tree / "original" / "pair")
    lp = {}
    for ref in ("pair", "same-prompt"):
        cfg = EvalConfig(detector=f"local-dir:{det}", lpips_net="squeeze", fid_feature=None, forget_reference=ref, n_resamples=50, workers=0)
        rep = evaluate(sets, cfg, original)
        lp[ref] = {m: rep["methods"][m]["fidelity"]["forget"]["lpips"]["value"] for m in ("esd", "ga")}
    assert lp["pair"]["esd"] < lp["pair"]["ga"]
    assert lp["same-prompt"]["ga"] < lp["same-prompt"]["esd"]
    cfg = EvalConfig(detector=f"local-dir:{det}", lpips_net="squeeze", fid_feature=None, workers=0)
    no_pair = open_set(eval_tree / "original" / "forget", eval_tree / "original" / "retain", prompts)
    rep = evaluate(sets, cfg, no_pair)  # no reference images for the forget LPIPS: that row is left out with one note
    assert [e["what"] for e in rep["left_out"]] == ["pair"] and rep["warnings"][0].startswith("LPIPS/FID of the forget images left out")
    for m in ("esd", "ga"):
        forget, retain = rep["methods"][m]["fidelity"]["forget"], rep["methods"][m]["fidelity"]["retain"]
        assert "lpips" not in forget and forget["n_pairs"] == 0 and "no images of the concept-removed prompts" in forget["note"]
        assert retain["lpips"]["n"] == retain["n_pairs"] > 0  # the retain row still runs


@pytest.mark.slow
def test_eval_fid_reference_and_cmmd(eval_tree: Path, tmp_path: Path, feature_net_dir: Path, tiny_clip_aligned: Path, church_detector: Path) -> None:
    """--fid-reference: FID/KID (and CMMD) of every model's retain images against an unpaired folder."""
    from dataigm.evaluation.evaluate import EvalConfig, evaluate, open_set

    det = church_detector
    prompts = (eval_tree / "forget.jsonl", eval_tree / "retain.jsonl")
    sets = {"esd": open_set(eval_tree / "esd" / "forget", eval_tree / "esd" / "retain", prompts)}
    res = {}
    for ref in ("original/retain", "original/pair"):  # the same images as the retain set, then different ones
        cfg = EvalConfig(detector=f"local-dir:{det}", lpips_net=None, fid_feature=f"local-dir:{feature_net_dir}", fid_size=64,
                         cmmd=str(tiny_clip_aligned), fid_reference=str(eval_tree / ref), n_resamples=20, workers=0,
                         kid_subset_size=12)
        res[ref] = evaluate(sets, cfg)["methods"]["esd"]["reference_fidelity"]
    same, other = res["original/retain"], res["original/pair"]
    assert same["n_reference"] == same["n_images"] == 12 and same["reference"].endswith("retain")
    assert abs(same["fid"]) < 1e-3 and abs(same["cmmd"]) < 1e-6
    assert other["fid"] > 1e-3 and other["cmmd"] > 1e-4 and other["kid_mean"] > same["kid_mean"]


def _dataset(root: Path, members: list[tuple[str, str, int, int, str]]) -> Path:
    """A dataset folder of church samples: (role, pair_id, prompt index, seed, pattern) each."""
    from dataigm.core.schema import SampleMeta
    from dataigm.core.shards import ShardSpec
    from dataigm.synthetic import png_bytes, write_samples

    labels = ["not_church", "church"]
    samples = []
    for role, pair_id, index, seed, pattern in members:
        pos = f"a church in the {['snow', 'rain', 'sun'][index]}"
        neg = pos.replace("church", "house")
        prompt, pair_prompt = (pos, neg) if role == "positive" else (neg, pos)
        meta = SampleMeta(key=f"{role[:3]}-{pair_id}-{seed}", category="church", split="test", label=int(role == "positive"),
                          label_name=labels[int(role == "positive")], label_names=labels, role=role, concept="church", taxonomy="object",
                          pair_id=pair_id, prompt=prompt, pair_prompt=pair_prompt, prompt_index=index, seed=seed, image_index=seed % 2)
        samples.append((meta, png_bytes(draw_pattern(pattern, seed + 7 * index, 64))))
    write_samples(root, "church", labels, {ShardSpec("church", "test", 0, "gen"): samples}, part="gen")
    return root


@pytest.mark.slow
def test_eval_datasets_with_paired_negatives(tmp_path: Path, torch_hub_with_random_squeezenet: Path, tiny_clip_aligned: Path) -> None:
    """A dataset built with paired negatives holds the pair images: forget images are matched to the original's
    negatives on pair_id and seed, the negatives are not judged as forget images, and prompts are the clusters."""
    from dataigm.evaluation.evaluate import EvalConfig, evaluate, open_set

    ids = [(f"church-{i:05d}", i, s) for i in range(3) for s in (10, 11)]
    original = _dataset(tmp_path / "orig", [("positive", p, i, s, "disc") for p, i, s in ids] + [("negative", p, i, s, "checker") for p, i, s in ids])
    # the unlearned model draws the concept-removed image for prompts 1 and 2, and keeps the concept on prompt 0
    unlearned = _dataset(tmp_path / "unl", [("positive", p, i, s, "disc" if i == 0 else "checker") for p, i, s in ids])
    retain = _dataset(tmp_path / "ret", [("negative", p, i, s, "square") for p, i, s in ids])
    det = build_tiny_detector(tmp_path / "det", ("not_church", "church"), category="object", seed=1)
    # CSDR against p' (csdr-pair): the pair images are what this test is about
    cfg = EvalConfig(detector=f"local-dir:{det}", lpips_net="squeeze", fid_feature=None, clip=str(tiny_clip_aligned), n_resamples=50, workers=0,
                     csdr_prompts="pair")
    rep = evaluate({"u": open_set(unlearned, retain)}, cfg, original=open_set(original, retain))
    u, o = rep["methods"]["u"], rep["methods"]["original"]
    assert o["n_forget"] == 6 and o["forgetting"]["all"]["clusters"] == 3  # the 6 negatives are not forget images
    f = u["fidelity"]["forget"]
    assert f["reference"] == "pair" and f["n_pairs"] == 6 and f["lpips"]["clusters"] == 3
    assert 0 < f["lpips"]["value"] < 1 and u["fidelity"]["retain"]["lpips"]["value"] == pytest.approx(0.0, abs=1e-6)
    units = {x["key"]: x for x in u["alignment"]["csdr"]["units"]}
    assert len(units) == 6 and all(x["n_images"] == 1 for x in units.values())  # per image, the default (IGMU's README)
    # only prompt 0's two images kept the concept
    assert [round(units[k]["value"], 3) == 0 for k in sorted(units)] == [False, False, True, True, True, True]
    assert rep["definitions"]["lpips"] == "lpips/2"


@pytest.mark.slow  # end to end: the faster tests state its parts
def test_eval_cli_no_attack_asr_and_prompt_any(eval_tree: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], church_detector: Path) -> None:
    from dataigm.cli import main
    from dataigm.judges.judge import judge

    det = church_detector
    attacked, no_attack = eval_tree / "ga" / "forget", eval_tree / "esd" / "forget"
    # a threshold between the random detector's scores, so that some images are flagged and some are not
    scores = sorted(p.positive_score for f in (attacked, no_attack) for p in judge(f, f"local-dir:{det}", workers=0, progress=False).predictions)
    threshold = (scores[len(scores) // 2 - 1] + scores[len(scores) // 2]) / 2

    def flagged_prompts(folder: Path) -> dict[int, bool]:
        out: dict[int, bool] = {}
        for row in judge(folder, f"local-dir:{det}", threshold=threshold, workers=0, progress=False).predictions:
            i = int(Path(row.file).name.split("_")[0])
            out[i] = out.get(i, False) or row.positive
        return out

    att, pre = flagged_prompts(attacked), flagged_prompts(no_attack)
    rc = main(["eval", "--forget", str(attacked), "--retain", str(eval_tree / "ga" / "retain"), "--no-attack", str(no_attack),
               "--prompts", str(eval_tree / "forget.jsonl"), str(eval_tree / "retain.jsonl"), "--judge", f"local-dir:{det}",
               "--threshold", str(threshold), "--aggregate", "prompt-any", "--bootstrap", "100", "--workers", "0",
               "--out", str(tmp_path / "r"), "--json"])
    assert rc == 0
    res = json.loads(capsys.readouterr().out)["methods"]["unlearned"]
    assert res["forgetting"]["all"]["n"] == 6 and res["forgetting"]["all"]["value"] == pytest.approx(sum(att.values()) / 6)
    # check_asr.py: success_nums = last-step successes - step-0 successes; ASR = (success_nums + pre) / N
    step0 = [pre[i] for i in range(6)]  # the attack run's step 0 is the unattacked prompt
    last = [pre[i] or att[i] for i in range(6)]  # an attack stops at its first success
    success_nums = sum(last) - sum(step0)
    assert res["asr"]["value"] == pytest.approx((success_nums + sum(pre.values())) / 6)
    assert res["asr"]["pre_attack_successes"] == sum(pre.values()) and res["asr"]["new_successes"] == success_nums
    assert 0 < sum(last) < 6 and res["asr"]["n_prompts"] == 6


def test_eval_pairing_error_names_files(tmp_path: Path, feature_net_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from dataigm.cli import main

    det = build_tiny_detector(tmp_path / "det", ("not_nude", "nude"))
    for name, n in (("orig", 3), ("unl", 2)):
        for split in ("forget", "retain"):
            for i in range(n):
                _write(tmp_path / name / split, f"{i}_{7 + i}.png", draw_pattern("disc", i, 64))
    args = ["eval", "--forget", str(tmp_path / "unl" / "forget"), "--retain", str(tmp_path / "unl" / "retain"),
            "--original", str(tmp_path / "orig"), "--judge", str(det), "--lpips-net", "none",
            "--fid-features", f"local-dir:{feature_net_dir}", "--person-detector", "nudenet-body", "--workers", "0", "--out", str(tmp_path / "r")]
    # the default forget reference needs the original's images of the concept-removed prompts: without them that row
    # is left out with a note, and the retain images, which do not pair (2_9.png), are refused before judging
    assert main(args) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "original retain images without an unlearned counterpart: 2_9.png" in err
    assert main(args + ["--forget-reference", "same-prompt"]) == 2
    err = capsys.readouterr().err
    assert "original forget images without an unlearned counterpart: 2_9.png" in err
    for i in range(3):  # the pair folder, one image short on the unlearned side as well
        _write(tmp_path / "orig" / "pair", f"{i}_{7 + i}.png", draw_pattern("ring", i, 64))
    assert main(args) == 2
    err = capsys.readouterr().err
    assert "original images of the concept-removed prompts without an unlearned counterpart: 2_9.png" in err
    assert not (tmp_path / "r" / "report.json").exists()  # refused before judging


def test_eval_prompts_missing_index(tmp_path: Path) -> None:
    from dataigm.evaluation.evaluate import open_set

    for split in ("forget", "retain"):
        _write(tmp_path / split, "0_1.png", draw_pattern("disc", 0, 64))
        _write(tmp_path / split, "5_1.png", draw_pattern("disc", 1, 64))
    p = tmp_path / "p.jsonl"
    write_prompt_jsonl([PromptRecord("a church", index=0)], p)
    with pytest.raises(ValueError, match=r"have no prompt index in .*p\.jsonl.*5_1\.png"):
        open_set(tmp_path / "forget", tmp_path / "retain", (p, p))
