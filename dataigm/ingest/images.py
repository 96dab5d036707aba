"""Import a folder of real images into the dataset layout, next to generated parts, in the same sample schema.

The folder holds one sub-folder per class, optionally below a split level::

    FOLDER/<class>/**/<image>            (splits drawn per class by a stable hash of the relative path)
    FOLDER/<split>/<class>/**/<image>    (splits used as given)

Split folders are detected as Hugging Face's ``imagefolder`` does: top-level folders named ``train``,
``validation``/``val``/``valid``/``dev`` and ``test`` are splits (stored as ``train``, ``val``, ``test``). A top
level mixing split names and other names is refused; ``split_from_folders=False`` (``--no-split-from-folders``)
reads every top-level folder as a class, ``True`` requires split folders.

The import follows the reader -> worker -> writer pattern of the builder:

1. *Scan* lists the image files (sorted relative paths) and resolves class -> label name.
2. *Plan* assigns splits and cuts each split into shards; it depends only on the relative paths (and the
   settings), so a re-run computes the same keys and shards. The plan is recorded with ``write_part``.
3. *Decode* (a thread pool) reads each file, applies EXIF orientation, converts any mode to RGB, downscales
   above ``max_size`` and re-encodes to PNG. A file that fails becomes a recorded failure, never a crash.
4. *Write* goes through :class:`~dataigm.core.shards.ShardSink`; finished shards are skipped on resume.
"""

from __future__ import annotations

import hashlib
import io
import logging
import os
import re
from collections import Counter, deque
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import closing
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any, Iterator, Mapping, Sequence

from dataigm.core.errors import InputError
from dataigm.core.datasets import refuse_exported
from dataigm.core.images import IMAGE_SUFFIXES, ImageDecodeError, is_image_path, open_rgb, walk_files
from dataigm.core.manifest import PartRecord, build_manifest, finalize, read_parts, write_part
from dataigm.core.partition import RankInfo, rank_from_env
from dataigm.core.schema import SPLITS, SampleMeta, slugify
from dataigm.core.shards import ShardSink, ShardSpec, is_done
from dataigm.core.stage import remove_own_tmp, run_unit, run_units
from dataigm.distributors import check_distributor, require_single_driver
from dataigm.taxonomy import CATEGORIES

log = logging.getLogger(__name__)

DEFAULT_SPLITS = {"train": 0.8, "val": 0.1, "test": 0.1}
# Top-level folder names read as splits (Hugging Face imagefolder's convention) -> the dataset's split names.
SPLIT_FOLDERS = {"train": "train", "validation": "val", "val": "val", "valid": "val", "dev": "val", "test": "test"}
# zlib level of the re-encoded PNGs. On photographs level 1 encodes ~3x faster than Pillow's default 6 and
# the files come out no larger (level 6's filter search rarely pays off on camera noise).
PNG_COMPRESS_LEVEL = 1


# --- 3. decode one file ----------------------------------------------------------------------------------


@dataclass
class DecodedImage:
    """An image as stored (RGB PNG bytes and size) and what it was (sha256, format, mode and size of the file)."""

    png: bytes
    width: int
    height: int
    sha256: str
    original_format: str
    original_mode: str
    original_size: tuple[int, int]


def decode_image(data: bytes, max_size: int, name: str = "", compress_level: int = PNG_COMPRESS_LEVEL) -> DecodedImage:  # pragma: no mutate block, I/O, see docs/testing.md
    """Bytes of any Pillow-readable image -> PNG bytes (RGB, EXIF orientation applied, longest side <= max_size).

    Raises :class:`ImageDecodeError` for empty, non-image, truncated or otherwise undecodable data.
    """
    from PIL import Image

    digest = hashlib.sha256(data).hexdigest()
    img, fmt, mode, size = open_rgb(data, name, max_size)
    if max(img.size) > max_size:
        img.thumbnail((max_size, max_size), Image.Resampling.LANCZOS)
    buf = io.BytesIO()
    img.save(buf, format="PNG", compress_level=compress_level)
    return DecodedImage(buf.getvalue(), img.width, img.height, digest, fmt, mode, size)


# --- 1. scan -----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ImageFile:
    """One file to import: where it is, its class folder and, with split_from_folders, its split."""

    relpath: str  # posix path relative to the imported folder
    folder_class: str
    split: str = ""
    size: int = 0
    source: str = "real"  # the sample's source: "real", or what --source-from-name found in the file name


