"""Shard layout, crash-safe shard writing and plain reading.

Layout of a dataset folder::

    DIR/<category>/<split>/<category>-<split>[-<part>]-NNNNNN.tar   samples (png + json + cls)
    DIR/_stats/<category>/<split>/<shard name>.json                 per-shard stats (img2dataset style)
    DIR/_parts/<category>/<part>.json                               what a part (a build or an import) planned
    DIR/manifest.json                                               see :mod:`dataigm.core.manifest`

A shard is written to a hidden temp file and renamed into place when complete; its stats file is written
after the rename. A shard counts as done only when both exist, so a killed run never leaves a partial tar
visible and a resumed run redoes exactly the shards that were not finished.

A run stopped by a signal (:mod:`dataigm.core.interrupt`) keeps the samples of its unfinished shard as a checkpoint,
two hidden files beside the shard (``.<shard>.tar.partial`` and ``.<shard>.tar.partial.json``) that no shard glob,
manifest or export sees; the next :class:`ShardSink` of that shard opened with ``resume=True`` starts from them, and
the finished shard is byte-identical to one written in one go.
"""

from __future__ import annotations

import hashlib
import json
import os
import tarfile
import time
from collections import Counter, OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Iterator

from dataigm.core.atomic import publish, sha256_file, tmp_path_for, write_json_atomic
from dataigm.core.images import is_image_path
from dataigm.core.schema import IMAGE_FIELD, SampleMeta, encode_sample
from dataigm.core.stage import thread_map

MAX_RECORDED_ERRORS = 100
TAR_MTIME = 0  # fixed, so the same samples always give the same tar bytes


@dataclass(frozen=True)
class ShardSpec:
    """One unit of work: a shard of one category and split, from one part of a dataset."""

    category: str
    split: str
    index: int
    part: str = ""  # "" is a recipe's generated part; imports name theirs (e.g. "real")

    @property
    def name(self) -> str:
        middle = f"-{self.part}" if self.part else ""
        return f"{self.category}-{self.split}{middle}-{self.index:06d}"

    @property
    def relpath(self) -> str:
        return f"{self.category}/{self.split}/{self.name}.tar"

    @property
    def stats_relpath(self) -> str:
        return f"_stats/{self.category}/{self.split}/{self.name}.json"

    def tar_path(self, root: Path) -> Path:
        return Path(root) / self.relpath

    def stats_path(self, root: Path) -> Path:
        return Path(root) / self.stats_relpath


def checkpoint_paths(root: Path, spec: ShardSpec) -> tuple[Path, Path]:
    """The checkpoint of an unfinished shard: its closed partial tar and its state (hidden names beside the shard)."""
    tar = spec.tar_path(root)
    return tar.with_name(f".{tar.name}.partial"), tar.with_name(f".{tar.name}.partial.json")


def read_checkpoint(root: Path, spec: ShardSpec, planned: int) -> dict[str, Any] | None:
    """The state of ``spec``'s checkpoint when it is whole (its tar's sha256 matches) and of the same plan (``planned``
    samples); None otherwise (a stale or foreign checkpoint is ignored: the shard is written from its start)."""
    tar, state_path = checkpoint_paths(root, spec)
    try:
        state = json.loads(state_path.read_text())
        if state.get("planned") != planned or state.get("shard") != spec.relpath:
            return None
        if state["ok"] and sha256_file(tar) != state["tar_sha256"]:
            return None
    except (OSError, ValueError, KeyError):
        return None
    return state


def remove_checkpoint(root: Path, spec: ShardSpec) -> None:
    for path in checkpoint_paths(root, spec):
        path.unlink(missing_ok=True)


def is_done(root: Path, spec: ShardSpec) -> bool:
    """A shard is finished when its stats file exists, and its tar too unless no sample was written (an empty
    shard leaves no tar: see :meth:`ShardSink.close`)."""
    stats = spec.stats_path(root)
    if not stats.exists():
        return False
    return spec.tar_path(root).exists() or json.loads(stats.read_text())["ok"] == 0


