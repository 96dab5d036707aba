"""Printing a dataset's counts as a table."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table


def print_dataset_summary(manifest: dict[str, Any], console: Console, where: Path | None = None) -> None:
    """A rich table of samples per category/split/label (and source) from a manifest."""
    table = Table(title=f"dataset {where}" if where else "dataset")
    for col in ("category", "split", "label", "n", "sources"):
        table.add_column(col, justify="right" if col == "n" else "left")
    for cat, c in manifest["counts"].items():
        for split, sp in c["splits"].items():
            for label, n in sorted(sp["labels"].items()):
                table.add_row(cat, split, label, str(n), ", ".join(f"{k}={v}" for k, v in sorted(sp["sources"].items())))
    console.print(table)
    t = manifest["totals"]
    console.print(f"{t['samples']} samples in {t['shards']} shards, {t['failed']} failed")