def _top_dirs(folder: Path) -> set[str]:
    folder = Path(folder)
    if not folder.exists():
        raise FileNotFoundError(f"image folder {folder} not found")
    if not folder.is_dir():
        raise InputError(f"{folder} is not a folder (expected one sub-folder per class)")
    return {p.name for p in folder.iterdir() if p.is_dir() and not p.name.startswith(".")}


def detect_split_folders(folder: str | Path) -> bool:
    """Whether ``folder``'s top-level folders are splits (names in :data:`SPLIT_FOLDERS`) rather than classes.

    Raises ValueError when split names and other names are mixed: that layout has no single meaning.
    """
    folder = Path(folder)
    top = _top_dirs(folder)
    splits, others = sorted(top & set(SPLIT_FOLDERS)), sorted(top - set(SPLIT_FOLDERS))
    if splits and others:
        raise InputError(
            f"{folder}: top-level folders mix split names {splits} and other names {others}; put every class folder "
            "below a split folder, or pass split_from_folders=False to read all of them as classes"
        )
    return bool(splits)


def scan_folder(folder: Path, split_from_folders: bool | None = None, source_pattern: re.Pattern[str] | None = None) -> tuple[list[ImageFile], list[str]]:
    """Image files below ``folder`` (sorted by relative path) and the relative paths of ignored files.

    ``split_from_folders=None`` detects split folders (:func:`detect_split_folders`). With ``source_pattern``
    each file's source is its name's ``source`` group (``real`` when the name does not match).
    Raises FileNotFoundError for a missing folder and ValueError for an empty or mis-shaped one.
    """
    folder = Path(folder)
    top_dirs = _top_dirs(folder)
    if split_from_folders is None:
        split_from_folders = detect_split_folders(folder)
    if split_from_folders:
        bad = sorted(top_dirs - set(SPLIT_FOLDERS))
        names = sorted(SPLIT_FOLDERS)
        if bad:
            raise InputError(f"{folder}: split_from_folders=True expects only split folders {names} at the top, found folder(s) {bad}")
        if not top_dirs:
            raise InputError(f"{folder}: split_from_folders=True expects split folders {names} at the top, found none")
    files, ignored = [], []
    for path in walk_files(folder):
        rel = path.relative_to(folder)
        depth = 3 if split_from_folders else 2  # [split/]class/file
        if len(rel.parts) < depth or not is_image_path(path):
            ignored.append(rel.as_posix())
            continue
        split, cls = (SPLIT_FOLDERS[rel.parts[0]], rel.parts[1]) if split_from_folders else ("", rel.parts[0])
        files.append(ImageFile(rel.as_posix(), cls, split, path.stat().st_size, source_of(path.name, source_pattern)))
    if not files:
        layout = "<split>/<class>/<image>" if split_from_folders else "<class>/<image>"
        raise InputError(f"{folder}: no image files found (expected {layout} with suffixes {sorted(IMAGE_SUFFIXES)})")
    if ignored:
        log.warning("%s: ignored %d file(s) that are not images in a class folder, e.g. %s", folder, len(ignored), ignored[:3])
    return files, ignored


def compile_source_pattern(pattern: str | None) -> re.Pattern[str] | None:
    """``--source-from-name``: a regular expression with a named group ``source``, searched in each file name."""
    if not pattern:
        return None
    try:
        compiled = re.compile(pattern)
    except re.error as e:
        raise InputError(f"source_from_name={pattern!r}: not a valid regular expression ({e})") from None
    if "source" not in compiled.groupindex:
        raise InputError(f"source_from_name={pattern!r} has no named group 'source', e.g. ^(?P<source>[A-Za-z]+(?:-[A-Za-z]+)?)_")
    return compiled


def source_of(file_name: str, pattern: re.Pattern[str] | None) -> str:
    """The sample source a file name encodes (``LAION_0001.jpg`` -> ``LAION``), or ``real``."""
    match = pattern.search(file_name) if pattern else None
    return match["source"] if match and match["source"] else "real"


def load_class_map(path: str | Path) -> dict[str, str]:
    """A YAML/JSON mapping ``folder name -> label name``."""
    import yaml

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"class map {path} not found")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))  # pragma: no mutate, the locale default is UTF-8 here too
    except yaml.YAMLError as e:
        raise InputError(f"{path}: not valid YAML/JSON: {e}") from None
    if not isinstance(data, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in data.items()):
        raise InputError(f"{path}: a class map must be a mapping of folder name -> label name (strings)")
    return dict(data)