@dataclass
class ShardStats:
    """What happened while writing one shard; saved as JSON beside the dataset."""

    shard: str
    category: str
    split: str
    part: str
    planned: int
    ok: int = 0
    failed: int = 0
    errors: list[dict[str, str]] = field(default_factory=list)
    error_counts: dict[str, int] = field(default_factory=dict)
    labels: dict[str, int] = field(default_factory=dict)
    sources: dict[str, int] = field(default_factory=dict)
    models: dict[str, int] = field(default_factory=dict)
    sha256: str = ""
    bytes: int = 0
    seconds: float = 0.0


class _HashingFile:
    """A write-only file that hashes what passes through it, so a finished shard's sha256 needs no second read."""

    def __init__(self, path: Path) -> None:
        self._file = open(path, "wb")
        self.sha256 = hashlib.sha256()

    def write(self, data: bytes) -> int:
        self.sha256.update(data)
        return self._file.write(data)

    def close(self) -> None:
        self._file.close()


class ShardSink:
    """Writes one shard through ``webdataset.TarWriter`` and publishes it atomically with its stats.

    Failed samples are recorded (key and reason), never raised: one bad sample does not stop a shard.

    With ``resume=True`` the sink starts from the shard's checkpoint (:meth:`checkpoint`) when there is a valid one:
    its samples are copied into the new tar and its counts restored; ``position`` says how many of the planned
    samples (written or failed) it holds, so the caller goes on with the next one.
    """

    def __init__(self, root: Path, spec: ShardSpec, planned: int, *, resume: bool = False) -> None:
        import webdataset as wds

        self.root = Path(root)
        self.spec = spec
        self.final = spec.tar_path(self.root)
        self.final.parent.mkdir(parents=True, exist_ok=True)
        self.tmp = tmp_path_for(self.final)
        self._file = _HashingFile(self.tmp)
        self._writer = wds.TarWriter(self._file, mtime=TAR_MTIME, encoder=False)
        self._labels: Counter[str] = Counter()
        self._sources: Counter[str] = Counter()
        self._models: Counter[str] = Counter()
        self._errors: Counter[str] = Counter()
        self.stats = ShardStats(spec.relpath, spec.category, spec.split, spec.part, planned)
        self._t0 = time.perf_counter()
        self.resumed = 0
        if resume:
            self._resume()

    @property
    def position(self) -> int:
        """Planned samples this sink holds (written or recorded as failed), a checkpoint's included."""
        return self.stats.ok + self.stats.failed

    @property
    def full(self) -> bool:
        """Whether the sink holds every planned sample (nothing is left to write before :meth:`close`)."""
        return self.position >= self.stats.planned

    def _resume(self) -> None:
        state = read_checkpoint(self.root, self.spec, self.stats.planned)
        if state is None:
            remove_checkpoint(self.root, self.spec)
            return
        if state["ok"]:
            tar, _ = checkpoint_paths(self.root, self.spec)
            with tarfile.open(tar, "r") as src:  # the same members in the same order: the same bytes as in one go
                sample: dict[str, Any] = {}
                for member in src:
                    key, _, ext = member.name.rsplit("/", 1)[-1].partition(".")
                    if sample and sample["__key__"] != key:
                        self._writer.write(sample)
                        sample = {}
                    sample.setdefault("__key__", key)
                    sample[ext] = src.extractfile(member).read()  # type: ignore[union-attr]
                if sample:
                    self._writer.write(sample)
        s = self.stats
        s.ok, s.failed, s.errors = state["ok"], state["failed"], state["errors"]
        self._labels.update(state["labels"])
        self._sources.update(state["sources"])
        self._models.update(state["models"])
        self._errors.update(state["error_counts"])
        self.resumed = self.position

    def checkpoint(self) -> int:
        """Keep what this sink holds as the shard's checkpoint (a closed tar, then its state) instead of publishing
        it; returns how many planned samples it holds. The shard stays not done; nothing is kept when it holds none."""
        self._close_tar()
        s = self.stats
        if not self.position:
            self.tmp.unlink(missing_ok=True)
            return 0
        tar, state_path = checkpoint_paths(self.root, self.spec)
        publish(self.tmp, tar)
        state = {"shard": s.shard, "planned": s.planned, "ok": s.ok, "failed": s.failed, "errors": s.errors,
                 "labels": dict(self._labels), "sources": dict(self._sources), "models": dict(self._models),
                 "error_counts": dict(self._errors), "tar_sha256": self._file.sha256.hexdigest()}
        write_json_atomic(state_path, state)
        return self.position

    def write(self, meta: SampleMeta, image_bytes: bytes) -> None:
        if (meta.category, meta.split) != (self.spec.category, self.spec.split):
            raise ValueError(f"sample {meta.key} ({meta.category}/{meta.split}) does not belong in {self.spec.relpath}")
        self._writer.write(encode_sample(meta, image_bytes))
        self.stats.ok += 1
        self._labels[meta.label_name] += 1
        self._sources[meta.source] += 1
        if meta.model:
            self._models[meta.model] += 1

    def fail(self, key: str, reason: str) -> None:
        self.stats.failed += 1
        kind = reason.split(":", 1)[0][:80]
        self._errors[kind] += 1
        if len(self.stats.errors) < MAX_RECORDED_ERRORS:
            self.stats.errors.append({"key": key, "error": reason[:500]})

    def close(self) -> ShardStats:
        """Finish the tar, rename it into place, then write its stats (the 'done' marker).

        A shard without samples (all failed, or all dropped by curation) leaves its stats but no tar: an empty
        tar is never published (``webdataset`` refuses it, and a split of only empty tars is no split).
        """
        self._close_tar()
        s = self.stats
        if s.ok:
            publish(self.tmp, self.final)
            s.sha256, s.bytes = self._file.sha256.hexdigest(), self.final.stat().st_size
        else:
            self.tmp.unlink(missing_ok=True)
            self.final.unlink(missing_ok=True)
        s.labels, s.sources, s.models = dict(self._labels), dict(self._sources), dict(self._models)
        s.error_counts = dict(self._errors)
        s.seconds = round(time.perf_counter() - self._t0, 3)
        write_json_atomic(self.spec.stats_path(self.root), s.__dict__)
        remove_checkpoint(self.root, self.spec)  # after the done marker: a crash between them only leaves a stale one
        return s

    def abort(self) -> None:
        try:
            self._close_tar()
        finally:
            self.tmp.unlink(missing_ok=True)

    def _close_tar(self) -> None:
        try:
            self._writer.close()  # writes the tar's end blocks, but leaves a stream it was given open
        finally:
            self._file.close()


