"""The printed table of what curation kept, sent to review and dropped (curate, review and the demo print it)."""

from __future__ import annotations

from collections import Counter
from typing import TYPE_CHECKING

from rich.table import Table

if TYPE_CHECKING:
    from dataigm.curate.engine import CurationResult


def kept_dropped_table(result: "CurationResult") -> Table:
    """Rows per category/split/label: in, kept, review, dropped, and the reasons of the drops."""
    table = Table(title="curation: kept / review / dropped")
    for col in ("category", "split", "label", "in", "kept", "review", "dropped", "why dropped / reviewed"):
        table.add_column(col, justify="right" if col in ("in", "kept", "review", "dropped") else "left")
    groups: dict[tuple[str, str, str], Counter[str]] = {}
    reasons: dict[tuple[str, str, str], Counter[str]] = {}
    for d in result.decisions.values():
        g = (d.category, d.split, d.label_name)
        groups.setdefault(g, Counter())[d.verdict] += 1
        reasons.setdefault(g, Counter()).update(d.reasons)
    for g, n in sorted(groups.items()):
        why = ", ".join(f"{r} {k}" for r, k in sorted(reasons[g].items()))
        table.add_row(*g, str(sum(n.values())), str(n["keep"]), str(n["review"]), str(n["drop"]), why)
    return table
