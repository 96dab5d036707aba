"""Shard-by-shard curation in three steps, spread over ranks the way the builder is, and resumable.

1. **score** (per shard, disjoint shards per rank): decode every image, run the category's filters, write the
   scores and flags to ``OUT/_curation/scores/<shard>.jsonl`` (and, with the ``embedding`` filter, the image
   embeddings to ``<shard>.emb.npy`` beside it, written first). A shard whose score file exists is skipped.
2. **decide** (global, once): near-duplicates over all hashes (and embeddings), filter flags, human review tags and
   the pair policy give one verdict per sample: keep, review (kept, marked) or drop. Rank 0 decides and writes the
   verdicts to ``OUT/_curation/decided.jsonl`` (atomically, with a digest of the score files they were made from);
   the other ranks wait for that file and read it.
3. **write** (per shard): kept samples, with their scores under the ``curation`` json key, go to a shard of the
   same name through :class:`~dataigm.core.shards.ShardSink`; done shards (tar + stats) are skipped.

Rank 0 then writes the parts, the manifest, the per-sample decision table, the report and the contact sheets.
Ranks meet at file barriers (all score files; the decisions; all output shards), so no process group is needed.
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
import json
import logging
import shutil
import time
from collections import defaultdict
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

import numpy as np
from PIL import Image

from dataigm.core.atomic import json_sha256, remove_stale_tmp, sha256_file, write_bytes_atomic, write_json_atomic, write_jsonl_atomic
from dataigm.core.datasets import open_dataset_folder
from dataigm.core.errors import DataigmError, InputError
from dataigm.core.images import ImageDecodeError, decode_rgb
from dataigm.core.manifest import CurationRecord, PartRecord, build_manifest, load_manifest, write_part
from dataigm.core.partition import RankInfo, rank_from_env, refuse_array
from dataigm.core.run_settings import SETTINGS_DIR
from dataigm.core.schema import SampleMeta
from dataigm.core.shards import ShardSink, ShardSpec, is_done, iter_tar, read_stats
from dataigm.core.stage import run_unit, run_units, wait_for_files, wait_until
from dataigm.curate.config import CurationConfig, default_config
from dataigm.curate.decision import ACTION_RANK, Decision
from dataigm.curate.dedup import HashedSample, describe_hash_search, find_duplicates, search_embedding_duplicates
from dataigm.curate.filters import Decoded, EmbeddingSettings, Filter, PhashSettings, Scored, all_fields, create_filter
from dataigm.curate.pairs import PairMember, apply_pair_policy
from dataigm.distributors import check_distributor, require_single_driver

log = logging.getLogger(__name__)

CURATION_DIR = "_curation"
CURATION_VERSION = 1
REVIEW_TAGS = ("reject", "accept", "relabel:<class>")


@dataclasses.dataclass
class CuratedMeta(SampleMeta):
    """The sample schema plus one ``curation`` key (``SampleMeta.from_dict`` ignores it in later stages)."""

    curation: dict[str, Any] = dataclasses.field(default_factory=dict)


@dataclass
class CurationResult:
    """What :func:`curate` did: the verdicts of all samples; on rank 0 also the report path and the manifest."""

    out: Path
    decisions: dict[str, Decision]
    pair_stats: dict[str, dict[str, int]]
    report: Path | None = None
    manifest: dict[str, Any] | None = None
    seconds: float = 0.0
    unmatched_tags: list[str] = field(default_factory=list)
    searches: list[dict[str, Any]] = field(default_factory=list)  # how each near-duplicate search ran (and its recall)


@dataclass
class Decided:
    """The outcome of the decide step: verdicts by key, pair statistics, review tags naming unknown keys, and one
    record per near-duplicate search (category, measure, samples, method, recall of an approximate index)."""

    decisions: dict[str, Decision]
    pair_stats: dict[str, dict[str, int]]
    unmatched: list[str]
    searches: list[dict[str, Any]] = field(default_factory=list)


# --- work units -------------------------------------------------------------------------------------------
def input_shards(dataset: Path) -> list[ShardSpec]:
    """The finished shards that hold samples, in path order: from the stats of a build folder, or from the manifest
    of an exported or pulled one (paths relative to its ``data/`` folder)."""
    source = open_dataset_folder(dataset)  # a clear error when this is not a dataset folder
    if source.layout == "build":
        entries = [s for s in read_stats(dataset) if s["ok"] > 0]
    else:
        entries = []
        for s in source.manifest["shards"]:
            rel = (source.root / s["path"]).relative_to(source.data_root)
            category, split = rel.parts[0], rel.parts[1]
            part = rel.stem[len(f"{category}-{split}"):].rpartition("-")[0].lstrip("-")
            entries.append({"shard": rel.as_posix(), "category": category, "split": split, "part": part})
    specs = []
    for s in entries:
        index = int(Path(s["shard"]).stem.rsplit("-", 1)[1])
        spec = ShardSpec(s["category"], s["split"], index, s.get("part", ""))
        if spec.relpath != s["shard"]:
            raise InputError(f"{dataset}/{spec.stats_relpath}: shard {s['shard']!r} does not follow the dataset layout")
        specs.append(spec)
    return specs


def score_path(out: Path, spec: ShardSpec) -> Path:
    """The score file of an input shard; its existence marks the shard as scored."""
    return Path(out) / CURATION_DIR / "scores" / spec.category / spec.split / f"{spec.name}.jsonl"


def embedding_path(out: Path, spec: ShardSpec) -> Path:
    """The shard's image embeddings (float32, one row per embedded sample; a row's ``emb_row`` points into it)."""
    return score_path(out, spec).with_suffix(".emb.npy")


# --- step 1: score -------------------------------------------------------------------------------------------
class FilterBank:
    """The filters of each category, created on first use (so a rank loads only the models it needs)."""

    def __init__(self, config: CurationConfig) -> None:
        self.config = config
        self._by_category: dict[str, list[Filter]] = {}

    def for_category(self, category: str) -> list[Filter]:
        if category not in self._by_category:
            self._by_category[category] = [create_filter(name, s) for name, s in filters_run(self.config, category).items()]
        return self._by_category[category]


def filters_run(config: CurationConfig, category: str) -> dict[str, dict[str, Any]]:
    """The filters that run on ``category`` with their given settings: the config's, and ``phash`` always
    (hashes are always computed: cross-split leaks are always reported)."""
    settings = config.filters_for(category)
    settings.setdefault("phash", {})
    return settings


def curated_part(part: dict[str, Any], config: CurationConfig, tags_sha: str) -> PartRecord:
    """The record of an input part after curation: its own fields, a new plan digest, and what curation did
    (the digests and, for the part's category, every filter with its full validated settings and the pair policy)."""
    from dataigm.curate.filters import FILTERS

    record = PartRecord.model_validate(part)
    config_sha = config.sha256()
    filters = {name: FILTERS.get(name).Settings(**s).model_dump(mode="json") for name, s in filters_run(config, record.category).items()}
    curation = CurationRecord(config_sha256=config_sha, review_tags_sha256=tags_sha, input_config_sha256=record.config_sha256,
                              filters=filters, pairs=config.pairs_for(record.category).model_dump(mode="json"))
    return record.model_copy(update={"curation": curation, "config_sha256": json_sha256([record.config_sha256, config_sha, tags_sha])})


def decode(image_bytes: bytes) -> tuple[Image.Image | None, str]:
    """The RGB image or ``(None, reason)``: ``unreadable: ...`` or ``nan`` (float images with NaN pixels)."""
    try:
        return decode_rgb(image_bytes), ""
    except ImageDecodeError as e:  # the sample cannot be used: a recorded reason, not a crash
        return None, "nan" if e.kind == "nan" else f"unreadable: {e}"[:300]


def score_shard(dataset: Path, spec: ShardSpec, filters: Sequence[Filter], batch_size: int = 32) -> tuple[list[dict[str, Any]], np.ndarray | None]:
    """Score every sample of one input shard: one row per sample, in shard order, and the embeddings (or None).

    A row with an embedding records its row in the embedding matrix as ``emb_row``.
    """
    rows: list[dict[str, Any]] = []
    vectors: list[np.ndarray] = []
    batch: list[tuple[dict[str, Any], Decoded]] = []

    def flush() -> None:
        scored: list[list[Scored]] = [f.score([d for _, d in batch]) for f in filters]
        for i, (row, _) in enumerate(batch):
            for f, results in zip(filters, scored):
                row["fields"].update(results[i].fields)
                row["flags"] += [[f"{f.name}:{reason}", action] for reason, action in results[i].flags]
                if results[i].embedding is not None:
                    row["emb_row"] = len(vectors)
                    vectors.append(results[i].embedding)
        batch.clear()

    for raw in iter_tar(spec.tar_path(dataset)):
        m = raw.meta
        row = {
            "key": raw.key, "shard": spec.relpath, "category": spec.category, "split": spec.split,
            "label_name": m.get("label_name", ""), "label_names": m.get("label_names", []), "role": m.get("role", ""),
            "pair_id": m.get("pair_id", ""), "image_index": m.get("image_index", -1), "model": m.get("model", ""),
            "fields": {}, "flags": [],
        }
        rows.append(row)
        image, error = decode(raw.image)
        if image is None:
            row["flags"].append([error.split(":", 1)[0], "drop"])
            row["error"] = error
            continue
        batch.append((row, Decoded(raw.key, m, image)))
        if len(batch) >= batch_size:
            flush()
    if batch:
        flush()
    return rows, (np.stack(vectors).astype(np.float32) if vectors else None)


def write_scores(out: Path, spec: ShardSpec, rows: Sequence[dict[str, Any]], embeddings: np.ndarray | None) -> None:
    """Write the embeddings (if any), then the score file, which marks the shard as scored."""
    if embeddings is not None:
        buf = io.BytesIO()
        np.save(buf, embeddings, allow_pickle=False)
        write_bytes_atomic(embedding_path(out, spec), buf.getvalue())
    write_rows(score_path(out, spec), rows)


def load_embeddings(out: Path, specs: Sequence[ShardSpec]) -> dict[str, np.ndarray]:
    """Embeddings by input shard (relpath), memory-mapped; shards scored without the embedding filter have none."""
    paths = {s.relpath: embedding_path(out, s) for s in specs}
    return {rel: np.load(p, mmap_mode="r", allow_pickle=False) for rel, p in paths.items() if p.exists()}


def write_rows(path: Path, rows: Iterable[dict[str, Any]]) -> None:
    """Write ``rows`` as JSON lines (sorted keys, so the bytes are reproducible), atomically."""
    write_jsonl_atomic(path, rows)


def read_rows(path: Path) -> list[dict[str, Any]]:
    """The rows of a JSON-lines file written by :func:`write_rows`."""
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


# --- step 2: decide -------------------------------------------------------------------------------------------
def parse_review_tag(key: str, tag: str, label_names: Sequence[str] | None) -> tuple[str, str]:
    """``(kind, relabel class)`` of a review tag, validated against the sample's label names (``None``: form only)."""
    if tag in ("reject", "accept"):
        return tag, ""
    if tag.startswith("relabel:"):
        target = tag.split(":", 1)[1]
        if label_names is not None and target not in label_names:
            raise InputError(f"review tag {tag!r} on sample {key!r}: class {target!r} not in label_names {list(label_names)}")
        return "relabel", target
    raise InputError(f"review tag {tag!r} on sample {key!r}: allowed tags are {', '.join(REVIEW_TAGS)}")


def _flag_duplicates(
    dups: Mapping[str, Any], measure: str, filter_name: str, fields: tuple[str, str, str], settings: Any,
    decisions: dict[str, Decision], flags_of: dict[str, list[tuple[str, str]]],
) -> None:
    """Record duplicates (``dup_of``, ``measure`` and ``leak`` under the names ``fields``) and raise their flags.

    A copy in another split is a ``leak`` (always reported); a copy with the same label a ``duplicate``; a copy with
    another label a ``conflict``, raised on both images since nothing says which label is wrong.
    """
    f_of, f_measure, f_leak = fields
    for key, dup in dups.items():
        d, rep = decisions[key], decisions[dup.dup_of]
        value = getattr(dup, measure)
        value = round(float(value), 6) if isinstance(value, float) else value
        d.fields.update({f_of: dup.dup_of, f_measure: value, f_leak: dup.leak})
        if dup.leak:
            flags_of[key].append((f"{filter_name}:leak", settings.leak_action))
        if d.label_name == rep.label_name:
            if not dup.leak:
                flags_of[key].append((f"{filter_name}:duplicate", settings.action))
        else:  # one of the two is mislabelled and nothing says which: both are flagged
            conflict = (f"{filter_name}:conflict", settings.conflict_action)
            flags_of[key].append(conflict)
            if conflict not in flags_of[rep.key]:
                flags_of[rep.key].append(conflict)
                if not rep.fields[f_of]:
                    rep.fields.update({f_of: key, f_measure: value, f_leak: dup.leak})


def decide(
    rows: Sequence[dict[str, Any]], config: CurationConfig, review_tags: dict[str, str] | None = None,
    embeddings: Mapping[str, np.ndarray] | None = None,
) -> tuple[dict[str, Decision], dict[str, dict[str, int]], list[str]]:
    """Verdicts for all scored samples: (decisions by key, pair statistics, review tags naming unknown keys)."""
    d = decide_all(rows, config, review_tags, embeddings)
    return d.decisions, d.pair_stats, d.unmatched


def decide_all(
    rows: Sequence[dict[str, Any]], config: CurationConfig, review_tags: dict[str, str] | None = None,
    embeddings: Mapping[str, np.ndarray] | None = None,
) -> Decided:
    """Verdicts for all scored samples, with how each near-duplicate search ran.

    ``embeddings`` maps an input shard's relpath to its embedding matrix (rows point into it with ``emb_row``).
    """
    # 1. Every sample with its filters' flags
    decisions, flags_of = _initial_decisions(rows)
    # 2. Near-duplicates, per category, over all splits: perceptual hashes, then embeddings where that filter runs
    searches = _hash_duplicates(rows, config, decisions, flags_of)
    searches += _embedding_duplicates(rows, config, embeddings, decisions, flags_of)
    # 3. Human review tags, then the strongest action of all flags
    unmatched = _apply_flags_and_review(rows, decisions, flags_of, dict(review_tags or {}))
    # 4. Pairs: the partner of a dropped member follows the category's policy
    pair_stats = _apply_pairs(rows, config, decisions)
    return Decided(decisions, pair_stats, unmatched, searches)


def _initial_decisions(rows: Sequence[dict[str, Any]]) -> tuple[dict[str, Decision], dict[str, list[tuple[str, str]]]]:
    decisions: dict[str, Decision] = {}
    flags_of: dict[str, list[tuple[str, str]]] = {}
    defaults = all_fields()
    for r in rows:
        if r["key"] in decisions:  # verdicts are kept by key: two samples sharing one would share a verdict
            raise InputError(f"sample key {r['key']!r} appears in {decisions[r['key']].shard} and in {r['shard']}; keys must be unique")
        fields = {**defaults, **{k: v for k, v in r["fields"].items() if k in defaults}}
        decisions[r["key"]] = Decision(r["key"], r["category"], r["split"], r["label_name"], "keep", [], fields, r["shard"])
        flags_of[r["key"]] = [(reason, action) for reason, action in r["flags"]]
    return decisions, flags_of


def _hash_duplicates(rows: Sequence[dict[str, Any]], config: CurationConfig, decisions: dict[str, Decision],
                     flags_of: dict[str, list[tuple[str, str]]]) -> list[dict[str, Any]]:
    searches: list[dict[str, Any]] = []
    by_category: dict[str, list[HashedSample]] = defaultdict(list)
    for r in rows:
        if r["fields"].get("phash"):
            by_category[r["category"]].append(HashedSample(r["key"], r["split"], int(r["fields"]["phash"], 16)))
    for category, hashed in sorted(by_category.items()):
        raw = config.filters_for(category).get("phash")
        settings = PhashSettings(**raw) if raw is not None else PhashSettings(action="keep", leak_action="keep", conflict_action="keep", max_distance=0)
        dups = find_duplicates(hashed, settings.max_distance)
        searches.append({"category": category, "by": "phash", "samples": len(hashed),
                         "method": describe_hash_search(len({s.phash for s in hashed}), settings.max_distance)})
        _flag_duplicates(dups, "distance", "phash", ("dup_of", "dup_distance", "leak"), settings, decisions, flags_of)
    return searches


def _embedding_duplicates(rows: Sequence[dict[str, Any]], config: CurationConfig, embeddings: Mapping[str, np.ndarray] | None,
                          decisions: dict[str, Decision], flags_of: dict[str, list[tuple[str, str]]]) -> list[dict[str, Any]]:
    searches: list[dict[str, Any]] = []
    embedded: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for r in rows:
        if r.get("emb_row", -1) >= 0:
            embedded[r["category"]].append(r)
    for category, members in sorted(embedded.items()):
        raw = config.filters_for(category).get("embedding")
        if raw is None:
            continue
        missing = sorted({r["shard"] for r in members} - set(embeddings or {}))
        if missing:
            raise FileNotFoundError(f"embeddings of shard {missing[0]} not found ({len(missing)} shard(s)): rescore it (delete its score file)")
        emb_settings = EmbeddingSettings(**raw)
        matrix = np.stack([embeddings[r["shard"]][r["emb_row"]] for r in members])  # type: ignore[index]
        search = search_embedding_duplicates([r["key"] for r in members], [r["split"] for r in members], matrix, emb_settings.threshold,
                                             exact_max=emb_settings.exact_max, index=emb_settings.index, recall_sample=emb_settings.recall_sample)
        dups = search.duplicates
        searches.append({"category": category, "by": "embedding", "samples": search.samples, "method": search.method,
                         **({"recall_at_1": search.recall_at_1, "duplicate_recall": search.duplicate_recall, "recall_queries": search.recall_queries,
                             "recall_duplicates": search.recall_duplicates} if search.method != "exact" else {})})
        _flag_duplicates(dups, "similarity", "embedding", ("emb_dup_of", "emb_similarity", "emb_leak"), emb_settings, decisions, flags_of)
    return searches


def _apply_flags_and_review(rows: Sequence[dict[str, Any]], decisions: dict[str, Decision], flags_of: dict[str, list[tuple[str, str]]],
                            review_tags: dict[str, str]) -> list[str]:
    """Set each verdict from its flags and a person's review tag; returns the tags that match no sample."""
    rows_by_key = {r["key"]: r for r in rows}
    unmatched = sorted(k for k in review_tags if k not in rows_by_key)
    for key, d in decisions.items():
        flags = flags_of[key]
        d.reasons = [reason for reason, action in flags if action != "keep"]
        d.verdict = max((action for _, action in flags), key=ACTION_RANK.__getitem__, default="keep")
        if key in review_tags:
            kind, target = parse_review_tag(key, review_tags[key], rows_by_key[key]["label_names"])
            d.review_tag = review_tags[key]
            unusable = any(reason in ("unreadable", "nan") for reason, _ in flags)
            if kind == "reject":
                d.verdict, d.reasons = "drop", d.reasons + ["review:reject"]
            elif not unusable:  # a person looked at it: their call overrides the filters
                d.verdict = "keep"
                if kind == "relabel" and target != d.label_name:
                    d.relabel_to = target
    return unmatched


def _apply_pairs(rows: Sequence[dict[str, Any]], config: CurationConfig, decisions: dict[str, Decision]) -> dict[str, dict[str, int]]:
    members = [
        PairMember(r["key"], r["category"], r["split"], r["role"], r["pair_id"], int(r["image_index"]), r["model"], decisions[r["key"]].verdict == "drop")
        for r in rows
    ]
    policies = {c: config.pairs_for(c) for c in sorted({r["category"] for r in rows})}
    extra_drops, status, pair_stats = apply_pair_policy(members, policies)
    for key, reason in extra_drops.items():
        decisions[key].verdict = "drop"
        decisions[key].reasons.append(reason)
    for key, s in status.items():
        decisions[key].pair_status = s
    return pair_stats


# --- decided once: rank 0 writes the verdicts, the other ranks read them -------------------------------------------
DECIDED_FORMAT = "dataigm-decided/1"


def decided_path(out: Path) -> Path:
    """Rank 0's verdicts: a header line (format, input digest, pair statistics, ...), then one decision per line."""
    return Path(out) / CURATION_DIR / "decided.jsonl"


def decide_error_path(out: Path) -> Path:
    """Where rank 0 records why it could not decide, so the other ranks fail with the same message."""
    return Path(out) / CURATION_DIR / "decided.error.json"


def inputs_digest(out: Path, specs: Sequence[ShardSpec]) -> str:
    """sha256 over every score file and embedding file the decisions are made from (so no rank reads stale ones)."""
    h = hashlib.sha256()
    for spec in specs:
        for path in (score_path(out, spec), embedding_path(out, spec)):
            h.update(f"{spec.relpath}:{path.suffix}:{path.exists()}\n".encode())
            if path.exists():
                h.update(bytes.fromhex(sha256_file(path)))
    return h.hexdigest()


def write_decided(out: Path, decided: Decided, digest: str) -> None:
    """Write the verdicts atomically (the header first, then decisions in the order they were made)."""
    header = {"format": DECIDED_FORMAT, "inputs_sha256": digest, "pair_stats": decided.pair_stats, "unmatched": decided.unmatched,
              "searches": decided.searches, "samples": len(decided.decisions)}
    write_jsonl_atomic(decided_path(out), [header, *(dataclasses.asdict(d) for d in decided.decisions.values())], sort_keys=False)


def read_decided(out: Path, digest: str) -> Decided | None:
    """The verdicts rank 0 wrote for inputs with this digest, or None when there are none (yet)."""
    path = decided_path(out)
    try:
        with open(path, encoding="utf-8") as f:
            header = json.loads(f.readline() or "{}")
            if header.get("inputs_sha256") != digest:
                return None
            decisions = [Decision(**json.loads(line)) for line in f if line.strip()]
    except FileNotFoundError:
        return None
    if header.get("format") != DECIDED_FORMAT or len(decisions) != header.get("samples"):
        raise DataigmError(f"{path}: not a complete {DECIDED_FORMAT} file; delete it and rerun")
    return Decided({d.key: d for d in decisions}, header["pair_stats"], header["unmatched"], header["searches"])


def wait_for_decided(out: Path, digest: str, timeout: float, poll: float = 2.0) -> Decided:
    """The barrier after the decide step: rank 0's verdicts for these inputs, or rank 0's error, re-raised here."""

    def decided_or_error() -> Decided | None:
        decided = read_decided(out, digest)
        err = decide_error_path(out)
        if decided is None and err.exists():
            record = json.loads(err.read_text())
            if record.get("inputs_sha256") == digest:
                raise DataigmError(f"rank 0 could not decide: {record['error']}")
        return decided

    return wait_until(decided_or_error, f"rank 0's decisions ({decided_path(out)})", timeout, poll)


def curation_record(d: Decision, config_sha256: str) -> dict[str, Any]:
    """The ``curation`` json of a written sample: the same keys and types on every sample."""
    return {
        "verdict": d.verdict,
        "reasons": ";".join(d.reasons),
        "review_tag": d.review_tag,
        "relabeled_from": d.label_name if d.relabel_to else "",
        "pair_status": d.pair_status,
        "config_sha256": config_sha256,
        "version": CURATION_VERSION,
        **d.fields,
    }


# --- step 3: write ----------------------------------------------------------------------------------------------
def curated_sink(out: Path, spec: ShardSpec, decisions: dict[str, Decision]) -> ShardSink:
    """The sink of the curated shard of the same name as input shard ``spec``, planned for its kept samples."""
    planned = sum(1 for d in decisions.values() if d.shard == spec.relpath and d.verdict != "drop")
    return ShardSink(out, spec, planned)


def write_kept(dataset: Path, decisions: dict[str, Decision], config_sha256: str, spec: ShardSpec, sink: ShardSink,
               _advance: Any = None) -> None:
    """Write the kept samples of one input shard (relabelled where a review said so) into ``sink``."""
    for raw in iter_tar(spec.tar_path(dataset)):
        d = decisions[raw.key]
        if d.verdict == "drop":
            continue
        meta = SampleMeta.from_dict(raw.meta).to_dict()
        if d.relabel_to:
            meta.update(label=meta["label_names"].index(d.relabel_to), label_name=d.relabel_to)
        sink.write(CuratedMeta(**meta, curation=curation_record(d, config_sha256)), raw.image)


def shard_outputs(out: Path, spec: ShardSpec) -> tuple[Path, Path]:
    """The files a curated shard is published as (whose stale temps its rank removes)."""
    return spec.tar_path(out), spec.stats_path(out)


# --- the whole run ---------------------------------------------------------------------------------------------
def curate(
    dataset: str | Path,
    out: str | Path,
    config: CurationConfig | None = None,
    *,
    review_tags: dict[str, str] | None = None,
    rank: int | None = None,
    world_size: int | None = None,
    batch_size: int = 32,
    progress: bool = True,
    barrier_timeout: float = 24 * 3600.0,
    distributor: str = "local",
    ray_address: str | None = None,
) -> CurationResult:
    """Curate the dataset folder ``dataset`` into ``out`` (same layout, manifest, checksums, plus a report).

    Rank and world size default to the launcher's environment (torchrun, Slurm); each rank scores and writes
    its own shards, rank 0 writes the manifest, report and contact sheets. Rerunning resumes.
    ``distributor="ray"``: this one process scores and writes every shard on the Ray cluster at ``ray_address``
    (:mod:`dataigm.distributors.ray`; filters loaded once per actor, one actor per GPU) and decides in between;
    the kept keys and bytes are those of a one-process run.

        >>> curate("church", "church-curated", distributor="ray")  # doctest: +SKIP
    """
    t0 = time.perf_counter()
    # 1. Check inputs
    dataset, out = Path(dataset), Path(out)
    if dataset.resolve() == out.resolve():
        raise InputError(f"out={out} is the input dataset folder; curated shards go to a new folder")
    config = config or default_config()
    if batch_size < 1:
        raise InputError(f"batch_size must be >= 1, got {batch_size}")
    check_distributor(distributor)
    info = rank_from_env()
    refuse_array(info, "curation")
    rank = info.rank if rank is None else rank
    world_size = info.world_size if world_size is None else world_size
    ranks = RankInfo(rank, world_size)  # a bad rank fails before anything is written
    if distributor == "ray":
        require_single_driver(ranks, "curate")
    specs = input_shards(dataset)
    tars = open_dataset_folder(dataset).data_root  # the shards of a build folder, or data/ of an exported one
    review_tags = dict(sorted((review_tags or {}).items()))
    tags_sha = start_run(dataset, out, config, review_tags, rank)

    # 2. Score this rank's shards (a world of 1 first clears every stale temp below out)
    bank = FilterBank(config)

    def score(spec: ShardSpec, _sink: None, _advance: Any) -> None:
        write_scores(out, spec, *score_shard(tars, spec, bank.for_category(spec.category), batch_size))

    if distributor == "ray":
        _score_on_ray(tars, out, specs, config, batch_size, progress, ray_address)
    else:
        run_units(specs, rank, world_size, score, is_done=lambda spec: score_path(out, spec).exists(),
                  outputs=lambda spec: (score_path(out, spec), embedding_path(out, spec)), folder=out,
                  progress=progress, desc=f"score (rank {rank})", unit="shard")
    wait_for_files([score_path(out, s) for s in specs], "the score files of all ranks", barrier_timeout)

    # 3. Decide globally, once: rank 0 decides and writes the verdicts, the other ranks read them
    decided = decide_once(out, specs, config, review_tags, rank, barrier_timeout)
    decisions, pair_stats, unmatched = decided.decisions, decided.pair_stats, decided.unmatched
    config_sha = config.sha256()

    # 4. Write this rank's curated shards
    if distributor == "ray":
        _write_on_ray(tars, out, specs, decisions, config_sha, progress, ray_address)
    else:
        run_units(specs, rank, world_size, partial(write_kept, tars, decisions, config_sha),
                  open_sink=lambda spec: curated_sink(out, spec, decisions), is_done=lambda spec: is_done(out, spec),
                  outputs=partial(shard_outputs, out), progress=progress, desc=f"write (rank {rank})", unit="shard")
    result = CurationResult(out, decisions, pair_stats, unmatched_tags=unmatched, searches=decided.searches)
    if rank != 0:
        result.seconds = time.perf_counter() - t0
        return result

    # 5. Rank 0: parts, manifest, per-sample table, report, contact sheets
    finalize(dataset, out, tars, specs, config, tags_sha, result, barrier_timeout)
    result.seconds = time.perf_counter() - t0
    return result


# --- the Ray distributor: the score and write steps' shards done by actors (see dataigm.distributors.ray) ----------
class _RayScoreWorker:
    """Scores one input shard per call inside a Ray actor, the filters loaded once (:class:`FilterBank`)."""

    def __init__(self, tars: Path, out: Path, config: CurationConfig, batch_size: int) -> None:
        self.tars, self.out, self.batch_size = tars, out, batch_size
        self.bank = FilterBank(config)

    def __call__(self, spec: ShardSpec) -> None:
        write_scores(self.out, spec, *score_shard(self.tars, spec, self.bank.for_category(spec.category), self.batch_size))


class _RayWriteWorker:
    """Writes one curated shard per call inside a Ray actor; a unit is (input shard, the decisions on its samples)."""

    def __init__(self, tars: Path, out: Path, config_sha: str) -> None:
        self.tars, self.out, self.config_sha = tars, out, config_sha

    def __call__(self, unit: tuple[ShardSpec, dict[str, Decision]]) -> Any:
        spec, decisions = unit
        return run_unit(spec, partial(write_kept, self.tars, decisions, self.config_sha),
                        lambda s: curated_sink(self.out, s, decisions))


def _score_on_ray(tars: Path, out: Path, specs: Sequence[ShardSpec], config: CurationConfig, batch_size: int, progress: bool,
                  address: str | None) -> None:
    """The score step on Ray: every unscored shard, one actor per GPU (or CPU); then no temp file is left."""
    from dataigm.distributors import ray_distributor

    remove_stale_tmp(out)  # one driver: nobody else writes below out
    todo = [s for s in specs if not score_path(out, s).exists()]
    ray_distributor().map_units(todo, partial(_RayScoreWorker, tars, out, config, batch_size), address=address, gpu=True,
                                progress=progress)
    remove_stale_tmp(out)  # of attempts whose worker died


def _write_on_ray(tars: Path, out: Path, specs: Sequence[ShardSpec], decisions: dict[str, Decision], config_sha: str,
                  progress: bool, address: str | None) -> None:
    """The write step on Ray: every unwritten curated shard, each unit carrying only its own samples' decisions."""
    from dataigm.distributors import ray_distributor

    by_shard: dict[str, dict[str, Decision]] = {}
    for d in decisions.values():
        by_shard.setdefault(d.shard, {})[d.key] = d
    units = [(s, by_shard.get(s.relpath, {})) for s in specs if not is_done(out, s)]
    ray_distributor().map_units(units, partial(_RayWriteWorker, tars, out, config_sha), address=address, progress=progress)
    remove_stale_tmp(out)  # of attempts whose worker died


def start_run(dataset: Path, out: Path, config: CurationConfig, review_tags: dict[str, str], rank: int) -> str:
    """Check the review tags, refuse an ``out`` that holds something else or another curation, and record this run
    (rank 0). Returns the review tags' digest."""
    for key, tag in review_tags.items():  # the form now; the relabel class once the sample's label names are read
        parse_review_tag(key, tag, None)
    tags_sha = json_sha256(review_tags)
    run = {"format": "dataigm-curation/1", "config": config.model_dump(mode="json"), "config_sha256": config.sha256(),
           "review_tags_sha256": tags_sha, "input_manifest_sha256": json_sha256(load_manifest(dataset)["shards"])}
    run_path = out / CURATION_DIR / "run.json"
    foreign = sorted(p.name for p in out.iterdir() if p.name != CURATION_DIR) if out.is_dir() else []
    if foreign and not run_path.exists():  # refuse before writing anything into a folder that is not ours
        raise InputError(f"out={out} already holds {', '.join(foreign[:3])}{' ...' if len(foreign) > 3 else ''} "
                         "but no curation run; curated shards go to a new or empty folder")
    if run_path.exists():
        old = json.loads(run_path.read_text())
        if {k: old.get(k) for k in run} != run:
            raise InputError(f"{run_path} records a different curation (input, config or review tags); use another out=DIR")
    elif rank == 0:
        write_json_atomic(out / CURATION_DIR / "review_tags.json", review_tags)
        write_json_atomic(run_path, run)
    return tags_sha


def decide_once(out: Path, specs: Sequence[ShardSpec], config: CurationConfig, review_tags: dict[str, str], rank: int,
                barrier_timeout: float) -> Decided:
    """Rank 0 decides every sample from all score files and writes the verdicts; the other ranks wait and read them."""
    digest = inputs_digest(out, specs)
    if rank == 0:
        try:
            rows = [r for s in specs for r in read_rows(score_path(out, s))]
            decided = decide_all(rows, config, review_tags, load_embeddings(out, specs))
        except Exception as e:  # recorded for the other ranks, then raised here unchanged
            write_json_atomic(decide_error_path(out), {"inputs_sha256": digest, "error": f"{type(e).__name__}: {e}"})
            raise
        write_decided(out, decided, digest)
        decide_error_path(out).unlink(missing_ok=True)
    else:
        decided = wait_for_decided(out, digest, barrier_timeout)
    return decided


def finalize(dataset: Path, out: Path, tars: Path, specs: Sequence[ShardSpec], config: CurationConfig, tags_sha: str,
             result: CurationResult, barrier_timeout: float) -> None:
    """Rank 0, once every rank's shards are written: curated part records, the manifest, the per-sample table, the
    report and the contact sheets (into ``result``)."""
    from dataigm.curate.report import write_report
    from dataigm.curate.sheets import write_contact_sheets

    wait_for_files([s.stats_path(out) for s in specs], "the curated shards of all ranks", barrier_timeout)
    for part_name, part in sorted(load_manifest(dataset).get("parts", {}).items()):  # both layouts carry them
        write_part(out, part["category"], part_name.split("/", 1)[1], curated_part(part, config, tags_sha))
    if (Path(dataset) / SETTINGS_DIR).is_dir():  # the settings the kept images were generated under
        shutil.copytree(Path(dataset) / SETTINGS_DIR, out / SETTINGS_DIR, dirs_exist_ok=True)
    result.manifest = build_manifest(out)
    table = [{"key": d.key, "shard": d.shard, "category": d.category, "split": d.split, "label_name": d.label_name,
              "verdict": d.verdict, "reasons": ";".join(d.reasons), "relabel_to": d.relabel_to} for d in sorted(result.decisions.values(), key=lambda d: (d.shard, d.key))]
    write_rows(out / CURATION_DIR / "decisions.jsonl", table)
    sheets = write_contact_sheets(tars, out, specs, result.decisions, config)
    result.report = write_report(out, result.decisions, result.pair_stats, sheets, result.unmatched_tags, result.searches)
