"""Printing a dataset's counts as a table."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rich.console import Console

from dataigm.core.present import manifest_table, totals_line


def print_dataset_summary(manifest: dict[str, Any], console: Console, where: Path | None = None) -> None:
    """The dataset's counts table (:func:`dataigm.core.present.manifest_table`) and its totals."""
    console.print(manifest_table(manifest, f"dataset {where}" if where else "dataset"))
    console.print(totals_line(manifest))
