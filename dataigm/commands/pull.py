"""dataigm pull: download a dataset repo (or some categories) from the Hub and verify its checksums."""

from __future__ import annotations

import argparse
from pathlib import Path
from dataigm.commands._options import Command


COMMAND = Command("pull", order=36,
                  help="download a dataset repo (or some categories) and verify every tar against its manifest")


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("repo_id", help="ORG/NAME of the dataset repo")
    p.add_argument("--out", type=Path, required=True, help="folder to download into")
    p.add_argument("--categories", nargs="+", default=None, help="download only these categories (default: all)")
    p.add_argument("--revision", default=None, help="branch, tag or commit (default: main)")


def run(args: argparse.Namespace) -> int:
    from dataigm.hub.pull import pull_dataset

    result = pull_dataset(args.repo_id, args.out, categories=args.categories, revision=args.revision)
    for problem in result.problems:
        print(f"FAILED {problem}")
    if result.problems:
        print(f"{len(result.problems)} problems in {result.path}: the download is not intact (delete the listed files and re-run)")
        return 1
    print(f"{result.samples} samples of {', '.join(result.categories)} in {result.path}: all checksums match")
    return 0
