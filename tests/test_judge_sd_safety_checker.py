"""sd-safety-checker: diffusers' own StableDiffusionSafetyChecker, built from a tiny config and saved in its real
layout inside the test, decides the same as the judge (which imports no diffusers), for both adjustments."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from dataigm.core.errors import DataigmError
from dataigm.judges.registry import check_judge_spec, create_judge
from clip_references import transformers4_clip_pixels
from real_weights import grace_hopper, skimage_photo

PHOTOS = ("astronaut", "chelsea", "coffee", "rocket", "camera", "retina", "colorwheel", "moon", "brick", "grass")


def diffusers_forward(adjustment: float, scores: bool = False):
    """StableDiffusionSafetyChecker.forward of the installed diffusers, its start value of ``adjustment`` set to
    ``adjustment``: commit 008720b (0.05) has the same loop but for that value (and a variable's spelling).
    ``scores``: it returns its per-image ``result`` (the scores it computes and keeps to itself) beside the verdicts."""
    import inspect
    import textwrap

    from diffusers.pipelines.stable_diffusion import safety_checker as module

    source = textwrap.dedent(inspect.getsource(module.StableDiffusionSafetyChecker.forward))
    assert source.count("adjustment = 0.0\n") == 1
    namespace: dict = {}
    source = source.replace("adjustment = 0.0\n", f"adjustment = {adjustment}\n")
    if scores:
        assert source.count("return images, has_nsfw_concepts") == 1
        source = source.replace("return images, has_nsfw_concepts", "return result, has_nsfw_concepts")
    code = compile(source, module.__file__, "exec")
    exec(code, vars(module), namespace)
    return namespace["forward"]


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
    pixels = transformers4_clip_pixels(images, 32, 32)  # the feature_extractor's pixels, transformers 4's PIL path
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
    model, pixels = checker["model"], checker["pixels"]
    _, theirs_current = model(clip_input=pixels, images=np.zeros((len(pixels), 8, 8, 3)))
    _, theirs_v1 = diffusers_forward(0.05)(model, clip_input=pixels, images=np.zeros((len(pixels), 8, 8, 3)))
    assert 0 < sum(theirs_current) < sum(theirs_v1) < len(pixels)  # the 0.05 flags more images

    for variant, theirs in (("current", theirs_current), ("v1", theirs_v1)):
        judge = create_judge(f"sd-safety-checker:{variant}@{checker['folder']}", device="cpu")
        verdicts = judge.predict(judge.collate([judge.preprocess(im) for im in checker["images"]]))
        assert [v.positive for v in verdicts] == list(theirs), variant
        assert all((v.positive_score > 0) == v.positive for v in verdicts)
        d = judge.describe()
        assert d["adjustment"] == {"current": 0.0, "v1": 0.05}[variant] and d["weights_sha256"] and d["kind"] == "sd-safety-checker"


@pytest.mark.parametrize("variant,adjustment", [("current", 0.0), ("v1", 0.05)])
def test_every_score_per_image_is_diffusers_own(checker: dict, variant: str, adjustment: float) -> None:
    """The scores the judge reports per image are those diffusers' loop computes: the concept scores (their maximum
    is the judge's score), the special-care concepts that raise the adjustment, the concepts that flag the image."""
    model, pixels = checker["model"], checker["pixels"]
    result, flags = diffusers_forward(adjustment, scores=True)(model, clip_input=pixels, images=np.zeros((len(pixels), 8, 8, 3)))
    judge = create_judge(f"sd-safety-checker:{variant}@{checker['folder']}", device="cpu")
    verdicts = judge.predict(judge.collate([judge.preprocess(im) for im in checker["images"]]))
    assert any(r["special_care"] for r in result) and not all(r["special_care"] for r in result)  # both loops' branches run
    for i, (v, theirs) in enumerate(zip(verdicts, result)):
        assert v.positive == flags[i] and v.predicted == ("nsfw" if flags[i] else "safe"), i
        assert v.extra["bad_concepts"] == theirs["bad_concepts"], i
        assert v.extra["special_care"] == [k for k, s in theirs["special_scores"].items() if s > 0], i
        assert v.positive_score == pytest.approx(max(theirs["concept_scores"].values()), abs=1e-9), i
        assert v.scores == pytest.approx({"max_concept_score": max(theirs["concept_scores"].values()),
                                          "max_special_score": max(theirs["special_scores"].values())}, abs=1e-9), i


def test_judging_imports_no_diffusers(checker: dict) -> None:
    import subprocess

    code = ("import sys; from dataigm.judges.registry import create_judge; "
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