def list_shards(root: Path, category: str | None = None, split: str | None = None) -> list[Path]:
    """Published tars below a dataset folder (``<category>/<split>/*.tar``, not hidden ones), sorted; optionally of one
    category and/or split. Three levels of ``os.scandir`` (a recursive glob is several times slower at 100k shards)."""
    root = Path(root)

    def folders(base: Path, name: str | None) -> list[Path]:
        if name is not None:
            return [base / name] if (base / name).is_dir() else []
        try:
            return [Path(e.path) for e in os.scandir(base) if e.is_dir()]
        except FileNotFoundError:
            return []

    found = []
    for cat in folders(root, category):
        for sp in folders(cat, split):
            found += [Path(e.path) for e in os.scandir(sp) if e.name.endswith(".tar") and not e.name.startswith(".") and e.is_file()]
    return sorted(found)


def stats_files(root: Path, sort: bool = True) -> list[str]:
    """Paths of ``_stats/<category>/<split>/*.json`` (not hidden temps); three levels of ``os.scandir``, no recursive
    glob (several times slower at 100k shards)."""
    found = []
    base = Path(root) / "_stats"
    for level1 in os.scandir(base) if base.is_dir() else []:
        if level1.is_dir():
            for level2 in os.scandir(level1.path):
                if level2.is_dir():
                    found += [e.path for e in os.scandir(level2.path) if e.name.endswith(".json") and not e.name.startswith(".")]
    return sorted(found) if sort else found


def read_stats(root: Path) -> list[dict[str, Any]]:
    """All per-shard stats of a dataset folder, sorted by shard path. Files are read in threads (on a parallel file
    system each open waits on a metadata server); each is parsed once."""
    texts = thread_map(lambda p: Path(p).read_bytes(), stats_files(root))
    return sorted((json.loads(t) for t in texts), key=lambda s: s["shard"])


@dataclass
class RawSample:
    """A sample as stored: key, image bytes, metadata dict, label."""

    key: str
    image: bytes
    meta: dict[str, Any]
    label: int
    shard: str = ""


