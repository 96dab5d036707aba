"""The one printed table of a detector's metrics (train, evaluate and the demo print it)."""

from __future__ import annotations

import math
from typing import Any

from rich.table import Table


def metrics_rows(report: dict[str, Any]) -> list[tuple[str, str]]:
    """(metric, value) rows for a printed table, with the chance level beside balanced accuracy."""
    def fmt(v: Any) -> str:
        return "n/a" if v is None or (isinstance(v, float) and not math.isfinite(v)) else (f"{v:.3f}" if isinstance(v, float) else str(v))

    rows = [("n", fmt(report["n"])), ("accuracy", fmt(report["accuracy"])),
            ("balanced accuracy", f"{fmt(report['balanced_accuracy'])} (chance {report['chance_balanced_accuracy']:.3f})")]
    if "roc_auc" in report:
        rows.append(("ROC-AUC", f"{fmt(report['roc_auc'])} (chance 0.500)"))
    rows += [("ECE", fmt(report["ece"])), ("threshold", fmt(report.get("threshold")))]
    for name, c in report["per_class"].items():
        rows.append((f"{name} P/R/F1", f"{c['precision']:.3f} / {c['recall']:.3f} / {c['f1']:.3f} (n={c['support']})"))
    for name, s in report.get("per_source", {}).items():
        rows.append((f"source {name}", f"n={s['n']} acc={fmt(s['accuracy'])} bal={fmt(s['balanced_accuracy'])}"))
    return rows


def metrics_table(report: dict[str, Any], title: str) -> Table:
    """A two-column rich table of :func:`metrics_rows`."""
    table = Table(title=title, show_header=False)
    for name, value in metrics_rows(report):
        table.add_row(name, value)
    return table
