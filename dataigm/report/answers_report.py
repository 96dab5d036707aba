"""An eval report (the format :func:`dataigm.evaluation.evaluate.evaluate` returns, written by
:func:`dataigm.report.write.write_report`) from an answer sheet's stored verdicts: forgetting and preservation per
method for one judge of the sheet, every judge's column with the pairwise kappa, and the validity checks."""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path
from typing import Any

from dataigm.core.shards import iter_tar
from dataigm.report.answers import read_sheet, sheet_shards
from dataigm.evaluation.metrics import (
    DEFAULT_CONFIDENCE, DEFAULT_RESAMPLES, DEFAULT_SEED, aggregate, definition_versions, domain_of, grouped, in_cross_domain, prompt_key,
    rate, retain_correct, unlearning_accuracy,
)
from dataigm.judges.multi import pairwise_agreement
from dataigm.evaluation.validity import DEFAULT_VALIDITY_LEVEL, validity


def sheet_rows(root: Path) -> dict[str, dict[str, list[dict[str, Any]]]]:
    """``{method: {split: [sample fields]}}`` of every sample of the sheet (``original`` first)."""
    rows: dict[str, dict[str, list[dict[str, Any]]]] = defaultdict(lambda: defaultdict(list))
    for shard in sheet_shards(root):
        for s in iter_tar(shard):
            rows[s.meta["method"]][s.meta["split"]].append(s.meta)
    return dict(sorted(rows.items(), key=lambda kv: (kv[0] != "original", kv[0])))


def _judged(rows: list[dict[str, Any]], k: int) -> list[tuple[dict[str, Any], dict[str, Any]]]:
    return [(r, r["verdicts"][k]) for r in rows if len(r["verdicts"]) > k and r["verdicts"][k] is not None]


def method_result(splits: dict[str, list[dict[str, Any]]], judge: dict[str, Any], k: int, cfg: dict[str, Any]) -> dict[str, Any]:
    """One method's forgetting, preservation and positive rates for judge ``k`` of the sheet, computed as the eval
    computes them (:func:`dataigm.evaluation.evaluate.evaluate`): the same grouping, aggregation and resampling."""
    st = {"n_resamples": cfg["n_resamples"], "confidence": cfg["confidence"], "seed": cfg["seed"]}
    by_prompt = cfg["bootstrap_unit"] == "prompt"
    forget = [(m, v) for m, v in _judged(splits.get("forget", []), k) if m["role"] != "negative"]
    negatives = [(m, v) for m, v in _judged(splits.get("forget", []), k) if m["role"] == "negative"] + _judged(splits.get("pair", []), k)
    retain = _judged(splits.get("retain", []), k)

    def clusters(items: list[tuple[dict[str, Any], Any]]) -> list[Any] | None:
        return [prompt_key(m, m["file"]) for m, _ in items] if by_prompt else None

    correct = [(m, retain_correct(m, v["predicted"], v["positive"], judge["label_names"], judge["target"])) for m, v in retain]
    domains = [domain_of(m) for m, _ in forget if domain_of(m)]
    forget_domain = domains[0] if domains else str(judge.get("describe", {}).get("category") or "")
    kw = {"group_by": tuple(cfg.get("group_by") or ()), "by_prompt": by_prompt, **st}  # as the eval groups both rates
    forgetting = grouped(aggregate([(m, v["positive"]) for m, v in forget], cfg["aggregate"]), **kw)
    out = {
        "forgetting": forgetting,
        "forget_positive_rate": rate([v["positive"] for _, v in forget], clusters=clusters(forget), **st).to_dict(),
        "preservation": grouped(correct, **kw),
        "preservation_domains": in_cross_domain(correct, forget_domain, by_prompt=by_prompt, **st),
        "unlearning_accuracy": unlearning_accuracy(forgetting["all"]),
        "retain_positive_rate": rate([v["positive"] for _, v in retain], clusters=clusters(retain), **st).to_dict(),
        "n_forget": len(forget), "n_retain": len(retain), "aggregate": cfg["aggregate"], "failed": [],
        "forget_verdicts": {m["file"]: v["positive"] for m, v in forget},
    }
    if negatives:
        out["negative_positive_rate"] = rate([v["positive"] for _, v in negatives], clusters=clusters(negatives), **st).to_dict()
    return out


def sheet_report(root: str | Path, judge_index: int = -1) -> dict[str, Any]:
    """The eval report of the sheet at ``root`` for judge ``judge_index`` (default: the last added), with every
    judge's forgetting and preservation and their pairwise kappa under each method's ``judges``."""
    from dataigm.evaluation.evaluate import REPORT_FORMAT

    root = Path(root)
    sheet = read_sheet(root)
    judges = sheet["judges"]
    k = judge_index % len(judges)
    cfg = {"aggregate": "image", "group_by": [], "n_resamples": DEFAULT_RESAMPLES, "confidence": DEFAULT_CONFIDENCE, "seed": DEFAULT_SEED,
           "bootstrap_unit": "prompt", "validity_level": DEFAULT_VALIDITY_LEVEL, **{a: b for a, b in sheet.get("config", {}).items() if b is not None}}
    methods = {}
    for name, splits in sheet_rows(root).items():
        per_judge = [method_result(splits, j, i, cfg) for i, j in enumerate(judges)]
        res = per_judge[k]
        res["judges"] = {"detectors": [j["detector"] for j in judges], "forgetting": [r["forgetting"]["all"] for r in per_judge],
                         "preservation": [r["preservation"]["all"] for r in per_judge],
                         "agreement": pairwise_agreement([r.pop("forget_verdicts") for r in per_judge], n_resamples=cfg["n_resamples"], seed=cfg["seed"])}
        res["sources"] = {split: f"{root} ({name}/{split})" for split in sorted(set(splits) | {"forget", "retain"})}
        methods[name] = res
    checks, warnings = validity(methods, cfg["validity_level"])
    return {"format": REPORT_FORMAT, "warnings": warnings, "validity": checks, "detector": judges[k]["describe"], "threshold": judges[k]["threshold"],
            "target": judges[k]["target"], "config": {**cfg, "detector": judges[k]["detector"]}, "answers": {"sheet": str(root), "judge_index": k},
            "definitions": definition_versions({"forgetting", "preservation", "judge_validity"}), "methods": methods}
