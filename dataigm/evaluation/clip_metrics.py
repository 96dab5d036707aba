"""CLIP score of prompted images (two published definitions) and CMMD between two image sets.

CLIP score, per image ``cos = cos(CLIP_img, CLIP_txt(prompt))``:

* ``torchmetrics`` (default): torchmetrics' ``CLIPScore`` sums ``100 * cos`` over the images and returns
  ``max(sum / n, 0)``: the clamp applies to the mean, not to each image (the docstring's ``max(100 * cos, 0)``
  is per pair, the code is not; they differ only when some cosines are negative). Like torchmetrics'
  ``_clip_score_update`` (``functional/multimodal/clip_score.py``), the prompt's token ids are sliced to 77, so a
  long prompt loses its end-of-text token, where CLIP pools the text embedding.
* ``torchmetrics-eot`` (ours): the same formula with the tokenizer's own truncation to 77 tokens, which keeps the
  end-of-text token; equal to ``torchmetrics`` for prompts of at most 77 tokens.
* ``clipscore``: SPM's ``src/evaluation/eval_util.py`` ``clip_score`` (CLIPScore of Hessel et al., ``w = 2.5``,
  CLIP ViT-B/32): ``2.5 * max(cos, 0)`` per image, then the mean over images.

CMMD (google-research ``cmmd/distance.py``): the biased MMD estimate with a Gaussian RBF kernel (sigma 10) between
L2-normalised CLIP image embeddings of two sets, times 1000. The paper's embedding model is CLIP ViT-L/14 at 336 px.
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from dataigm.core.errors import InputError
from dataigm.evaluation.csdr import ClipScorer
from dataigm.evaluation.fidelity import ImageReader, open_reader
from dataigm.judges.images import ImageRef
from dataigm.evaluation.metrics import Estimate, prompt_key
from dataigm.evaluation.stats import mean_interval

CLIP_SCORE_MODES = ("torchmetrics", "torchmetrics-eot", "clipscore")
CLIP_SCORE_DEFAULT_MODEL = {"torchmetrics": "openai/clip-vit-large-patch14", "torchmetrics-eot": "openai/clip-vit-large-patch14",
                            "clipscore": "openai/clip-vit-base-patch32"}
CLIP_SCORE_TRUNCATION = {"torchmetrics": "slice", "torchmetrics-eot": "tokenizer", "clipscore": "tokenizer"}
CLIPSCORE_W = 2.5
CMMD_CLIP = "openai/clip-vit-large-patch14-336"
CMMD_SIGMA = 10.0
CMMD_SCALE = 1000.0


def clip_score_value(cosines: Sequence[float], mode: str = "torchmetrics") -> float | None:
    """The CLIP score of a set from its per-image cosines (see the module docstring); None when empty."""
    if mode not in CLIP_SCORE_MODES:
        raise InputError(f"CLIP score mode {mode!r} not in {CLIP_SCORE_MODES}")
    if not len(cosines):
        return None
    c = np.asarray(cosines, dtype=np.float64)
    if mode != "clipscore":
        return float(max(100.0 * c.mean(), 0.0))
    return float((CLIPSCORE_W * np.maximum(c, 0.0)).mean())


def clip_score_estimate(cosines: Sequence[float], clusters: Sequence[Any] | None, mode: str = "torchmetrics", **kwargs: Any) -> Estimate:
    """:func:`clip_score_value` with its (cluster) bootstrap interval."""
    clip_score_value([], mode)  # validates the mode
    c = np.asarray(cosines, dtype=np.float64)
    if mode != "clipscore":
        est = mean_interval(100.0 * c, clusters=clusters, **kwargs)
        clamp = (lambda v: None if v is None else max(v, 0.0))  # monotone: clamping the quantiles clamps the interval
        return Estimate(clamp(est.value), clamp(est.low), clamp(est.high), est.n, est.clusters, est.interval)
    return mean_interval(CLIPSCORE_W * np.maximum(c, 0.0), clusters=clusters, **kwargs)


def clip_score(
    refs: Sequence[ImageRef], scorer: ClipScorer, *, mode: str = "torchmetrics", batch_size: int = 32,
    reader: ImageReader | None = None, by_prompt: bool = True, **kwargs: Any,
) -> dict[str, Any]:
    """CLIP score of every image of ``refs`` that has a ``prompt``, bootstrapped by prompt (or by image)."""
    clip_score_value([], mode)  # validates the mode
    todo = [r for r in refs if r.meta.get("prompt")]
    cos = scorer.cosines(todo, [str(r.meta["prompt"]) for r in todo], batch_size=batch_size, reader=reader,
                         truncation=CLIP_SCORE_TRUNCATION[mode])
    est = clip_score_estimate(cos, [prompt_key(r.meta, r.id) for r in todo] if by_prompt else None, mode, **kwargs)
    return {**est.to_dict(), "mode": mode, "truncation": CLIP_SCORE_TRUNCATION[mode], "skipped": len(refs) - len(todo)}


def mmd(x: np.ndarray, y: np.ndarray, sigma: float = CMMD_SIGMA, scale: float = CMMD_SCALE) -> float:
    """CMMD's biased MMD estimate (Gaussian RBF kernel) between embedding sets ``x`` and ``y``, times ``scale``."""
    x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
    if len(x) == 0 or len(y) == 0:
        raise InputError(f"CMMD needs images on both sides, got {len(x)} and {len(y)}")
    gamma = 1.0 / (2.0 * sigma**2)
    xx, yy = (x * x).sum(1), (y * y).sum(1)

    def k(a: np.ndarray, b: np.ndarray, na: np.ndarray, nb: np.ndarray) -> float:
        return float(np.exp(-gamma * (-2.0 * a @ b.T + na[:, None] + nb[None, :])).mean())

    return scale * (k(x, x, xx, xx) + k(y, y, yy, yy) - 2.0 * k(x, y, xx, yy))


def cmmd(
    reference: Sequence[ImageRef], images: Sequence[ImageRef], scorer: ClipScorer, *, batch_size: int = 32,
    reader: ImageReader | None = None,
) -> dict[str, Any]:
    """CMMD of ``images`` against ``reference`` with ``scorer``'s CLIP image embeddings."""
    with open_reader(reader) as reader:
        emb = []
        for refs in (reference, images):
            parts = [scorer.image_embeddings([reader.image(r) for r in refs[i : i + batch_size]]).numpy() for i in range(0, len(refs), batch_size)]
            emb.append(np.concatenate(parts) if parts else np.zeros((0, 1)))
    return {"cmmd": mmd(emb[0], emb[1]), "n_reference": len(reference), "n_images": len(images)}
