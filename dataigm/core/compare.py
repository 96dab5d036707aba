"""How far apart two dataset folders are: keys, pixels, metadata and the settings that made them.

Samples are matched by key. A pair whose PNG bytes are equal is identical without decoding; otherwise both
images are decoded and compared pixel by pixel (max and mean absolute difference in levels of 0-255, PSNR in
dB). Metadata (the sample's ``json`` and its ``cls``) is compared field by field. The two manifests' recipe
hashes, model revisions and per-rank generation settings (see :mod:`dataigm.core.run_settings`) are compared
too, so a pixel difference comes with the setting that explains it.

Only numpy and Pillow are needed: comparing two copies of a dataset never imports torch.
"""

from __future__ import annotations

import io
import json
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Iterator

from dataigm.core.errors import DataigmError
from dataigm.core.datasets import data_root_of
from dataigm.core.manifest import MANIFEST
from dataigm.core.errors import InputError
from dataigm.core.shards import RawSample, ShardIndex, iter_tar, list_shards

MAX_EXAMPLES = 10  # examples kept per differing metadata field
OPEN_TARS = 8  # tar files of the second dataset kept open while reading by key


@dataclass
class ImageDiff:
    """Two decoded images of one key that differ."""

    key: str
    max_abs: int  # largest difference of any channel of any pixel, in levels (0-255); 255 when the sizes differ
    mean_abs: float  # mean absolute difference over all pixels and channels
    psnr: float  # dB, 20 log10(255 / RMSE); 0.0 when the sizes or modes differ
    differing_pixels: int  # pixels where any channel differs
    note: str = ""  # e.g. "size 64x64 != 32x32"


@dataclass
class FieldDiff:
    """A metadata field whose value differs for some keys."""

    field: str
    n: int = 0
    examples: list[dict[str, Any]] = field(default_factory=list)  # [{key, a, b}], at most MAX_EXAMPLES


@dataclass
class SettingDiff:
    """A manifest setting (recipe hash, model revision, generation setting) that differs."""

    setting: str
    a: Any
    b: Any


@dataclass
class Comparison:
    """Everything :func:`compare_datasets` found. ``ok`` says whether B matches A within ``tolerance``."""

    a: str
    b: str
    tolerance: int
    n_a: int = 0
    n_b: int = 0
    missing: list[str] = field(default_factory=list)  # keys of A not in B
    extra: list[str] = field(default_factory=list)  # keys of B not in A
    duplicates: list[str] = field(default_factory=list)  # keys found twice in one folder
    identical: int = 0  # common keys with equal pixels
    identical_bytes: int = 0  # ... of which the PNG bytes are equal too
    differing: list[ImageDiff] = field(default_factory=list)
    metadata: list[FieldDiff] = field(default_factory=list)
    settings: list[SettingDiff] = field(default_factory=list)
    manifests: dict[str, bool] = field(default_factory=dict)  # {"a": found, "b": found}

    @property
    def max_abs(self) -> int:
        return max((d.max_abs for d in self.differing), default=0)

    @property
    def above_tolerance(self) -> list[ImageDiff]:
        return [d for d in self.differing if d.max_abs > self.tolerance]

    @property
    def ok(self) -> bool:
        """No missing, extra or duplicate key, no differing metadata, no pixel further apart than ``tolerance``."""
        return not (self.missing or self.extra or self.duplicates or self.metadata or self.above_tolerance)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["differing"] = sorted(d["differing"], key=lambda x: (-x["max_abs"], x["key"]))
        d.update(ok=self.ok, max_abs=self.max_abs, n_common=self.identical + len(self.differing),
                 n_above_tolerance=len(self.above_tolerance))
        return d


def _samples(root: Path) -> Iterator[RawSample]:
    for path in list_shards(shard_root(root)):
        yield from iter_tar(path)


def image_diff(key: str, png_a: bytes, png_b: bytes) -> ImageDiff | None:
    """Pixel difference of two encoded images; ``None`` when their pixels are equal."""
    import numpy as np
    from PIL import Image

    ia, ib = Image.open(io.BytesIO(png_a)), Image.open(io.BytesIO(png_b))
    if ia.size != ib.size or ia.mode != ib.mode:
        note = f"size {ia.width}x{ia.height} {ia.mode} != {ib.width}x{ib.height} {ib.mode}"
        return ImageDiff(key, 255, 255.0, 0.0, max(ia.width * ia.height, ib.width * ib.height), note)
    a = np.asarray(ia, dtype=np.int16)
    b = np.asarray(ib, dtype=np.int16)
    diff = np.abs(a - b)
    if not diff.any():
        return None
    mse = float(np.mean(diff.astype(np.float64) ** 2))
    per_pixel = diff.reshape(diff.shape[0], diff.shape[1], -1).max(axis=-1)
    return ImageDiff(key, int(diff.max()), round(float(diff.mean()), 6), round(10 * math.log10(255.0**2 / mse), 3),
                     int(np.count_nonzero(per_pixel)))


