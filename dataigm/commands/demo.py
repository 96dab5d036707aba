"""dataigm demo: run the whole pipeline on the embedded tiny model (offline, CPU)."""

from __future__ import annotations

import argparse
from pathlib import Path

ORDER = 1


def add_parser(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    p = sub.add_parser("demo", help="run the whole pipeline end to end on the embedded tiny model (offline, CPU)")
    p.add_argument("--out", type=Path, default=Path("demo-output"), help="output folder (default: %(default)s)")
    return p


def run(args: argparse.Namespace) -> int:
    from dataigm.demo import run_demo

    run_demo(args.out)
    return 0
