"""Write an evaluation report: ``report.json``, ``report.md`` (a table per method, per concept/subcategory) and
``forgetting_preservation.png`` (bars with bootstrap intervals, one pair per method).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from dataigm.core.atomic import write_bytes_atomic, write_json_atomic

CHART = "forgetting_preservation.png"


def _fmt(est: dict[str, Any] | None, pct: bool = True) -> str:
    if not est or est.get("value") is None:
        return "n/a"
    v, lo, hi = est["value"], est.get("low"), est.get("high")
    if pct:
        return f"{v:.1%} [{lo:.1%}, {hi:.1%}]" if lo is not None else f"{v:.1%}"
    return f"{v:.4f} [{lo:.4f}, {hi:.4f}]" if lo is not None else f"{v:.4f}"


def method_table(name: str, res: dict[str, Any]) -> list[str]:
    """Markdown lines: one table per method with every metric it has."""
    lines = [f"## {name}", "", f"forget images: {res['sources']['forget']} ({res['n_forget']}), "
             f"retain images: {res['sources']['retain']} ({res['n_retain']})", "",
             "| metric | group | value [95% CI] | n |", "|---|---|---|---|"]
    for group, est in res["forgetting"].items():
        lines.append(f"| forgetting: positive rate on forget (lower is better) | {group} | {_fmt(est)} | {est['n']} |")
    for group, est in res["preservation"].items():
        lines.append(f"| preservation: accuracy on retain (higher is better) | {group} | {_fmt(est)} | {est['n']} |")
    if "person_presence" in res:
        pp = res["person_presence"]
        lines.append(f"| person presence on forget ({pp['detector']['name']}) | all | {_fmt(pp)} | {pp['n']} |")
    for split, fid in res.get("fidelity", {}).items():
        if "lpips" in fid:
            lines.append(f"| LPIPS vs original (lower is closer) | {split} | {_fmt(fid['lpips'], pct=False)} | {fid['n_pairs']} |")
        if "fid" in fid:
            lines.append(f"| FID vs original ({fid['feature']}) | {split} | {fid['fid']:.3f} | {fid['n_pairs']} |")
            lines.append(f"| KID vs original ({fid['feature']}) | {split} | {fid['kid_mean']:.5f} ± {fid['kid_std']:.5f} | {fid['n_pairs']} |")
    if "alignment" in res:
        al = res["alignment"]
        lines.append(f"| CSDR (concept-free prompt matches better) | forget | {_fmt(al['csdr'])} | {al['csdr']['n']} |")
        lines.append(f"| CLIP score with prompt | forget | {_fmt(al['clip_score_prompt'], pct=False)} | {al['clip_score_prompt']['n']} |")
    if res.get("failed"):
        lines += ["", f"unreadable images ({len(res['failed'])}): " + ", ".join(res["failed"][:20])]
    return lines + [""]


def render_markdown(report: dict[str, Any]) -> str:
    """report.md: the judge, an overview table of every method, the chart, then one table per method."""
    det = report["detector"]
    head = [
        "# Unlearning evaluation", "",
        f"judge: `{det['name']}` (target `{report['target']}`, threshold {report['threshold']}"
        + (f", preset {det['preset']}" if det.get("preset") else "")
        + (f", weights sha256 {det['weights_sha256'][:16]}…" if det.get("weights_sha256") else "") + ")",
        f"intervals: {report['config']['confidence']:.0%} percentile bootstrap, {report['config']['n_resamples']} resamples, seed {report['config']['seed']}",
        "",
        "| method | forgetting (↓) | preservation (↑) |", "|---|---|---|",
    ]
    for name, res in report["methods"].items():
        head.append(f"| {name} | {_fmt(res['forgetting'].get('all'))} | {_fmt(res['preservation'].get('all'))} |")
    body = [line for name, res in report["methods"].items() for line in method_table(name, res)]
    return "\n".join(head + ["", f"![forgetting vs preservation]({CHART})", ""] + body)


def plot_chart(report: dict[str, Any], path: Path) -> Path:
    """Grouped bars: forgetting and preservation per method, with their intervals."""
    import io

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(report["methods"])
    fig, ax = plt.subplots(figsize=(max(4.0, 1.4 * len(names) + 2), 3.5))
    width = 0.38
    for offset, key, label in ((-width / 2, "forgetting", "forgetting: positive rate (↓)"), (width / 2, "preservation", "preservation: accuracy (↑)")):
        vals, errs = [], [[], []]
        for n in names:
            est = report["methods"][n][key].get("all") or {}
            v = est.get("value") or 0.0
            vals.append(v)
            errs[0].append(max(0.0, v - (est.get("low") if est.get("low") is not None else v)))
            errs[1].append(max(0.0, (est.get("high") if est.get("high") is not None else v) - v))
        ax.bar([i + offset for i in range(len(names))], vals, width, yerr=errs, capsize=3, label=label)
    ax.set_xticks(range(len(names)), names)
    ax.set_ylim(0, 1.05)
    ax.set_ylabel("rate")
    ax.set_title(f"judge: {report['detector']['name']}")
    ax.legend(fontsize=8, loc="upper right")
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=120)
    plt.close(fig)
    write_bytes_atomic(Path(path), buf.getvalue())
    return Path(path)


def write_report(report: dict[str, Any], out_dir: Path) -> dict[str, Path]:
    """Write report.json, report.md and the chart below ``out_dir``; returns their paths."""
    out_dir = Path(out_dir)
    paths = {"json": out_dir / "report.json", "markdown": out_dir / "report.md", "chart": out_dir / CHART}
    write_json_atomic(paths["json"], report)
    plot_chart(report, paths["chart"])
    write_bytes_atomic(paths["markdown"], render_markdown(report).encode())
    return paths
