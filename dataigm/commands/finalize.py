"""dataigm finalize: write a dataset folder's manifest once every planned shard is done (after a job array)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from dataigm.commands._options import Command


COMMAND = Command("finalize", order=11,
                  help="write manifest.json once every planned shard is done (what the last job-array task does itself)",
                  description="Write DIR/manifest.json from its part records and shard stats when every planned shard is done; "
                  "lists the missing shards otherwise (exit 1). Safe beside running tasks; rewrites nothing when the manifest is current.")


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("dataset", type=Path, help="dataset folder written by build or import-images")


def run(args: argparse.Namespace) -> int:
    from dataigm.core.errors import InputError
    from dataigm.core.manifest import finalize

    if not (args.dataset / "_parts").is_dir():
        raise InputError(f"{args.dataset} has no _parts/ folder: not a dataset folder written by build or import-images")
    result = finalize(args.dataset)
    if result.manifest is None:
        print(f"{len(result.missing)} planned shard(s) not done yet, e.g. {result.missing[0]}; "
              "rerun their tasks (a rerun resumes), then finalize again", file=sys.stderr)
        return 1
    state = "wrote" if result.written else "already current:"
    print(f"{state} {args.dataset / 'manifest.json'} ({result.manifest['totals']['shards']} shards, "
          f"{result.manifest['totals']['samples']} samples)")
    return 0
