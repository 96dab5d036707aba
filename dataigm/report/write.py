"""Write an evaluation report: ``report.json``, ``report.md`` (a table per method, per concept/subcategory),
``forgetting_preservation.png`` (bars with bootstrap intervals, one pair per method) and ``report.html`` (the page
with the images, :mod:`dataigm.report.html`). Rows that cannot be computed are left out with one note each.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from dataigm.core.atomic import write_bytes_atomic, write_json_atomic
from dataigm.report.html import decision_rule, interval_rule, weights_digest
from dataigm.report.plots import plot_bars

CHART = "forgetting_preservation.png"


def _fmt(est: dict[str, Any] | None, pct: bool = True) -> str:
    if not est or est.get("value") is None:
        return "n/a"
    v, lo, hi = est["value"], est.get("low"), est.get("high")
    if pct:
        return f"{v:.1%} [{lo:.1%}, {hi:.1%}]" if lo is not None else f"{v:.1%}"
    return f"{v:.4f} [{lo:.4f}, {hi:.4f}]" if lo is not None else f"{v:.4f}"


def _count(est: dict[str, Any]) -> str:
    """The images and prompts behind an interval, and how it was made: ``5 (1 prompt, Wilson)``."""
    prompts = est.get("n_prompts", est.get("clusters"))
    how = {"wilson-images": ", Wilson over images", "bootstrap-images": ", bootstrap over images"}.get(est.get("interval", ""), "")
    return f"{est['n']}" if prompts is None else f"{est['n']} ({prompts} prompt{'s' if prompts != 1 else ''}{how})"


def _distance_rows(scores: dict[str, Any], against: str, split: str, count: str) -> list[str]:
    """The FID, KID (on FID's features) and CMMD rows of images compared with ``against``; ``count`` names the field
    that says how many images (or pairs) were compared."""
    rows = []
    if "fid" in scores:
        rows.append(f"| FID vs {against} ({scores['feature']}) | {split} | {scores['fid']:.3f} | {scores[count]} |")
        if "kid_mean" in scores:
            rows.append(f"| KID vs {against} ({scores['feature']}) | {split} | {scores['kid_mean']:.5f} ± {scores['kid_std']:.5f} | {scores[count]} |")
    if "cmmd" in scores:
        rows.append(f"| CMMD vs {against} | {split} | {scores['cmmd']:.4f} | {scores[count]} |")
    return rows


def method_table(name: str, res: dict[str, Any]) -> list[str]:
    """Markdown lines: one table per method with every metric it has."""
    unit = "prompts" if res.get("aggregate") == "prompt-any" else "images"
    lines = [f"## {name}", "", f"forget images: {res['sources']['forget']} ({res['n_forget']}), "
             f"retain images: {res['sources']['retain']} ({res['n_retain']})", "",
             "| metric | group | value [CI] | n (prompts) |", "|---|---|---|---|"]
    for group, est in res["forgetting"].items():
        lines.append(f"| forgetting: positive rate on forget {unit} (lower is better) | {group} | {_fmt(est)} | {_count(est)} |")
    for group, est in res.get("forgetting_corrected", {}).items():
        unstable = " (unstable: sens + spec close to 1)" if est.get("unstable") else ""
        lines.append(f"| forgetting corrected for the judge's errors (Rogan-Gladen, audit {res['correction']['audit_scope']}){unstable} "
                     f"| {group} | {_fmt(est)} | {_count(est)} |")
    if "negative_positive_rate" in res:
        neg = res["negative_positive_rate"]
        lines.append(f"| positive rate on concept-removed images (paired negatives) | all | {_fmt(neg)} | {_count(neg)} |")
    for group, est in res["preservation"].items():
        lines.append(f"| preservation: accuracy on retain (higher is better) | {group} | {_fmt(est)} | {_count(est)} |")
    for group, est in res.get("preservation_top1", {}).items():
        lines.append(f"| preservation_top1: ImageNet top-1 is the retain image's own class (ESD) | {group} | {_fmt(est)} | {_count(est)} |")
    if res.get("unlearning_accuracy"):
        ua = res["unlearning_accuracy"]
        lines.append(f"| UA: unlearning accuracy, UnlearnCanvas (1 - forgetting; higher is better) | all | {_fmt(ua)} | {_count(ua)} |")
    dom = res.get("preservation_domains")
    if dom:
        for key, label in (("ira", "IRA: in-domain retain accuracy, per-class mean"), ("cra", "CRA: cross-domain retain accuracy, per-class mean")):
            if not dom[key]["classes"]:
                continue  # no retain class of that domain: report_notes says so
            lines.append(f"| {label} (domain {dom['forget_domain'] or '?'}) | {len(dom[key]['classes'])} classes | {_fmt(dom[key])} | {dom[key]['n']} |")
    if "asr" in res:
        a = res["asr"]
        lines.append(f"| attack success rate (pre-attack {a['pre_attack_successes']} + new {a['new_successes']}) | prompts | {_fmt(a)} | {a['n_prompts']} |")
    if "person_presence" in res:
        pp = res["person_presence"]
        lines.append(f"| person presence on forget ({pp['detector']['name']}{'; ' + pp['note'] if pp.get('note') else ''}) | all | {_fmt(pp)} | {pp['n']} |")
    for split, fid in res.get("fidelity", {}).items():
        ref = f"original {'concept-removed prompt' if fid.get('reference') == 'pair' else 'same prompt'}"
        if "lpips" in fid:
            lines.append(f"| LPIPS vs {ref} (lower is closer) | {split} | {_fmt(fid['lpips'], pct=False)} | {fid['n_pairs']} |")
        lines += _distance_rows(fid, ref, split, "n_pairs")
    rf = res.get("reference_fidelity")
    if rf:
        stats = f" statistics, sha256 {rf['sha256'][:16]}…{'' if rf.get('verified') else ' (unverified)'}" if rf.get("sha256") else ""
        lines += _distance_rows(rf, rf["reference"] + stats, "retain", "n_images")
    if "alignment" in res:
        al = res["alignment"]
        c = al["csdr"]
        if c.get("value") is not None or c.get("n_units"):
            name = ("csdr-pair (ours: IGMU's ratio against the concept-removed prompt p′" if c.get("prompts") == "pair"
                    else "CSDR (IGMU: mean \\|s_o - s_u\\| / s_o × 100 against its cleaned text")
            lines.append(f"| {name}, per {c['unit']}) | forget | {_fmt(c, pct=False)} | {c['n']} |")
        lines.append(f"| csdr_win_rate (concept-removed prompt scores higher) | forget | {_fmt(al['csdr_win_rate'])} | {al['csdr_win_rate']['n']} |")
        lines.append(f"| CLIP score with prompt | forget | {_fmt(al['clip_score_prompt'], pct=False)} | {al['clip_score_prompt']['n']} |")
    for split, cs in res.get("clip_score", {}).items():
        lines.append(f"| CLIP score ({cs['mode']}) | {split} | {_fmt(cs, pct=False)} | {cs['n']} |")
    if res.get("failed"):
        lines += ["", f"unreadable images ({len(res['failed'])}): " + ", ".join(res["failed"][:20])]
    return lines + [""]


def warning_lines(report: dict[str, Any]) -> list[str]:
    """The report's ``warnings`` (judge validity) as a Markdown block, or nothing."""
    warnings = report.get("warnings") or []
    return [*(f"> **Warning:** {w}." for w in warnings), ""] if warnings else []


def judges_lines(report: dict[str, Any]) -> list[str]:
    """With several judges: one column per judge (forgetting on the forget images) and their pairwise kappa."""
    rows = {name: res["judges"] for name, res in report["methods"].items() if "judges" in res}
    if not rows:
        return []
    specs = next(iter(rows.values()))["detectors"]
    pairs = next(iter(rows.values()))["agreement"]
    letters = [chr(65 + i) for i in range(len(specs))]
    lines = ["## Judges", "", ", ".join(f"{c} = `{s}`" for c, s in zip(letters, specs)), "",
             "| method | " + " | ".join(f"forgetting {c}" for c in letters) + " | " + " | ".join(f"kappa {letters[p['a']]}-{letters[p['b']]}" for p in pairs) + " |",
             "|---|" + "---|" * (len(specs) + len(pairs))]
    for name, j in rows.items():
        kappas = ["n/a" if p["kappa"] is None else f"{p['kappa']:.2f}" for p in j["agreement"]]
        lines.append(f"| {name} | " + " | ".join(_fmt(f) for f in j["forgetting"]) + " | " + " | ".join(kappas) + " |")
    return lines + [""]


def quality_lines(report: dict[str, Any]) -> list[str]:
    """HUB's quality and alignment table: per method, each quality judge's mean score [CI] on forget and retain images
    (the prompts every row shares; higher is better for every score)."""
    rows = {name: res["quality"] for name, res in report["methods"].items() if res.get("quality")}
    if not rows:
        return []
    columns = list(dict.fromkeys((spec, split) for q in rows.values() for spec, splits in q.items() for split in splits))
    lines = ["## Quality and alignment", "", "mean score per method, each image scored with its own prompt, on the prompts every row "
             "shares (intervals: bootstrap over prompts; higher is better)", "",
             "| method | " + " | ".join(f"`{spec}` {split} (↑)" for spec, split in columns) + " |", "|---|" + "---|" * len(columns)]
    for name, q in rows.items():
        cells = [_fmt(q.get(spec, {}).get(split), pct=False) + (f" (n={q[spec][split]['n']})" if split in q.get(spec, {}) else "")
                 for spec, split in columns]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return lines + [""]


def _method_notes(res: dict[str, Any]) -> list[str]:
    notes = [] if res.get("n_retain") else ["preservation left out: no retain images"]
    dom = res.get("preservation_domains")
    if dom and res.get("n_retain"):
        for key, other in (("ira", "the forgotten concept's domain"), ("cra", "other domains")):
            if not dom[key]["classes"]:
                notes.append(f"{key.upper()} left out: no retain class of {other} (domain {dom['forget_domain'] or 'unknown'}; "
                             "retain images need a category and a label)")
    for where, fid in [*(res.get("fidelity") or {}).items(), ("reference", res.get("reference_fidelity") or {})]:
        if fid.get("kid_note"):
            notes.append(f"{fid['kid_note']} ({where})")
    csdr = (res.get("alignment") or {}).get("csdr") or {}
    if csdr.get("value") is None and not csdr.get("n_units") and csdr.get("note"):
        notes.append(f"CSDR left out: {csdr['note']}")
    return notes


def report_notes(report: dict[str, Any]) -> list[str]:
    """One line per row the report leaves out (IRA/CRA without classes, KID on too few images, CSDR without the
    original's pair images), naming the methods it applies to."""
    by_note: dict[str, list[str]] = {}
    for name, res in report["methods"].items():
        for note in _method_notes(res):
            by_note.setdefault(note, []).append(name)
    return [f"{note}: {', '.join(names)}" for note, names in by_note.items()]


def render_markdown(report: dict[str, Any]) -> str:
    """report.md: the judge, an overview table of every method, the chart, then one table per method."""
    det = report["detector"]
    corrected = any("forgetting_corrected" in res for res in report["methods"].values())
    head = [
        "# Unlearning evaluation", "", *warning_lines(report),
        f"judge: `{det['name']}` (target `{report['target']}`, threshold {decision_rule(report)}"
        + (f", preset {det['preset']}" if det.get("preset") else "")
        + (f", weights sha256 {weights_digest(det)[:16]}…" if weights_digest(det) else "") + ")",
        f"intervals: {interval_rule(report['config'])}",
        "definitions: " + ", ".join(f"`{v}`" for v in report.get("definitions", {}).values()),
        "",
        "| method | forgetting (↓) | preservation (↑) |" + (" forgetting corrected (↓) |" if corrected else ""),
        "|---|---|---|" + ("---|" if corrected else ""),
    ]
    for name, res in report["methods"].items():
        extra = f" {_fmt(res.get('forgetting_corrected', {}).get('all'))} |" if corrected else ""
        kept = _fmt(res['preservation'].get('all')) if res.get("n_retain") else ""
        head.append(f"| {name} | {_fmt(res['forgetting'].get('all'))} | {kept} |{extra}")
    notes = [f"- {n}" for n in report_notes(report)]
    body = judges_lines(report) + quality_lines(report) + [line for name, res in report["methods"].items() for line in method_table(name, res)]
    return "\n".join(head + ([""] + notes if notes else []) + ["", f"![forgetting vs preservation]({CHART})", ""] + body)


def write_report(report: dict[str, Any], out_dir: Path, *, html: bool = True) -> dict[str, Path]:
    """Write report.json, report.md, the chart and (``html``) report.html with its thumbnails below ``out_dir``;
    returns their paths."""
    from dataigm.report.html import write_html_report

    out_dir = Path(out_dir)
    paths = {"json": out_dir / "report.json", "markdown": out_dir / "report.md", "chart": out_dir / CHART}
    write_json_atomic(paths["json"], report)
    plot_bars(report, paths["chart"])
    write_bytes_atomic(paths["markdown"], render_markdown(report).encode())
    if html:
        paths["html"] = write_html_report(report, out_dir, notes=report_notes(report), charts=[CHART])
    return paths
