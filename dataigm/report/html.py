"""``report.html``: the evaluation people look at, beside report.json and report.md.

Self-contained: every image is a thumbnail (and a full-view copy, JPEG) written below the report folder, the charts are
PNG files beside it, and the page fetches nothing from the network. It holds the overview table (sortable), the
charts, the judge (spec, weights sha256, precision, ``warnings``, ``audit``), and per method an image grid: each
forget image beside the original model's image of the same prompt and seed, then the retain images, each with
its verdict and score as a badge. Every image element carries ``data-method``, ``data-verdict``, ``data-split``,
``data-prompt-index`` and ``data-seed``, so tests and scripts can read the page. The template is
``dataigm/report/templates/report.html.j2`` (Jinja2); a small inline script sorts the table and filters the grids.
"""

from __future__ import annotations

import io
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

from dataigm.core.atomic import write_bytes_atomic
from dataigm.judges.images import ImageRef

HTML = "report.html"
MEDIA = "media"  # thumbnails and full-size copies, below the report folder
THUMB_PX = 160
FULL_PX = 1024
MAX_IMAGES = 300  # per method and split: the page stays light on large evaluations (report.json keeps every record)
KNOWN_REPORT_KEYS = {"format", "detector", "threshold", "target", "config", "definitions", "methods", "warnings", "audit", "notes"}


def encode_pair(data: bytes, out_dir: Path, n: int) -> dict[str, str]:
    """Write image ``n`` as ``media/t<n>.jpg`` (a thumbnail) and ``media/f<n>.jpg`` (the full view, at most
    :data:`FULL_PX`); ``{"thumb", "full"}`` relative paths, or ``{"error"}`` for bytes that do not decode."""
    from PIL import Image

    try:
        with Image.open(io.BytesIO(data)) as im:
            im = im.convert("RGB")
    except (OSError, ValueError) as e:
        return {"error": f"{type(e).__name__}: {e}"}
    rel = {"thumb": f"{MEDIA}/t{n}.jpg", "full": f"{MEDIA}/f{n}.jpg"}
    for kind, px, quality in (("thumb", THUMB_PX, 85), ("full", FULL_PX, 92)):
        copy = im.copy()
        copy.thumbnail((px, px))
        buf = io.BytesIO()
        copy.save(buf, "JPEG", quality=quality)
        write_bytes_atomic(out_dir / rel[kind], buf.getvalue())
    return rel


@dataclass
class Thumbs:
    """Each image's thumbnail and full view, written once (images shared by methods too), named in order."""

    out_dir: Path
    made: dict[tuple[str, str], dict[str, str]] = field(default_factory=dict)
    count: int = 0  # images encoded so far: the next one's number

    def write(self, records: Sequence[dict[str, Any]], workers: int = 4, chunk: int = 64) -> None:
        """Write the images of ``records``: read one by one (shards are not shared between threads), encoded by
        ``workers`` threads, ``chunk`` images in memory at a time."""
        from concurrent.futures import ThreadPoolExecutor

        from tqdm.auto import tqdm

        from dataigm.evaluation.fidelity import ImageReader

        todo = list(dict.fromkeys((r["path"], r.get("key", ""), r["id"]) for r in records if (r["path"], r.get("key", "")) not in self.made))
        with ImageReader() as reader, ThreadPoolExecutor(workers) as pool, tqdm(total=len(todo), desc="report images", leave=False,
                                                                                 disable=len(todo) < 500) as bar:
            for start in range(0, len(todo), chunk):
                jobs = []
                for path, key, ident in todo[start:start + chunk]:
                    try:
                        data = reader.read(ImageRef(ident, path, key))
                    except (OSError, KeyError) as e:
                        self.made[(path, key)] = {"error": f"{type(e).__name__}: {e}"}
                        continue
                    jobs.append(((path, key), pool.submit(encode_pair, data, self.out_dir, self.count)))
                    self.count += 1
                for ident_, job in jobs:
                    self.made[ident_] = job.result()
                bar.update(len(todo[start:start + chunk]))

    def of(self, record: dict[str, Any]) -> dict[str, str]:
        """``{"thumb", "full"}`` paths relative to the report folder (``{"error"}`` for an unreadable image)."""
        return self.made.get((record["path"], record.get("key", ""))) or {"error": "not written"}