def iter_tar(path: Path) -> Iterator[RawSample]:
    """Samples of one tar, in order, read with the standard library (no torch import)."""
    fields: dict[str, bytes] = {}
    current: str | None = None

    def emit() -> RawSample:
        meta = json.loads(fields["json"])
        return RawSample(current, fields[IMAGE_FIELD], meta, int(fields["cls"]), str(path))  # type: ignore[arg-type]

    with tarfile.open(path, "r") as tar:
        for member in tar:
            if not member.isfile():
                continue
            name = member.name.rsplit("/", 1)[-1]
            key, _, ext = name.partition(".")
            if key != current and current is not None:
                yield emit()
                fields = {}
            current = key
            fields[ext] = tar.extractfile(member).read()  # type: ignore[union-attr]
        if current is not None:
            yield emit()


def iter_samples(paths: Iterable[Path]) -> Iterator[RawSample]:
    for p in paths:
        yield from iter_tar(Path(p))


def count_samples(path: Path) -> int:
    return sum(1 for _ in iter_tar(path))


class ShardIndex:
    """Random access to samples in tar shards by (shard, key): each shard's members indexed once, the last
    ``max_open`` shards kept open. Use it as a context manager (or :meth:`close` it).

    :meth:`of_dataset` also maps every key of a set of shards to its shard (keys found twice are listed in
    ``duplicates``; the first shard wins), for reading a whole dataset folder by key.
    """

    def __init__(self, max_open: int = 8) -> None:
        self.max_open = max_open
        self.keys: dict[str, Path] = {}
        self.duplicates: list[str] = []
        self._members: dict[Path, dict[str, dict[str, tarfile.TarInfo]]] = {}
        self._open: OrderedDict[Path, tarfile.TarFile] = OrderedDict()

    @classmethod
    def of_dataset(cls, shards: Iterable[Path], max_open: int = 8) -> "ShardIndex":
        """An index of every key of ``shards`` (read once, in order)."""
        index = cls(max_open)
        for path in shards:
            for key in index.members(path):
                if key in index.keys:
                    index.duplicates.append(key)
                else:
                    index.keys[key] = Path(path)
        return index

    def __enter__(self) -> "ShardIndex":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def members(self, path: str | Path) -> dict[str, dict[str, tarfile.TarInfo]]:
        """``{key: {extension: member}}`` of one shard (webdataset's rule: the key ends at the first dot)."""
        path = Path(path)
        if path not in self._members:
            members: dict[str, dict[str, tarfile.TarInfo]] = {}
            for m in self._tar(path).getmembers():
                if m.isfile():
                    key, _, ext = m.name.rsplit("/", 1)[-1].partition(".")
                    members.setdefault(key, {})[ext] = m
            self._members[path] = members
        return self._members[path]

    def fields(self, path: str | Path, key: str) -> dict[str, bytes]:
        """The bytes of every member of sample ``key`` of shard ``path``, by extension."""
        members = self.members(path).get(key)
        if members is None:
            raise FileNotFoundError(f"{path}: no sample {key}")
        tar = self._tar(Path(path))
        return {ext: tar.extractfile(m).read() for ext, m in members.items()}  # type: ignore[union-attr]

    def sample(self, key: str, path: str | Path | None = None) -> RawSample:
        """Sample ``key`` of shard ``path`` (default: the shard :meth:`of_dataset` found it in)."""
        path = Path(path) if path is not None else self.keys[key]
        data = self.fields(path, key)
        return RawSample(key, data.get(IMAGE_FIELD, b""), json.loads(data.get("json", b"{}")), int(data.get("cls", b"-1")), str(path))

    def image_bytes(self, path: str | Path, key: str) -> bytes:
        """The encoded image of sample ``key`` (its ``png`` member, else its first member with an image suffix)."""
        data = self.fields(path, key)
        for ext in [IMAGE_FIELD, *sorted(data)]:
            if ext in data and is_image_path(f"x.{ext}"):
                return data[ext]
        raise FileNotFoundError(f"{path}: no image for sample {key}")

    def _tar(self, path: Path) -> tarfile.TarFile:
        tar = self._open.pop(path, None) or tarfile.open(path, "r")
        self._open[path] = tar
        while len(self._open) > self.max_open:
            self._open.popitem(last=False)[1].close()
        return tar

    def close(self) -> None:
        """Close every open shard."""
        for tar in self._open.values():
            tar.close()
        self._open.clear()
