"""The report's plots beyond the bar chart of :mod:`dataigm.report.write`: the forgetting/preservation trade-off
per method (the scatter unlearning papers draw), forgetting per subcategory, and the judge's threshold sweep when
the report holds an ``audit``. Same style as the bar chart: matplotlib Agg, 120 dpi PNG, written atomically.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any, Iterator

from dataigm.core.atomic import write_bytes_atomic

TRADEOFF = "tradeoff.png"
SUBCATEGORIES = "subcategories.png"
SWEEP = "threshold_sweep.png"


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save_figure(fig: Any, path: Path) -> Path:
    """Write ``fig`` as a 120 dpi PNG at ``path`` (atomically) and close it."""
    buf = io.BytesIO()
    fig.tight_layout()
    fig.savefig(buf, format="png", dpi=120)
    _pyplot().close(fig)
    write_bytes_atomic(Path(path), buf.getvalue())
    return Path(path)


def _value_and_error(est: dict[str, Any] | None) -> tuple[float | None, tuple[float, float]]:
    if not est or est.get("value") is None:
        return None, (0.0, 0.0)
    v = float(est["value"])
    lo = est.get("low") if est.get("low") is not None else v
    hi = est.get("high") if est.get("high") is not None else v
    return v, (max(0.0, v - lo), max(0.0, hi - v))


def plot_tradeoff(report: dict[str, Any], path: Path) -> Path | None:
    """Forgetting (positive rate on forget images, lower is better) against preservation (retain accuracy, higher
    is better), one point per method with both intervals; None when no method has both numbers."""
    points = []
    for name, res in report["methods"].items():
        x, xerr = _value_and_error(res.get("forgetting", {}).get("all"))
        y, yerr = _value_and_error(res.get("preservation", {}).get("all"))
        if x is not None and y is not None:
            points.append((name, x, xerr, y, yerr))
    if not points:
        return None
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(5.0, 4.0))
    for name, x, xerr, y, yerr in points:
        ax.errorbar([x], [y], xerr=[[xerr[0]], [xerr[1]]], yerr=[[yerr[0]], [yerr[1]]], fmt="o", capsize=3,
                    color="0.35" if name == "original" else None, label=name)
        ax.annotate(name, (x, y), textcoords="offset points", xytext=(5, 5), fontsize=8)
    ax.set_xlim(-0.03, 1.03)
    ax.set_ylim(-0.03, 1.03)
    ax.set_xlabel("forgetting: positive rate on forget images (↓)")
    ax.set_ylabel("preservation: retain accuracy (↑)")
    ax.set_title("trade-off (best: top left)")
    ax.grid(alpha=0.3)
    return save_figure(fig, path)


def subcategory_rates(report: dict[str, Any]) -> dict[str, dict[str, dict[str, Any]]]:
    """``{group: {method: estimate}}`` for the forgetting groups that name a subcategory (``concept/subcategory``)."""
    out: dict[str, dict[str, dict[str, Any]]] = {}
    for name, res in report["methods"].items():
        for group, est in res.get("forgetting", {}).items():
            if "/" in group and "=" not in group:
                out.setdefault(group, {})[name] = est
    return dict(sorted(out.items()))


def plot_subcategories(report: dict[str, Any], path: Path) -> Path | None:
    """Forgetting per subcategory, one bar per method with its interval; None without subcategories."""
    groups = subcategory_rates(report)
    if not groups:
        return None
    methods = list(report["methods"])
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(max(5.0, 0.9 * len(groups) * max(1, len(methods)) / 2 + 3), 3.8))
    width = 0.8 / len(methods)
    for j, method in enumerate(methods):
        vals, errs = [], [[], []]
        for group in groups:
            v, (lo, hi) = _value_and_error(groups[group].get(method))
            vals.append(v or 0.0)
            errs[0].append(lo)
            errs[1].append(hi)
        ax.bar([i - 0.4 + width * (j + 0.5) for i in range(len(groups))], vals, width, yerr=errs, capsize=2, label=method)
    ax.set_xticks(range(len(groups)), [g.split("/", 1)[1] for g in groups], rotation=30, ha="right", fontsize=8)
    ax.set_ylim(0, 1.05)
    ax.set_ylabel("positive rate on forget images (↓)")
    ax.set_title("forgetting per subcategory")
    ax.legend(fontsize=8, loc="upper right")
    return save_figure(fig, path)


def sweep_tables(audit: Any, where: str = "audit") -> Iterator[tuple[str, list[dict[str, Any]]]]:
    """Every list of rows with a numeric ``threshold`` inside ``audit`` (any nesting), as (its path, rows)."""
    if isinstance(audit, dict):
        for key, value in audit.items():
            yield from sweep_tables(value, f"{where}.{key}")
    elif isinstance(audit, list) and audit and all(isinstance(r, dict) and isinstance(r.get("threshold"), (int, float)) for r in audit):
        yield where, audit


def plot_threshold_sweep(audit: Any, path: Path) -> Path | None:
    """Each numeric column of every threshold table in ``audit`` against the threshold; None without such a table."""
    tables = list(sweep_tables(audit))
    if not tables:
        return None
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(5.5, 3.8))
    for where, rows in tables:
        rows = sorted(rows, key=lambda r: r["threshold"])
        columns = [k for k in rows[0] if k != "threshold" and all(isinstance(r.get(k), (int, float)) and not isinstance(r.get(k), bool) for r in rows)]
        for col in columns:
            label = col if len(tables) == 1 else f"{where.removeprefix('audit.')}: {col}"
            ax.plot([r["threshold"] for r in rows], [r[col] for r in rows], marker=".", label=label)
    ax.set_xlabel("threshold")
    ax.set_title("threshold sweep (audit)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    return save_figure(fig, path)
