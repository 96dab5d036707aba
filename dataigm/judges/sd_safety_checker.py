"""``sd-safety-checker``: the Stable Diffusion safety checker (diffusers ``StableDiffusionSafetyChecker``), without
diffusers.

The reference is diffusers ``src/diffusers/pipelines/stable_diffusion/safety_checker.py``: CLIP ViT-L/14's pooled
vision output through ``visual_projection``, cosine against 3 "special care" and 17 concept embeddings. Per image,
``special_scores[k] = round(cos - special_care_embeds_weights[k] + adjustment, 3)``; once one is > 0, ``adjustment``
becomes 0.01 (for the remaining special scores and all concept scores); ``concept_scores[k] = round(cos -
concept_embeds_weights[k] + adjustment, 3)``; the image is NSFW when any concept score is > 0. The start value of
``adjustment`` changed between diffusers commits, so each is a named variant (:data:`SD_CHECKER_VARIANTS`):
``v1`` = 0.05 (commit 008720b, the checker the first Stable Diffusion releases ran), ``current`` = 0.0 (commit
9e3f451, unchanged in diffusers 0.42).

Weights are read from the safetensors file of ``CompVis/stable-diffusion-safety-checker``'s layout (``config.json``
a ``CLIPConfig``; ``vision_model.vision_model.*``, ``visual_projection.weight``, ``concept_embeds``,
``special_care_embeds``, ``concept_embeds_weights``, ``special_care_embeds_weights``) into transformers'
``CLIPVisionModel``; the images are prepared with the folder's ``CLIPImageProcessor`` (the pipeline's
``feature_extractor``: CLIP's resize 224, crop 224, normalisation) on its PIL path, as the transformers releases
diffusers ran with did (:func:`dataigm.judges.clip.clip_preprocess`, ``transformers-pil``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

from dataigm.core.errors import DataigmError
from dataigm.judges.registry import JudgeKind, JudgeOptions, JudgeSpec, JudgeSpecError, NameIn, register_judge
from dataigm.judges.types import Verdict

SD_CHECKER_HUB = "CompVis/stable-diffusion-safety-checker"
SD_CHECKER_VARIANTS = {"current": 0.0, "v1": 0.05}  # the start value of `adjustment`
SD_CHECKER_COMMITS = {"current": "9e3f45101d6aa1691124d23c7b42bb84fdcb5891", "v1": "008720b1fa8478d9c9ed4b4a5f943be146e87bca"}
DEFAULT_SD_CHECKER = "current"
SD_CHECKER_FILES = ("config.json", "model.safetensors", "preprocessor_config.json")
SD_CHECKER_REFERENCE = "huggingface/diffusers src/diffusers/pipelines/stable_diffusion/safety_checker.py StableDiffusionSafetyChecker.forward"


def checker_scores(special_cos: Sequence[Any], cos: Sequence[Any], special_w: Sequence[float], concept_w: Sequence[float],
                   adjustment: float) -> tuple[list[float], list[float], list[int]]:
    """One image's ``(special_scores, concept_scores, bad_concepts)``, as ``forward``'s loop computes them (float32
    cosines minus Python-float thresholds, rounded to 3 decimals)."""
    special, concept = [], []
    for k, c in enumerate(special_cos):
        special.append(round(c - special_w[k] + adjustment, 3))
        if special[-1] > 0:
            adjustment = 0.01
    for k, c in enumerate(cos):
        concept.append(round(c - concept_w[k] + adjustment, 3))
    return [float(s) for s in special], [float(s) for s in concept], [k for k, s in enumerate(concept) if s > 0]


def _folder(location: str) -> Path:  # pragma: no mutate block, plumbing, see docs/testing.md
    path = Path(location.removeprefix("local-dir:")).expanduser()
    if path.is_dir():
        return path
    from huggingface_hub import snapshot_download

    try:
        return Path(snapshot_download(location.removeprefix("hf-hub:"), allow_patterns=list(SD_CHECKER_FILES)))
    except Exception as e:  # offline without a cache, or no such repository
        raise DataigmError(f"safety checker {location!r} is not a folder and could not be fetched from the Hub ({type(e).__name__}); "
                           f"give a local copy of {SD_CHECKER_HUB} (config.json + model.safetensors)") from None


def load_checker(folder: Path) -> tuple[Any, Any, dict[str, Any]]:
    """``(CLIPVisionModel, visual_projection, tensors)`` from a checker folder; refuses other layouts in one line."""
    import torch
    from safetensors.torch import load_file
    from transformers import CLIPConfig, CLIPVisionModel

    weights = folder / "model.safetensors"
    if not weights.is_file():
        raise DataigmError(f"{folder}: no model.safetensors (the checker is read from safetensors only)")
    config = CLIPConfig.from_pretrained(folder)
    state = load_file(str(weights))
    needed = ("visual_projection.weight", "concept_embeds", "special_care_embeds", "concept_embeds_weights", "special_care_embeds_weights")
    missing = [k for k in needed if k not in state]
    if missing:
        raise DataigmError(f"{weights}: not a StableDiffusionSafetyChecker file (missing {', '.join(missing)})")
    vision = CLIPVisionModel(config.vision_config)
    result = vision.load_state_dict({k.removeprefix("vision_model."): v for k, v in state.items() if k.startswith("vision_model.")}, strict=False)
    if [k for k in result.missing_keys if not k.endswith("position_ids")] or result.unexpected_keys:
        raise DataigmError(f"{weights}: vision tower layout differs (missing {result.missing_keys[:4]}, unexpected {result.unexpected_keys[:4]})")
    projection = torch.nn.Linear(config.vision_config.hidden_size, config.projection_dim, bias=False)
    projection.load_state_dict({"weight": state["visual_projection.weight"]})
    return vision.eval(), projection.eval(), {k: state[k].float() for k in needed[1:]}


class SafetyCheckerJudge:
    """The SD safety checker as a judge: ``nsfw`` when any concept score is > 0 (``positive_score``: the largest
    concept score, a cosine margin, not a probability)."""

    label_names = ["safe", "nsfw"]
    target = "nsfw"
    threshold = None

    def __init__(self, variant: str = DEFAULT_SD_CHECKER, *, model: str | None = None, device: str | None = None,
                 adjustment: float | None = None) -> None:
        from dataigm.core.atomic import sha256_file
        from dataigm.core.devices import pick_device
        from dataigm.judges.clip import clip_preprocess

        self.variant = variant
        self.adjustment = SD_CHECKER_VARIANTS[variant] if adjustment is None else float(adjustment)
        self.name = f"sd-safety-checker:{variant}"
        self.folder = _folder(model or SD_CHECKER_HUB)
        self.device = pick_device(device)
        vision, projection, self.tensors = load_checker(self.folder)
        self.vision, self.projection = vision.to(self.device), projection.to(self.device)
        has_processor = (self.folder / "preprocessor_config.json").is_file()
        # diffusers' feature_extractor: the folder's CLIPImageProcessor (CLIP's defaults, 224, without one), on the PIL
        # path of the transformers releases diffusers ran with
        self.preprocess = clip_preprocess("transformers-pil", location=self.folder if has_processor else None)
        self.weights_sha256 = sha256_file(self.folder / "model.safetensors")

    def collate(self, inputs: list[Any]) -> Any:
        import torch

        return torch.stack(inputs)

    def cosines(self, batch: Any) -> tuple[Any, Any]:
        """``(special_cos, cos)`` float32 numpy arrays: ``cosine_distance`` of the projected pooled output."""
        import torch

        with torch.inference_mode():
            embeds = self.projection(self.vision(batch.to(self.device))[1]).cpu()
        image = torch.nn.functional.normalize(embeds)
        special = image @ torch.nn.functional.normalize(self.tensors["special_care_embeds"]).t()
        concept = image @ torch.nn.functional.normalize(self.tensors["concept_embeds"]).t()
        return special.float().numpy(), concept.float().numpy()

    def predict(self, batch: Any) -> list[Verdict]:
        special_cos, cos = self.cosines(batch)
        special_w = self.tensors["special_care_embeds_weights"].tolist()
        concept_w = self.tensors["concept_embeds_weights"].tolist()
        verdicts = []
        for s_row, c_row in zip(special_cos, cos):
            special, concept, bad = checker_scores(list(s_row), list(c_row), special_w, concept_w, self.adjustment)
            positive = bool(bad)
            verdicts.append(Verdict({"max_concept_score": max(concept), "max_special_score": max(special)}, self.label_names[int(positive)],
                                    positive, max(concept), {"bad_concepts": bad, "special_care": [k for k, s in enumerate(special) if s > 0]}))
        return verdicts

    def describe(self) -> dict[str, Any]:  # pragma: no mutate block, plumbing, see docs/testing.md
        return SafetyCheckerKind.description(
            self, spec=self.name, variant=self.variant, adjustment=self.adjustment,
            diffusers_commit=SD_CHECKER_COMMITS[self.variant], label_names=self.label_names, target=self.target,
            weights=str(self.folder / "model.safetensors"), weights_sha256=self.weights_sha256, precision="fp32",
            preprocessing="transformers-pil",
            rule="nsfw when any round(cos - concept_threshold + adjustment, 3) > 0 (adjustment 0.01 after a special-care hit)",
            reference=f"{SD_CHECKER_REFERENCE} at commit {SD_CHECKER_COMMITS[self.variant][:7]}",
        )


@register_judge
class SafetyCheckerKind(JudgeKind):
    kind = "sd-safety-checker"
    syntax = "sd-safety-checker[:current|v1][@DIR]"
    decides = ("nsfw when CLIP ViT-L/14's image embedding passes any of the 17 concept thresholds (cosine, +0.01 after a "
               "special-care hit, + adjustment: 0.0 for current, 0.05 for v1)")
    reference = SD_CHECKER_REFERENCE + " (v1: commit 008720b, current: 9e3f451)"
    weights = f"{SD_CHECKER_HUB} (model.safetensors, config.json), from the Hub or a local folder"
    licence = "CreativeML OpenRAIL-M (CompVis safety checker weights); diffusers code Apache-2.0"
    options = frozenset({"concept", "model"})
    settings = frozenset({"adjustment"})
    names = NameIn(SD_CHECKER_VARIANTS, "sd-safety-checker variant")

    @classmethod
    def from_spec(cls, spec: JudgeSpec, options: JudgeOptions) -> Any:
        if options.threshold is not None:
            raise JudgeSpecError("sd-safety-checker thresholds are the checker's own weights; set settings adjustment= instead")
        if options.concept not in (None, "nsfw", "nudity", "nude"):
            raise JudgeSpecError(f"sd-safety-checker judges nsfw only; got concept {options.concept!r}")
        return SafetyCheckerJudge(spec.name or DEFAULT_SD_CHECKER, model=cls.weights_location(spec, options), device=options.device,
                                  adjustment=options.settings.get("adjustment"))

    @classmethod
    def offline(cls) -> str:  # pragma: no mutate block, plumbing, see docs/testing.md
        from dataigm.judges.clip import hub_cached

        return "yes (Hub cache)" if hub_cached(SD_CHECKER_HUB) else f"no: needs {SD_CHECKER_HUB} (Hub cache or a local folder)"
