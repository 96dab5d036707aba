"""sd-safety-checker: diffusers' own StableDiffusionSafetyChecker, built from a tiny config and saved in its real
layout inside the test, decides the same as the judge (which imports no diffusers), for both adjustments."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from dataigm.core.errors import DataigmError
from dataigm.judge.registry import check_judge_spec, create_judge
from real_weights import grace_hopper, skimage_photo

PHOTOS = ("astronaut", "chelsea", "coffee", "rocket", "camera", "retina", "colorwheel", "moon", "brick", "grass")


def v1_loop(special_cos_dist, cos_dist, special_w, concept_w) -> list[bool]:
    """StableDiffusionSafetyChecker.forward at diffusers commit 008720b (adjustment = 0.05), its loop as written."""
    result = []
    for i in range(len(cos_dist)):
        result_img = {"special_scores": {}, "special_care": [], "concept_scores": {}, "bad_concepts": []}
        adjustment = 0.05
        for concet_idx in range(len(special_cos_dist[0])):
            concept_cos = special_cos_dist[i][concet_idx]
            concept_threshold = special_w[concet_idx].item()
            result_img["special_scores"][concet_idx] = round(concept_cos - concept_threshold + adjustment, 3)
            if result_img["special_scores"][concet_idx] > 0:
                result_img["special_care"].append({concet_idx, result_img["special_scores"][concet_idx]})
                adjustment = 0.01
        for concet_idx in range(len(cos_dist[0])):
            concept_cos = cos_dist[i][concet_idx]
            concept_threshold = concept_w[concet_idx].item()
            result_img["concept_scores"][concet_idx] = round(concept_cos - concept_threshold + adjustment, 3)
            if result_img["concept_scores"][concet_idx] > 0:
                result_img["bad_concepts"].append(concet_idx)
        result.append(result_img)
    return [len(r["bad_concepts"]) > 0 for r in result]


@pytest.fixture(scope="module")
def checker(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """diffusers' checker from a tiny CLIPConfig (seeded), thresholds set from the photos' own cosines so that the
    decisions are mixed, saved with save_pretrained (model.safetensors + config.json) beside a CLIPImageProcessor."""
    from diffusers.pipelines.stable_diffusion.safety_checker import StableDiffusionSafetyChecker, cosine_distance
    from PIL import Image
    from transformers import CLIPConfig, CLIPImageProcessor

    config = CLIPConfig(text_config={"hidden_size": 32, "intermediate_size": 37, "num_hidden_layers": 1, "num_attention_heads": 4},
                        vision_config={"hidden_size": 32, "intermediate_size": 37, "num_hidden_layers": 2, "num_attention_heads": 4,
                                       "image_size": 32, "patch_size": 8}, projection_dim=16)
    torch.manual_seed(0)
    model = StableDiffusionSafetyChecker(config).eval()
    with torch.no_grad():
        model.concept_embeds.normal_()
        model.special_care_embeds.normal_()
    processor = CLIPImageProcessor(size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32})
    images = [skimage_photo(n) for n in PHOTOS] + [Image.open(grace_hopper()).convert("RGB")]
    pixels = processor(images=images, return_tensors="pt")["pixel_values"]
    with torch.no_grad():
        embeds = model.visual_projection(model.vision_model(pixels)[1])
        cos = cosine_distance(embeds, model.concept_embeds)
        special = cosine_distance(embeds, model.special_care_embeds)
        model.concept_embeds_weights.copy_(cos.quantile(0.93, dim=0))  # about one image in 14 passes each concept
        model.special_care_embeds_weights.copy_(special.quantile(0.8, dim=0))
    folder = tmp_path_factory.mktemp("checker") / "safety_checker"
    model.save_pretrained(folder)
    processor.save_pretrained(folder)
    return {"model": model, "folder": folder, "images": images, "pixels": pixels}


def test_current_equals_diffusers_and_v1_equals_commit_008720b(checker: dict) -> None:
    from diffusers.pipelines.stable_diffusion.safety_checker import cosine_distance

    model, pixels = checker["model"], checker["pixels"]
    _, theirs_current = model(clip_input=pixels, images=np.zeros((len(pixels), 8, 8, 3)))
    with torch.no_grad():
        embeds = model.visual_projection(model.vision_model(pixels)[1])
        special = cosine_distance(embeds, model.special_care_embeds).cpu().float().numpy()
        cos = cosine_distance(embeds, model.concept_embeds).cpu().float().numpy()
    theirs_v1 = v1_loop(special, cos, model.special_care_embeds_weights, model.concept_embeds_weights)
    assert 0 < sum(theirs_current) < sum(theirs_v1) < len(pixels)  # the 0.05 flags more images

    for variant, theirs in (("current", theirs_current), ("v1", theirs_v1)):
        judge = create_judge(f"sd-safety-checker:{variant}@{checker['folder']}", device="cpu")
        verdicts = judge.predict(judge.collate([judge.preprocess(im) for im in checker["images"]]))
        assert [v.positive for v in verdicts] == list(theirs), variant
        assert all((v.positive_score > 0) == v.positive for v in verdicts)
        d = judge.describe()
        assert d["adjustment"] == {"current": 0.0, "v1": 0.05}[variant] and d["weights_sha256"] and d["kind"] == "sd-safety-checker"


def test_judging_imports_no_diffusers(checker: dict) -> None:
    import subprocess

    code = ("import sys; from dataigm.judge.registry import create_judge; "
            f"j = create_judge('sd-safety-checker@{checker['folder']}', device='cpu'); "
            "assert 'diffusers' not in sys.modules, 'diffusers imported'; print('ok')")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert out.stdout.strip() == "ok", out.stderr[-500:]


def test_spec_errors(tmp_path: Path) -> None:
    assert check_judge_spec("sd-safety-checker") == "sd-safety-checker" and check_judge_spec("sd-safety-checker:v1@/x") == "sd-safety-checker"
    with pytest.raises(DataigmError, match="unknown sd-safety-checker variant 'v2'; valid: current, v1"):
        check_judge_spec("sd-safety-checker:v2")
    with pytest.raises(DataigmError, match="thresholds are the checker's own weights"):
        create_judge("sd-safety-checker", threshold=0.2)
    (tmp_path / "config.json").write_text("{}")
    with pytest.raises(DataigmError, match="no model.safetensors"):
        create_judge(f"sd-safety-checker@{tmp_path}", device="cpu")