def fmt_estimate(est: dict[str, Any] | None, pct: bool = True) -> str | None:
    """``12.5% [3.1%, 25.0%]`` (or 4 decimals when not a rate); None when there is no value."""
    if not isinstance(est, dict) or est.get("value") is None:
        return None
    f = (lambda x: f"{x:.1%}") if pct else (lambda x: f"{x:.4f}")
    lo, hi = est.get("low"), est.get("high")
    return f"{f(est['value'])} [{f(lo)}, {f(hi)}]" if lo is not None and hi is not None else f(est["value"])


def _cell(text: str | None, sort: float | None) -> dict[str, Any] | None:
    return None if text is None else {"text": text, "sort": sort}


def _est_cell(est: Any, pct: bool = True) -> dict[str, Any] | None:
    return _cell(fmt_estimate(est, pct), est.get("value") if isinstance(est, dict) else None)


def _fidelity_cells(res: dict[str, Any]) -> dict[str, dict[str, Any] | None]:
    cells: dict[str, dict[str, Any] | None] = {}
    for split, fid in res.get("fidelity", {}).items():
        cells[f"LPIPS {split} (↓)"] = _est_cell(fid.get("lpips"), pct=False)
        if "fid" in fid:
            cells[f"FID {split} (↓)"] = _cell(f"{fid['fid']:.3f}", fid["fid"])
        if "kid_mean" in fid:
            cells[f"KID {split} (↓)"] = _cell(f"{fid['kid_mean']:.5f} ± {fid['kid_std']:.5f}", fid["kid_mean"])
        if "cmmd" in fid:
            cells[f"CMMD {split} (↓)"] = _cell(f"{fid['cmmd']:.4f}", fid["cmmd"])
    rf = res.get("reference_fidelity") or {}
    if "fid" in rf:
        cells["FID vs reference (↓)"] = _cell(f"{rf['fid']:.3f}", rf["fid"])
    return cells


def overview_cells(res: dict[str, Any]) -> dict[str, dict[str, Any] | None]:
    """One method's overview row: column -> ``{"text", "sort"}`` (None: not computed). Estimate-like keys the
    table does not know (``{"value", ...}`` or ``{"all": {"value", ...}}``) become columns of their own."""
    cells: dict[str, dict[str, Any] | None] = {
        "forgetting (↓)": _est_cell(res.get("forgetting", {}).get("all")),
        "preservation (↑)": _est_cell(res.get("preservation", {}).get("all")),
    }
    dom = res.get("preservation_domains") or {}
    for key in ("ira", "cra"):
        if dom.get(key, {}).get("classes"):
            cells[f"{key.upper()} (↑)"] = _est_cell(dom[key])
    for key, label in (("asr", "ASR (↓)"), ("person_presence", "person presence")):
        if key in res:
            cells[label] = _est_cell(res[key])
    cells.update(_fidelity_cells(res))
    al = res.get("alignment") or {}
    if al:
        cells["csdr-pair" if (al.get("csdr") or {}).get("prompts") == "pair" else "CSDR"] = _est_cell(al.get("csdr"), pct=False)
        cells["CSDR win rate"] = _est_cell(al.get("csdr_win_rate"))
    for split, cs in res.get("clip_score", {}).items():
        cells[f"CLIP score {split}"] = _est_cell(cs, pct=False)
    for spec, splits in res.get("quality", {}).items():  # HUB's quality table: mean score per judge and split
        for split, est in splits.items():
            cells[f"{spec} {split} (↑)"] = _est_cell(est, pct=False)
    for key, value in res.items():
        if key in SHOWN_ABOVE or key in SAME_NUMBER or not isinstance(value, dict):
            continue
        est = value.get("all") if isinstance(value.get("all"), dict) else value
        if "value" in est:
            label = READABLE.get(key, key.replace("_", " "))
            cells[label] = _est_cell(est, pct=isinstance(est.get("value"), float) and 0.0 <= est["value"] <= 1.0)
    return cells


# report.json keys the overview shows in the cells above, keys that repeat a number already there (the per-image
# forget rate and UnlearnCanvas' UA, 1 - forgetting, stay in report.json), and readable names for the others
SHOWN_ABOVE = {"forgetting", "preservation", "preservation_domains", "asr", "person_presence", "fidelity", "reference_fidelity",
               "alignment", "clip_score", "quality"}
SAME_NUMBER = {"forget_positive_rate", "unlearning_accuracy", "retain_positive_rate"}
READABLE = {"negative_positive_rate": "flagged concept-removed (↓)", "preservation_top1": "own-class top-1 (↑)",
            "forgetting_corrected": "forgetting corrected (↓)"}


