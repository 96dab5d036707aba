"""How a dataigm detector agrees with the literature's judges of its category on its own held-out split, for its
model card: Cohen's kappa and raw agreement with each, and each one's sensitivity and specificity against the
split's labels. A literature judge whose weights are not on this machine is listed as not run, with the reason."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

# The judges the papers of each taxonomy category report with ({concept} is the detector's concept).
LITERATURE_JUDGES = {"nudity": ("nudenet",), "object": ("imagenet:{concept}",)}


def literature_specs(category: str, concept: str) -> list[str]:
    """The literature judge specs for a detector of ``category`` / ``concept``."""
    return [s.format(concept=concept) for s in LITERATURE_JUDGES.get(category, ()) if concept or "{concept}" not in s]


def literature_agreement(detector_folder: Path, data: Path, category: str, concept: str, positive: str, split: str = "test") -> list[dict[str, Any]]:
    """One row per literature judge: ``{detector, kappa, agreement, sensitivity, specificity, n}`` on ``split`` of
    the dataset folder ``data``, or ``{detector, note}`` when it cannot run here."""
    from dataigm.core.errors import DataigmError
    from dataigm.evaluation.agreement import confusion, judge_agreement
    from dataigm.judges.images import resolve_images
    from dataigm.judges.judge import judge

    specs = literature_specs(category, concept)
    if not specs:
        return []
    images = resolve_images(data, split=split, category=category)
    ours = {p.file: p for p in judge(images, f"local-dir:{detector_folder}", progress=False).predictions}
    rows = []
    for spec in specs:
        try:
            theirs = {p.file: p.positive for p in judge(images, spec, progress=False).predictions}
        except (DataigmError, OSError, ValueError) as e:  # weights not on this machine, or a concept the judge lacks
            log.info("literature judge %s cannot run: %s", spec, e)
            rows.append({"detector": spec, "note": f"not run: {' '.join(str(e).split())[:200]}"})
            continue
        files = sorted(set(ours) & set(theirs))
        truth = [ours[f].meta.get("label_name") == positive for f in files]
        c = confusion(truth, [theirs[f] for f in files])
        agree = judge_agreement([ours[f].positive for f in files], [theirs[f] for f in files], n_resamples=200)
        rows.append({"detector": spec, "kappa": agree["kappa"], "agreement": agree["agreement"], "n": len(files),
                     "sensitivity": c.tp / (c.tp + c.fn) if c.tp + c.fn else None, "specificity": c.tn / (c.tn + c.fp) if c.tn + c.fp else None})
    return rows
