"""Judging on a distributor: the images cut into units (one per shard, loose files in chunks), each unit judged by
the existing judging loop (:func:`dataigm.judges.judge.run_judge`) inside an actor that builds the judge once; the
verdicts joined and summarised by this process exactly as a one-process :func:`dataigm.judges.judge.judge` does.

    >>> result = judge("generated/", "nudenet:esd", distributor="ray")   # doctest: +SKIP
    >>> result.summary["positive_rate"]
"""

from __future__ import annotations

import time
from functools import partial
from pathlib import Path
from typing import Any, Sequence

from dataigm.core.errors import InputError
from dataigm.distributors import check_distributor

FILES_PER_UNIT = 1000  # loose image files judged per unit (a shard is one unit)

# create_judge's settings, which every actor needs to build the same judge
JUDGE_SETTINGS = ("concept", "threshold", "classes", "device", "precision", "imagenet_model", "igmu_head", "clip_model", "nudenet_model")


def judge_units(inp: Any, files_per_unit: int = FILES_PER_UNIT) -> list[Any]:
    """The units of an :class:`~dataigm.judges.images.ImageInput`: one per shard, then the files in chunks, each an
    input of its own with the same source, split and category."""
    from dataigm.judges.images import ImageInput

    if files_per_unit < 1:
        raise InputError(f"files_per_unit must be >= 1, got {files_per_unit}")

    def unit(files: list[Any], shards: list[Path]) -> ImageInput:
        return ImageInput(inp.source, files=files, shards=shards, split=inp.split, category=inp.category)

    return [unit([], [shard]) for shard in inp.shards] + [
        unit(inp.files[i:i + files_per_unit], []) for i in range(0, len(inp.files), files_per_unit)]


class _RayJudgeWorker:
    """Judges one unit per call inside a Ray actor, the judge built once; returns ``([(ref, verdict)], failures)``."""

    def __init__(self, detector: str, settings: dict[str, Any], batch_size: int, workers: int | None) -> None:
        from dataigm.judges.registry import create_judge

        self.judge = create_judge(detector, **settings)
        self.batch_size, self.workers = batch_size, workers

    def __call__(self, unit: Any) -> tuple[list[tuple[Any, Any]], list[dict[str, str]]]:
        from dataigm.judges.judge import run_judge

        return run_judge(self.judge, unit, batch_size=self.batch_size, workers=self.workers, progress=False)


def judge(
    images: str | Path | Sequence[str | Path],
    detector: str,
    *,
    distributor: str = "local",
    ray_address: str | None = None,
    batch_size: int = 32,
    workers: int | None = None,
    split: str | None = None,
    category: str | None = None,
    out: Path | None = None,
    progress: bool = True,
    files_per_unit: int = FILES_PER_UNIT,
    **settings: Any,
) -> Any:
    """:func:`dataigm.judges.judge.judge` on ``distributor``: ``local`` is that function; ``ray`` judges the units of
    ``images`` (:func:`judge_units`) on the Ray cluster at ``ray_address``, one actor per GPU (else per CPU), and
    returns the same :class:`~dataigm.judges.judge.JudgeResult`: the same predictions, sorted by image, and summary.

    ``settings`` are :func:`~dataigm.judges.registry.create_judge`'s (``concept``, ``threshold``, ``device``...).
    Inside an actor, images are decoded in its own process unless ``workers`` says otherwise.
    """
    from dataigm.judges.judge import JudgeResult, Prediction, _extra, summarize
    from dataigm.judges.judge import judge as judge_here

    check_distributor(distributor)
    unknown = sorted(set(settings) - set(JUDGE_SETTINGS))
    if unknown:
        raise InputError(f"unknown judge setting(s) {', '.join(unknown)}; valid: {', '.join(JUDGE_SETTINGS)}")
    if distributor == "local":
        return judge_here(images, detector, batch_size=batch_size, workers=workers, split=split, category=category, out=out,
                             progress=progress, **settings)
    from dataigm.distributors import ray_distributor
    from dataigm.judges.registry import create_judge
    from dataigm.judges.images import resolve_images

    # 1. Check inputs and build the judge here too (the summary describes it)
    inp = resolve_images(images, split=split, category=category)
    judge_ = create_judge(detector, **settings)
    # 2. Judge the units on the cluster
    t0 = time.perf_counter()
    results = ray_distributor().map_units(judge_units(inp, files_per_unit), partial(_RayJudgeWorker, detector, settings, batch_size,
                                          0 if workers is None else workers), address=ray_address, gpu=True, progress=progress)
    seconds = time.perf_counter() - t0
    verdicts = sorted((rv for unit_verdicts, _ in results for rv in unit_verdicts), key=lambda rv: rv[0].id)
    failed = sorted((f for _, unit_failed in results for f in unit_failed), key=lambda f: f["file"])
    # 3. Predictions and summary, as one process makes them
    predictions = [Prediction(ref.id, v.predicted, v.positive, v.positive_score, v.scores, ref.meta, _extra(v.extra))
                   for ref, v in verdicts]
    result = JudgeResult(predictions, failed, summarize(predictions, failed, judge_, inp, seconds))
    if out is not None:
        result.write_predictions(out)
    return result
