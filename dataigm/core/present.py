"""The one printed table of a dataset's counts (build, import-images and the demo print it)."""

from __future__ import annotations

from typing import Any

from rich.table import Table

from dataigm.core.manifest import counts_table


def manifest_table(manifest: dict[str, Any], title: str = "dataset", category: str | None = None) -> Table:
    """Samples per category / split / label of a manifest, with the split's sources and failures."""
    table = Table(title=title)
    for col in ("category", "split", "label", "n", "sources", "failed"):
        table.add_column(col, justify="right" if col in ("n", "failed") else "left")
    for cat, split, label, n in counts_table(manifest):
        if category is not None and cat != category:
            continue
        sp = manifest["counts"][cat]["splits"][split]
        sources = ", ".join(f"{k}={v}" for k, v in sorted(sp.get("sources", {}).items()))
        table.add_row(cat, split, label, str(n), sources, str(sp.get("failed", 0)))
    return table


def totals_line(manifest: dict[str, Any]) -> str:
    """``N samples in S shards, F failed``."""
    t = manifest["totals"]
    return f"{t['samples']} samples in {t['shards']} shards, {t['failed']} failed"
