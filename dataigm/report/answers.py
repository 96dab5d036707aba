"""Answer sheets: the images of an eval or benchmark run with every judge's verdict, as a Hub dataset folder that
others can re-score without regenerating anything.

Layout below ``DIR`` (webdataset shards that ``datasets.load_dataset(DIR)`` reads, pushed by ``dataigm push``)::

    README.md                              card: configs, the judges (spec, weights sha256, threshold), the fields
    manifest.json                          the shards with sha256 and counts (what ``verify`` and ``push`` check)
    answers.json                           the judges in order, and the reports the images came from
    data/answers/train/answers-NNNNN.tar   per image: <key>.png, <key>.json (prompt, seed, method, model, verdicts), <key>.cls

``verdicts`` in each sample's json is a list in the order of ``answers.json``'s ``judges``: ``{detector, positive,
positive_score, predicted}``. :func:`rescore` adds one judge to every sample (images are judged from the shards
through the ordinary judging path) and :mod:`dataigm.report.answers_report` turns a sheet into an eval report.
"""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any, Iterator, Sequence

from dataigm.core.atomic import publish, sha256_file, tmp_path_for, write_bytes_atomic, write_json_atomic
from dataigm.core.errors import DataigmError
from dataigm.judges.images import ImageInput, iter_refs_with_bytes

ANSWERS_FORMAT = "dataigm-answers/1"
SHEET = "answers.json"
CATEGORY = "answers"
SHARD_DIR = "data/answers/train"
SHARD_SIZE = 1000
SPLITS = ("forget", "retain", "pair")


def find_reports(run: str | Path) -> list[dict[str, Any]]:
    """The eval reports of ``run``: its own ``report.json`` or every one below it (a benchmark's reports/)."""
    root = Path(run).expanduser()
    paths = [root / "report.json"] if (root / "report.json").is_file() else sorted(root.rglob("report.json"))
    reports = [json.loads(p.read_text()) for p in paths]
    reports = [r for r in reports if str(r.get("format", "")).startswith("dataigm-eval/")]
    if not reports:
        raise DataigmError(f"{root}: no eval report (report.json) here or below: give the output folder of dataigm eval or dataigm benchmark")
    return reports


