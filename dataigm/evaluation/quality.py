"""Quality and alignment beside forgetting (HUB's table): each quality judge's mean score per method, with intervals,
for the original model and every unlearned method, on the same prompts.

HUB (ml-postech/HUB ``source/quality/evaluation.py``) reports, per method, the mean aesthetic score of the target
images and the mean ImageReward and PickScore of the general (COCO-prompt) images, each image scored with its own
prompt; ErasureBenchmark adds VQAScore. Here every score judge (:mod:`dataigm.judges.scoring`: ``aesthetic``,
``imagereward``, ``pickscore``, ``vqascore``) scores the forget images and the retain images of every row with each
image's own prompt (``meta["prompt"]``; the empty text when an image has none), and the table gives the mean with a
bootstrap interval (over prompts, as the rates). Only prompts every row has images of are kept, so the rows compare
the same prompts; ``n`` says how many images that leaves.
"""

from __future__ import annotations

from typing import Any

from dataigm.core.errors import InputError
from dataigm.evaluation.metrics import prompt_key
from dataigm.evaluation.stats import mean_interval

SPLITS = ("forget", "retain")


def score_images(judge_: Any, inp: Any, *, batch_size: int = 32, workers: int | None = None) -> list[tuple[Any, float]]:
    """[(ref, score)]: the judge's score of each image of ``inp`` with its own prompt (a dataset's concept-removed
    negatives and unreadable images are left out)."""
    from dataigm.judges.images import iter_batches

    if not hasattr(judge_, "score"):
        raise InputError(f"{judge_.name} is not a score judge (aesthetic, imagereward, pickscore, vqascore): it has no quality score")
    scored: list[tuple[Any, float]] = []
    on_gpu = str(getattr(judge_, "device", "")).startswith("cuda")
    for refs, batch, _ in iter_batches(inp, judge_.preprocess, judge_.collate, batch_size=batch_size, workers=workers, on_gpu=on_gpu):
        if refs:
            scored += zip(refs, judge_.score(batch, [str(r.meta.get("prompt") or "") for r in refs]))
    return sorted(((r, s) for r, s in scored if r.meta.get("role") != "negative"), key=lambda rs: rs[0].id)


def quality_table(judges: dict[str, Any], rows: dict[str, dict[str, Any]], *, by_prompt: bool = True,
                  batch_size: int = 32, workers: int | None = None, **stats: Any) -> dict[str, dict[str, Any]]:
    """``rows``: name -> {"forget": ImageInput, "retain": ImageInput}. Returns name -> {judge spec -> {split ->
    estimate}}: the mean score with its interval over the prompts every row has images of (``n``: images,
    ``n_prompts``): over prompts with enough of them, else over images, as every mean of the report
    (:func:`~dataigm.evaluation.stats.mean_interval`). ``stats``: ``n_resamples``, ``confidence``, ``seed``."""
    out: dict[str, dict[str, Any]] = {name: {} for name in rows}
    for spec, judge_ in judges.items():
        for split in SPLITS:
            scored = {name: score_images(judge_, inputs[split], batch_size=batch_size, workers=workers) for name, inputs in rows.items()}
            shared = set.intersection(*({prompt_key(r.meta, r.id) for r, _ in items} for items in scored.values()))
            for name, items in scored.items():
                kept = [(r, s) for r, s in items if prompt_key(r.meta, r.id) in shared]
                if not kept:
                    continue
                clusters = [prompt_key(r.meta, r.id) for r, _ in kept] if by_prompt else None
                est = mean_interval([s for _, s in kept], clusters=clusters, **stats).to_dict()  # the other means' rule
                out[name].setdefault(spec, {})[split] = {**est, "n_prompts": len({prompt_key(r.meta, r.id) for r, _ in kept})}
    return out
