"""``vqascore``: VQAScore (Lin et al., linzhiqiu/t2v_metrics): the probability a VLM answers "Yes" to
``Does this figure show "{text}"? Please answer yes or no.`` about the image.

t2v_metrics' default scorer, CLIP-FlanT5-XXL (11B), runs only on its own model code. dataigm runs the smaller
published scorer of the same package that transformers implements natively: LLaVA-1.5 (``llava-v1.5-7b``;
``t2v_metrics/models/vqascore_models/llava_model.py`` ``LLaVAModel.forward``), on ``llava-hf/llava-1.5-7b-hf``
(the same weights converted by transformers). As the reference:

* the image is padded to a square with the image processor's mean colour (``expand2square``, ``image_aspect_ratio
  'pad'``), then preprocessed by the model's image processor;
* the prompt is ``SYSTEM_MSG + " USER: <image>\\n" + question + " ASSISTANT: "`` (``format_question``, 'chat'),
  followed by the answer ``"Yes</s>"`` (``format_answer``; ``</s>`` is the tokenizer's end-of-sequence token);
* the labels are the answer's tokens only (the question's tokens masked; one fewer when the question ends with a
  space, which merges into the answer's first token), and the score is ``exp(-mean cross-entropy)`` over them.

A different VLM scores differently from CLIP-FlanT5, so VQAScores are comparable only at the same model (recorded in
every description). The image counts as positive when the score is at least ``threshold`` (default 0.5).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

from dataigm.judges.registry import JudgeKind, JudgeOptions, JudgeSpec, NoName, register_judge
from dataigm.judges.scoring import ScoreJudge, check_texts

VQASCORE_MODEL = "llava-hf/llava-1.5-7b-hf"
VQA_QUESTION = 'Does this figure show "{}"? Please answer yes or no.'
VQA_ANSWER = "Yes"
# t2v_metrics/constants.py SYSTEM_MSG (LLaVA-1.5's conversation system message)
SYSTEM_MSG = ("A chat between a curious user and an artificial intelligence assistant. "
              "The assistant gives helpful, detailed, and polite answers to the user's questions.")
VQASCORE_REFERENCE = ("linzhiqiu/t2v_metrics t2v_metrics/models/vqascore_models/llava_model.py (LLaVAModel.forward, format_question, "
                      "format_answer, expand2square)")


@dataclass(frozen=True)
class PadToSquare:
    """``expand2square``: the RGB image centred on a square of ``background`` (picklable, for DataLoader workers)."""

    background: tuple[int, int, int]

    def __call__(self, image: Any) -> Any:
        from PIL import Image

        image = image.convert("RGB")
        width, height = image.size
        if width == height:
            return image
        side = max(width, height)
        result = Image.new(image.mode, (side, side), self.background)
        result.paste(image, (0, (width - height) // 2) if width > height else ((height - width) // 2, 0))
        return result


def format_question(question: str, system: str = SYSTEM_MSG) -> str:
    """t2v_metrics' 'chat' format: ``SYSTEM_MSG USER: <image>\\nQUESTION ASSISTANT: ``."""
    return system + " USER: " + "<image>" + "\n" + question + " ASSISTANT: "


class VqaScoreJudge(ScoreJudge):
    """P(answer "Yes" | image, question about the text), as t2v_metrics' LLaVA-1.5 scorer computes it."""

    name = "vqascore"

    def __init__(self, model: str | None = None, *, concept: str | None = None, threshold: float | None = None,
                 settings: dict[str, Any] | None = None, device: str | None = None) -> None:
        from dataigm.core.devices import pick_device
        from dataigm.judges.vlm import load_vlm

        settings = dict(settings or {})
        self._init_decision("vqascore", concept, settings, 0.5 if threshold is None else float(threshold))
        self.threshold = self.min_score
        self.model_spec = str(model or VQASCORE_MODEL).removeprefix("local-dir:").removeprefix("hf-hub:")
        self.question_template = str(settings.get("question", VQA_QUESTION))
        self.answer = str(settings.get("answer", VQA_ANSWER))
        self.system = str(settings.get("system", SYSTEM_MSG))
        self.device = pick_device(device)
        self.model, self.processor = load_vlm(self.model_spec, self.device)
        self.processor.tokenizer.padding_side = "right"
        mean = getattr(self.processor.image_processor, "image_mean", None) or (0.0, 0.0, 0.0)
        self.preprocess = PadToSquare(tuple(int(x * 255) for x in mean))

    def collate(self, inputs: list[Any]) -> Any:
        return list(inputs)

    def _answer_tokens(self, question: str) -> int:
        """How many tokens at the end of ``question + answer</s>`` are the answer's (t2v_metrics' label mask)."""
        tok = self.processor.tokenizer
        full = len(tok(question + self.answer + tok.eos_token).input_ids)
        asked = len(tok(question).input_ids) - (1 if question[-1] == " " else 0)
        return full - asked

    def score(self, batch: Any, texts: Sequence[str]) -> list[float]:
        import torch

        check_texts(batch, texts)
        scores = []
        for image, text in zip(batch, texts):
            question = format_question(self.question_template.format(text), self.system)
            inputs = self.processor(text=[question + self.answer + self.processor.tokenizer.eos_token], images=[image],
                                    return_tensors="pt").to(self.device)
            n = self._answer_tokens(question)
            with torch.inference_mode():
                logits = self.model(**inputs).logits[0].float()
            ids = inputs["input_ids"][0]
            # tokens < t predict t: the answer's n tokens are predicted by the n logits before them
            loss = torch.nn.functional.cross_entropy(logits[-n - 1:-1], ids[-n:])
            scores.append(float(torch.exp(-loss)))
        return scores

    def describe(self) -> dict[str, Any]:
        return VqaScoreKind.description(
            self, "transformers", spec=f"vqascore@{self.model_spec}", model=self.model_spec, question=self.question_template,
            answer=self.answer, text=self.text, threshold=self.min_score, rule=f"positive when P({self.answer!r}) >= {self.min_score}",
            reference=VQASCORE_REFERENCE)


@register_judge
class VqaScoreKind(JudgeKind):
    kind = "vqascore"
    syntax = "vqascore[@MODEL]"
    decides = ("VQAScore: P('Yes' | image, 'Does this figure show \"{prompt}\"? Please answer yes or no.') with t2v_metrics' LLaVA-1.5 "
               "recipe (default llava-hf/llava-1.5-7b-hf); the quality table's mean per method; positive when >= threshold (0.5)")
    reference = VQASCORE_REFERENCE
    weights = f"{VQASCORE_MODEL} (transformers LlavaForConditionalGeneration, safetensors), or any LLaVA-style image-text-to-text folder"
    licence = "Llama 2 Community License (LLaVA-1.5's Vicuna base); t2v_metrics code: Apache-2.0"
    options = frozenset({"concept", "model"})
    settings = frozenset({"question", "answer", "system", "prompt", "min_score"})
    names = NoName("vqascore[@MODEL]")

    @classmethod
    def from_spec(cls, spec: JudgeSpec, options: JudgeOptions) -> Any:
        return VqaScoreJudge(cls.weights_location(spec, options), concept=options.concept, threshold=options.threshold,
                             settings=options.settings, device=options.device)

    @classmethod
    def offline(cls) -> str:
        from dataigm.judges.clip import hub_cached

        return "yes (Hub cache)" if hub_cached(VQASCORE_MODEL, "config.json") else f"no: needs {VQASCORE_MODEL} (Hub cache or a local folder)"
