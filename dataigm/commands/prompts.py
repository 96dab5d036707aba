"""dataigm prompts import: read prompt sets other benchmarks publish (igmu, i2p, csv, txt) into one JSONL."""

from __future__ import annotations

import argparse
from pathlib import Path

ORDER = 5

# The registry's names, spelled out so that `dataigm --help` imports nothing; a test keeps them in sync.
FORMATS = ("igmu", "i2p", "csv", "txt")


def add_parser(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    p = sub.add_parser("prompts", help="import external prompt sets (igmu, i2p, csv, txt) as normalised JSONL")
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
    return p


def run(args: argparse.Namespace) -> int:
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
