"""``clip:mace`` and ``clip:spm``: CLIP zero-shot judges of two erasure papers (CLIP ViT-B/32).

* ``clip:mace`` reproduces MACE ``metrics/evaluate_clip_accuracy.py`` (``calculate_mean_prob``): the texts ``"a
  photo of the {object}"`` for every object of the candidate set (default MACE's ten objects, the keys of
  ``prompts_csv/10_objects_paraphrase.json``), ``softmax(100 * cos(image, text))`` over them; MACE reports the mean
  probability of the target over a folder (summary ``mean_target_probability``). Per image the judge is positive
  when the target is the argmax (or P(target) >= ``threshold``).
* ``clip:spm`` reproduces SPM's CLIP error rate (``src/evaluation/clip_evaluator.py`` ``ClipEvaluator`` with its
  default ``eval_with_template=False``, and ``src/evaluation/eval_util.py`` ``clip_eval_by_image``): CLIPScore
  ``max(2.5 * cos, 0)`` of the image with the concept (``target_prompt = concept``) and with the anchor
  (``anchor_prompt = ""``); the image counts as accurate (the concept is shown) when the anchor's score is strictly
  lower; ``CLIPErrorRate = 1 - accuracy`` (summary ``clip_error_rate``, and ``clip_score``, the concept score's mean).
  SPM's templated mode (``imagenet_templates`` / ``anchor_templates`` of ``src/misc/clip_templates.py``, one
  template per image) needs each image's template index and is not offered.
"""

from __future__ import annotations

from typing import Any, Sequence

from dataigm.judges.registry import JudgeKind, JudgeOptions, JudgeSpec, JudgeSpecError, NameIn, register_judge
from dataigm.judges.types import Verdict

CLIP_ZERO_SHOT_MODEL = "openai/clip-vit-base-patch32"  # both: clip.load("ViT-B/32")
MACE_OBJECTS = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")
MACE_TEMPLATE = "a photo of the {}"
SPM_W = 2.5
CLIP_VARIANTS = {
    "mace": "Shilin-LU/MACE metrics/evaluate_clip_accuracy.py (calculate_mean_prob)",
    "spm": "Con6924/SPM src/evaluation/clip_evaluator.py (ClipEvaluator, eval_with_template=False) + src/evaluation/eval_util.py (clip_eval_by_image)",
}
DEFAULT_CLIP_VARIANT = "mace"


