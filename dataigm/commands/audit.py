"""dataigm audit: how often each judge is right on labelled images, and how often judges agree with each other."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from dataigm.commands._options import Command, add_batch_size_flag, add_device_flag, add_json_flag, add_judge_flag, add_workers_flag

# Library parameters whose flag has another name (see dataigm.cli.in_flags).
PARAMETERS = {"detectors": "judge", "n_resamples": "bootstrap"}


COMMAND = Command("audit", order=62,
                  help="audit judges against human labels: sensitivity, specificity, balanced accuracy, precision, kappa",
                  description="Judge labelled images with every --judge and compare with the labels (95% Wilson intervals; "
                  "balanced accuracy and kappa by percentile bootstrap), sweep each judge's threshold, and give Cohen's kappa and raw "
                  "agreement for every pair of judges. 'eval --audit' corrects rates with the --json result.")


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("images", help="image folder (recursive), list file or .tar shards")
    p.add_argument("--labels", required=True, help="CSV with header file,label (file relative to IMAGES; more columns group), "
                   "a 'dataigm review --export-labels' JSON, or IMAGES itself laid out <label>/IMAGE")
    add_judge_flag(p, help="a judge spec ('dataigm list-judges')")
    p.add_argument("--concept", help="the label that means the concept when labels are names, not 1/0 (default: the first judge's target)")
    p.add_argument("--group-by", action="append", default=[], metavar="FIELD", help="also per value of this field (method, source, generator, subcategory)")
    p.add_argument("--out", type=Path, help="write audit.json and a contact sheet of the disagreements here")
    p.add_argument("--bootstrap", type=int, default=1000, help="bootstrap resamples (default: %(default)s)")
    p.add_argument("--seed", type=int, default=0, help="bootstrap seed (default: %(default)s)")
    add_batch_size_flag(p, of="images judged")
    add_workers_flag(p)
    add_device_flag(p)
    add_json_flag(p, "the audit")


def run(args: argparse.Namespace) -> int:
    from dataigm.core.atomic import write_json_atomic
    from dataigm.evaluation.audit import audit, write_disagreement_sheet
    from dataigm.report.tables import print_audit

    result = audit(args.images, args.labels, args.judge, group_by=args.group_by, concept=args.concept, batch_size=args.batch_size,
                   workers=args.workers, device=args.device, n_resamples=args.bootstrap, seed=args.seed,
                   progress=sys.stderr.isatty() and not args.json)
    if args.out:
        sheet = write_disagreement_sheet(result, args.out)
        result.report["sheet"] = sheet.name if sheet else None
        write_json_atomic(args.out / "audit.json", result.report)
    if args.json:
        print(json.dumps(result.report, sort_keys=True))
    else:
        print_audit(result.report)
    return 0
