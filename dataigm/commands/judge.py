"""dataigm judge: score images with a dataigm detector, NudeNet, an ImageNet classifier or an IGMU judge; predictions JSONL + a summary."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from dataigm.commands._options import (
    Command, add_batch_size_flag, add_clip_model_flag, add_device_flag, add_distributor_flags, add_json_flag, add_judge_flag, add_weight_aliases, add_workers_flag, distributor_settings, emit_json,
)

# Library parameters whose flag has another name (see dataigm.cli.in_flags).
PARAMETERS = {"detector": "judge"}


COMMAND = Command("judge", order=60,
                  help="judge images (folder, list file, shards) with a detector: how much of the concept is shown",
                  description="Judge images with an exported dataigm detector (local-dir:PATH, a folder, org/name), NudeNet "
                  "(nudenet[:preset]), an ImageNet classifier (imagenet:<class>) or an IGMU judge (igmu:<task>).")


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("images", nargs="+", help="image folder (every image below it; hidden folders skipped), list file, .tar shard(s) or dataset folder")
    add_judge_flag(p, help="a judge spec: KIND[:NAME][@WEIGHTS] (nudenet[:PRESET], imagenet:<class>@MODEL, igmu:<task>@DIR, ...) or a "
                   "dataigm detector (PATH | local-dir:PATH | org/name[@revision]); 'dataigm list-judges' lists every kind. With several: "
                   "one line per image with every verdict, and their pairwise kappa")
    p.add_argument("--concept", help="the class that counts as positive (multi-class judges)")
    p.add_argument("--threshold", type=float, help="override the judge's (or the NudeNet preset's) threshold")
    p.add_argument("--classes", help="NudeNet only: comma-separated classes that count as nudity (overrides the preset's)")
    add_clip_model_flag(p, what="CLIP-based judges (igmu:<task>, clip:...)")
    add_weight_aliases(p, "--nudenet-model", "--imagenet-model", "--igmu-head")
    p.add_argument("--split", help="dataset folders: judge one split (e.g. test)")
    p.add_argument("--category", help="dataset folders: judge one category")
    add_batch_size_flag(p, of="images judged")
    add_workers_flag(p)
    add_device_flag(p)
    p.add_argument("--precision", default="fp32", choices=["fp32", "auto", "fp16", "bf16"],
                   help="GPU autocast precision (default fp32: thresholds were chosen in fp32; auto = native bf16, else fp16)")
    p.add_argument("--out", type=Path, help="write per-image predictions here (JSONL)")
    p.add_argument("--summary", type=Path, help="write the summary JSON here")
    add_json_flag(p, "the summary")
    add_distributor_flags(p)


def run(args: argparse.Namespace) -> int:
    from dataigm.core.atomic import write_json_atomic
    from dataigm.core.errors import DataigmError, InputError
    from dataigm.distributors.judging import judge

    distribution = distributor_settings(args)
    if args.device:  # NudeNet runs on CPU whatever the device: a device this machine lacks is still an error
        from dataigm.core.devices import check_device

        check_device(args.device)
    classes = [c.strip() for c in args.classes.split(",") if c.strip()] if args.classes else None
    images = args.images if len(args.images) > 1 else args.images[0]
    options = dict(concept=args.concept, threshold=args.threshold, classes=classes, batch_size=args.batch_size, workers=args.workers,
                   device=args.device, precision=args.precision, split=args.split, category=args.category, out=args.out,
                   progress=sys.stderr.isatty() and not args.json, imagenet_model=args.imagenet_model, igmu_head=args.igmu_head,
                   clip_model=args.clip_model, nudenet_model=args.nudenet_model)
    if len(args.judge) > 1:
        if args.distributor != "local":
            raise InputError(f"--distributor {args.distributor} judges with one --judge at a time; got {len(args.judge)}")
        return run_many(args, images, options)
    result = judge(images, args.judge[0], **options, **distribution)
    if args.summary:
        write_json_atomic(args.summary, result.summary)
    if args.json:
        emit_json(result.summary)
    else:
        print_summary(result.summary)
    if result.failed and not result.predictions:  # nothing was judged: say so, after writing the failure list
        first = result.failed[0]
        raise DataigmError(f"none of the {len(result.failed)} images of {' '.join(args.images)} could be read "
                           f"(first: {first['file']}: {first['error']})")
    return 0


def run_many(args: argparse.Namespace, images: object, options: dict) -> int:
    """Several judges: the joined JSONL, one summary per judge and the pairwise agreement."""
    from dataigm.core.atomic import write_json_atomic
    from dataigm.judges.multi import judge_many

    result = judge_many(images, args.judge, **options)
    summary = result.summary()
    if args.summary:
        write_json_atomic(args.summary, summary)
    if args.json:
        emit_json(summary)
        return 0
    for one in summary["judges"]:
        print_summary(one)
    for a in summary["agreement"]:
        kappa = "n/a" if a["kappa"] is None else f"{a['kappa']:.2f}"
        agreement = "n/a" if a["agreement"] is None else f"{a['agreement']:.0%}"
        print(f"{args.judge[a['a']]} vs {args.judge[a['b']]}: kappa {kappa}, agreement {agreement} on {a['n']} images")
    return 0


def print_summary(summary: dict) -> None:
    """A short human-readable summary (rich table)."""
    from rich.console import Console
    from rich.table import Table

    console = Console()
    det = summary["detector"]
    rate = summary["positive_rate"]
    console.print(
        f"[bold]{det['name']}[/] judged {summary['n_images']} images: "
        f"{'n/a' if rate is None else f'{rate:.1%}'} show '{summary['target']}' (threshold {summary['threshold']})"
    )
    table = Table("class", "images")
    for name, n in summary["per_class"].items():
        table.add_row(name, str(n))
    console.print(table)
    if summary.get("per_body_part"):
        parts = ", ".join(f"{k}: {v}" for k, v in summary["per_body_part"].items() if v)
        console.print(f"per body part ({summary['per_body_part_counts']}): {parts or 'none'}")
    if summary.get("per_class_top1"):
        for name, row in summary["per_class_top1"].items():
            acc = "n/a" if row["top1_accuracy"] is None else f"{row['top1_accuracy']:.1%}"
            console.print(f"{name}: {row['n']} images, top-1 = target {row['top1_is_target']:.1%}, own-class top-1 {acc}")
    if summary["failed"]:
        console.print(f"[red]{summary['n_failed']} unreadable:[/] " + ", ".join(summary["failed"][:10]) + (" ..." if summary["n_failed"] > 10 else ""))
