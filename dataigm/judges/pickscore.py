"""``pickscore``: PickScore (yuvalkirstain/PickScore_v1, a CLIP ViT-H/14 fine-tuned on Pick-a-Pic preferences).

The published scoring (the model card's ``calc_probs``, and HUB ``source/quality/evaluation.py``
``evaluate_pickscore``): the processor of ``laion/CLIP-ViT-H-14-laion2B-s32B-b79K`` (transformers'
``CLIPProcessor``: its image processor, and the text ``padding=True, truncation=True, max_length=77``),
``get_image_features`` and ``get_text_features`` L2-normalised, and the score ``logit_scale.exp() * text @ image``
(about 18 to 24 for real images; HUB reports its mean per method). The model runs through transformers' ``CLIPModel``
from safetensors; preprocessing is transformers' own, as in the reference.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

from dataigm.judges.registry import JudgeKind, JudgeOptions, JudgeSpec, NoName, register_judge
from dataigm.judges.scoring import ScoreJudge, check_texts

PICKSCORE_MODEL = "yuvalkirstain/PickScore_v1"
PICKSCORE_PROCESSOR = "laion/CLIP-ViT-H-14-laion2B-s32B-b79K"
PICKSCORE_REFERENCE = ("yuvalkirstain/PickScore_v1 model card (calc_probs); ml-postech/HUB source/quality/evaluation.py "
                       "(evaluate_pickscore)")


def _processor_location(model: str, processor: str | None) -> str:
    if processor:
        return processor
    folder = Path(model.removeprefix("local-dir:")).expanduser()
    has_processor = any((folder / name).is_file() for name in ("preprocessor_config.json", "processor_config.json"))
    return str(folder) if has_processor else PICKSCORE_PROCESSOR


class PickScoreJudge(ScoreJudge):
    """PickScore of each image with its text: ``logit_scale.exp() * cos(text, image)``."""

    name = "pickscore"

    def __init__(self, model: str | None = None, *, concept: str | None = None, settings: dict[str, Any] | None = None,
                 device: str | None = None) -> None:
        import torch
        from transformers import AutoProcessor, CLIPModel

        from dataigm.core.devices import pick_device
        from dataigm.judges.clip import ClipLoadError, ClipPreprocess

        settings = dict(settings or {})
        self._init_decision("pickscore", concept, settings, None)
        self.model_spec = str(model or PICKSCORE_MODEL).removeprefix("local-dir:").removeprefix("hf-hub:")
        self.processor_spec = _processor_location(self.model_spec, settings.get("processor"))
        self.device = pick_device(device)
        try:
            self.model = CLIPModel.from_pretrained(self.model_spec, use_safetensors=True, dtype=torch.float32).eval().to(self.device)
            self.processor = AutoProcessor.from_pretrained(self.processor_spec)
        except OSError as e:
            raise ClipLoadError(f"PickScore model {self.model_spec!r} or processor {self.processor_spec!r} could not be loaded "
                                f"({type(e).__name__}: {str(e).splitlines()[0][:200]}); give local folders saved with save_pretrained") from None
        self.preprocess = ClipPreprocess(self.processor.image_processor)

    def score(self, batch: Any, texts: Sequence[str]) -> list[float]:
        import torch

        from dataigm.judges.clip import projected

        check_texts(batch, texts)
        tok = self.processor(text=list(texts), padding=True, truncation=True, max_length=77, return_tensors="pt").to(self.device)
        with torch.inference_mode():
            image = projected(self.model.get_image_features(pixel_values=batch.to(self.device)))
            image = image / torch.norm(image, dim=-1, keepdim=True)
            text = projected(self.model.get_text_features(**tok))
            text = text / torch.norm(text, dim=-1, keepdim=True)
            scores = self.model.logit_scale.exp() * (text * image).sum(-1)
        return scores.float().cpu().tolist()

    def describe(self) -> dict[str, Any]:
        return PickScoreKind.description(
            self, "transformers", spec=f"pickscore@{self.model_spec}", model=self.model_spec, processor=self.processor_spec,
            text=self.text, min_score=self.min_score, rule=self.decision(), score="logit_scale.exp() * cos(text, image)",
            reference=PICKSCORE_REFERENCE)


@register_judge
class PickScoreKind(JudgeKind):
    kind = "pickscore"
    syntax = "pickscore[@MODEL]"
    decides = ("a score, not a decision: PickScore = logit_scale.exp() * cos(CLIP-H text, CLIP-H image) of each image with its "
               "prompt (the quality table's mean per method); positive only with settings min_score")
    reference = PICKSCORE_REFERENCE
    weights = f"{PICKSCORE_MODEL} (transformers CLIPModel, safetensors) with the processor of {PICKSCORE_PROCESSOR}, or local folders"
    licence = "MIT (PickScore_v1 model card); processor: MIT (LAION CLIP-ViT-H-14)"
    options = frozenset({"concept", "model"})
    settings = frozenset({"processor", "prompt", "min_score"})
    names = NoName("pickscore[@MODEL]")

    @classmethod
    def from_spec(cls, spec: JudgeSpec, options: JudgeOptions) -> Any:
        return PickScoreJudge(cls.weights_location(spec, options), concept=options.concept, settings=options.settings, device=options.device)

    @classmethod
    def offline(cls) -> str:
        from dataigm.judges.clip import hub_cached

        return "yes (Hub cache)" if hub_cached(PICKSCORE_MODEL) else f"no: needs {PICKSCORE_MODEL} (Hub cache or a local folder)"
