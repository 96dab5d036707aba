"""The dataset manifest: what was planned, what was written, counts and checksums; and its verification.

Each part of a dataset (a recipe build, an image import) records its plan in ``_parts/<category>/<part>.json``;
each finished shard leaves stats. ``manifest.json`` is derived from both, so any rank or a later command can
(re)write it, and ``verify`` checks every shard against it.
"""

from __future__ import annotations

import json
import platform
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from dataigm import __version__
from dataigm.core.errors import InputError
from dataigm.core.atomic import sha256_file, write_json_atomic
from dataigm.core.run_settings import dataset_settings
from dataigm.core.settings import read_json_file
from dataigm.core.shards import count_samples, list_shards, read_stats
from dataigm.core.versions import installed_version

MANIFEST = "manifest.json"
FORMAT = "dataigm-dataset/1"
TRACKED_PACKAGES = ("torch", "diffusers", "transformers", "webdataset", "timm", "pillow")


def package_versions(names: tuple[str, ...] = TRACKED_PACKAGES) -> dict[str, str]:
    return {"dataigm": __version__, "python": platform.python_version()} | {name: installed_version(name) for name in names}


def part_path(root: Path, category: str, part: str) -> Path:
    return Path(root) / "_parts" / category / f"{part or 'generated'}.json"


class CurationRecord(BaseModel):
    """What curation did to a part: the digests that identify the run and the filters with their full settings."""

    model_config = ConfigDict(extra="forbid")

    config_sha256: str = Field(description="digest of the validated curation config")
    review_tags_sha256: str = ""
    input_config_sha256: str = Field("", description="config digest of the part as it was before curation")
    filters: dict[str, dict[str, Any]] = Field(default_factory=dict, description="filter name -> its validated settings, for this part's category")
    pairs: dict[str, Any] = Field(default_factory=dict, description="the pair policy applied")


class PartRecord(BaseModel):
    """One part of a dataset (a recipe build, an image import, a synthetic set), as ``_parts/<category>/<part>.json``
    and the manifest's ``parts`` record it. Written by the build, import and curate drivers; read by the manifest,
    the card and verification. Drivers may add their own provenance fields (kept as given)."""

    model_config = ConfigDict(extra="allow")

    kind: str = Field("", description="generated, real or synthetic: where the images come from (curation keeps it)")
    category: str
    taxonomy: str | None = Field(None, description="the taxonomy category (default: the category itself)")
    label_names: list[str] = Field(default_factory=list)
    config: dict[str, Any] = Field(default_factory=dict, description="the recipe or import settings")
    config_sha256: str = ""
    shards: list[str] = Field(default_factory=list, description="planned shard paths")
    models: list[dict[str, Any]] = Field(default_factory=list, description="model identities (generated parts)")
    curation: CurationRecord | None = Field(None, description="set once the part has been curated")


def part_records(parts: dict[str, Any]) -> dict[str, PartRecord]:
    """A manifest's (or :func:`read_parts`') part dicts as validated records."""
    return {name: PartRecord.model_validate(part) for name, part in parts.items()}


def write_part(root: Path, category: str, part: str, record: PartRecord | dict[str, Any]) -> None:
    """Record a part's plan (config, planned shards, models); refuses a different plan for the same part."""
    record = PartRecord.model_validate(record).model_dump(mode="json", exclude_unset=True)
    path = part_path(root, category, part)
    if path.exists():
        old = json.loads(path.read_text())
        if old.get("config_sha256") != record.get("config_sha256"):
            raise InputError(
                f"{path} holds a different plan for {category}/{part or 'generated'} "
                f"(config sha256 {old.get('config_sha256', '')[:12]} != {record.get('config_sha256', '')[:12]}); "
                "use another output folder or delete that part"
            )
        if old == record:
            return
    write_json_atomic(path, record)


def write_model_record(root: Path, record: dict[str, Any]) -> None:
    """Provenance of a loaded model (source, revision or weight sha256, overridden components, dtype)."""
    write_json_atomic(Path(root) / "_models" / f"{record['tag']}.json", record)


def read_model_records(root: Path) -> dict[str, dict[str, Any]]:
    return {p.stem: json.loads(p.read_text()) for p in sorted((Path(root) / "_models").glob("*.json"))}


def read_parts(root: Path) -> dict[str, dict[str, Any]]:
    parts = {}
    for p in sorted((Path(root) / "_parts").glob("*/*.json")):
        parts[f"{p.parent.name}/{p.stem}"] = read_json_file(p, "a part record")
    return parts


def planned_shards(root: Path) -> list[str]:
    return sorted(s for part in read_parts(root).values() for s in part.get("shards", []))