def run_judges(reports: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Every judge the reports used, once: ``{detector, threshold, concept}`` in the order first met."""
    seen: dict[tuple[Any, ...], dict[str, Any]] = {}
    for r in reports:
        cfg = r["config"]
        for spec in [cfg["detector"], *cfg.get("more_detectors", ())]:
            seen.setdefault((spec, cfg.get("threshold"), cfg.get("concept")), {"detector": spec, "threshold": cfg.get("threshold"), "concept": cfg.get("concept")})
    return list(seen.values())


def run_image_sets(reports: Sequence[dict[str, Any]]) -> dict[tuple[str, str], ImageInput]:
    """``{(method, split): images}`` for every image set the reports judged: from each method's per-image records
    (:mod:`dataigm.report.gallery`: the real file or shard of every judged image, with its prompt and metadata), so
    layout runs, datasets, the demo and benchmarks read back exactly what was judged. Reports written before the
    records carried paths fall back to their sources (folders named in ``sources``)."""
    sets: dict[tuple[str, str], ImageInput] = {}
    for r in reports:
        for method, res in r["methods"].items():
            records = res.get("images") or []
            if not records or "path" not in records[0]:
                sets.update({k: v for k, v in _source_sets(r, method, res).items() if k not in sets})
                continue
            by_split: dict[str, list[dict[str, Any]]] = {}
            for rec in records:
                by_split.setdefault(rec["split"], []).append(rec)
            for split, recs in by_split.items():
                if (method, split) not in sets:
                    sets[(method, split)] = records_input(f"{method} {split}", recs)
    return sets


class RecordsInput(ImageInput):
    """The images of a report's per-image records: ``wanted`` maps each image id to its metadata (shards are read
    whole, and their samples that are not among the records are left out)."""

    wanted: dict[str, dict[str, Any]]


def records_input(source: str, records: Sequence[dict[str, Any]]) -> ImageInput:
    """The images of per-image ``records``: their files, or the shards holding them (see :class:`RecordsInput`)."""
    from dataigm.judges.images import ImageRef

    files = [ImageRef(rec["id"], rec["path"], "", record_meta(rec)) for rec in records if not rec.get("key")]
    shards = sorted({rec["path"] for rec in records if rec.get("key")})
    inp = RecordsInput(source, files=files, shards=[Path(s) for s in shards])
    inp.wanted = {rec["id"]: record_meta(rec) for rec in records}
    return inp


def record_meta(rec: dict[str, Any]) -> dict[str, Any]:
    """The sample-like metadata of a per-image record (what :func:`sample_fields` reads)."""
    index = rec.get("prompt_index")
    return {"prompt": rec.get("prompt", ""), "pair_prompt": rec.get("pair_prompt", ""), "seed": rec.get("seed"),
            "prompt_index": index if isinstance(index, int) else None, "concept": rec.get("concept", ""), "label_name": rec.get("label", ""),
            "role": rec.get("role", ""), "category": rec.get("category", ""), "subcategory": rec.get("subcategory", ""), "model": rec.get("model", "")}


def _source_sets(report: dict[str, Any], method: str, res: dict[str, Any]) -> dict[tuple[str, str], ImageInput]:
    from dataigm.evaluation.evaluate import attach_prompts, load_prompt_table
    from dataigm.judges.images import resolve_images

    prompts = report.get("prompts")
    out = {}
    for split, source in res["sources"].items():
        if not source or not Path(source).exists():
            continue
        inp = resolve_images(source)
        if prompts and inp.files and split in ("forget", "retain"):
            table_path = Path(prompts[0] if split != "retain" else prompts[1])
            attach_prompts(inp, load_prompt_table(table_path), table_path)
        out[(method, split)] = inp
    return out


def sheet_root(sets: dict[tuple[str, str], ImageInput]) -> Path | None:
    """The deepest folder holding every image (file or shard) of ``sets``: sheets name images by their path below it."""
    import os

    paths = [os.path.dirname(os.path.abspath(ref.path)) for inp in sets.values() for ref in inp.files]
    paths += [os.path.dirname(os.path.abspath(s)) for inp in sets.values() for s in inp.shards]
    return Path(os.path.commonpath(paths)) if paths else None


def relative_file(ref: Any, root: Path | None) -> str:
    """The image's path below ``root`` (``<shard path>#<key>`` for a shard sample), as a sheet names it."""
    import os

    if root is None:
        return ref.id
    rel = Path(os.path.relpath(os.path.abspath(ref.path), root)).as_posix()
    return f"{rel}#{ref.key}" if ref.key else rel


def sample_fields(method: str, split: str, ref: Any, index: int, root: Path | None = None) -> dict[str, Any]:
    """The fields every sample carries (the same names and types everywhere: the Hub infers its schema from them).
    ``file`` is the image's real path below the sheet's ``root`` (see :func:`relative_file`)."""
    m = ref.meta
    seed, prompt_index = m.get("seed"), m.get("prompt_index")
    return {
        "key": f"{method}-{split}-{index:06d}".replace(".", "_"), "file": relative_file(ref, root), "method": method, "split": split,
        "prompt": str(m.get("prompt") or ""), "pair_prompt": str(m.get("pair_prompt") or ""),
        "seed": int(seed) if seed is not None else -1, "prompt_index": int(prompt_index) if isinstance(prompt_index, int) else -1,
        "concept": str(m.get("concept") or ""), "label_name": str(m.get("label_name") or ""), "role": str(m.get("role") or ""),
        "category": str(m.get("taxonomy") or m.get("category") or ""), "subcategory": str(m.get("subcategory") or ""),
        "model": str(m.get("model") or m.get("model_id") or method), "verdicts": [],
    }


