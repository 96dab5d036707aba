"""The dataset manifest: what was planned, what was written, counts and checksums; and its verification.

Each part of a dataset (a recipe build, an image import) records its plan in ``_parts/<category>/<part>.json``;
each finished shard leaves stats. ``manifest.json`` is derived from both, so any rank or a later command can
(re)write it, and ``verify`` checks every shard against it.

At scale (a job array of hundreds of tasks, 100k shards): :func:`missing_shards` only checks that stats files
exist; :func:`build_manifest` reads every stats file once (in threads, for parallel file systems) and does no step
worse than sorting; :func:`finalize` is what every task calls at its end (the one that finds every planned shard
done writes the manifest, under a lock, and never rewrites an equal one); :func:`verify` checks shards in threads.
"""

from __future__ import annotations

import json
import logging
import os
import platform
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from dataigm import __version__
from dataigm.core.errors import InputError
from dataigm.core.atomic import sha256_file, write_bytes_atomic, write_json_atomic
from dataigm.core.run_settings import dataset_settings
from dataigm.core.settings import read_json_file
from dataigm.core.shards import count_samples, list_shards, read_stats, stats_files
from dataigm.core.stage import thread_map
from dataigm.core.versions import installed_version

log = logging.getLogger(__name__)

MANIFEST = "manifest.json"
LOCK = ".manifest.lock"  # O_EXCL: one finalizer at a time
STALE_LOCK_S = 600.0  # a lock older than this was left by a killed finalizer
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


def planned_shards(root: Path, parts: dict[str, dict[str, Any]] | None = None) -> list[str]:
    parts = read_parts(root) if parts is None else parts
    return sorted(s for part in parts.values() for s in part.get("shards", []))


def stats_relpath(shard: str) -> str:
    """The stats file of shard ``<category>/<split>/<name>.tar`` (see :class:`~dataigm.core.shards.ShardSpec`)."""
    return f"_stats/{shard.removesuffix('.tar')}.json"


def missing_shards(root: Path, parts: dict[str, dict[str, Any]] | None = None) -> list[str]:
    """Planned shards with no stats yet (not finished): one listing per split folder of ``_stats``, nothing parsed."""
    root = Path(root)
    parts = read_parts(root) if parts is None else parts
    done = {path[len(str(root)) + 1:] for path in stats_files(root, sort=False)}
    return sorted(s for part in parts.values() for s in part.get("shards", []) if stats_relpath(s) not in done)


def build_manifest(root: Path) -> dict[str, Any]:
    """Derive the manifest from parts and shard stats and write it atomically; returns it. O(shards): every stats
    file is read once; beyond that, sorting."""
    manifest = derive_manifest(root)
    write_manifest(root, manifest)
    return manifest


COMPACT_FROM = 2000  # shards: a larger manifest is written on one line (json's C encoder; indenting is 5x slower)


def write_manifest(root: Path, manifest: dict[str, Any]) -> None:
    """Write ``manifest.json`` atomically: indented for people, or compact above ``COMPACT_FROM`` shards."""
    if len(manifest["shards"]) < COMPACT_FROM:
        write_json_atomic(Path(root) / MANIFEST, manifest)
    else:
        write_bytes_atomic(Path(root) / MANIFEST, (json.dumps(manifest, sort_keys=True, separators=(",", ":")) + "\n").encode())


def derive_manifest(root: Path) -> dict[str, Any]:
    """The manifest :func:`build_manifest` writes, without writing it."""
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
        "incomplete": sorted(set(planned_shards(root, parts)) - {s["shard"] for s in stats}),
        "shards": shards,
    }
    return manifest


@dataclass
class Finalized:
    """What :func:`finalize` found: the manifest (None while planned shards are missing), the missing shards, and
    whether this call wrote ``manifest.json`` (False when shards are missing or an equal manifest was there)."""

    manifest: dict[str, Any] | None
    missing: list[str] = field(default_factory=list)
    written: bool = False


