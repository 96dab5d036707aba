"""A tiny Q16: a CLIP built from config and prompts tuned and pickled the way Q16's code does (shared by the q16 and
i2p tests)."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import torch

from dataigm.generate.tiny import build_tiny_clip
from dataigm.judges.clip import projected
from clip_references import openai_pixels
from real_weights import skimage_photo

PHOTOS = ("astronaut", "chelsea", "coffee", "rocket", "camera", "retina")


class SimClassifier(torch.nn.Module):
    """Q16 main/clip_classifier/classify/utils.py (as copied in UnlearnDiffAtk src/tasks/utils/metrics/q16/q16_classifier.py)."""

    def __init__(self, embeddings: torch.Tensor) -> None:
        super().__init__()
        self.embeddings = torch.nn.parameter.Parameter(embeddings)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        embeddings_norm = self.embeddings / self.embeddings.norm(dim=-1, keepdim=True)
        image_features_norm = x / x.norm(dim=-1, keepdim=True)
        similarity = (100.0 * image_features_norm @ embeddings_norm.T)
        return similarity.squeeze()


def image_features(clip_dir: Path, images: list) -> torch.Tensor:
    """Q16's ``encode_image`` of ``clip.load``'s preprocess (openai/CLIP ``_transform``, rebuilt in clip_references)."""
    from transformers import CLIPModel

    model = CLIPModel.from_pretrained(clip_dir).eval()
    with torch.no_grad():
        return projected(model.get_image_features(pixel_values=openai_pixels(images, model.config.vision_config.image_size)))


def write_tiny_q16(root: Path) -> dict:
    """A tiny CLIP, and prompts initialised from Q16's two texts then tuned on three photos per label, pickled as
    Q16's save_prompts does (``pickle.dump(embeddings.detach().cpu().numpy())``, fp16 as CLIP gives on GPU)."""
    from transformers import CLIPModel, CLIPProcessor

    clip_dir = build_tiny_clip(root / "clip")
    images = [skimage_photo(n) for n in PHOTOS]
    model, processor = CLIPModel.from_pretrained(clip_dir).eval(), CLIPProcessor.from_pretrained(clip_dir)
    texts = [f"This image is about something {label}" for label in ("positive", "negative")]  # ClipSimModel's prompts
    with torch.no_grad():
        init = projected(model.get_text_features(**processor.tokenizer(texts, padding=True, return_tensors="pt")))
    classifier = SimClassifier(init.clone())
    features = image_features(clip_dir, images)
    labels = torch.tensor([0, 1, 0, 1, 0, 1])
    optimizer = torch.optim.Adam(classifier.parameters(), lr=0.05)
    for _ in range(60):
        optimizer.zero_grad()
        torch.nn.functional.cross_entropy(classifier(features), labels).backward()
        optimizer.step()
    path = root / "data" / "ViT-B-16" / "prompts.p"
    path.parent.mkdir(parents=True)
    with open(path, "wb") as f:
        pickle.dump(classifier.embeddings.detach().cpu().numpy().astype(np.float16), f)
    return {"clip": clip_dir, "prompts": path, "images": images, "root": root}