def missing_shards(root: Path) -> list[str]:
    """Planned shards with no stats yet (not finished)."""
    done = {s["shard"] for s in read_stats(root)}
    return [s for s in planned_shards(root) if s not in done]


def build_manifest(root: Path) -> dict[str, Any]:
    """Derive the manifest from parts and shard stats and write it atomically; returns it."""
    root = Path(root)
    parts = read_parts(root)
    stats = read_stats(root)
    labels_of, taxonomy_of = {}, {}
    for part in parts.values():
        labels_of.setdefault(part["category"], part.get("label_names", []))
        taxonomy_of.setdefault(part["category"], part.get("taxonomy", part["category"]))
    counts: dict[str, Any] = {}
    for s in stats:
        cat = counts.setdefault(s["category"], {"label_names": labels_of.get(s["category"], []),
                                                "taxonomy": taxonomy_of.get(s["category"], s["category"]), "splits": {}})
        sp = cat["splits"].setdefault(s["split"], {"n": 0, "failed": 0, "labels": Counter(), "sources": Counter(), "models": Counter()})
        sp["n"] += s["ok"]
        sp["failed"] += s["failed"]
        for field in ("labels", "sources", "models"):
            sp[field].update(s[field])
    shards = [  # a shard without samples has stats (its failures are counted) but no tar
        {"path": s["shard"], "sha256": s["sha256"], "n": s["ok"], "failed": s["failed"], "bytes": s["bytes"]}
        for s in stats if s["ok"] > 0
    ]
    manifest = {
        "format": FORMAT,
        "versions": package_versions(),
        "parts": parts,
        "models": read_model_records(root),
        "settings": dataset_settings(root),  # per-rank pixel-changing settings and whether the ranks agreed
        "counts": _plain(counts),
        "totals": {"samples": sum(s["ok"] for s in stats), "failed": sum(s["failed"] for s in stats), "shards": len(shards)},
        "incomplete": missing_shards(root),
        "shards": shards,
    }
    write_json_atomic(root / MANIFEST, manifest)
    return manifest


def _plain(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {k: _plain(v) for k, v in sorted(obj.items())}
    return obj


def load_manifest(root: Path) -> dict[str, Any]:
    path = Path(root) / MANIFEST
    if not path.exists():
        raise FileNotFoundError(f"{path} not found: is {root} a dataigm dataset folder?")
    return read_json_file(path, "the manifest")


@dataclass
class VerifyProblem:
    shard: str
    problem: str

    def __str__(self) -> str:
        return f"{self.shard}: {self.problem}"


def verify(root: Path, deep: bool = True) -> list[VerifyProblem]:
    """Check every shard against the manifest: presence, sha256, sample count; and no unlisted tars.

    Returns the problems found (empty when the dataset is intact).
    """
    root = Path(root)
    manifest = load_manifest(root)
    problems: list[VerifyProblem] = []
    listed = {s["path"]: s for s in manifest["shards"]}
    for rel in manifest.get("incomplete", []):
        problems.append(VerifyProblem(rel, "planned but never finished"))
    for rel, entry in listed.items():
        path = root / rel
        if not path.exists():
            problems.append(VerifyProblem(rel, "missing"))
            continue
        digest = sha256_file(path)
        if digest != entry["sha256"]:
            problems.append(VerifyProblem(rel, f"sha256 {digest[:16]}... != manifest {entry['sha256'][:16]}..."))
            continue
        if deep:
            try:
                n = count_samples(path)
            except Exception as e:  # a corrupt tar is a finding, not a crash
                problems.append(VerifyProblem(rel, f"unreadable: {e}"))
                continue
            if n != entry["n"]:
                problems.append(VerifyProblem(rel, f"{n} samples != manifest {entry['n']}"))
    if "hub" in manifest:  # an exported/pulled folder: any tar below data/ would be published
        data_root = root / manifest["hub"].get("data_dir", "data")
        tars = sorted(p for p in data_root.rglob("*.tar") if not any(x.startswith(".") for x in p.relative_to(root).parts))
    else:
        tars = list_shards(root)
    for path in tars:
        rel = path.relative_to(root).as_posix()
        if rel not in listed:
            problems.append(VerifyProblem(rel, "not in manifest"))
    return problems


def counts_table(manifest: dict[str, Any]) -> list[tuple[str, str, str, int]]:
    """Rows (category, split, label, n) for printing."""
    rows = []
    for cat, c in manifest["counts"].items():
        for split, sp in c["splits"].items():
            for label, n in sorted(sp["labels"].items()):
                rows.append((cat, split, label, n))
    return rows