def _other_parts(root: Path, category: str, part: str) -> list[dict[str, Any]]:
    return [p for k, p in read_parts(root).items() if p["category"] == category and k != f"{category}/{part}"]


def resolve_taxonomy(root: Path, category: str, part: str, taxonomy: str | None = None) -> str:
    """The taxonomy category (nudity | style | object) of a dataset category: given, else that of the dataset's
    other parts of the category, else the category itself when it is one, else "" (unknown)."""
    existing = {p.get("taxonomy", p["category"]) for p in _other_parts(root, category, part)} & set(CATEGORIES.names())
    if taxonomy:
        CATEGORIES.get(taxonomy)  # KeyError lists the valid ones
        if existing and existing != {taxonomy}:
            raise InputError(f"taxonomy {taxonomy!r} differs from that of the dataset's {category!r} parts {sorted(existing)}")
        return taxonomy
    if len(existing) == 1:
        return existing.pop()
    return category if category in CATEGORIES else ""


def resolve_labels(
    root: Path,
    category: str,
    part: str,
    folder_classes: Sequence[str],
    class_map: Mapping[str, str],
    label_names: Sequence[str] | None = None,
) -> tuple[list[str], dict[str, str]]:
    """Label names of the category and the folder class -> label name mapping.

    Label names come from ``label_names``, else from the dataset's other parts of this category (so labels
    agree across parts), else from the (mapped) folder names, sorted. Every folder class must map onto one.
    """
    others = {tuple(p.get("label_names", [])) for p in _other_parts(root, category, part)}
    if len(others) > 1:
        raise InputError(f"{root}: parts of {category!r} disagree on label names: {sorted(others)}")
    existing = list(others.pop()) if others else None
    if label_names is not None and existing is not None and list(label_names) != existing:
        raise InputError(f"label names {list(label_names)} differ from those of the dataset's {category!r} parts {existing}")
    mapping = {c: class_map.get(c, c) for c in folder_classes}
    unused = sorted(set(class_map) - set(folder_classes))
    if unused:
        log.warning("class map entries %s match no class folder (folders: %s)", unused, sorted(folder_classes))
    names = list(label_names or existing or sorted(set(mapping.values())))
    if len(set(names)) != len(names):
        raise InputError(f"label names must be unique, got {names}")
    unknown = {c: label for c, label in mapping.items() if label not in names}
    if unknown:
        # derived names hold every label: the names were given, or are those of the other parts
        where = "the given label names" if label_names else f"the label names of the dataset's {category!r} parts"
        raise InputError(
            f"class folder(s) {sorted(unknown)} map to {sorted(set(unknown.values()))}, not among {where} "
            f"{names}; map them with a class map (class_map=FILE, or class_map: {{folder: label}} in the recipe)"
        )
    return names, mapping


# --- 2. plan ---------------------------------------------------------------------------------------------


def _order(relpath: str) -> str:
    return hashlib.sha256(f"dataigm-import:{relpath}".encode()).hexdigest()


def split_counts(n: int, fractions: Mapping[str, float]) -> dict[str, int]:
    """Exact per-split counts for ``n`` items: floors plus largest remainders (ties: split order)."""
    raw = {s: n * f for s, f in fractions.items()}
    counts = {s: int(v) for s, v in raw.items()}
    rest = n - sum(counts.values())
    for s in sorted(raw, key=lambda s: (-(raw[s] - counts[s]), SPLITS.index(s)))[:rest]:
        counts[s] += 1
    return counts


def assign_splits(files: Sequence[ImageFile], fractions: Mapping[str, float]) -> dict[str, list[ImageFile]]:
    """Per class: order files by a stable hash of the path and hand out exact fractions in split order."""
    by_class: dict[str, list[ImageFile]] = {}
    for f in files:
        by_class.setdefault(f.folder_class, []).append(f)
    out: dict[str, list[ImageFile]] = {s: [] for s in fractions}
    for cls in sorted(by_class):
        ordered = sorted(by_class[cls], key=lambda f: _order(f.relpath))
        start = 0
        for split, k in split_counts(len(ordered), fractions).items():
            out[split] += ordered[start : start + k]
            start += k
    return out