def verdict_record(spec: str, prediction: Any) -> dict[str, Any]:
    """One judge's answer on one image, as a sheet stores it."""
    return {"detector": spec, "positive": bool(prediction.positive), "positive_score": float(prediction.positive_score), "predicted": str(prediction.predicted)}


def judge_record(entry: dict[str, Any], judge_: Any) -> dict[str, Any]:
    """A judge as ``answers.json`` lists it: spec, threshold, concept, and its own description (weights sha256...)."""
    d = judge_.describe()
    return {**entry, "threshold": judge_.threshold, "target": judge_.target, "label_names": list(judge_.label_names),
            "weights_sha256": d.get("weights_sha256", ""), "describe": d}


def png(data: bytes) -> bytes:
    """The image as PNG bytes (every sample carries the same extension); PNG input is kept byte for byte."""
    if data[:8] == b"\x89PNG\r\n\x1a\n":
        return data
    from PIL import Image

    buf = io.BytesIO()
    with Image.open(io.BytesIO(data)) as im:
        im.convert("RGB").save(buf, format="PNG")
    return buf.getvalue()


def write_shards(root: Path, samples: Iterator[tuple[dict[str, Any], bytes]]) -> list[dict[str, Any]]:
    """Write ``(fields, png bytes)`` samples into tars of :data:`SHARD_SIZE` below ``root``; the manifest entries."""
    import webdataset as wds

    from dataigm.core.shards import TAR_MTIME

    entries, writer, handle, tmp, final, n = [], None, None, None, None, 0

    def close() -> None:
        writer.close()
        publish(tmp, final)
        entries.append({"path": final.relative_to(root).as_posix(), "sha256": sha256_file(final), "n": n})

    for fields, image in samples:
        if writer is None or n == SHARD_SIZE:
            if writer is not None:
                close()
            final = root / SHARD_DIR / f"answers-{len(entries):05d}.tar"
            final.parent.mkdir(parents=True, exist_ok=True)
            tmp, n = tmp_path_for(final), 0
            handle = open(tmp, "wb")
            writer = wds.TarWriter(handle, mtime=TAR_MTIME, encoder=False)
        writer.write({"__key__": fields["key"], "png": image, "json": json.dumps(fields, sort_keys=True).encode(),
                      "cls": str(int(fields["split"] == "forget")).encode()})
        n += 1
    if writer is not None:
        close()
    return entries


def sheet_shards(root: Path) -> list[Path]:
    """The sheet's tars, sorted."""
    return sorted((Path(root) / SHARD_DIR).glob("*.tar"))


def read_sheet(root: str | Path) -> dict[str, Any]:
    """``answers.json`` of an answer-sheet folder; errors name the folder."""
    path = Path(root).expanduser() / SHEET
    if not path.is_file():
        raise DataigmError(f"{Path(root)} is not an answer sheet ({SHEET} missing): write one with dataigm answers export (export_answers)")
    return json.loads(path.read_text())


def write_sheet_files(root: Path, sheet: dict[str, Any], shards: list[dict[str, Any]]) -> None:
    """answers.json, manifest.json and README.md of a sheet (the card last: it describes what is there)."""
    from dataigm.report.answers_card import render_answers_card

    n = sum(s["n"] for s in shards)
    category = sheet.get("category") or ""
    manifest = {"format": ANSWERS_FORMAT, "shards": shards, "hub": {"data_dir": "data"},
                "counts": {CATEGORY: {"taxonomy": category, "splits": {"train": {"n": n}}}}, "totals": {"samples": n}}
    write_json_atomic(root / SHEET, sheet)
    write_json_atomic(root / "manifest.json", manifest)
    write_bytes_atomic(root / "README.md", render_answers_card(sheet, manifest).encode())


