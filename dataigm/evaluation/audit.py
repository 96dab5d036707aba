"""``audit(images, labels, detectors)``: how often each judge is right on images people have labelled, and how
often judges agree with each other. ``dataigm audit`` is its command; ``eval --audit`` corrects rates with it.

Each judge runs through :func:`dataigm.judges.judge.judge` on the labelled images. Statistics come from
:mod:`dataigm.evaluation.agreement` (Wilson intervals for the proportions, a percentile bootstrap for balanced accuracy
and kappa). The result is one JSON object (:data:`AUDIT_FORMAT`).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

from dataigm.evaluation.agreement import INTERVALS, classification, threshold_sweep
from dataigm.judges.images import ImageInput, resolve_images
from dataigm.evaluation.labels import LabelsError, binary_labels, read_labels

AUDIT_FORMAT = "dataigm-audit/1"
METRICS = ("sensitivity", "specificity", "balanced_accuracy", "precision", "accuracy")
SHEET = "disagreements.png"
MAX_SHEET = 64


@dataclass
class AuditResult:
    """The audit report, each judge's :class:`~dataigm.judges.judge.JudgeResult` (in the order given), the labels
    as booleans and the images judged."""

    report: dict[str, Any]
    results: list[Any]
    truth: dict[str, bool]
    images: ImageInput


def labelled_input(images: str | Path, labels: dict[str, dict[str, Any]]) -> tuple[ImageInput, int]:
    """The images that have a label (files: only those; shards: all, filtered after judging) and the number of
    images without one. A labelled file that is not among the images is an error naming it."""
    inp = resolve_images(images)
    if inp.shards:
        return inp, 0
    ids = {r.id for r in inp.files}
    missing = sorted(set(labels) - ids)
    if missing:
        raise LabelsError(f"{len(missing)} labelled file(s) are not below {images}: {', '.join(missing[:10])}")
    kept = [r for r in inp.files if r.id in labels]
    return ImageInput(inp.source, files=kept), len(inp.files) - len(kept)


def flat_metrics(stats: dict[str, Any]) -> dict[str, Any]:
    """``{metric: value, metric_ci: [low, high]}`` for :data:`METRICS`, plus ``n`` and the confusion counts."""
    out: dict[str, Any] = {"n": stats["n"], "confusion": stats["confusion"]}
    for name in METRICS:
        out[name] = stats[name]["value"]
        out[f"{name}_ci"] = [stats[name]["low"], stats[name]["high"]]
    return out


def judge_entry(spec: str, result: Any, truth: dict[str, bool], rows: dict[str, dict[str, Any]], group_by: Sequence[str], **kw: Any) -> dict[str, Any]:
    """One judge's audit: metrics with intervals, its threshold sweep, and the same metrics per group."""
    preds = [p for p in result.predictions if p.file in truth]
    y = [truth[p.file] for p in preds]
    entry = {"detector": spec, "describe": result.summary["detector"], "threshold": result.summary["threshold"],
             **flat_metrics(classification(y, [p.positive for p in preds], **kw)),
             "sweep": threshold_sweep(y, [p.positive_score for p in preds]),
             "failed": [f["file"] for f in result.failed]}
    groups: dict[str, list[Any]] = defaultdict(list)
    for p in preds:
        for field in group_by:
            value = rows.get(p.file, {}).get(field, p.meta.get(field))  # the labels' own columns first
            groups[f"{field}={'' if value is None else value}"].append(p)
    entry["groups"] = {name: flat_metrics(classification([truth[p.file] for p in ps], [p.positive for p in ps], **kw))
                       for name, ps in sorted(groups.items())}
    return entry


def agreement_table(results: Sequence[Any], truth: dict[str, bool], **kw: Any) -> list[dict[str, Any]]:
    """Cohen's kappa and raw agreement of every pair of judges (by index), on the labelled images both judged."""
    from dataigm.judges.multi import pairwise_agreement

    return pairwise_agreement([{p.file: p.positive for p in r.predictions if p.file in truth} for r in results], **kw)