def sample_key(category: str, part: str, relpath: str) -> str:
    """``<category>-<part>-<slug of the file stem>-<10 hex of the path hash>``: readable and unique per path."""
    try:
        stem = slugify(Path(relpath).stem)[:40]
    except ValueError:
        stem = "img"
    return f"{category}-{part}-{stem}-{_order(relpath)[:10]}"


@dataclass
class PlannedShard:
    """One shard of the plan and the files that go into it, in order."""

    spec: ShardSpec
    files: list[ImageFile]


def plan_shards(category: str, part: str, by_split: Mapping[str, list[ImageFile]], shard_size: int) -> list[PlannedShard]:
    """Cut each split into shards of ``shard_size`` files, ordered by path hash so classes mix within a shard."""
    shards = []
    for split in SPLITS:
        files = sorted(by_split.get(split, []), key=lambda f: _order(f.relpath))
        for index, start in enumerate(range(0, len(files), shard_size)):
            shards.append(PlannedShard(ShardSpec(category, split, index, part), files[start : start + shard_size]))
    return shards


# --- the import ------------------------------------------------------------------------------------------


@dataclass
class ImportReport:
    """What an import did (this rank's share when run on several ranks)."""

    category: str
    part: str
    label_names: list[str]
    files: int
    ignored: int
    shards_planned: int
    shards_written: int = 0
    shards_skipped: int = 0
    ok: int = 0
    failed: int = 0
    failures: Counter[str] = field(default_factory=Counter)
    manifest: dict[str, Any] = field(default_factory=dict)


def _check_fractions(splits: Mapping[str, float]) -> dict[str, float]:
    bad = set(splits) - set(SPLITS)
    if bad:
        raise InputError(f"unknown split(s) {sorted(bad)} in split fractions; allowed: {list(SPLITS)}")
    # NaN fails too; fractions >= 0 that sum to 1 are each <= 1
    if not all(f >= 0 for f in splits.values()) or not abs(sum(splits.values()) - 1.0) <= 1e-6:
        raise InputError(f"split fractions must be >= 0 and sum to 1, got {dict(splits)}")
    return {s: float(splits[s]) for s in SPLITS if s in splits}


def _ordered_map(fn: Any, items: Sequence[Any], workers: int) -> Iterator[Any]:  # pragma: no mutate block, I/O, see docs/testing.md
    """``map`` over a thread pool with bounded look-ahead, yielding results in input order.

    Closing the generator early (the caller failed) cancels the decodes not yet started.
    """
    if workers <= 1:
        yield from map(fn, items)
        return
    pool = ThreadPoolExecutor(workers, thread_name_prefix="dataigm-decode")
    try:
        pending: deque[Future] = deque()
        for item in items:
            if len(pending) >= workers * 4:
                yield pending.popleft().result()
            pending.append(pool.submit(fn, item))
        while pending:
            yield pending.popleft().result()
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def import_images(
    folder: str | Path,
    out: str | Path,
    category: str,
    *,
    taxonomy: str | None = None,
    part: str = "real",
    split_from_folders: bool | None = None,
    splits: Mapping[str, float] | None = None,
    source_from_name: str | None = None,
    class_map: Mapping[str, str] | None = None,
    label_names: Sequence[str] | None = None,
    max_size: int = 1024,
    shard_size: int = 1000,
    png_compress_level: int = PNG_COMPRESS_LEVEL,
    workers: int | None = None,
    rank: int | None = None,
    world_size: int | None = None,
    progress: bool = True,
    distributor: str = "local",
    ray_address: str | None = None,
) -> ImportReport:  # pragma: no mutate block, I/O, see docs/testing.md
    """Import an image folder into dataset folder ``out`` as part ``part`` of ``category``; returns a report.

    ``category`` is the dataset category (its folder, e.g. ``church``); ``taxonomy`` the taxonomy category of
    its concepts (nudity | style | object; default: that of the category's other parts, or the category).
    ``split_from_folders=None`` detects split folders (see the module docstring). ``source_from_name`` is a
    regular expression whose group ``source`` names each file's source (default source: ``real``).

    Idempotent (same keys, same tar bytes) and resumable (finished shards are skipped). Bad files are
    recorded in the shard stats with their reason. With several ranks (``rank``/``world_size`` or torchrun/
    Slurm variables, a Slurm job array) each rank writes its share of shards, and the last to finish writes the manifest.
    ``distributor="ray"`` writes every shard on the Ray cluster at ``ray_address`` from this one process
    (:mod:`dataigm.distributors.ray`), with the same bytes.
    """
    # 1. Check inputs
    folder, out = Path(folder), Path(out)
    split_from_folders, fractions = _check_import(folder, out, category, part, split_from_folders, splits, max_size, shard_size,
                                                  png_compress_level)
    source_pattern = compile_source_pattern(source_from_name)
    check_distributor(distributor)
    env = rank_from_env()
    rank = env.rank if rank is None else rank
    world_size = env.world_size if world_size is None else world_size
    info = RankInfo(rank, world_size)  # a bad rank fails before the plan is recorded
    if distributor == "ray":
        require_single_driver(info, "import-images")

    # 2. Scan the folder, resolve labels, plan splits and shards; record the plan before writing anything
    plan = plan_import(folder, out, category, part, taxonomy=taxonomy, split_from_folders=split_from_folders, fractions=fractions,
                       source_pattern=source_pattern, class_map=class_map or {}, label_names=label_names, max_size=max_size,
                       shard_size=shard_size, png_compress_level=png_compress_level)
    write_part(out, category, part, plan.record)

    # 3. Decode and write this rank's unfinished shards
    report = ImportReport(category, part, plan.names, len(plan.files), len(plan.ignored), len(plan.shards))
    _write_shards(folder, out, plan, rank, world_size, report, max_size=max_size, png_compress_level=png_compress_level,
                  workers=workers or min(8, os.cpu_count() or 1), progress=progress, distributor=distributor, ray_address=ray_address)

    # 4. Manifest: one process writes it (listing what other parts left unfinished); of several ranks or array
    #    tasks, the one that finishes last
    report.manifest = build_manifest(out) if world_size == 1 else finalize(out).manifest
    return report


