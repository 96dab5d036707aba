"""The printed table of what curation kept, sent to review and dropped (curate, review and the demo print it)."""

from __future__ import annotations

from collections import Counter
from typing import TYPE_CHECKING

from rich import box
from rich.console import Group
from rich.table import Table
from rich.text import Text

if TYPE_CHECKING:
    from dataigm.curate.engine import CurationResult


def kept_dropped_table(result: "CurationResult") -> Group:
    """Rows per category/split/label (in, kept, review, dropped), then one line per row with the reasons of its drops
    and reviews: the reasons wrap at any width instead of being cut to fit a table column."""
    table = Table(title="curation: kept / review / dropped", box=box.SIMPLE_HEAD, pad_edge=False)
    for col in ("category", "split", "label", "in", "kept", "review", "dropped"):
        table.add_column(col, justify="right" if col in ("in", "kept", "review", "dropped") else "left")
    groups: dict[tuple[str, str, str], Counter[str]] = {}
    reasons: dict[tuple[str, str, str], Counter[str]] = {}
    for d in result.decisions.values():
        g = (d.category, d.split, d.label_name)
        groups.setdefault(g, Counter())[d.verdict] += 1
        reasons.setdefault(g, Counter()).update(d.reasons)
    why = []
    for g, n in sorted(groups.items()):
        table.add_row(*g, str(sum(n.values())), str(n["keep"]), str(n["review"]), str(n["drop"]))
        if reasons[g]:
            why.append(f"{'/'.join(g)}: " + ", ".join(f"{r} ({k})" for r, k in sorted(reasons[g].items())))
    return Group(table, *(Text(line) for line in why))
