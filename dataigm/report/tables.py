"""Printed tables that the commands and the demos share (rich)."""

from __future__ import annotations


def _ci(entry: dict, name: str) -> str:
    value, (low, high) = entry[name], entry[f"{name}_ci"]
    return "n/a" if value is None else f"{value:.2f} [{low:.2f}, {high:.2f}]"


def print_audit(report: dict) -> None:
    """Judges against the labels, then the pairwise agreement (rich tables)."""
    from rich.console import Console
    from rich.table import Table

    console = Console()
    lab = report["labels"]
    console.print(f"{lab['positive']} positive and {lab['negative']} negative labelled images ({lab['rule']}); 95% Wilson intervals, "
                  "balanced accuracy by bootstrap")
    table = Table("#", "judge", "n", "sensitivity", "specificity", "balanced acc.", "precision", "best threshold (sweep)")
    for i, j in enumerate(report["judges"]):
        best = j["sweep"]["best"]
        table.add_row(chr(65 + i), j["detector"], str(j["n"]), _ci(j, "sensitivity"), _ci(j, "specificity"), _ci(j, "balanced_accuracy"),
                      _ci(j, "precision"), "n/a" if not best else f"{best['threshold']:.3g} (bal. acc. {best['balanced_accuracy']:.2f})")
    console.print(table)
    for a in report["agreement"]:
        kappa = "n/a" if a["kappa"] is None else f"{a['kappa']:.2f}"
        console.print(f"{chr(65 + a['a'])} vs {chr(65 + a['b'])}: kappa {kappa}, agreement {a['agreement']:.0%} on {a['n']} images")
    if any("caveat" in j["sweep"] for j in report["judges"]):
        console.print("[yellow]the best thresholds were chosen on few images: they fit these images, not new ones[/]")