def _check_import(folder: Path, out: Path, category: str, part: str, split_from_folders: bool | None, splits: Mapping[str, float] | None,
                  max_size: int, shard_size: int, png_compress_level: int) -> tuple[bool, dict[str, float] | None]:
    """Refuse bad arguments before any work; returns (split_from_folders, the split fractions or None)."""
    refuse_exported(out, "import-images")
    if slugify(category) != category:
        raise InputError(f"category {category!r} must be lowercase letters, digits and '_' (e.g. {slugify(category)!r})")
    if slugify(part) != part:
        raise InputError(f"part {part!r} must be lowercase letters, digits and '_' (e.g. {slugify(part)!r})")
    if max_size < 8:
        raise InputError(f"max_size must be >= 8, got {max_size}")
    if shard_size < 1:
        raise InputError(f"shard_size must be >= 1, got {shard_size}")
    if not 0 <= png_compress_level <= 9:
        raise InputError(f"png_compress_level must be in 0..9, got {png_compress_level}")
    if split_from_folders is None:
        split_from_folders = detect_split_folders(folder)
        if split_from_folders and splits is not None:
            raise InputError(f"{folder} has split folders (train/validation/test); drop the split fractions, "
                             "or pass split_from_folders=False to read the top-level folders as classes")
    if split_from_folders and splits is not None:
        raise InputError("give either split_from_folders or split fractions, not both")
    return split_from_folders, None if split_from_folders else _check_fractions(splits if splits is not None else DEFAULT_SPLITS)


@dataclass
class ImportPlan:
    """What an import will write: the files, their labels, the planned shards and the part record."""

    files: list[ImageFile]
    ignored: list[str]
    names: list[str]
    mapping: dict[str, str]
    taxonomy: str
    shards: list[PlannedShard]
    record: PartRecord


