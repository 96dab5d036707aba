"""The curation report: kept / review / dropped per category, split and label, per filter reason, pair
statistics, near-duplicates and cross-split leaks (perceptual hash and embedding), as Markdown (with the contact
sheets inline) and as JSON.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING, Any, Sequence

from dataigm.core.atomic import write_bytes_atomic, write_json_atomic

if TYPE_CHECKING:
    from dataigm.curate.decision import Decision

REPORT_MD = "curation_report.md"
REPORT_JSON = "curation_report.json"
MAX_LISTED = 50
# duplicate search -> its (dup_of, leak) fields in a sample's ``curation`` record
DUPLICATE_FIELDS = {"phash": ("dup_of", "leak"), "embedding": ("emb_dup_of", "emb_leak")}


def duplicate_counts(decisions: dict[str, "Decision"]) -> list[dict[str, Any]]:
    """Per category and search: samples with a near-duplicate, within a split, across splits (leaks), with another label."""
    counts: dict[tuple[str, str], Counter[str]] = {}
    for d in decisions.values():
        for by, (f_of, f_leak) in DUPLICATE_FIELDS.items():
            other = d.fields.get(f_of)
            if not other:
                continue
            n = counts.setdefault((d.category, by), Counter())
            n["near_duplicates"] += 1
            n["leaks" if d.fields.get(f_leak) else "same_split"] += 1
            n["conflicts"] += other in decisions and decisions[other].label_name != d.label_name
    return [{"category": c, "by": by, **{k: n[k] for k in ("near_duplicates", "same_split", "leaks", "conflicts")}}
            for (c, by), n in sorted(counts.items())]


def summarize(decisions: dict[str, "Decision"]) -> dict[str, Any]:
    """Counts per (category, split, label) and per filter reason; a flag counts under the verdict it caused."""
    by_label: dict[tuple[str, str, str], Counter[str]] = {}
    by_reason: dict[tuple[str, str], Counter[str]] = {}
    for d in decisions.values():
        by_label.setdefault((d.category, d.split, d.label_name), Counter())[d.verdict] += 1
        for reason in d.reasons:
            by_reason.setdefault((d.category, reason), Counter())[d.verdict] += 1
    leaks = sorted((d.key, d.fields.get(f_of, ""), by) for d in decisions.values()
                   for by, (f_of, f_leak) in DUPLICATE_FIELDS.items() if d.fields.get(f_leak))
    relabeled = sorted((d.key, d.label_name, d.relabel_to) for d in decisions.values() if d.relabel_to)
    return {
        "labels": [{"category": c, "split": s, "label": l, "in": sum(n.values()), "kept": n["keep"], "review": n["review"], "dropped": n["drop"]}
                   for (c, s, l), n in sorted(by_label.items())],
        "reasons": [{"category": c, "reason": r, "flagged": sum(n.values()), "kept": n["keep"], "review": n["review"], "dropped": n["drop"]}
                    for (c, r), n in sorted(by_reason.items())],
        "duplicates": duplicate_counts(decisions),
        "leaks": [{"key": k, "dup_of": o, "by": by} for k, o, by in leaks],
        "relabeled": [{"key": k, "from": a, "to": b} for k, a, b in relabeled],
        "totals": dict(sorted(Counter(d.verdict for d in decisions.values()).items())),
    }


def _table(rows: list[dict[str, Any]], columns: Sequence[str]) -> list[str]:
    if not rows:
        return ["(none)", ""]
    lines = ["| " + " | ".join(columns) + " |", "|" + "|".join("---" for _ in columns) + "|"]
    lines += ["| " + " | ".join(str(r[c]) for c in columns) + " |" for r in rows]
    return lines + [""]


def search_rows(searches: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """One table row per near-duplicate search; recall columns are empty for an exact search."""
    def fmt(v: Any) -> str:
        return "" if v is None else f"{v:.4f}" if isinstance(v, float) else str(v)
    return [{"category": s["category"], "by": s["by"], "samples": s["samples"], "method": s["method"],
             "recall_at_1": fmt(s.get("recall_at_1")), "duplicate_recall": fmt(s.get("duplicate_recall")),
             "recall_queries": fmt(s.get("recall_queries")), "recall_duplicates": fmt(s.get("recall_duplicates"))} for s in searches]


def render_markdown(summary: dict[str, Any], pair_stats: dict[str, dict[str, int]], sheets: Sequence[str], unmatched: Sequence[str],
                    searches: Sequence[dict[str, Any]] = ()) -> str:
    t = summary["totals"]
    lines = ["# Curation report", "",
             f"In: {sum(t.values())} samples; kept {t.get('keep', 0)}, kept for review {t.get('review', 0)}, dropped {t.get('drop', 0)}.", "",
             "## Per label", ""]
    lines += _table(summary["labels"], ["category", "split", "label", "in", "kept", "review", "dropped"])
    lines += ["## Per filter", "", "A sample can be flagged by several filters; it is dropped or reviewed by the strongest action.", ""]
    lines += _table(summary["reasons"], ["category", "reason", "flagged", "kept", "review", "dropped"])
    lines += ["## Pairs", ""]
    lines += _table([{"category": c, **s} for c, s in pair_stats.items()], ["category", *next(iter(pair_stats.values()), {}).keys()])
    lines += ["## Near-duplicates", "", "Samples with a near-duplicate, per search (`phash`: perceptual hash, `embedding`: cosine similarity).", ""]
    lines += _table(summary["duplicates"], ["category", "by", "near_duplicates", "same_split", "leaks", "conflicts"])
    lines += ["## Near-duplicate search", "", "How each search ran. An approximate (FAISS) search is checked against exact search on "
              "sampled samples: `recall_at_1` is the share whose most similar earlier kept sample it found, `duplicate_recall` the "
              "share of exact near-duplicates it flagged.", ""]
    lines += _table(search_rows(searches), ["category", "by", "samples", "method", "recall_at_1", "duplicate_recall", "recall_queries", "recall_duplicates"])
    lines += [f"## Cross-split duplicates (leaks): {len(summary['leaks'])}", ""]
    lines += [f"- `{x['key']}` duplicates `{x['dup_of']}` ({x['by']})" for x in summary["leaks"][:MAX_LISTED]] + [""]
    if summary["relabeled"]:
        lines += ["## Relabelled by review", ""] + [f"- `{x['key']}`: {x['from']} -> {x['to']}" for x in summary["relabeled"][:MAX_LISTED]] + [""]
    if unmatched:
        lines += ["## Review tags naming unknown samples", ""] + [f"- `{k}`" for k in unmatched[:MAX_LISTED]] + [""]
    lines += ["## Contact sheets", ""] + [f"![{Path(s).stem}]({s})" for s in sheets] + [""]
    return "\n".join(lines)


def write_report(out: Path, decisions: dict[str, "Decision"], pair_stats: dict[str, dict[str, int]], sheets: Sequence[str], unmatched: Sequence[str] = (),
                 searches: Sequence[dict[str, Any]] = ()) -> Path:
    """Write ``curation_report.md`` and ``curation_report.json`` at the top of ``out``; returns the Markdown path."""
    summary = summarize(decisions)
    write_json_atomic(Path(out) / REPORT_JSON, {**summary, "pairs": pair_stats, "sheets": list(sheets), "unmatched_review_tags": list(unmatched),
                                                "searches": list(searches)})
    path = Path(out) / REPORT_MD
    write_bytes_atomic(path, render_markdown(summary, pair_stats, sheets, unmatched, searches).encode())
    return path