def overview(report: dict[str, Any]) -> tuple[list[str], list[dict[str, Any]]]:
    """(columns, rows) of the overview table: one row per method, columns in first-seen order."""
    columns: list[str] = []
    rows = []
    for name, res in report["methods"].items():
        cells = {k: v for k, v in overview_cells(res).items() if v is not None}
        columns += [c for c in cells if c not in columns]
        rows.append({"method": name, "cells": cells, "n_forget": res.get("n_forget"), "n_retain": res.get("n_retain")})
    return columns, rows


def disagrees(record: dict[str, Any], reference: dict[str, Any] | None) -> bool:
    """Judges disagree on the image (several judges) or, with one judge, its verdict differs from the original's
    image of the same prompt and seed."""
    judges = record.get("judges") or {}
    if len(judges) > 1:
        return len({bool(v.get("positive")) for v in judges.values() if isinstance(v, dict)}) > 1
    return reference is not None and bool(reference["positive"]) != bool(record["positive"])


def _tile(method: str, record: dict[str, Any], thumbs: Thumbs, reference: dict[str, Any] | None = None) -> dict[str, Any]:
    info = {k: record.get(k) for k in ("id", "prompt", "prompt_index", "seed", "predicted", "score", "scores", "judges", "label", "correct")
            if record.get(k) not in (None, "", {})}
    return {
        "method": method, "split": record["split"], "verdict": "positive" if record["positive"] else "negative",
        "score": record["score"], "prompt_index": "" if record.get("prompt_index") is None else record["prompt_index"],
        "seed": "" if record.get("seed") is None else record["seed"], "seed_name": record.get("seed_name") or "seed",
        "prompt": record.get("prompt") or "", "subcategory": record.get("subcategory") or record.get("label") or "",
        "disagree": disagrees(record, reference), "files": thumbs.of(record), "info": json.dumps(info, sort_keys=True, ensure_ascii=False),
        "correct": record.get("correct"),
    }


def grid_selection(report: dict[str, Any], max_images: int = MAX_IMAGES) -> list[tuple[str, str, list[tuple[dict, dict | None]], int]]:
    """(method, split, [(record, the original's record of the same grid key or None)], records in all) per method and
    split: the first ``max_images`` records of each; the original's record only beside forget images."""
    original = report["methods"].get("original", {}).get("images", [])
    ref_of = {(r["split"], r["grid_key"]): r for r in original}
    out = []
    for name, res in report["methods"].items():
        for split in ("forget", "retain"):
            mine = [r for r in res.get("images") or [] if r["split"] == split]
            refs = [ref_of.get((split, r["grid_key"])) if name != "original" else None for r in mine[:max_images]]
            out.append((name, split, list(zip(mine[:max_images], refs)), len(mine)))
    return out


def method_grids(report: dict[str, Any], thumbs: Thumbs, max_images: int = MAX_IMAGES) -> list[dict[str, Any]]:
    """Per method: forget cells (the method's tile beside the original's of the same grid key) and retain tiles."""
    selection = grid_selection(report, max_images)
    thumbs.write([r for _, _, pairs, _ in selection for pair in pairs for r in pair if r is not None])
    grids: dict[str, dict[str, Any]] = {}
    for name, split, pairs, total in selection:
        grid = grids.setdefault(name, {"method": name, "anchor": f"m{len(grids)}", "sections": {},
                                       "n_flagged": sum(r["positive"] for r in report["methods"][name].get("images") or [] if r["split"] != "pair")})
        cells = [{"tile": _tile(name, r, thumbs, ref), "reference": _tile("original", ref, thumbs) if ref and split == "forget" else None}
                 for r, ref in pairs]
        grid["sections"][split] = {"cells": cells, "total": total}
    return list(grids.values())


def weights_digest(describe: dict[str, Any]) -> str:
    """The sha256 of the weights that ran: ``weights_sha256``, else the first ``*sha256`` value anywhere in the
    judge's description (a pipeline's ``model_sha256``, a head's ``head_sha256``); "" when none is recorded."""
    if describe.get("weights_sha256"):
        return str(describe["weights_sha256"])
    for key, value in describe.items():
        if key.endswith("sha256") and isinstance(value, str) and value:
            return value
        if isinstance(value, dict) and (found := weights_digest(value)):
            return found
    return ""


