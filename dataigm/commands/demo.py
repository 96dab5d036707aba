"""dataigm demo: run the whole pipeline on the embedded tiny model (offline, CPU)."""

from __future__ import annotations

import argparse
from pathlib import Path
from dataigm.commands._options import Command

from dataigm.core.errors import InputError


COMMAND = Command("demo", order=1, help="run the whole pipeline end to end on the embedded tiny model (offline, CPU)")


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--out", type=Path, default=Path("demo-output"), help="output folder (default: %(default)s)")
    p.add_argument("--prompts-per-class", type=int, default=None, metavar="N",
                   help="generate only the first N prompts of each class (default: 40; smaller is a quicker run)")


def run(args: argparse.Namespace) -> int:
    from dataigm.demo import run_demo

    if args.prompts_per_class is not None and args.prompts_per_class < 1:
        raise InputError(f"--prompts-per-class must be >= 1, got {args.prompts_per_class}")
    run_demo(args.out, prompts_per_class=args.prompts_per_class)
    return 0