def export_answers(run: str | Path, out: str | Path, *, batch_size: int = 32, workers: int | None = None, device: str | None = None,
                   progress: bool = False) -> dict[str, Any]:
    """Write the answer sheet of an eval or benchmark ``run`` to ``out``: every image of every method and split,
    judged by every judge the run used (through :func:`dataigm.judges.judge.judge`). Returns ``answers.json``."""
    from dataigm.judges.judge import judge
    from dataigm.judges.registry import create_judge

    # 1. What the run judged, and with which judges
    reports = find_reports(run)
    entries = run_judges(reports)
    sets = run_image_sets(reports)
    judges = [create_judge(e["detector"], threshold=e["threshold"], concept=e["concept"], device=device) for e in entries]
    out = Path(out)
    # 2. Judge each image set with each judge, then write the images with their verdicts
    root = sheet_root(sets)

    def samples() -> Iterator[tuple[dict[str, Any], bytes]]:
        for (method, split), inp in sets.items():
            by_judge = [{p.file: p for p in judge(inp, j, batch_size=batch_size, workers=workers, progress=progress).predictions} for j in judges]
            wanted = inp.wanted if isinstance(inp, RecordsInput) else None
            refs = [(ref, data) for ref, data, _ in iter_refs_with_bytes(inp) if data is not None and (wanted is None or ref.id in wanted)]
            for i, (ref, data) in enumerate(sorted(refs, key=lambda rd: rd[0].id)):
                if wanted is not None and ref.key:  # a shard sample: the report's record adds what the eval knew of it
                    ref.meta = {**ref.meta, **{k: v for k, v in wanted[ref.id].items() if v not in (None, "")}}
                fields = sample_fields(method, split, ref, i, root)
                fields["verdicts"] = [verdict_record(e["detector"], v[ref.id]) if ref.id in v else None for e, v in zip(entries, by_judge)]
                yield fields, png(data)

    shards = write_shards(out, samples())
    first = reports[0]
    sheet = {"format": ANSWERS_FORMAT, "judges": [judge_record(e, j) for e, j in zip(entries, judges)], "root": str(root) if root else "",
             "category": str(first["detector"].get("category") or ""), "methods": sorted({m for m, _ in sets}),
             "reports": [{"detector": r["config"]["detector"], "benchmark": r.get("benchmark")} for r in reports],
             "config": {k: first["config"].get(k) for k in ("aggregate", "group_by", "n_resamples", "confidence", "seed", "bootstrap_unit", "validity_level")}}
    write_sheet_files(out, sheet, shards)
    return sheet


def rescore(root: str | Path, spec: str, *, threshold: float | None = None, concept: str | None = None, batch_size: int = 32,
            workers: int | None = None, device: str | None = None, progress: bool = False) -> dict[str, Any]:
    """Add judge ``spec``'s verdict to every image of the sheet at ``root`` (judged from its shards, nothing is
    regenerated); the shards, answers.json, manifest and card are rewritten. Returns the new answers.json."""
    from dataigm.core.shards import iter_tar
    from dataigm.judges.judge import judge
    from dataigm.judges.registry import create_judge

    # 1. Judge first: a judge that fails leaves the sheet as it was
    root = Path(root).expanduser()
    sheet = read_sheet(root)
    shards = sheet_shards(root)
    judge_ = create_judge(spec, threshold=threshold, concept=concept, device=device)
    result = judge(ImageInput(str(root), shards=shards), judge_, batch_size=batch_size, workers=workers, progress=progress)
    by_id = {p.file: p for p in result.predictions}
    # 2. Rewrite the shards with the new verdict appended (tars are replaced atomically, one at a time)
    def samples() -> Iterator[tuple[dict[str, Any], bytes]]:
        for shard in shards:
            for s in iter_tar(shard):
                p = by_id.get(f"{shard.name}#{s.key}")
                yield {**s.meta, "verdicts": [*s.meta["verdicts"], verdict_record(spec, p) if p else None]}, s.image

    entries = write_shards(root, samples())
    sheet["judges"].append(judge_record({"detector": spec, "threshold": threshold, "concept": concept}, judge_))
    write_sheet_files(root, sheet, entries)
    return sheet
