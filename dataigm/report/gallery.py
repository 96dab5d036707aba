"""Per-image records of an evaluation (``report["methods"][name]["images"]``): what the HTML report shows in its
image grids, and what scripts read to see *which* images a judge flagged.

One record per judged image::

    {"split": "forget" | "retain" | "pair", "id", "path", "key", "grid_key", "prompt_index", "seed", "prompt",
     "pair_prompt", "concept", "category", "subcategory", "role", "model", "label", "predicted", "positive", "score",
     "scores", "correct" (retain only), "seed_name" (only where a layout's per-prompt index is not a seed: IGMU's
     "image")}

``path`` is the real file (or shard) the image was read from, ``key`` its sample key inside a shard: an answer
sheet (:mod:`dataigm.report.answers`) reads the images back from them. ``pair`` records are the original model's
images of the concept-removed prompts (and a dataset's paired negatives), judged for the validity check.

``prompt_index`` falls back to the image's ``pair_id`` (layouts whose names carry no single prompt index).
``grid_key`` is the image's pairing key (:func:`dataigm.evaluation.pairing.pair_key`) as a string: the same prompt and
seed give the same ``grid_key`` in every method, so the report puts each forget image beside the original
model's. ``scores`` keeps the judge's :data:`MAX_SCORES` highest class scores. A record may also carry
``judges``: ``{judge name: {"positive": bool, "score": float}}`` when several judges scored the image; the report
shows them and its "disagreements" filter compares them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

from dataigm.judges.images import ImageRef
from dataigm.evaluation.metrics import retain_class
from dataigm.evaluation.pairing import pair_key

MAX_SCORES = 5


def grid_key(ref: ImageRef) -> str:
    """The image's pairing key as a string (identical for the same prompt and seed across methods)."""
    return "/".join(str(part) for part in pair_key(ref)[1:])


def _known(value: Any) -> Any:
    """``value``, or None for the -1 that samples without a prompt index or seed carry."""
    return None if value is None or (isinstance(value, int) and value < 0) else value


def _top_scores(scores: dict[str, float]) -> dict[str, float]:
    top = sorted(scores.items(), key=lambda kv: -float(kv[1]))[:MAX_SCORES]
    return {name: round(float(value), 4) for name, value in top}


def image_record(split: str, ref: ImageRef, verdict: Any, correct: bool | None = None) -> dict[str, Any]:
    """The record of one judged image (see the module docstring)."""
    m = ref.meta
    record = {
        "split": split, "id": ref.id, "path": str(Path(ref.path).absolute()), "key": ref.key, "grid_key": grid_key(ref),
        "prompt_index": _known(m.get("prompt_index")) if _known(m.get("prompt_index")) is not None else m.get("pair_id"),
        "seed": _known(m.get("seed")), "prompt": str(m.get("prompt") or ""), "pair_prompt": str(m.get("pair_prompt") or ""),
        "concept": str(m.get("concept") or ""), "category": str(m.get("taxonomy") or m.get("category") or ""),
        "subcategory": str(m.get("subcategory") or ""), "role": str(m.get("role") or ""), "model": str(m.get("model") or m.get("model_id") or ""),
        "label": retain_class(m),
        "predicted": verdict.predicted, "positive": bool(verdict.positive), "score": round(float(verdict.positive_score), 4),
        "scores": _top_scores(verdict.scores),
    }
    if m.get("seed_name"):  # what a layout's per-prompt index is when it is not a seed (IGMU's image index)
        record["seed_name"] = str(m["seed_name"])
    if correct is not None:
        record["correct"] = bool(correct)
    return record


def image_records(forget: Sequence[tuple[ImageRef, Any]], retain: Sequence[tuple[ImageRef, Any]],
                  retain_correct: Sequence[bool], pair: Sequence[tuple[ImageRef, Any]] = ()) -> list[dict[str, Any]]:
    """Records of a method's judged forget images, then of its retain images (with whether each was judged right),
    then of its ``pair`` images (the concept-removed prompts)."""
    return ([image_record("forget", ref, v) for ref, v in forget]
            + [image_record("retain", ref, v, ok) for (ref, v), ok in zip(retain, retain_correct)]
            + [image_record("pair", ref, v) for ref, v in pair])