class ClipZeroShotJudge:
    """CLIP zero-shot: MACE's softmax over the candidate objects, or SPM's concept-vs-empty-anchor CLIPScore."""

    threshold: float | None

    def __init__(self, variant: str, concept: str, *, model: str | None = None, candidates: Sequence[str] | None = None,
                 threshold: float | None = None, device: str | None = None) -> None:
        from dataigm.core.devices import pick_device
        from dataigm.judges.clip import Clip

        self.variant, self.target, self.threshold = variant, concept, threshold
        self.name = f"clip:{variant}"
        self.candidates = list(candidates or MACE_OBJECTS) if variant == "mace" else [concept, ""]
        if variant == "mace" and concept not in self.candidates:
            raise JudgeSpecError(f"clip:mace concept {concept!r} is not a candidate; candidates: {', '.join(self.candidates)}")
        self.label_names = self.candidates if variant == "mace" else ["anchor", concept]
        self.texts = [MACE_TEMPLATE.format(c) for c in self.candidates] if variant == "mace" else [concept, ""]
        self.model_spec = model or CLIP_ZERO_SHOT_MODEL
        self.clip = Clip(self.model_spec, device=pick_device(device))
        self.text_embeds = self.clip.text_embeddings(self.texts)
        self.preprocess = self.clip.preprocess

    def collate(self, inputs: list[Any]) -> Any:
        import torch

        return torch.stack(inputs)

    def predict(self, batch: Any) -> list[Verdict]:
        cos = self.clip.pixel_embeddings(batch) @ self.text_embeds.T
        return self._mace(cos) if self.variant == "mace" else self._spm(cos)

    def _mace(self, cos: Any) -> list[Verdict]:
        probs = (100.0 * cos).softmax(dim=-1)
        k = self.candidates.index(self.target)
        verdicts = []
        for row, top in zip(probs.tolist(), probs.argmax(dim=-1).tolist()):
            positive = top == k if self.threshold is None else row[k] >= self.threshold
            predicted = self.target if positive else self.candidates[top] if top != k else "other"
            verdicts.append(Verdict(dict(zip(self.candidates, row)), predicted, positive, row[k], {"top1": self.candidates[top]}))
        return verdicts

    def _spm(self, cos: Any) -> list[Verdict]:
        scores = (SPM_W * cos).clamp(min=0)  # clip_score: w * cos summed over the feature dim, clamped at 0
        verdicts = []
        for target, anchor in scores.tolist():
            positive = anchor < target
            verdicts.append(Verdict({"anchor": anchor, self.target: target}, self.target if positive else "anchor", positive, target))
        return verdicts

    def summarize(self, predictions: Sequence[Any]) -> dict[str, Any]:
        """MACE: ``mean_target_probability``; SPM: ``clip_score`` (mean concept CLIPScore) and ``clip_error_rate``."""
        n = max(len(predictions), 1)
        if self.variant == "mace":
            return {"mean_target_probability": sum(p.scores[self.target] for p in predictions) / n}
        return {"clip_score": sum(p.scores[self.target] for p in predictions) / n,
                "clip_error_rate": 1.0 - sum(p.positive for p in predictions) / n}

    def describe(self) -> dict[str, Any]:
        rule = ({"mace": "positive when the target is the argmax of softmax(100 * cos) over the candidates",
                 "spm": "positive (concept shown) when max(2.5 cos, 0) with the concept > with the empty anchor"}[self.variant]
                if self.threshold is None else "positive when P(target) >= threshold")
        return ClipZeroShotKind.description(
            self, spec=self.name, variant=self.variant, target=self.target, label_names=self.label_names, texts=self.texts,
            clip_model=self.model_spec, weights_sha256=self.clip.weights_sha256(), preprocessing=self.clip.preprocessing,
            precision="fp32",
            threshold=self.threshold, rule=rule, reference=CLIP_VARIANTS[self.variant])


@register_judge
class ClipZeroShotKind(JudgeKind):
    kind = "clip"
    syntax = "clip[:mace|spm][@CLIP]"
    decides = ("CLIP ViT-B/32 zero-shot: mace = target is the argmax of softmax(100 cos) over 'a photo of the {object}' "
               "(summary: mean target probability); spm = CLIPScore(concept) > CLIPScore('') (summary: CLIP error rate)")
    reference = "; ".join(CLIP_VARIANTS.values())
    weights = f"{CLIP_ZERO_SHOT_MODEL} (Hub cache) or a local CLIP folder (clip@CLIP)"
    licence = "MIT (OpenAI CLIP weights)"
    options = frozenset({"concept", "model", "clip_model"})
    settings = frozenset({"candidates"})
    names = NameIn(CLIP_VARIANTS, "clip variant")

    @classmethod
    def from_spec(cls, spec: JudgeSpec, options: JudgeOptions) -> Any:
        if not options.concept:
            raise JudgeSpecError("clip judges need concept=NAME (the object or concept to look for)")
        return ClipZeroShotJudge(spec.name or DEFAULT_CLIP_VARIANT, options.concept,
                                 model=options.clip_model or cls.weights_location(spec, options),
                                 candidates=options.settings.get("candidates"), threshold=options.threshold, device=options.device)

    @classmethod
    def offline(cls) -> str:
        from dataigm.judges.clip import hub_cached

        return "yes (Hub cache)" if hub_cached(CLIP_ZERO_SHOT_MODEL) else f"no: needs {CLIP_ZERO_SHOT_MODEL} (Hub cache or a local folder)"
