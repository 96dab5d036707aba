"""dataigm concepts: list every taxonomy category and concept, with the file each comes from."""

from __future__ import annotations

import argparse
import json
from typing import Any
from dataigm.commands._options import Command


COMMAND = Command("concepts", order=3,
                  help="list the taxonomy's categories and concepts (builders/concepts/*.yaml) and their files",
                  description="List every category and concept the taxonomy knows: the shipped ones (builders/concepts/*.yaml) "
                  "and those of --file. A recipe or suite adds its own with `concepts_file: PATH`.")


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--file", action="append", default=[], metavar="PATH", help="also load this concepts file (repeatable)")
    p.add_argument("--category", help="only this category")
    p.add_argument("--json", action="store_true", help="one JSON object on stdout (categories, their concepts, triggers and files)")


def concept_record(concept: Any) -> dict[str, Any]:
    """The JSON form of one concept."""
    return {"name": concept.name, "label_name": concept.label_name, "synonyms": list(concept.synonyms), "replacement": concept.replacement,
            "trigger_replacements": list(concept.trigger_replacements), "description": concept.description, "phrases": list(concept.phrases),
            "imagenet_index": concept.imagenet_index, "triggers": list(concept.triggers), "source": concept.source}


def category_record(category: Any) -> dict[str, Any]:
    """The JSON form of one category and its concepts."""
    return {"name": category.name, "description": category.description, "nsfw": category.nsfw, "open": category.concept_factory is not None,
            "negative_label": category.negative_label, "templates": list(category.templates), "retain_templates": list(category.retain_templates),
            "sources": list(category.sources), "source": category.source, "concepts": [concept_record(c) for c in category.concepts.values()]}


def shown_path(path: str) -> str:
    """``path`` relative to the working directory when it lies below it."""
    from pathlib import Path

    try:
        return str(Path(path).resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return path


def run(args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    from dataigm.taxonomy import CATEGORIES, load_concepts_file

    for path in args.file:
        load_concepts_file(path)
    names = [CATEGORIES.get(args.category).name] if args.category else CATEGORIES.names()
    records = [category_record(CATEGORIES.get(n)) for n in names]
    if args.json:
        print(json.dumps({"categories": records}, indent=1, ensure_ascii=False))
        return 0
    table = Table(title="taxonomy concepts")
    for col in ("category", "concept", "label", "synonyms", "negative", "file"):
        table.add_column(col, overflow="fold")
    for cat in records:
        shown = f"{len(cat['concepts'])} concepts" + (", or any name" if cat["open"] else "")
        table.add_row(escape(cat["name"]), shown, escape(cat["negative_label"]), "", "", escape(shown_path(cat["source"])), style="bold")
        for c in cat["concepts"]:
            negative = c["replacement"] or ("one per trigger" if any(r is not None for r in c["trigger_replacements"]) else "(removed)")
            own_file = shown_path(c["source"]) if c["source"] != cat["source"] else ""
            label = c["label_name"] if c["label_name"] != c["name"] else ""
            table.add_row("", *(escape(v) for v in (c["name"], label, ", ".join(c["synonyms"]), negative, own_file)))
    Console(highlight=False).print(table)
    return 0