def finalize(root: str | Path, *, lock_timeout: float = 120.0, poll: float = 0.2) -> Finalized:
    """Write ``root``'s manifest if every planned shard of every part is done; what each rank or array task calls
    at its end, and ``dataigm finalize`` by hand.

    Safe when tasks finish at once: one finalizer at a time holds an ``O_EXCL`` lock file (a lock older than
    ``STALE_LOCK_S`` is a killed finalizer's and is broken), the check runs under it, and a manifest equal to the
    one on disk is not rewritten, so the manifest is written once, by the task that finishes last. Idempotent.

    Example::

        >>> result = finalize("out/nudity")        # doctest: +SKIP
        >>> result.written, len(result.missing)
        (True, 0)
    """
    root = Path(root)
    with _manifest_lock(root, lock_timeout, poll):
        parts = read_parts(root)
        missing = missing_shards(root, parts)
        if missing:
            return Finalized(None, missing)
        manifest = derive_manifest(root)
        path = root / MANIFEST
        if path.exists():
            try:
                if json.loads(path.read_text()) == json.loads(json.dumps(manifest)):
                    return Finalized(manifest, [], False)
            except ValueError:  # a corrupt manifest is replaced
                pass
        write_manifest(root, manifest)
        log.info("wrote %s (%d shards)", path, manifest["totals"]["shards"])
        return Finalized(manifest, [], True)


class _manifest_lock:
    """The finalizers' lock: ``root/.manifest.lock`` created with ``O_EXCL`` (atomic on local and NFS v3+ file
    systems), holding who took it; waits up to ``timeout`` seconds for another holder, breaks a stale one."""

    def __init__(self, root: Path, timeout: float, poll: float) -> None:
        self.path, self.timeout, self.poll = Path(root) / LOCK, timeout, poll

    def __enter__(self) -> None:
        import socket

        deadline = time.monotonic() + self.timeout
        self.path.parent.mkdir(parents=True, exist_ok=True)
        while True:
            try:
                fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            except FileExistsError:
                try:
                    age = time.time() - self.path.stat().st_mtime
                except FileNotFoundError:
                    continue  # released between the two calls
                if age > STALE_LOCK_S:
                    log.warning("breaking a stale manifest lock (%s, %.0f s old)", self.path, age)
                    self.path.unlink(missing_ok=True)
                    continue
                if time.monotonic() > deadline:
                    raise TimeoutError(f"{self.path} held for over {self.timeout:.0f}s by another finalizer; "
                                       f"if none is running, delete it and run finalize again")
                time.sleep(self.poll)
                continue
            with os.fdopen(fd, "w") as f:
                f.write(f"{socket.gethostname()} {os.getpid()}\n")
            return

    def __exit__(self, *exc: object) -> None:
        self.path.unlink(missing_ok=True)


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


def check_shard(root: Path, entry: dict[str, Any], deep: bool = True, hashes: bool = True) -> VerifyProblem | None:
    """One manifest entry against its file: present, its sha256 (``hashes``; without it, its size), its sample count
    (``deep``)."""
    rel = entry["path"]
    path = Path(root) / rel
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        return VerifyProblem(rel, "missing")
    if hashes:
        digest = sha256_file(path)
        if digest != entry["sha256"]:
            return VerifyProblem(rel, f"sha256 {digest[:16]}... != manifest {entry['sha256'][:16]}...")
    elif "bytes" in entry and size != entry["bytes"]:  # without hashes, the size is the check on the bytes
        return VerifyProblem(rel, f"{size} bytes != manifest {entry['bytes']}")
    if deep:
        try:
            n = count_samples(path)
        except Exception as e:  # a corrupt tar is a finding, not a crash
            return VerifyProblem(rel, f"unreadable: {e}")
        if n != entry["n"]:
            return VerifyProblem(rel, f"{n} samples != manifest {entry['n']}")
    return None


def verify(root: Path, deep: bool = True, *, hashes: bool = True, workers: int | None = None) -> list[VerifyProblem]:
    """Check every shard against the manifest: presence, sha256 (``hashes``; else size), sample count (``deep``); and no
    unlisted tars. Shards are checked in ``workers`` threads (default: 4 per core, at most 32; sha256 and file reads
    release the GIL), and the problems come back in the manifest's order.

    Returns the problems found (empty when the dataset is intact).

    Example::

        >>> [str(p) for p in verify("out/nudity", hashes=False)]   # doctest: +SKIP
        []
    """
    root = Path(root)
    manifest = load_manifest(root)
    problems: list[VerifyProblem] = []
    listed = {s["path"]: s for s in manifest["shards"]}
    for rel in manifest.get("incomplete", []):
        problems.append(VerifyProblem(rel, "planned but never finished"))
    found = thread_map(lambda e: check_shard(root, e, deep, hashes), list(listed.values()), workers)
    problems += [p for p in found if p is not None]
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