def audit(
    images: str | Path, labels: str | Path, detectors: Sequence[str], *, group_by: Sequence[str] = (), concept: str | None = None,
    batch_size: int = 32, workers: int | None = None, device: str | None = None, n_resamples: int = 1000, seed: int = 0,
    progress: bool = False,
) -> AuditResult:
    """Audit every judge of ``detectors`` against ``labels`` on ``images`` (report format :data:`AUDIT_FORMAT`):
    per judge its sensitivity, specificity and balanced accuracy with intervals, and the judges' agreement.

        >>> result = dataigm.audit("labelled/", "labels.csv", ["nudenet:esd", "opennsfw"])   # doctest: +SKIP
        >>> [(j["detector"], j["balanced_accuracy"]) for j in result.report["judges"]]         # doctest: +SKIP
    """
    from dataigm.judges.judge import judge
    from dataigm.judges.registry import check_judge_spec, create_judge

    # 1. Check inputs: every spec and the labels, before any weights load
    if not detectors:
        raise LabelsError("give at least one judge=SPEC")
    for spec in detectors:
        check_judge_spec(spec)
    rows = read_labels(labels, images)
    inp, unlabelled = labelled_input(images, rows)
    # 2. Build the judges; the concept is --concept or the first judge's target
    judges = [create_judge(spec, device=device) for spec in detectors]
    classes = sorted({str(c) for j in judges for c in (*j.label_names, j.target) if c})
    truth, rule = binary_labels(rows, concept or judges[0].target, classes=classes)
    # 3. Judge, then compare with the labels and with each other
    kw = {"n_resamples": n_resamples, "seed": seed}
    results = [judge(inp, j, batch_size=batch_size, workers=workers, progress=progress) for j in judges]
    judged = {p.file for r in results for p in r.predictions}
    if inp.shards:  # shards are judged whole: their unlabelled samples are known only now
        unlabelled = len(judged - set(truth))
    report = {
        "format": AUDIT_FORMAT,
        "images": inp.source,
        "labels": {"positive": sum(truth[f] for f in judged if f in truth), "negative": sum(not truth[f] for f in judged if f in truth),
                   "unlabelled": unlabelled, "not_judged": len(set(truth) - judged), "rule": rule, "file": str(labels)},
        "judges": [judge_entry(spec, r, truth, rows, group_by, **kw) for spec, r in zip(detectors, results)],
        "agreement": agreement_table(results, truth, **kw),
        "intervals": {**INTERVALS, "confidence": 0.95, "n_resamples": n_resamples, "seed": seed},
        "group_by": list(group_by),
    }
    return AuditResult(report, results, truth, inp)


def disagreements(result: AuditResult) -> list[tuple[str, str]]:
    """``[(image id, "y1 A0 B1")]`` (y: the label; A, B, ...: the judges in order) for each image where a judge
    disagrees with the label or with another judge."""
    verdicts = [{p.file: p.positive for p in r.predictions} for r in result.results]
    out = []
    for file in sorted(result.truth):
        seen = [v.get(file) for v in verdicts]
        if any(s is None for s in seen):
            continue
        if len(set(seen) | {result.truth[file]}) > 1:
            marks = " ".join(f"{chr(65 + i)}{int(s)}" for i, s in enumerate(seen))
            out.append((file, f"y{int(result.truth[file])} {marks}"))
    return out


def sheet_items(result: AuditResult) -> list[tuple[bytes, str, str]]:
    """``(image bytes, path below the images folder, caption)`` of up to :data:`MAX_SHEET` disagreements: the
    tiles of the disagreement sheet, each named by its path (``ESD/0_0_2.png``, not ``0_0_2.png``)."""
    from dataigm.judges.images import iter_refs_with_bytes

    wanted = dict(disagreements(result)[:MAX_SHEET])
    found = {ref.id: data for ref, data, _ in iter_refs_with_bytes(result.images) if ref.id in wanted and data is not None}
    return [(found[f], f, caption) for f, caption in wanted.items() if f in found]


def write_disagreement_sheet(result: AuditResult, out_dir: Path, thumb: int = 96) -> Path | None:  # pragma: no mutate block, drawing: its tiles are sheet_items
    """A contact sheet (:func:`dataigm.core.sheets.contact_sheet`) of up to :data:`MAX_SHEET` disagreements;
    None when every judge agrees with every label."""
    import io

    from dataigm.core.atomic import write_bytes_atomic
    from dataigm.core.sheets import contact_sheet

    items = sheet_items(result)
    if not items:
        return None
    legend = ", ".join(f"{chr(65 + i)}={j['detector']}" for i, j in enumerate(result.report["judges"]))
    buf = io.BytesIO()
    contact_sheet(f"disagreements ({len(items)}): {legend}", items, thumb).save(buf, format="PNG")
    path = Path(out_dir) / SHEET
    write_bytes_atomic(path, buf.getvalue())
    return path