def interval_rule(config: dict[str, Any]) -> str:
    """How the report's intervals were made, in one phrase (each interval in report.json also names its own method,
    with the numbers of prompts and images behind it)."""
    from dataigm.evaluation.stats import MIN_BOOTSTRAP_PROMPTS

    level = f"{config.get('confidence', 0.95):.0%}"
    boot = f"{config.get('n_resamples', '')} resamples, seed {config.get('seed', '')}"
    if config.get("bootstrap_unit", "prompt") == "prompt":
        return (f"{level}: percentile bootstrap over prompts ({boot}) with {MIN_BOOTSTRAP_PROMPTS} prompts or more; "
                "with fewer, a Wilson interval over images for rates and a bootstrap over images for means")
    return f"{level}: percentile bootstrap over images ({boot}); a Wilson interval over images where it collapses to a point"


def decision_rule(report: dict[str, Any]) -> str:
    """The threshold the judge's rule uses, or the rule itself when it has none (a top-class judge)."""
    det = report.get("detector", {})
    threshold = report.get("threshold") if report.get("threshold") is not None else det.get("threshold")
    if threshold is not None:
        return f"{threshold:.4g}" if isinstance(threshold, float) else str(threshold)
    return str(det.get("rule") or "none (the judge's top class decides)")


def judge_section(report: dict[str, Any]) -> dict[str, Any]:
    """The judge's spec, weights sha256, precision, the threshold its rule uses and the rest of its description
    (each key once), the warnings and the audit."""
    det = report.get("detector", {})
    shown = {"name", "weights_sha256", "precision", "threshold", "target"}
    return {
        "name": det.get("name", ""), "weights_sha256": weights_digest(det), "precision": det.get("precision", ""),
        "threshold": decision_rule(report), "target": report.get("target"),
        "describe": {k: v for k, v in det.items() if k not in shown},
        "warnings": [str(w) for w in report.get("warnings") or []], "audit": report.get("audit"),
    }


def write_charts(report: dict[str, Any], out_dir: Path, existing: Sequence[str] = ()) -> list[dict[str, str]]:
    """The report's plots (trade-off, subcategories, threshold sweep with an audit) beside the page."""
    from dataigm.report import plots

    charts = [{"file": name, "title": "forgetting and preservation per method"} for name in existing]
    for make, name, title in ((plots.plot_tradeoff, plots.TRADEOFF, "forgetting against preservation"),
                              (plots.plot_subcategories, plots.SUBCATEGORIES, "forgetting per subcategory")):
        if make(report, out_dir / name) is not None:
            charts.append({"file": name, "title": title})
    if report.get("audit") is not None and plots.plot_threshold_sweep(report["audit"], out_dir / plots.SWEEP) is not None:
        charts.append({"file": plots.SWEEP, "title": "threshold sweep (audit)"})
    return charts


def render_html(context: dict[str, Any]) -> str:
    """Render the packaged template with ``context``."""
    import jinja2

    env = jinja2.Environment(loader=jinja2.PackageLoader("dataigm.report", "templates"), autoescape=True,
                             undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True)
    env.filters["pretty"] = lambda v: json.dumps(v, indent=2, sort_keys=True, default=str, ensure_ascii=False)
    env.filters["compact"] = lambda v: json.dumps(v, sort_keys=True, default=str, ensure_ascii=False)
    env.filters["num"] = lambda v: f"{v:.4g}" if isinstance(v, float) else v
    return env.get_template("report.html.j2").render(**context)


def write_html_report(report: dict[str, Any], out_dir: Path, *, notes: Sequence[str] = (), charts: Sequence[str] = (),
                      max_images: int = MAX_IMAGES, title: str = "Unlearning evaluation") -> Path:
    """Write ``out_dir/report.html`` with its thumbnails (``out_dir/media/``) and plots; returns the page's path.

    ``charts`` names PNG files already beside the page (the bar chart) to show first; ``notes`` are the rows left
    out and why. Keys of ``report`` the page does not know are shown as JSON at the end.
    """
    out_dir = Path(out_dir)
    columns, rows = overview(report)
    grids = method_grids(report, Thumbs(out_dir), max_images)
    subcategories = sorted({t["tile"]["subcategory"] for g in grids for s in g["sections"].values() for t in s["cells"]} - {""})
    context = {
        "title": title, "report": report, "has_original": "original" in report["methods"], "columns": columns, "rows": rows, "grids": grids, "subcategories": subcategories,
        "judge": judge_section(report), "intervals": interval_rule(report.get("config", {})), "charts": write_charts(report, out_dir, charts), "notes": list(notes),
        "config": report.get("config", {}), "definitions": report.get("definitions", {}),
        "extra": {k: v for k, v in report.items() if k not in KNOWN_REPORT_KEYS},
    }
    path = out_dir / HTML
    write_bytes_atomic(path, render_html(context).encode())
    return path
