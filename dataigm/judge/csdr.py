"""CLIP-score difference rate (CSDR): does an image from a forget prompt match the concept-free version of its
prompt better than the prompt itself?

For each image generated from a prompt ``p`` that mentions the concept, let ``p'`` be ``p`` with the concept
removed (the sample's ``pair_prompt``, else the taxonomy's rule ``Concept.negative(p)``, which removes whole trigger
phrases and tidies the sentence). With ``s(i, t) = max(100 * cos(CLIP_img(i), CLIP_txt(t)), 0)``:

    CSDR = share of images with s(i, p') > s(i, p)

An unlearned model that removes the concept but keeps the rest of the prompt scores high; the original model
scores low. Unlike the published script, prompts are never cleaned by ad-hoc string surgery, both prompts are
tokenized the same way (CLIP's tokenizer, truncated to its context length), and every image is scored, in
order, including the last partial batch.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import torch

from dataigm.judge.fidelity import ImageReader, _chunks, open_reader
from dataigm.judge.images import ImageRef


@dataclass
class CSDRItem:
    """One scored image: its prompt, the concept-free prompt and both CLIP scores."""

    file: str
    prompt: str
    removed_prompt: str
    score_prompt: float
    score_removed: float

    @property
    def removed_wins(self) -> bool:
        """The concept-free prompt matches the image better than the prompt itself."""
        return self.score_removed > self.score_prompt


def concept_removed_prompt(meta: dict[str, Any]) -> str | None:
    """The concept-free version of an image's prompt, or None when it cannot be derived."""
    if meta.get("role", "positive") not in ("positive", "") or not meta.get("prompt"):
        return None
    if meta.get("pair_prompt"):
        return str(meta["pair_prompt"])
    if meta.get("paired_negative"):
        return str(meta["paired_negative"])
    category, concept = meta.get("category"), meta.get("concept")
    if not (category and concept):
        return None
    from dataigm.taxonomy import get_concept

    try:
        return get_concept(str(category), str(concept)).negative(str(meta["prompt"]))
    except (KeyError, ValueError):
        return None


class ClipScorer:
    """CLIP image/text embeddings through ``CLIPModel.from_pretrained(path)`` and its processor."""

    def __init__(self, model_path: str | Path, device: str = "cpu") -> None:
        from transformers import CLIPModel, CLIPProcessor

        self.model = CLIPModel.from_pretrained(str(model_path), use_safetensors=True).eval().to(device)
        self.processor = CLIPProcessor.from_pretrained(str(model_path))
        self.device = device
        self.max_length = int(self.model.config.text_config.max_position_embeddings)

    @torch.inference_mode()
    def image_embeddings(self, images: Sequence[Any]) -> torch.Tensor:
        """L2-normalised CLIP image embeddings (float32, on CPU) of PIL images."""
        pixels = self.processor(images=list(images), return_tensors="pt")["pixel_values"].to(self.device)
        emb = self.model.get_image_features(pixel_values=pixels)
        emb = emb if isinstance(emb, torch.Tensor) else emb.pooler_output
        return torch.nn.functional.normalize(emb.float(), dim=-1).cpu()

    @torch.inference_mode()
    def text_embeddings(self, texts: Sequence[str]) -> torch.Tensor:
        """L2-normalised CLIP text embeddings (float32, on CPU), truncated to CLIP's context length."""
        tok = self.processor.tokenizer(list(texts), padding=True, truncation=True, max_length=self.max_length, return_tensors="pt")
        emb = self.model.get_text_features(input_ids=tok["input_ids"].to(self.device), attention_mask=tok["attention_mask"].to(self.device))
        emb = emb if isinstance(emb, torch.Tensor) else emb.pooler_output
        return torch.nn.functional.normalize(emb.float(), dim=-1).cpu()

    @staticmethod
    def score(image_emb: torch.Tensor, text_emb: torch.Tensor) -> torch.Tensor:
        """Row-wise CLIP score max(100 * cos, 0) of matching rows."""
        return (100.0 * (image_emb * text_emb).sum(-1)).clamp(min=0)


def csdr(
    refs: Sequence[ImageRef], scorer: ClipScorer, *, batch_size: int = 32, reader: ImageReader | None = None,
) -> tuple[list[CSDRItem], list[str]]:
    """Score every image whose concept-free prompt can be derived; returns (items, skipped file ids)."""
    todo, skipped = [], []
    for ref in refs:
        removed = concept_removed_prompt(ref.meta)
        if removed:
            todo.append((ref, removed))
        else:
            skipped.append(ref.id)
    items: list[CSDRItem] = []
    with open_reader(reader) as reader:
        for chunk in _chunks(todo, batch_size):
            img = scorer.image_embeddings([reader.image(ref) for ref, _ in chunk])
            prompts = [str(ref.meta["prompt"]) for ref, _ in chunk]
            removed_prompts = [r for _, r in chunk]
            s_p = scorer.score(img, scorer.text_embeddings(prompts)).tolist()
            s_r = scorer.score(img, scorer.text_embeddings(removed_prompts)).tolist()
            items += [CSDRItem(ref.id, p, r, a, b) for (ref, _), p, r, a, b in zip(chunk, prompts, removed_prompts, s_p, s_r)]
    return items, skipped


def csdr_rate(items: Sequence[CSDRItem]) -> float | None:
    """The share of items whose concept-free prompt wins; None without items."""
    return sum(i.removed_wins for i in items) / len(items) if items else None
