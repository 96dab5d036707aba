"""dataigm verify: check every shard of a dataset folder against its manifest."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from dataigm.commands._options import Command

from dataigm.core.errors import InputError


COMMAND = Command("verify", order=12,
                  help="check shards against the manifest (sha256, sample counts); exit 1 on any mismatch")


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("dataset", type=Path, help="dataset folder: a build folder, or one written by export or pull")
    p.add_argument("--fast", action="store_true", help="checksums only, do not count samples")
    p.add_argument("--no-hash", action="store_true", help="compare file sizes instead of sha256 (with --fast: presence and "
                   "size only, seconds at 100k shards)")
    p.add_argument("--rebuild-manifest", action="store_true", help="first re-derive manifest.json from parts and shard stats")


def run(args: argparse.Namespace) -> int:
    from dataigm.core.datasets import open_dataset_folder
    from dataigm.core.manifest import build_manifest, verify

    source = open_dataset_folder(args.dataset)  # a build folder, or an exported/pulled one
    if args.rebuild_manifest:
        if source.layout != "build":
            raise InputError(f"--rebuild-manifest needs a build folder (with _parts/ and _stats/); {args.dataset} is an exported "
                             "folder whose manifest.json came from its build: verify it without the flag")
        build_manifest(args.dataset)
    problems = verify(args.dataset, deep=not args.fast, hashes=not args.no_hash)
    for p in problems:
        print(f"FAIL {p}", file=sys.stderr)
    if problems:
        print(f"{len(problems)} problem(s) in {args.dataset}", file=sys.stderr)
        return 1
    print(f"ok: every shard of {args.dataset} matches its manifest")
    return 0
