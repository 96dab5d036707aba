"""An eval report (the format :func:`dataigm.evaluation.evaluate.evaluate` returns, written by
:func:`dataigm.report.write.write_report`) from an answer sheet's stored verdicts: forgetting and preservation per
method for one judge of the sheet, every judge's column with the pairwise kappa, and the validity checks."""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path
from typing import Any

from dataigm.core.shards import iter_tar
from dataigm.report.answers import read_sheet, sheet_shards
from dataigm.evaluation.metrics import DEFAULT_CONFIDENCE, DEFAULT_RESAMPLES, DEFAULT_SEED, definition_versions
from dataigm.evaluation.rates import JudgedImage, method_rates
from dataigm.evaluation.settings import StatsSettings
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
    computes them (:func:`dataigm.evaluation.rates.method_rates`): the same grouping, aggregation and resampling."""
    stats = StatsSettings(aggregate=cfg["aggregate"], group_by=tuple(cfg.get("group_by") or ()), n_resamples=cfg["n_resamples"],
                          confidence=cfg["confidence"], seed=cfg["seed"], bootstrap_unit=cfg["bootstrap_unit"])

    def items(rows: list[dict[str, Any]]) -> list[JudgedImage]:  # a sheet names each image by its file
        return [JudgedImage(m["file"], m, v["predicted"], v["positive"]) for m, v in _judged(rows, k)]

    forget = items(splits.get("forget", []))
    rates = method_rates([i for i in forget if i.meta["role"] != "negative"],
                         [i for i in forget if i.meta["role"] == "negative"] + items(splits.get("pair", [])), items(splits.get("retain", [])),
                         label_names=judge["label_names"], target=judge["target"],
                         category=lambda: str(judge.get("describe", {}).get("category") or ""), stats=stats)
    return {**rates.report, "failed": []}


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