def plan_import(folder: Path, out: Path, category: str, part: str, *, taxonomy: str | None, split_from_folders: bool,
                fractions: Mapping[str, float] | None, source_pattern: re.Pattern[str] | None, class_map: Mapping[str, str],
                label_names: Sequence[str] | None, max_size: int, shard_size: int, png_compress_level: int) -> ImportPlan:  # pragma: no mutate block, I/O, see docs/testing.md
    """Scan ``folder``, resolve labels and taxonomy against the dataset's other parts, and plan splits and shards."""
    files, ignored = scan_folder(folder, split_from_folders, source_pattern)
    taxonomy = resolve_taxonomy(out, category, part, taxonomy)
    names, mapping = resolve_labels(out, category, part, sorted({f.folder_class for f in files}), class_map, label_names)
    if split_from_folders:
        by_split: dict[str, list[ImageFile]] = {}
        for f in files:
            by_split.setdefault(f.split, []).append(f)
    else:
        by_split = assign_splits(files, fractions or {})
    planned = plan_shards(category, part, by_split, shard_size)
    config = {
        "folder_name": folder.resolve().name,
        "files_sha256": hashlib.sha256("\n".join(f"{f.relpath}\t{f.size}" for f in files).encode()).hexdigest(),
        "n_files": len(files),
        "split_from_folders": split_from_folders,
        "splits": fractions,
        "class_map": dict(sorted(mapping.items())),
        "label_names": names,
        "taxonomy": taxonomy,
        "max_size": max_size,
        "shard_size": shard_size,
        "png_compress_level": png_compress_level,
    }
    if source_pattern is not None:  # only when given, so earlier imports keep their config hash
        config["source_from_name"] = source_pattern.pattern
    config_sha = hashlib.sha256(repr(sorted(config.items())).encode()).hexdigest()
    record = PartRecord(kind="real", category=category, taxonomy=taxonomy, part=part, label_names=names, config=config,
                        config_sha256=config_sha, shards=sorted(p.spec.relpath for p in planned))
    return ImportPlan(files, ignored, names, dict(mapping), taxonomy, planned, record)


def _shard_writer(folder: Path, plan: ImportPlan, category: str, part: str, failures: Counter[str], *, max_size: int,
                  png_compress_level: int, workers: int) -> Any:  # pragma: no mutate block, I/O, see docs/testing.md
    """The ``work(shard, sink, advance)`` of one import shard: its files decoded in a thread pool (Pillow releases
    the GIL in codecs), in order, into ``sink``; each failure's kind counted in ``failures``."""

    def load(f: ImageFile) -> DecodedImage | ImageDecodeError:
        try:
            return decode_image((folder / f.relpath).read_bytes(), max_size, f.relpath, png_compress_level)
        except ImageDecodeError as e:
            return e
        except OSError as e:  # unreadable file (permissions, vanished)
            return ImageDecodeError("unreadable", f"{f.relpath}: {e.strerror or e}")

    def write(shard: PlannedShard, sink: ShardSink, advance: Any) -> None:
        files = shard.files[sink.position:]  # after a checkpoint (a stopped run), the files it does not hold
        advance(sink.position)
        with closing(_ordered_map(load, files, workers)) as results:
            for f, result in zip(files, results):
                key = sample_key(category, part, f.relpath)
                if isinstance(result, ImageDecodeError):
                    sink.fail(key, str(result))
                    failures[result.kind] += 1
                else:
                    sink.write(_meta(key, f, shard.spec.split, category, plan.taxonomy, plan.names, plan.mapping, result), result.png)
                advance(1)

    return write


def _write_shards(folder: Path, out: Path, plan: ImportPlan, rank: int, world_size: int, report: ImportReport, *, max_size: int,
                  png_compress_level: int, workers: int, progress: bool, distributor: str = "local",
                  ray_address: str | None = None) -> None:  # pragma: no mutate block, I/O, see docs/testing.md
    """This rank's unfinished shards (:func:`~dataigm.core.stage.run_units`), each written by :func:`_shard_writer`
    through its :class:`ShardSink`; counts go to ``report``. With ``distributor="ray"`` every unfinished shard is
    written by a Ray actor instead (:class:`_RayImportWorker`).

    The pool's look-ahead restarts at each shard (run_units does one unit per call); with shards of hundreds of
    images that costs nothing measurable (benchmarks/ingest.py)."""
    category, part = report.category, report.part
    settings = dict(max_size=max_size, png_compress_level=png_compress_level, workers=workers)
    if distributor == "ray":
        from dataigm.distributors import ray_distributor

        def outputs(p: PlannedShard) -> tuple[Path, Path]:
            return p.spec.tar_path(out), p.spec.stats_path(out)

        todo = [p for p in plan.shards if not is_done(out, p.spec)]
        remove_own_tmp(plan.shards, outputs)
        results = ray_distributor().map_units(todo, partial(_RayImportWorker, folder, out, plan, category, part, settings),
                                              address=ray_address, progress=progress)
        remove_own_tmp(todo, outputs)  # of attempts whose worker died; no worker writes any more
        report.shards_skipped, report.shards_written = len(plan.shards) - len(todo), len(todo)
        for stats, failures in results:
            report.ok, report.failed = report.ok + stats.ok, report.failed + stats.failed
            report.failures.update(failures)
        return
    write = _shard_writer(folder, plan, category, part, report.failures, **settings)
    done = run_units(plan.shards, rank, world_size, write, open_sink=lambda p: ShardSink(out, p.spec, len(p.files), resume=True),
                     is_done=lambda p: is_done(out, p.spec), outputs=lambda p: (p.spec.tar_path(out), p.spec.stats_path(out)),
                     progress=progress, desc=f"import {category}/{part}", unit="img", size=lambda p: len(p.files))
    report.shards_skipped, report.shards_written = done.skipped, done.done
    report.ok += sum(stats.ok for stats in done.results)
    report.failed += sum(stats.failed for stats in done.results)