def _metadata_diffs(a: RawSample, b: RawSample, ignore: set[str], found: dict[str, FieldDiff]) -> None:
    ma, mb = dict(a.meta, cls=a.label), dict(b.meta, cls=b.label)
    for name in sorted((set(ma) | set(mb)) - ignore):
        va, vb = ma.get(name), mb.get(name)
        if va != vb:
            fd = found.setdefault(name, FieldDiff(name))
            fd.n += 1
            if len(fd.examples) < MAX_EXAMPLES:
                fd.examples.append({"key": a.key, "a": va, "b": vb})


def shard_root(root: Path) -> Path:
    """Where the shards of a dataset folder are: the folder itself, or ``data/`` of an exported or pulled one."""
    return data_root_of(root, _manifest(root))


def _manifest(root: Path) -> dict[str, Any] | None:
    path = Path(root) / MANIFEST
    return json.loads(path.read_text()) if path.exists() else None


def manifest_settings(manifest: dict[str, Any]) -> dict[str, Any]:
    """The pixel-relevant settings of a manifest, flat: recipe hashes, model revisions, generation settings.

    A generation setting on which the ranks disagreed maps to the list of its values.
    """
    out: dict[str, Any] = {}
    for name, part in sorted(manifest.get("parts", {}).items()):
        out[f"recipe_sha256[{name}]"] = part.get("config_sha256", "")
    for tag, model in sorted(manifest.get("models", {}).items()):
        out[f"model[{tag}].revision"] = model.get("revision", "")
        out[f"model[{tag}].dtype"] = model.get("dtype", "")
    settings = manifest.get("settings") or {}
    out.update(settings.get("values", {}))
    out.update(settings.get("differing", {}))
    if settings.get("ranks"):
        out["ranks_agreed"] = settings.get("agreed", True)
        out["world_sizes"] = sorted({r["world_size"] for r in settings["ranks"]})
    return out


def settings_diffs(ma: dict[str, Any], mb: dict[str, Any]) -> list[SettingDiff]:
    """Settings whose values differ between two manifests (a setting one of them lacks shows as ``None``)."""
    sa, sb = manifest_settings(ma), manifest_settings(mb)
    return [SettingDiff(k, sa.get(k), sb.get(k)) for k in sorted(set(sa) | set(sb)) if sa.get(k) != sb.get(k)]


def compare_datasets(a: Path, b: Path, tolerance: int = 0, ignore_fields: tuple[str, ...] = (),
                     progress: bool = False) -> Comparison:
    """Compare dataset folder ``b`` with ``a`` key by key (see the module docstring)."""
    a, b = Path(a), Path(b)
    for root in (a, b):
        if not root.is_dir():
            raise FileNotFoundError(f"{root} is not a folder")
        if not list_shards(shard_root(root)):
            raise DataigmError(f"{root} holds no shards (<category>/<split>/*.tar, or data/<category>/<split>/*.tar): is it a dataigm dataset folder?")
    if not 0 <= tolerance <= 255:
        raise InputError(f"tolerance= is in pixel levels, 0-255; got {tolerance}")
    result = Comparison(str(a), str(b), tolerance)
    reader = ShardIndex.of_dataset(list_shards(shard_root(b)), max_open=OPEN_TARS)
    result.n_b = len(reader.keys)
    seen: set[str] = set()
    found: dict[str, FieldDiff] = {}
    ignore = set(ignore_fields)
    from tqdm.auto import tqdm

    try:
        for sa in tqdm(_samples(a), unit="img", desc="compare", disable=not progress):
            if sa.key in seen:
                result.duplicates.append(f"{sa.key} (in {a})")
                continue
            seen.add(sa.key)
            if sa.key not in reader.keys:
                result.missing.append(sa.key)
                continue
            sb = reader.sample(sa.key)
            if sa.image == sb.image:
                result.identical += 1
                result.identical_bytes += 1
            else:
                diff = image_diff(sa.key, sa.image, sb.image)
                if diff is None:
                    result.identical += 1
                else:
                    result.differing.append(diff)
            _metadata_diffs(sa, sb, ignore, found)
    finally:
        reader.close()
    result.n_a = len(seen)
    result.extra = sorted(set(reader.keys) - seen)
    result.duplicates += [f"{k} (in {b})" for k in reader.duplicates]
    result.metadata = [found[k] for k in sorted(found)]
    ma, mb = _manifest(a), _manifest(b)
    result.manifests = {"a": ma is not None, "b": mb is not None}
    if ma is not None and mb is not None:
        result.settings = settings_diffs(ma, mb)
    return result
