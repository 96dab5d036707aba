"""dataigm judges: list every judge kind: what it decides and how, the reference it reproduces, its weights."""

from __future__ import annotations

import argparse

from dataigm.commands._options import add_json_flag, emit_json

ORDER = 61


def add_parser(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    p = sub.add_parser("judges", help="list every judge kind (spec syntax, rule, reference, weights, licence)",
                       description="List the judge kinds that --detector takes: spec syntax, what each decides and how, the "
                       "reference file it reproduces, where its weights come from, their licence and whether they are here.")
    p.add_argument("kind", nargs="?", help="show one kind in full")
    add_json_flag(p, "the catalogue")
    return p


def run(args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.table import Table

    from dataigm.judges.load import list_judges

    entries = list_judges(args.kind)
    if args.json:
        emit_json({"judges": entries})
        return 0
    console = Console(highlight=False)
    table = Table(title="judge kinds (--detector)", show_lines=bool(args.kind))
    for col in ("kind", "syntax", "decides", "reference", "weights", "licence", "offline"):
        table.add_column(col, overflow="fold", no_wrap=col == "kind")
    for e in entries:
        table.add_row(*(str(e[c]) for c in ("kind", "syntax", "decides", "reference", "weights", "licence", "offline")))
    console.print(table)
    return 0
