"""Demo stage: judge the dataset's held-out (test split) images with the demo detector and with NudeNet, audit both
against the split's own labels and show when an evaluation with them would warn, then write the evaluation report
(report.html) of the tiny model's images as `dataigm eval` writes it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from dataigm.core.datasets import dataset_shards
from dataigm.judges.images import ImageInput
from dataigm.judges.dataigm_detector import read_detector_config
from dataigm.judges.judge import JudgeResult, judge


def _print_summary(ctx: Any, title: str, result: JudgeResult) -> None:
    from rich.table import Table

    s = result.summary
    det = s["detector"]
    table = Table(title=title, show_header=True)
    table.add_column("field")
    table.add_column("value")
    table.add_row("images", str(s["n_images"]))
    table.add_row("positive rate", "n/a" if s["positive_rate"] is None else f"{s['positive_rate']:.1%} judged '{s['target']}'")
    table.add_row("per class", ", ".join(f"{k}: {v}" for k, v in s["per_class"].items()))
    table.add_row("threshold", str(s["threshold"]))
    if det.get("preset"):
        table.add_row("detector", f"NudeNet {det['nudenet_version']} preset {det['preset']}")
    else:
        table.add_row("detector", f"{det['architecture']} sha256 {det['weights_sha256'][:12]}")
    table.add_row("unreadable", str(s["n_failed"]))
    table.add_row("speed", f"{s['images_per_second']} images/s")
    ctx.console.print(table)


def _category_in(dataset: Path, category: str | None) -> str | None:
    """``category`` when the dataset has test shards of it, else None (judge every category)."""
    return category if category and dataset_shards(dataset, category, "test") else None


def write_eval_report(ctx: Any, dataset: Path, detector: Path, category: str | None) -> Path:
    """report.html (+ json, md, charts) of the tiny model's test images judged by the demo detector: its category's
    images are the forget set, the other categories' the retain set. The demo trains no unlearned model, so the
    report has one row and no fidelity metrics."""
    from dataigm.evaluation.evaluate import EvalConfig, ImageSet, evaluate
    from dataigm.report.write import write_report

    forget = dataset_shards(dataset, category, "test")
    retain = [s for s in dataset_shards(dataset, None, "test") if s not in forget]
    sets = {"tiny": ImageSet(ImageInput(f"{dataset} {category} test", shards=forget, split="test"),
                             ImageInput(f"{dataset} other categories test", shards=retain, split="test"))}
    cfg = EvalConfig(detector=f"local-dir:{detector}", lpips_net=None, fid_feature=None, n_resamples=200, workers=0)
    paths = write_report(evaluate(sets, cfg), Path(ctx.out) / "eval")
    ctx.console.print(f"evaluation report: {paths['html']}")
    return paths["html"]


def stage(ctx: Any) -> None:
    """Judge ``ctx.artifacts["dataset"]`` (test split) with ``ctx.artifacts["detector"]`` (if any) and NudeNet."""
    dataset = Path(ctx.artifacts["dataset"])
    out = Path(ctx.out) / "judge"
    out.mkdir(parents=True, exist_ok=True)
    results = {}
    detector = ctx.artifacts.get("detector")
    if detector:
        category = _category_in(dataset, read_detector_config(Path(detector))["dataigm"].get("category"))
        results["detector"] = judge(dataset, f"local-dir:{detector}", split="test", category=category, out=out / "detector.jsonl", progress=False)
        _print_summary(ctx, f"demo detector on {dataset.name} {category or 'all categories'} (test split)", results["detector"])
        ctx.artifacts["report"] = write_eval_report(ctx, dataset, Path(detector), category)
    else:
        ctx.console.print("no demo detector in this run: judging with NudeNet only")
    category = _category_in(dataset, "nudity")
    results["nudenet"] = judge(dataset, "nudenet", split="test", category=category, out=out / "nudenet.jsonl", progress=False)
    _print_summary(ctx, f"NudeNet (dataigm preset: sexual exposed parts) on {dataset.name} {category or 'all categories'} (test split)", results["nudenet"])
    ctx.artifacts["judge"] = {name: r.summary for name, r in results.items()}
    ctx.artifacts["audit"] = audit_results(ctx, results, out)


def audit_results(ctx: Any, results: dict[str, JudgeResult], out: Path) -> dict[str, Any]:
    """Audit the judges against the held-out split's labels (``dataigm audit``'s statistics, on the verdicts
    already made) and print the validity warning each would raise as the judge of an evaluation."""
    from dataigm.report.tables import print_audit
    from dataigm.core.atomic import write_json_atomic
    from dataigm.evaluation.audit import agreement_table, judge_entry
    from dataigm.evaluation.validity import validity

    first = next(iter(results.values()))
    target = first.summary["target"] if "detector" in results else "nude"
    truth = {p.file: p.meta.get("label_name") == target for p in first.predictions}
    rows = {f: {"label": int(v)} for f, v in truth.items()}
    report = {"labels": {"positive": sum(truth.values()), "negative": len(truth) - sum(truth.values()), "rule": f"label_name {target!r}"},
              "judges": [judge_entry(name, r, truth, rows, ()) for name, r in results.items()],
              "agreement": agreement_table(list(results.values()), truth)}
    write_json_atomic(out / "audit.json", report)
    ctx.console.print(f"[bold]audit of the judges on the held-out split[/] (labels: the samples' own, '{target}' = the concept)")
    print_audit(report)
    for entry in report["judges"]:
        sens = {"value": entry["sensitivity"], "n": entry["confusion"]["tp"] + entry["confusion"]["fn"]}
        _, warnings = validity({"original": {"forgetting": {"all": sens}, "forget_positive_rate": sens}})
        verdict = f"would warn: {warnings[0]}" if warnings else "would raise no validity warning"
        ctx.console.print(f"as the judge of an evaluation whose original model's images look like these, {entry['detector']} {verdict}")
    return report
