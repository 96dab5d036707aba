"""dataigm review: look at a dataset in FiftyOne, tag samples, and apply the tags to the next curated version."""

from __future__ import annotations

import argparse
from pathlib import Path
from dataigm.commands._options import Command


COMMAND = Command("review", order=25,
                  help="review a dataset in FiftyOne; --apply writes the next curated version with the tags applied",
                  description="Build a FiftyOne dataset from DATASET_DIR (images, labels, judge scores, curation verdicts, "
                  "provenance). Tag samples 'reject', 'accept' or 'relabel:<class>' in the App, then run with --apply.")


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("dataset", type=Path, metavar="DATASET_DIR", help="the curated dataset folder to review")
    p.add_argument("--name", default=None, help="FiftyOne dataset name (default: derived from DATASET_DIR)")
    p.add_argument("--review-dir", type=Path, default=None, help="where images are extracted for FiftyOne (default: DATASET_DIR/_review; "
                   "DATASET_DIR-review next to an exported or pulled folder)")
    p.add_argument("--launch", action="store_true", help="open the FiftyOne App and wait until it is closed")
    p.add_argument("--port", type=int, default=5151, help="the FiftyOne App's port (default: %(default)s)")
    p.add_argument("--remote", action="store_true", help="serve the App for a browser on another machine (ssh -L PORT:localhost:PORT)")
    p.add_argument("--apply", action="store_true", help="read the tags back and curate DATASET_DIR into --out with them applied")
    p.add_argument("--out", type=Path, default=None, help="with --apply: the next curated version (default: DATASET_DIR-reviewed)")
    p.add_argument("--config", type=Path, default=None, help="with --apply: curation config (default: the one that produced DATASET_DIR)")
    p.add_argument("--export-labels", type=Path, metavar="FILE", help="write the reviewed labels (tags applied, rejected left out) as a JSON "
                   "that 'dataigm audit REVIEW_DIR/images --labels FILE' reads, and stop")


def run(args: argparse.Namespace) -> int:
    import logging

    from dataigm.curate.review import apply_review, build_review_dataset, launch, review_name

    if not getattr(args, "verbose", False):  # FiftyOne warns about its MongoDB version on every start
        logging.getLogger("fiftyone.core.odm.database").setLevel(logging.ERROR)

    name = args.name or review_name(args.dataset)
    if args.export_labels:
        from dataigm.curate.review import export_review_labels

        print(f"reviewed labels: {export_review_labels(name, args.export_labels)}")
        return 0
    if args.apply:
        from rich.console import Console

        from dataigm.curate import load_curation_config
        from dataigm.curate.present import kept_dropped_table

        config = load_curation_config(args.config) if args.config else None
        out = args.out or args.dataset.with_name(args.dataset.name + "-reviewed")
        result = apply_review(args.dataset, out, name=name, config=config)
        n_tags = sum(1 for d in result.decisions.values() if d.review_tag) + len(result.unmatched_tags)
        Console().print(kept_dropped_table(result))
        print(f"applied {n_tags} review tag(s); next curated version: {out}")
        return 0
    dataset = build_review_dataset(args.dataset, name=name, review_dir=args.review_dir)
    print(f"FiftyOne dataset {name!r}: {len(dataset)} samples; tag them reject / accept / relabel:<class>, then run "
          f"`dataigm review {args.dataset} --apply --out NEXT_DIR`")
    if args.launch:
        launch(dataset, port=args.port, remote=args.remote)
    return 0
