"""clip:mace and clip:spm: MACE's and SPM's CLIP zero-shot computations rebuilt here from their code on a tiny CLIP
built from config, against the judges, on real photos."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from dataigm.cli import main
from dataigm.core.errors import DataigmError
from dataigm.generate.tiny import build_tiny_clip
from dataigm.judges.clip import projected
from dataigm.judges.clip_zero_shot import MACE_OBJECTS
from dataigm.judges.registry import check_judge_spec, create_judge
from clip_references import openai_pixels
from real_weights import skimage_photo

PHOTOS = ("astronaut", "chelsea", "coffee", "rocket", "camera", "retina", "colorwheel", "moon", "brick", "grass", "coins", "logo")


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> dict:
    from transformers import CLIPModel, CLIPProcessor

    folder = build_tiny_clip(tmp_path_factory.mktemp("clip") / "tiny-clip", seed=5)  # a seed whose answers are mixed
    return {"clip": folder, "images": [skimage_photo(n) for n in PHOTOS],
            "model": CLIPModel.from_pretrained(folder).eval(), "processor": CLIPProcessor.from_pretrained(folder)}


def _encode(setup: dict, texts: list[str], truncate: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
    model, proc = setup["model"], setup["processor"]
    with torch.no_grad():
        pixels = openai_pixels(setup["images"], model.config.vision_config.image_size)  # clip.load's preprocess
        image_features = projected(model.get_image_features(pixel_values=pixels)).float()
        tok = proc.tokenizer(texts, padding=True, truncation=truncate, max_length=77, return_tensors="pt")
        text_features = projected(model.get_text_features(**tok)).float()
    return image_features, text_features


def mace_probs(setup: dict, object_ls: list[str]) -> np.ndarray:
    """MACE metrics/evaluate_clip_accuracy.py calculate_mean_prob, per image."""
    texts_ls = [f'a photo of the {object}' for object in object_ls]
    image_features, text_features = _encode(setup, texts_ls)
    image_features /= image_features.norm(dim=-1, keepdim=True)
    text_features /= text_features.norm(dim=-1, keepdim=True)
    return (100.0 * image_features @ text_features.T).softmax(dim=-1).numpy()


def spm_scores(setup: dict, texts: str, w: float = 2.5) -> np.ndarray:
    """SPM src/evaluation/eval_util.py clip_score (not cross_matching), one text for every image."""
    images_feats, texts_feats = _encode(setup, [texts], truncate=True)
    images_feats = images_feats / images_feats.norm(dim=1, p=2, keepdim=True)
    texts_feats = texts_feats / texts_feats.norm(dim=1, p=2, keepdim=True)
    score = w * images_feats * texts_feats
    return score.sum(dim=1).clamp(min=0).numpy()


def test_mace_equals_calculate_mean_prob(setup: dict, tmp_path: Path) -> None:
    probs = mace_probs(setup, list(MACE_OBJECTS))
    top = probs.argmax(axis=1)
    target = MACE_OBJECTS[int(np.bincount(top).argmax())]  # the object the tiny CLIP picks most: a mixed answer
    k = MACE_OBJECTS.index(target)
    assert 0 < (top == k).sum() < len(top)
    j = create_judge("clip:mace", concept=target, clip_model=str(setup["clip"]), device="cpu")
    verdicts = j.predict(j.collate([j.preprocess(im) for im in setup["images"]]))
    assert [v.positive_score for v in verdicts] == pytest.approx(probs[:, k].tolist(), abs=1e-5)
    assert [v.positive for v in verdicts] == (top == k).tolist()
    assert j.summarize(verdicts)["mean_target_probability"] == pytest.approx(float(probs[:, k].mean()), abs=1e-6)  # MACE's number
    from dataigm.core.atomic import sha256_file

    assert j.describe()["texts"][0] == "a photo of the airplane"
    assert j.describe()["weights_sha256"] == sha256_file(setup["clip"] / "model.safetensors")


def test_spm_equals_clip_eval_by_image(setup: dict, tmp_path: Path) -> None:
    concept = "church"
    ablated, anchor = spm_scores(setup, concept), spm_scores(setup, "")
    accurate = anchor < ablated
    assert 0 < accurate.sum() < len(accurate)
    j = create_judge("clip:spm", concept=concept, clip_model=str(setup["clip"]), device="cpu")
    verdicts = j.predict(j.collate([j.preprocess(im) for im in setup["images"]]))
    assert [v.positive for v in verdicts] == accurate.tolist()
    assert [v.positive_score for v in verdicts] == pytest.approx(ablated.tolist(), abs=1e-5)
    summary = j.summarize(verdicts)
    assert summary["clip_error_rate"] == pytest.approx(1 - float(np.mean(accurate)))  # ClipEvaluator: all_cers = 1 - accs
    assert summary["clip_score"] == pytest.approx(float(np.mean(ablated)), abs=1e-5)

    folder = tmp_path / "photos"
    folder.mkdir()
    for name, im in zip(PHOTOS, setup["images"]):
        im.save(folder / f"{name}.png")
    out = tmp_path / "summary.json"
    assert main(["judge", str(folder), "--judge", "clip:spm", "--concept", concept, "--clip-model", str(setup["clip"]),
                 "--summary", str(out), "--workers", "0"]) == 0
    s = json.loads(out.read_text())
    assert s["clip_error_rate"] == pytest.approx(summary["clip_error_rate"]) and s["detector"]["reference"].startswith("Con6924/SPM")


def test_spec_errors(setup: dict) -> None:
    assert check_judge_spec("clip") == "clip" and check_judge_spec("clip:spm@/some/clip") == "clip"
    with pytest.raises(DataigmError, match="unknown clip variant 'hub'; valid: mace, spm"):
        check_judge_spec("clip:hub")
    with pytest.raises(DataigmError, match="need concept=NAME"):
        create_judge("clip:mace")
    with pytest.raises(DataigmError, match="concept 'church' is not a candidate"):
        create_judge("clip:mace", concept="church", clip_model=str(setup["clip"]))
    j = create_judge("clip:mace", concept="church", clip_model=str(setup["clip"]), settings={"candidates": ["church", "tench", "parachute"]})
    assert j.label_names == ["church", "tench", "parachute"]
