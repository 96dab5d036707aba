"""dataigm detector-eval (was ``evaluate``): metrics of a detector (run folder, exported folder or Hub model) on dataset shards."""

from __future__ import annotations

import argparse
from pathlib import Path

from dataigm.commands._options import Command, add_batch_size_flag, add_device_flag, add_json_flag, emit_json
from dataigm.core.errors import InputError


COMMAND = Command("detector-eval", order=45, old_names=("evaluate",),
                  help="measure a trained detector on a dataset split (accuracy, ROC-AUC, ECE)",
                  description="Accuracy, balanced accuracy, per-class P/R/F1, ROC-AUC (binary), confusion matrix, ECE, "
                  "overall and per data source (generator model / real).")


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("detector", help="training run folder, exported detector folder, or Hub model id")
    p.add_argument("--data", required=True, help="dataset folder or Hub dataset repo id")
    p.add_argument("--split", default="test", help="split to evaluate (default: %(default)s)")
    p.add_argument("--category", help="dataset category (default: the detector's)")
    p.add_argument("--threshold", type=float, help="override the binary threshold saved with the detector")
    p.add_argument("--revision", help="Hub dataset revision")
    p.add_argument("--plots", type=Path, help="write PNG plots (confusion matrix, ROC, reliability) to this folder")
    add_batch_size_flag(p, of="images classified", default=128)
    add_device_flag(p)
    add_json_flag(p, "the metrics")


def run(args: argparse.Namespace) -> int:
    from dataigm.train.evaluate import evaluate_detector, json_safe, load_detector
    from dataigm.core.devices import pick_device
    from dataigm.train.source import resolve_dataset

    detector = load_detector(args.detector, device=pick_device(args.device))
    category = args.category or detector.category
    if not category:
        raise InputError(f"detector {args.detector} records no category: pass --category")
    source = resolve_dataset(args.data, category, args.revision)
    report = json_safe(evaluate_detector(detector, source, args.split, category=category, threshold=args.threshold,
                                         batch_size=args.batch_size, plots_dir=args.plots, progress=not args.json))
    if args.json:
        emit_json(report)
        return 0
    from rich.console import Console

    from dataigm.train.present import metrics_table

    Console().print(metrics_table(report, f"{args.detector} on {category}/{args.split}"))
    return 0
