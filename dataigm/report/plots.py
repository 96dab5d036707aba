"""The report's plots: forgetting and preservation per method (horizontal bars, sorted), the forgetting/preservation
trade-off per method (the scatter unlearning papers draw), forgetting per subcategory, and the judge's threshold
sweep when the report holds an ``audit``. matplotlib Agg, 120 dpi PNG, written atomically; every figure uses
constrained layout with its legend outside the axes, so labels stay inside the image from 1 to 20 methods.
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
    if fig.get_layout_engine() is None:
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


MARKERS = "osD^vP*Xph<>"
RATE_TICKS = [0.0, 0.2, 0.4, 0.6, 0.8, 1.0]


def method_style(i: int, name: str) -> dict[str, Any]:
    """Colour and marker of the ``i``-th method: 20 distinct pairs, the original model in grey."""
    import matplotlib

    if name == "original":
        return {"color": "0.35", "marker": "o"}
    return {"color": matplotlib.colormaps["tab20"](i % 20), "marker": MARKERS[i % len(MARKERS)]}


def figure_height(n: int, per_row: float = 0.42, base: float = 1.6) -> float:
    """A figure height (inches) that gives each of ``n`` rows room for its label, from 1 to many methods."""
    return max(2.4, base + per_row * n)


def tradeoff_figure(report: dict[str, Any]) -> Any | None:
    """The trade-off scatter as a figure (None when no method has both numbers): one marker per method with both
    intervals, named in a legend beside the axes (labels next to points pile up once methods cluster)."""
    points = []
    for name, res in report["methods"].items():
        x, xerr = _value_and_error(res.get("forgetting", {}).get("all"))
        y, yerr = _value_and_error(res.get("preservation", {}).get("all"))
        if x is not None and y is not None:
            points.append((name, x, xerr, y, yerr))
    if not points:
        return None
    plt = _pyplot()
    longest = max(len(name) for name, *_ in points)
    fig, ax = plt.subplots(figsize=(5.5 + min(6.0, 0.07 * longest + 0.6), max(4.0, 0.22 * len(points) + 1.5)), layout="constrained")
    for i, (name, x, xerr, y, yerr) in enumerate(points):
        ax.errorbar([x], [y], xerr=[[xerr[0]], [xerr[1]]], yerr=[[yerr[0]], [yerr[1]]], fmt=method_style(i, name)["marker"],
                    color=method_style(i, name)["color"], capsize=3, markersize=7, label=name)
    ax.set_xlim(-0.03, 1.03)
    ax.set_ylim(-0.03, 1.03)
    ax.set_xticks(RATE_TICKS)
    ax.set_yticks(RATE_TICKS)
    ax.set_xlabel("forgetting: positive rate on forget images (↓)")
    ax.set_ylabel("preservation: retain accuracy (↑)")
    ax.set_title("trade-off (best: top left)")
    ax.grid(alpha=0.3)
    fig.legend(loc="outside right upper", fontsize=8)
    return fig


def plot_tradeoff(report: dict[str, Any], path: Path) -> Path | None:
    """Forgetting (positive rate on forget images, lower is better) against preservation (retain accuracy, higher
    is better), one point per method with both intervals; None when no method has both numbers."""
    fig = tradeoff_figure(report)
    return None if fig is None else save_figure(fig, path)


def _estimate(res: dict[str, Any], key: str) -> dict[str, Any]:
    return (res.get(key) or {}).get("all") or {}


def bars_figure(report: dict[str, Any]) -> Any:
    """Horizontal bars of forgetting and preservation per method with their intervals, sorted by forgetting (the
    lowest on top; methods without a value last), one row per method, so 1 to 20 methods stay readable."""
    def order(name: str) -> tuple[bool, float]:
        v = _estimate(report["methods"][name], "forgetting").get("value")
        return v is None, v if v is not None else 0.0

    names = sorted(report["methods"], key=order)
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7.5, figure_height(len(names))), layout="constrained")
    height = 0.38
    for offset, key, label in ((-height / 2, "forgetting", "forgetting: positive rate (↓)"),
                               (height / 2, "preservation", "preservation: accuracy (↑)")):
        vals, errs = [], [[], []]
        for n in names:
            v, (lo, hi) = _value_and_error(_estimate(report["methods"][n], key))
            vals.append(v or 0.0)
            errs[0].append(lo)
            errs[1].append(hi)
        ax.barh([i + offset for i in range(len(names))], vals, height, xerr=errs, capsize=2, label=label)
    ax.set_yticks(range(len(names)), names, fontsize=8 if len(names) > 10 else 9)
    ax.invert_yaxis()
    ax.set_xlim(0, 1.05)
    ax.set_xticks(RATE_TICKS)
    ax.set_xlabel("rate")
    ax.set_title(f"judge: {report['detector']['name']}", fontsize=10)
    ax.grid(axis="x", alpha=0.3)
    fig.legend(loc="outside lower center", fontsize=8, ncols=2)
    return fig


def plot_bars(report: dict[str, Any], path: Path) -> Path:
    """Write :func:`bars_figure` as a PNG at ``path``."""
    return save_figure(bars_figure(report), path)


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
    fig, ax = plt.subplots(figsize=(min(14.0, max(5.0, 0.9 * len(groups) * max(1, len(methods)) / 2 + 3)), 3.8), layout="constrained")
    width = 0.8 / len(methods)
    for j, method in enumerate(methods):
        vals, errs = [], [[], []]
        for group in groups:
            v, (lo, hi) = _value_and_error(groups[group].get(method))
            vals.append(v or 0.0)
            errs[0].append(lo)
            errs[1].append(hi)
        ax.bar([i - 0.4 + width * (j + 0.5) for i in range(len(groups))], vals, width, yerr=errs, capsize=2, label=method,
               color=method_style(j, method)["color"])
    ax.set_xticks(range(len(groups)), [g.split("/", 1)[1] for g in groups], rotation=30, ha="right", fontsize=8)
    ax.set_ylim(0, 1.05)
    ax.set_ylabel("positive rate on forget images (↓)")
    ax.set_title("forgetting per subcategory")
    fig.legend(loc="outside right upper", fontsize=8, ncols=1 if len(methods) <= 14 else 2)
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
