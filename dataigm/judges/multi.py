"""Several judges on the same images: ``dataigm judge --judge A --judge B`` and ``dataigm eval`` with more
than one ``--judge``. Each judge runs through :func:`dataigm.judges.judge.judge` (or, in eval,
:func:`dataigm.evaluation.evaluate.judge_set`); this module joins their verdicts per image and gives every pair's
Cohen's kappa and raw agreement (:func:`dataigm.evaluation.agreement.judge_agreement`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

from dataigm.core.atomic import write_bytes_atomic
from dataigm.evaluation.agreement import judge_agreement

MULTI_FORMAT = "dataigm-judges/1"


def pairwise_agreement(verdicts: Sequence[dict[str, bool]], **kw: Any) -> list[dict[str, Any]]:
    """``[{"a": i, "b": j, "kappa", "agreement", "n", ...}]`` for every pair of judges, on the images both judged
    (``verdicts[i]``: image id -> judge i's verdict)."""
    out = []
    for i in range(len(verdicts)):
        for j in range(i + 1, len(verdicts)):
            common = sorted(set(verdicts[i]) & set(verdicts[j]))
            out.append({"a": i, "b": j, **judge_agreement([verdicts[i][f] for f in common], [verdicts[j][f] for f in common], **kw)})
    return out


@dataclass
class MultiJudgeResult:
    """Each judge's :class:`~dataigm.judges.judge.JudgeResult`, in the order of ``specs``."""

    specs: list[str]
    results: list[Any]

    def summary(self) -> dict[str, Any]:
        """One summary per judge plus the pairwise agreement on the images every pair judged."""
        verdicts = [{p.file: p.positive for p in r.predictions} for r in self.results]
        return {"format": MULTI_FORMAT, "detectors": self.specs, "judges": [r.summary for r in self.results],
                "agreement": pairwise_agreement(verdicts)}

    def rows(self) -> list[dict[str, Any]]:
        """One row per image: ``{"file", "meta", "verdicts": [one per judge, None where it could not read it]}``."""
        by_file: dict[str, dict[str, Any]] = {}
        for i, result in enumerate(self.results):
            for p in result.predictions:
                row = by_file.setdefault(p.file, {"file": p.file, "verdicts": [None] * len(self.results), **({"meta": p.meta} if p.meta else {})})
                verdict = p.to_dict()
                verdict.pop("file")
                verdict.pop("meta", None)
                row["verdicts"][i] = {"detector": self.specs[i], **verdict}
        return [by_file[f] for f in sorted(by_file)]

    def write_predictions(self, path: Path) -> Path:
        """One JSON line per image with every judge's verdict (atomically)."""
        lines = [json.dumps(row, sort_keys=True, ensure_ascii=False) for row in self.rows()]
        write_bytes_atomic(Path(path), ("\n".join(lines) + "\n").encode())
        return Path(path)


def judge_many(images: Any, specs: Sequence[str], *, out: Path | None = None, **kwargs: Any) -> MultiJudgeResult:
    """Judge ``images`` with every spec of ``specs`` (checked up front); ``kwargs`` go to each
    :func:`~dataigm.judges.judge.judge` call. With ``out``, the joined per-image JSONL is written there."""
    from dataigm.judges.images import ImageInput, resolve_images
    from dataigm.judges.judge import judge
    from dataigm.judges.registry import check_judge_spec

    for spec in specs:
        check_judge_spec(spec)
    split, category = kwargs.pop("split", None), kwargs.pop("category", None)
    inp = images if isinstance(images, ImageInput) else resolve_images(images, split=split, category=category)
    result = MultiJudgeResult(list(specs), [judge(inp, spec, **kwargs) for spec in specs])
    if out is not None:
        result.write_predictions(out)
    return result


def attach_verdicts(records: list[dict[str, Any]], specs: Sequence[str], per_judge: Sequence[list[dict[str, Any]]]) -> None:
    """Give each of the first judge's image ``records`` a ``judges`` dict: every judge's verdict and score on the
    same image (what report.html's "disagreements" filter compares)."""
    by_id = [{(r["split"], r["id"]): r for r in recs} for recs in per_judge]
    for record in records:
        record["judges"] = {spec: {"positive": hit["positive"], "score": hit["score"]}
                            for spec, table in zip(specs, by_id) if (hit := table.get((record["split"], record["id"])))}


def compare_judges(judges: Sequence[Any], images: Any, specs: Sequence[str], stats: Any, run: Any, first: dict[str, Any],
                   judge_set: Callable[..., dict[str, Any]]) -> dict[str, Any]:
    """Eval with several judges: every judge's forgetting and preservation on one model's images (``first`` is
    the first judge's result, with its forget verdicts; ``specs`` every judge's spec, the first's included;
    ``stats`` and ``run`` the evaluation's :class:`~dataigm.evaluation.settings.StatsSettings` and
    :class:`~dataigm.evaluation.settings.RunSettings`; ``judge_set`` is
    :func:`dataigm.evaluation.evaluate.judge_set`, passed in so that this module does not import evaluation) and the
    pairwise agreement of their forget verdicts."""
    rows = [first] + [judge_set(j, images, stats, run) for j in judges]
    attach_verdicts(first.get("images") or [], specs, [r.get("images") or [] for r in rows])
    return {"detectors": list(specs), "forgetting": [r["forgetting"]["all"] for r in rows], "preservation": [r["preservation"]["all"] for r in rows],
            "agreement": pairwise_agreement([r["forget_verdicts"] for r in rows], n_resamples=stats.n_resamples, seed=stats.seed)}
