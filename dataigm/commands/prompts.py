"""dataigm prompts import | fetch: read prompt sets other benchmarks publish into one JSONL; fetch a suite's pinned files."""

from __future__ import annotations

import argparse
from pathlib import Path
from dataigm.commands._options import Command

# The registry's names, spelled out so that `dataigm --help` imports nothing; a test keeps them in sync.
FORMATS = ("igmu", "i2p", "csv", "txt", "unlearndiffatk")


COMMAND = Command("prompts", order=5,
                  help="import external prompt sets as normalised JSONL; fetch a benchmark suite's pinned prompt files")


def add_arguments(p: argparse.ArgumentParser) -> None:
    actions = p.add_subparsers(dest="prompts_command", metavar="ACTION", required=True)
    imp = actions.add_parser(
        "import",
        help="read an external prompt file into a normalised JSONL usable in recipes (classes[].prompts.files)",
        description="Read an external prompt file into one normalised JSONL (prompt, concept, category, subcategory, "
        "label, paired_negative, source, index, seed, guidance). Recipes list the output under classes[].prompts.files.",
    )
    imp.add_argument("file", type=Path, help="the prompt file to read")
    imp.add_argument("--format", "-f", dest="fmt", required=True, choices=FORMATS, help="format of FILE")
    imp.add_argument("--out", "-o", type=Path, required=True, help="output JSONL (written atomically)")
    imp.add_argument("--role", choices=("forget", "retain"), default="forget",
                     help="forget: prompts of the concept; retain: prompts that must keep working (default: %(default)s)")
    imp.add_argument("--category", default="", help="category of every prompt (overrides what the file implies)")
    imp.add_argument("--concept", default="", help="concept of every prompt, e.g. van_gogh or church (needs --category)")
    imp.add_argument("--select", default="", metavar="TAGS",
                     help="i2p/csv: keep rows whose 'categories' include one of these comma-separated tags (e.g. sexual)")
    fetch = actions.add_parser(
        "fetch",
        help="download a benchmark suite's prompt files at their pinned commit into the cache and check their sha256",
        description="Download the prompt files a suite pins (see `dataigm suites`) into $DATAIGM_CACHE/prompts/ and check each "
        "sha256; a mismatch is an error naming the expected and the found hash. --from DIR takes local copies (offline machines).",
    )
    fetch.add_argument("suite", help="a suite name or a suite YAML")
    fetch.add_argument("--from", dest="source_dir", type=Path, help="folder holding the files (by their path in the repository or by name)")
    fetch.add_argument("--force", action="store_true", help="fetch again even when a verified copy is cached")


def run(args: argparse.Namespace) -> int:
    if args.prompts_command == "fetch":
        return run_fetch(args)
    return run_import(args)


def run_fetch(args: argparse.Namespace) -> int:
    from rich.console import Console

    from dataigm.benchmark.fetch import fetch_suite
    from dataigm.benchmark.suite import load_suite

    suite = load_suite(args.suite)
    paths = fetch_suite(suite, args.source_dir, force=args.force)
    console = Console(highlight=False, markup=False)
    for key, path in paths.items():
        console.print(f"{suite.files[key].path} ({suite.files[key].sha256[:12]}…, {suite.files[key].format}): {path}")
    return 0


def run_import(args: argparse.Namespace) -> int:
    from collections import Counter

    from rich.console import Console

    from dataigm.ingest.prompt_formats import import_prompts
    from dataigm.prompts import write_prompt_jsonl

    records = import_prompts(args.file, args.fmt, args.role, category=args.category, concept=args.concept,
                             select_categories=args.select.split(","))
    n = write_prompt_jsonl(records, args.out)
    by_concept = Counter(f"{r.category or '-'}/{r.concept or '-'} [{r.label or '-'}]" for r in records)
    seeded = sum(r.seed is not None for r in records)
    guided = sum(r.guidance is not None for r in records)
    console = Console(highlight=False, markup=False)
    console.print(f"wrote {n} prompts from {args.file} ({args.fmt}, {args.role}) to {args.out}")
    for name, count in sorted(by_concept.items()):
        console.print(f"  {name}: {count}")
    console.print(f"  with seed: {seeded}, with guidance: {guided}")
    return 0
