"""dataigm export-dataset (was ``export``): turn a dataset folder into a Hub dataset repo folder (data/ + manifest.json + README.md card)."""

from __future__ import annotations

import argparse
from pathlib import Path

from dataigm.commands._options import Command


COMMAND = Command("export-dataset", order=30, old_names=("export",),
                  help="write the Hub layout of a dataset: data/<category>/<split>/*.tar, manifest.json, README.md card")


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("dataset", type=Path, help="dataset folder (with manifest.json)")
    p.add_argument("--out", type=Path, required=True, help="repo folder to write (created or updated)")
    p.add_argument("--categories", nargs="+", default=None, help="export only these categories (default: all)")
    p.add_argument("--repo-id", default="ORG/dataigm", help="Hub id shown in the card's loading examples (default: %(default)s)")
    p.add_argument("--pretty-name", default="DataIGM", help="dataset name shown on the Hub (default: %(default)s)")
    p.add_argument("--license", default="other", help="licence id for the card (default: %(default)s)")
    p.add_argument("--tag", action="append", default=[], help="extra card tag (repeatable)")
    p.add_argument("--card-template", type=Path, default=None, help="Jinja template for the card body (default: cards/dataset.md.j2)")
    p.add_argument("--copy", action="store_true", help="copy the tars instead of hard-linking them")


def run(args: argparse.Namespace) -> int:
    from dataigm.hub.card import CardOptions
    from dataigm.hub.export import export_dataset

    options = CardOptions(
        repo_id=args.repo_id, pretty_name=args.pretty_name, license=args.license, tags=args.tag, template=args.card_template
    )
    result = export_dataset(args.dataset, args.out, categories=args.categories, options=options, link=not args.copy)
    print(f"exported {result.samples} samples ({result.shards} shards) of {', '.join(result.categories)} to {result.out}")
    for cat in result.categories:
        print(f'  load_dataset("{result.out}", "{cat}")')
    if result.removed:
        print(f"removed {len(result.removed)} stale tars from an earlier export")
    return 0
