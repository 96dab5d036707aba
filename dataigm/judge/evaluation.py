"""``evaluate``: forgetting, preservation, person presence, fidelity (LPIPS, FID/KID) and CSDR for one or more
unlearned models, against the original model's images of the same prompts and seeds.

Inputs per model are two image sets: ``forget`` (prompts of the erased concept) and ``retain`` (unrelated classes
and concept-removed prompts). Shards carry their prompts and labels in the sample json; plain folders get them
from prompt JSONL files (:class:`dataigm.prompts.PromptRecord`), matched by the prompt index in the file name.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from dataigm.judge.detectors import Judge, create_judge, create_person_detector, pick_device
from dataigm.judge.images import ImageInput, resolve_images
from dataigm.judge.judge import run_judge
from dataigm.judge.metrics import DEFAULT_CONFIDENCE, DEFAULT_RESAMPLES, DEFAULT_SEED, bootstrap_ci, grouped, rate, retain_correct

log = logging.getLogger(__name__)
REPORT_FORMAT = "dataigm-eval/1"


@dataclass
class EvalConfig:
    """Everything ``evaluate`` needs besides the image folders; ``None`` switches an optional metric off."""

    detector: str
    concept: str | None = None
    threshold: float | None = None
    person_detector: str | None = None  # e.g. "nudenet-body"; default: nudenet-body for nudity judges
    clip: str | None = None  # CLIP model path or Hub id -> CSDR
    lpips_net: str | None = "alex"
    lpips_size: int | None = None
    fid_feature: str | None = "inception"
    fid_weights: str | None = None
    fid_size: int = 299
    batch_size: int = 32
    workers: int | None = None
    device: str | None = None
    n_resamples: int = DEFAULT_RESAMPLES
    confidence: float = DEFAULT_CONFIDENCE
    seed: int = DEFAULT_SEED


@dataclass
class ImageSet:
    """The forget and retain images of one model."""

    forget: ImageInput
    retain: ImageInput


def load_prompt_table(path: Path) -> dict[int, dict[str, Any]]:
    """prompt index -> sample-like meta (prompt, pair_prompt, concept, category, subcategory, label_name, seed)."""
    from dataigm.prompts import read_prompt_jsonl

    table = {}
    for line_no, rec in enumerate(read_prompt_jsonl(Path(path))):
        index = rec.index if rec.index >= 0 else line_no
        table[index] = {
            "prompt": rec.prompt, "pair_prompt": rec.paired_negative or "", "concept": rec.concept, "category": rec.category,
            "subcategory": rec.subcategory, "label_name": rec.label, "role": "positive", "prompt_index": index,
        }
    return table


def attach_prompts(inp: ImageInput, table: dict[int, dict[str, Any]], prompts_path: Path) -> None:
    """Give each file of ``inp`` the meta of its prompt (by the prompt index in its name); errors name the files."""
    missing = [r.id for r in inp.files if r.meta.get("prompt_index") not in table]
    if missing:
        raise ValueError(f"{len(missing)} image(s) of {inp.source} have no prompt index in {prompts_path} (name files <index>_<seed>.png): {', '.join(missing[:10])}")
    for ref in inp.files:
        ref.meta = {**table[ref.meta["prompt_index"]], **ref.meta}


def open_set(forget: str | Path, retain: str | Path, prompts: tuple[Path, Path] | None = None, split: str | None = None) -> ImageSet:
    """Resolve one model's forget and retain images; ``prompts`` (forget JSONL, retain JSONL) name files' prompts."""
    s = ImageSet(resolve_images(forget, split=split), resolve_images(retain, split=split))
    if prompts:
        attach_prompts(s.forget, load_prompt_table(prompts[0]), prompts[0])
        attach_prompts(s.retain, load_prompt_table(prompts[1]), prompts[1])
    return s


def _stats_kwargs(cfg: EvalConfig) -> dict[str, Any]:
    return {"n_resamples": cfg.n_resamples, "confidence": cfg.confidence, "seed": cfg.seed}


def judge_set(judge_: Judge, images: ImageSet, cfg: EvalConfig) -> dict[str, Any]:
    """Forgetting (positive rate on forget) and preservation (accuracy on retain), grouped, with intervals."""
    kw = _stats_kwargs(cfg)
    forget, failed_f = run_judge(judge_, images.forget, batch_size=cfg.batch_size, workers=cfg.workers, progress=False)
    retain, failed_r = run_judge(judge_, images.retain, batch_size=cfg.batch_size, workers=cfg.workers, progress=False)
    correct = [(ref.meta, retain_correct(ref.meta, v.predicted, v.positive, judge_.label_names, judge_.target)) for ref, v in retain]
    return {
        "forgetting": grouped([(ref.meta, v.positive) for ref, v in forget], **kw),
        "preservation": grouped(correct, **kw),
        "retain_positive_rate": rate([v.positive for _, v in retain], **kw).to_dict(),
        "n_forget": len(forget),
        "n_retain": len(retain),
        "failed": sorted(f["file"] for f in failed_f + failed_r),
    }


def person_presence(spec: str, inp: ImageInput, cfg: EvalConfig) -> dict[str, Any]:
    """Share of ``inp`` images in which the person detector finds a person."""
    from dataigm.judge.images import iter_batches

    det = create_person_detector(spec)
    on_gpu = pick_device(cfg.device).startswith("cuda")
    flags: list[bool] = []
    for refs, batch, _ in iter_batches(inp, det.preprocess, det.collate, batch_size=cfg.batch_size, workers=cfg.workers, on_gpu=on_gpu):
        if refs:
            flags += det.present(batch)
    return {"detector": det.describe(), **rate(flags, **_stats_kwargs(cfg)).to_dict()}


def fidelity(original: ImageSet, unlearned: ImageSet, cfg: EvalConfig, device: str) -> dict[str, Any]:
    """LPIPS over pairs (same prompt index and seed) and FID/KID, for forget and retain images separately."""
    from dataigm.judge.fidelity import ImageReader, create_lpips, fid_kid, lpips_pairs
    from dataigm.judge.pairing import pair_images

    out: dict[str, Any] = {}
    metric = create_lpips(cfg.lpips_net, device) if cfg.lpips_net else None
    with ImageReader() as reader:
        for name in ("forget", "retain"):
            orig, unl = getattr(original, name).refs(), getattr(unlearned, name).refs()
            pairs = pair_images(orig, unl, what=f"{name} images")
            entry: dict[str, Any] = {"n_pairs": len(pairs)}
            if metric is not None:
                scores = lpips_pairs(pairs, size=cfg.lpips_size, batch_size=cfg.batch_size, device=device, reader=reader, metric=metric)
                entry["lpips"] = bootstrap_ci(scores, **_stats_kwargs(cfg)).to_dict()
            if cfg.fid_feature:
                entry.update(fid_kid([o for o, _ in pairs], [u for _, u in pairs], feature=cfg.fid_feature, weights_path=cfg.fid_weights,
                                     size=cfg.fid_size, batch_size=cfg.batch_size, device=device, reader=reader))
            out[name] = entry
    return out


def clip_alignment(scorer: Any, images: ImageSet, cfg: EvalConfig) -> dict[str, Any]:
    """CSDR and CLIP scores of the forget images (those whose concept-free prompt can be derived)."""
    from dataigm.judge.csdr import csdr

    items, skipped = csdr(images.forget.refs(), scorer, batch_size=cfg.batch_size)
    kw = _stats_kwargs(cfg)
    return {
        "csdr": rate([i.removed_wins for i in items], **kw).to_dict(),  # no items: value None, n 0
        "clip_score_prompt": bootstrap_ci([i.score_prompt for i in items], **kw).to_dict(),
        "clip_score_removed": bootstrap_ci([i.score_removed for i in items], **kw).to_dict(),
        "skipped": skipped,
    }


def evaluate(methods: dict[str, ImageSet], cfg: EvalConfig, original: ImageSet | None = None) -> dict[str, Any]:
    """Evaluate every unlearned method (and the original model, as the reference row) with one judge.

    Returns the report dict (see :mod:`dataigm.judge.report` for how it is written).
    """
    # 1. Check inputs
    if not methods:
        raise ValueError("no unlearned images: give --forget/--retain or --method NAME=DIR")
    device = pick_device(cfg.device)
    judge_ = create_judge(cfg.detector, concept=cfg.concept, threshold=cfg.threshold, device=device)
    describe = judge_.describe()
    nudity = describe.get("kind") == "nudenet" or describe.get("category") == "nudity"
    person_spec = cfg.person_detector or ("nudenet-body" if nudity else None)
    scorer = None
    if cfg.clip:
        from dataigm.judge.csdr import ClipScorer

        scorer = ClipScorer(cfg.clip, device)
    rows = ({"original": original} if original else {}) | methods
    # 2. Judge, then the optional metrics, per method
    results: dict[str, Any] = {}
    for name, images in rows.items():
        log.info("evaluating %s", name)
        res = judge_set(judge_, images, cfg)
        if person_spec:
            res["person_presence"] = person_presence(person_spec, images.forget, cfg)
        if original is not None and name != "original" and (cfg.lpips_net or cfg.fid_feature):
            res["fidelity"] = fidelity(original, images, cfg, device)
        if scorer is not None:
            res["alignment"] = clip_alignment(scorer, images, cfg)
        res["sources"] = {"forget": images.forget.source, "retain": images.retain.source}
        results[name] = res
    return {
        "format": REPORT_FORMAT,
        "detector": describe,
        "threshold": judge_.threshold,
        "target": judge_.target,
        "config": asdict(cfg),
        "methods": results,
    }
