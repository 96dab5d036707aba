"""Demo stage: add a small real-image part to every category of the demo dataset, then show counts per source.

Nothing can be downloaded, so the "real" photos are drawn (:func:`dataigm.synthetic.write_synthetic_folder`),
saved in a mix of formats (PNG, JPEG, CMYK JPEG, WebP) with one empty file, in a ``<split>/<label>_photos``
tree whose folder names a class map sends onto each category's label names.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping

from PIL import Image

from dataigm.core.manifest import build_manifest, read_parts
from dataigm.core.present import manifest_table
from dataigm.ingest.images import import_images
from dataigm.synthetic import write_synthetic_folder

DEMO_SPLITS = ("train", "val", "test")
PER_CLASS = 3  # per split
DRAW_SIZE = 96  # drawn larger than the 64 px generated images, so the import downscales them
MAX_SIZE = 64
FALLBACK = {"object": ["church", "parachute", "other"]}  # when no earlier stage left a dataset


def planted_failures(failures: Mapping[str, int]) -> str:
    """How the import's failures read in the demo: the one empty file :func:`_vary_formats` plants is expected;
    anything else is named as unexpected."""
    planted = {"empty file": 1}
    if dict(failures) == planted:
        return "1 deliberately empty file rejected, as expected"
    others = ", ".join(f"{k}: {v}" for k, v in sorted(failures.items()) if planted.get(k) != v) or "none"
    return f"UNEXPECTED failures: {others}"


def _vary_formats(folder: Path) -> None:
    """Re-save some drawn PNGs as JPEG, CMYK JPEG and WebP, and add one empty file (recorded as failed)."""
    for i, png in enumerate(sorted(folder.rglob("0000.png"))):
        img = Image.open(png).convert("RGB")
        if i % 3 == 0:
            img.save(png.with_suffix(".jpg"), quality=90)
        elif i % 3 == 1:
            img.convert("CMYK").save(png.with_suffix(".jpg"), quality=90)
        else:
            img.save(png.with_suffix(".webp"))
        png.unlink()
    first_class = sorted(p for p in (folder / "train").iterdir() if p.is_dir())[0]
    (first_class / "empty.jpg").write_bytes(b"")


def _categories(dataset: Path) -> dict[str, list[str]]:
    labels: dict[str, list[str]] = {}
    for part in read_parts(dataset).values():
        labels.setdefault(part["category"], part.get("label_names", []))
    return labels or dict(FALLBACK)


def stage(ctx: Any) -> None:
    """Draw and import a real part for each category of ``ctx.artifacts["dataset"]``, then print samples per source."""
    dataset = Path(ctx.artifacts.get("dataset") or ctx.out / "dataset")
    for category, label_names in _categories(dataset).items():
        folder = ctx.out / "real_photos" / category
        folder_names = [f"{label}_photos" for label in label_names]
        if not folder.exists():
            write_synthetic_folder(folder, folder_names, PER_CLASS, splits=list(DEMO_SPLITS), size=DRAW_SIZE, seed=len(category))
            _vary_formats(folder)
        report = import_images(
            folder, dataset, category, part="real", split_from_folders=True, class_map=dict(zip(folder_names, label_names)),
            max_size=MAX_SIZE, shard_size=16, progress=False,
        )
        ctx.console.print(f"{category}: {report.ok} real images imported from {folder.name}/ ({report.shards_written} shards written, "
                          f"{report.shards_skipped} already done); {planted_failures(report.failures)}")
    manifest = build_manifest(dataset)
    ctx.console.print(manifest_table(manifest, "samples per source (generated + real parts)"))
    ctx.artifacts["dataset"] = dataset