class _RayImportWorker:
    """Writes one import shard per call inside a Ray actor; returns its stats and its failures by kind."""

    def __init__(self, folder: Path, out: Path, plan: ImportPlan, category: str, part: str, settings: dict[str, Any]) -> None:
        self.folder, self.out, self.plan, self.category, self.part, self.settings = folder, out, plan, category, part, settings

    def __call__(self, shard: PlannedShard) -> tuple[Any, Counter[str]]:
        failures: Counter[str] = Counter()
        write = _shard_writer(self.folder, self.plan, self.category, self.part, failures, **self.settings)
        stats = run_unit(shard, write, lambda p: ShardSink(self.out, p.spec, len(p.files)))
        return stats, failures


def _meta(key: str, f: ImageFile, split: str, category: str, taxonomy: str, names: list[str], mapping: Mapping[str, str],
          img: DecodedImage) -> SampleMeta:
    label_name = mapping[f.folder_class]
    concepts = CATEGORIES.get(taxonomy).concepts.values() if taxonomy else []
    concept = next((c.name for c in concepts if c.label_name == label_name), "")
    return SampleMeta(
        key=key, category=category, split=split, label=names.index(label_name), label_name=label_name, label_names=list(names),
        source=f.source, role="real", concept=concept, taxonomy=taxonomy, subcategory=f.folder_class, prompt_source="",
        width=img.width, height=img.height, original_path=f.relpath, original_sha256=img.sha256,
    )


def import_real_images(spec: Any, out: str | Path, category: str, *, base_dir: str | Path | None = None,
                       label_names: Sequence[str] | None = None, splits: Mapping[str, float] | None = None,
                       shard_size: int = 1000, **kwargs: Any) -> ImportReport:  # pragma: no mutate block, I/O, see docs/testing.md
    """Run one recipe ``real_images`` entry (:class:`dataigm.recipe.RealImagesSpec`).

    ``splits``/``shard_size`` are the recipe's, used where the entry sets none; relative folders and class
    map files are resolved against ``base_dir`` (the recipe's folder).
    """
    base = Path(base_dir) if base_dir is not None else Path.cwd()

    def resolve(p: str) -> Path:
        return Path(p) if Path(p).is_absolute() else base / p

    class_map = load_class_map(resolve(spec.class_map_file)) if spec.class_map_file else {}
    class_map.update(spec.class_map)
    folder = resolve(spec.folder)
    split_mode = spec.split_from_folders
    if split_mode is None:
        split_mode = detect_split_folders(folder)
        if split_mode and spec.splits is not None:
            raise InputError(f"real_images {spec.folder}: the folder has split folders (train/validation/test); "
                             "remove 'splits', or set split_from_folders: false to read them as classes")
    return import_images(
        folder, out, category, part=spec.part, split_from_folders=split_mode, source_from_name=spec.source_from_name,
        splits=None if split_mode else (spec.splits or splits), class_map=class_map, label_names=label_names,
        max_size=spec.max_size, shard_size=spec.shard_size or shard_size, **kwargs,
    )


def import_recipe_images(recipe: Any, out: str | Path, **kwargs: Any) -> list[ImportReport]:  # pragma: no mutate block, I/O, see docs/testing.md
    """Import every ``real_images`` entry of a recipe into ``out`` with the recipe's label names and splits."""
    from dataigm.recipe import recipe_base_dir

    return [
        import_real_images(spec, out, recipe.category, taxonomy=recipe.taxonomy_name, base_dir=recipe_base_dir(recipe),
                           label_names=recipe.label_names(),
                           splits=recipe.splits, shard_size=recipe.shard_size, **kwargs)
        for spec in recipe.real_images
    ]
