"""``judge(images, detector)``: per-image predictions and a summary, the one-line judging operation.

    >>> result = judge("samples/", "nudenet:esd")            # doctest: +SKIP
    >>> result.summary["positive_rate"], result.summary["failed"]
"""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

from dataigm.core.atomic import write_jsonl_atomic
from dataigm.judges.types import Judge
from dataigm.judges.registry import create_judge
from dataigm.judges.images import ImageInput, ImageRef, iter_batches, resolve_images

SUMMARY_FORMAT = "dataigm-judge/1"


@dataclass
class Prediction:
    """One judged image: what it is, what the judge said."""

    file: str  # the image's id: relative path, or "<shard>#<key>"
    predicted: str
    positive: bool
    positive_score: float
    scores: dict[str, float]
    meta: dict[str, Any] = field(default_factory=dict)  # the sample's json (shards) or name fields (files)
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"file": self.file, "predicted": self.predicted, "positive": self.positive,
                "positive_score": self.positive_score, "scores": self.scores, **self.extra,
                **({"meta": self.meta} if self.meta else {})}


@dataclass
class JudgeResult:
    """Predictions (sorted by file), unreadable inputs and the summary."""

    predictions: list[Prediction]
    failed: list[dict[str, str]]
    summary: dict[str, Any]

    def write_predictions(self, path: Path) -> Path:
        """Write one JSON line per prediction (atomically); failures get ``{"file", "error"}`` lines."""
        write_jsonl_atomic(Path(path), [*(p.to_dict() for p in self.predictions), *({"file": f["file"], "error": f["error"]} for f in self.failed)])
        return Path(path)


def run_judge(
    judge_: Judge, inp: ImageInput, *, batch_size: int = 32, workers: int | None = None, progress: bool = True,
    start_method: str | None = None,
) -> tuple[list[tuple[ImageRef, Any]], list[dict[str, str]]]:
    """Run ``judge_`` over every image of ``inp``: ``[(ref, verdict)]`` sorted by id, and the failures.

    Workers receive ``judge_.preprocess`` (a small picklable transform), never the judge, so any multiprocessing
    ``start_method`` (``fork``, ``spawn``, ``forkserver``; default: Python's) works.
    """
    from tqdm.auto import tqdm

    results: list[tuple[ImageRef, Any]] = []
    failed: list[dict[str, str]] = []
    total = len(inp.files) if not inp.shards else None
    on_gpu = str(getattr(judge_, "device", "")).startswith("cuda") or "CUDAExecutionProvider" in getattr(judge_, "providers", [])
    with tqdm(total=total, desc=f"judging ({judge_.name})", unit="img", disable=not progress, leave=False) as bar:
        for refs, batch, failures in iter_batches(
            inp, judge_.preprocess, judge_.collate, batch_size=batch_size, workers=workers, on_gpu=on_gpu, start_method=start_method,
        ):
            if refs:
                results.extend(zip(refs, judge_.predict(batch)))
            failed.extend({"file": ref.id, "error": err} for ref, err in failures)
            bar.update(len(refs) + len(failures))
    results.sort(key=lambda rv: rv[0].id)
    failed.sort(key=lambda f: f["file"])
    return results, failed


def summarize(
    predictions: Sequence[Prediction], failed: Sequence[dict[str, str]], judge_: Judge, inp: ImageInput | None = None,
    seconds: float | None = None,
) -> dict[str, Any]:
    """The summary: n_images, positive_rate, per_class counts, detector, threshold, failed files."""
    n = len(predictions)
    n_positive = sum(p.positive for p in predictions)
    per_class = Counter({name: 0 for name in judge_.label_names})
    per_class.update(p.predicted for p in predictions)
    detector = judge_.describe()
    summary: dict[str, Any] = {
        "format": SUMMARY_FORMAT,
        "n_images": n,
        "n_positive": n_positive,
        "positive_rate": n_positive / n if n else None,
        "target": judge_.target,
        "per_class": dict(per_class),
        "detector": detector,
        "threshold": judge_.threshold,
        "n_failed": len(failed),
        "failed": [f["file"] for f in failed],
        "errors": {f["file"]: f["error"] for f in failed},
    }
    if hasattr(judge_, "summarize"):  # judge-specific tables: NudeNet's per_body_part, ImageNet's per-class top-1
        summary.update(judge_.summarize(predictions))
    if inp is not None:
        summary["images"] = inp.describe()
    if seconds is not None:
        summary["seconds"] = round(seconds, 3)
        summary["images_per_second"] = round((n + len(failed)) / seconds, 2) if seconds > 0 else None
    return summary


def judge(
    images: str | Path | Sequence[str | Path] | ImageInput,
    detector: str | Judge,
    *,
    concept: str | None = None,
    threshold: float | None = None,
    classes: Sequence[str] | None = None,
    batch_size: int = 32,
    workers: int | None = None,
    device: str | None = None,
    precision: str = "fp32",
    split: str | None = None,
    category: str | None = None,
    out: Path | None = None,
    progress: bool = True,
    start_method: str | None = None,
    imagenet_model: str | None = None,
    igmu_head: str | None = None,
    clip_model: str | None = None,
    nudenet_model: str | None = None,
) -> JudgeResult:
    """Judge every image of ``images`` with ``detector``; optionally write predictions JSONL to ``out``.

    Args:
        images: a folder (recursive png/jpg/jpeg/webp), a list file, .tar shards or a dataigm dataset folder.
        detector: a spec for :func:`~dataigm.judges.person.create_judge` (``nudenet[:preset]``, ``imagenet:<class>``,
            ``igmu:<task>``, ``local-dir:PATH``, a folder, ``org/name``) or a judge object already built.
        concept: the class that counts as positive (multi-class detectors).
        threshold: overrides the detector's / preset's threshold.
        classes: NudeNet only: the classes that count as nudity (overrides the preset's).
        split, category: select shards of a dataset folder.
        start_method: the DataLoader workers' multiprocessing start method (default: Python's).
        imagenet_model, igmu_head, clip_model, nudenet_model: see :func:`~dataigm.judges.person.create_judge`.
    """
    # 1. Check inputs and build the judge
    inp = images if isinstance(images, ImageInput) else resolve_images(images, split=split, category=category)
    judge_ = detector if not isinstance(detector, str) else create_judge(
        detector, concept=concept, threshold=threshold, classes=classes, device=device, precision=precision,
        imagenet_model=imagenet_model, igmu_head=igmu_head, clip_model=clip_model, nudenet_model=nudenet_model,
    )
    # 2. Decode in workers, predict in batches
    t0 = time.perf_counter()
    verdicts, failed = run_judge(judge_, inp, batch_size=batch_size, workers=workers, progress=progress, start_method=start_method)
    seconds = time.perf_counter() - t0
    # 3. Predictions and summary
    predictions = [
        Prediction(ref.id, v.predicted, v.positive, v.positive_score, v.scores, ref.meta, _extra(v.extra)) for ref, v in verdicts
    ]
    result = JudgeResult(predictions, failed, summarize(predictions, failed, judge_, inp, seconds))
    if out is not None:
        result.write_predictions(out)
    return result


def _extra(extra: dict[str, Any]) -> dict[str, Any]:
    """Keep the JSON-friendly extras (logits, NudeNet detections, ImageNet top-5, IGMU's head logit)."""
    return {k: v for k, v in extra.items() if k in JSON_EXTRAS}


JSON_EXTRAS = ("logits", "detections", "top1", "top5", "logit")
