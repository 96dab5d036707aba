"""dataigm list-judges (was ``judges``): the judge kinds --judge takes; a short table, ``--long`` or ``--json`` for the rest."""

from __future__ import annotations

import argparse

from dataigm.commands._options import Command, add_json_flag, emit_json

SHORT = ("kind", "syntax", "decides")  # what fits 80 columns
LONG = ("kind", "syntax", "decides", "reference", "weights", "licence", "offline", "options", "settings")


COMMAND = Command("list-judges", order=61, old_names=("judges",),
                  help="list the judge kinds --judge takes (spec syntax and what each decides)",
                  description="List the judge kinds that --judge takes: spec syntax and what each decides; --long adds how, the "
                  "reference file it reproduces, where its weights come from, their licence and whether they are here.")


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("kind", nargs="?", help="show one kind in full")
    p.add_argument("--long", action="store_true", help="every column: reference, weights, licence, offline, options, settings")
    add_json_flag(p, "the catalogue")


def first_sentence(text: str, limit: int = 60) -> str:
    """The text up to its first clause end, cut to ``limit`` characters: the short table's 'decides' column."""
    for stop in (". ", "; ", ": ", " ("):
        text = text.split(stop, 1)[0]
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def run(args: argparse.Namespace) -> int:
    from dataigm.judges.load import list_judges

    entries = list_judges(args.kind)
    if args.json:
        emit_json({"judges": entries})
        return 0
    if args.long or args.kind:
        for line in long_listing(entries):
            print(line)
        return 0
    for line in short_table(entries):
        print(line)
    return 0


def short_table(entries: list[dict], width: int = 80) -> list[str]:
    """One line per kind, at most ``width`` columns: kind, syntax (cut at 30), what it decides (cut to fit)."""
    kind_w = max(len(str(e["kind"])) for e in entries)
    syntax_w = min(30, max(len(str(e["syntax"])) for e in entries))
    rest = width - kind_w - syntax_w - 4

    def cut(text: str, n: int) -> str:
        return text if len(text) <= n else text[: n - 1].rstrip() + "…"

    lines = [f"{'kind':<{kind_w}}  {'syntax':<{syntax_w}}  decides", f"{'-' * kind_w}  {'-' * syntax_w}  {'-' * min(rest, 7)}"]
    lines += [f"{e['kind']:<{kind_w}}  {cut(str(e['syntax']), syntax_w):<{syntax_w}}  {cut(first_sentence(str(e['decides']), rest), rest)}"
              for e in entries]
    return [*lines, "'dataigm list-judges KIND' or --long: how, reference, weights, licence, settings"]


def long_listing(entries: list[dict], width: int = 80) -> list[str]:
    """Every field of every kind, one block per kind, wrapped at ``width`` columns."""
    import textwrap

    lines: list[str] = []
    for e in entries:
        lines += textwrap.wrap(f"{e['kind']}: {e['syntax']}", width, subsequent_indent="    ", break_on_hyphens=False)
        for col in LONG[2:]:
            value = (", ".join(e[col]) or "none") if isinstance(e[col], list) else e[col]
            lines += textwrap.wrap(f"{col}: {value}", width, initial_indent="  ", subsequent_indent="    ", break_on_hyphens=False)
        lines.append("")
    return lines[:-1]
