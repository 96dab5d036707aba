"""Synthetic images with a real, learnable visual signal: one drawn pattern per class.

Used where nothing can be downloaded (tests, the demo, benchmarks): detectors must learn these, curation and
review can run on them, and image folders drawn with them exercise the real-image import. Nothing explicit is
ever drawn: the classes are shapes and textures.
"""

from __future__ import annotations

import io
import random
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
from PIL import Image, ImageDraw

from dataigm.core.errors import InputError
from dataigm.core.manifest import PartRecord, build_manifest, write_part
from dataigm.core.schema import SampleMeta, stable_int
from dataigm.core.shards import ShardSink, ShardSpec

PATTERNS = ("disc", "hstripes", "vstripes", "checker", "triangle", "ring", "cross", "diagonal", "dots", "square", "plain")


def draw_pattern(pattern: str, seed: int, size: int = 64) -> Image.Image:
    """Draw ``pattern`` with seeded jitter in position, colours and background noise."""
    rng = random.Random(seed)
    bg = tuple(rng.randint(0, 90) for _ in range(3))
    fg = tuple(rng.randint(150, 255) for _ in range(3))
    img = Image.new("RGB", (size, size), bg)
    d = ImageDraw.Draw(img)
    s = size
    period = max(4, s // rng.randint(5, 8))
    cx, cy, r = rng.randint(s // 3, 2 * s // 3), rng.randint(s // 3, 2 * s // 3), rng.randint(s // 6, s // 4)
    if pattern == "disc":
        d.ellipse([cx - r, cy - r, cx + r, cy + r], fill=fg)
    elif pattern == "ring":
        d.ellipse([cx - r, cy - r, cx + r, cy + r], outline=fg, width=max(2, s // 16))
    elif pattern == "hstripes":
        for y in range(rng.randint(0, period), s, period):
            d.rectangle([0, y, s, y + period // 2], fill=fg)
    elif pattern == "vstripes":
        for x in range(rng.randint(0, period), s, period):
            d.rectangle([x, 0, x + period // 2, s], fill=fg)
    elif pattern == "checker":
        for y in range(0, s, period):
            for x in range(0, s, period):
                if (x // period + y // period) % 2 == 0:
                    d.rectangle([x, y, x + period - 1, y + period - 1], fill=fg)
    elif pattern == "triangle":
        d.polygon([(cx, cy - r), (cx - r, cy + r), (cx + r, cy + r)], fill=fg)
    elif pattern == "cross":
        w = max(2, r // 3)
        d.rectangle([cx - r, cy - w, cx + r, cy + w], fill=fg)
        d.rectangle([cx - w, cy - r, cx + w, cy + r], fill=fg)
    elif pattern == "diagonal":
        for k in range(-s, s, period):
            d.line([(k, 0), (k + s, s)], fill=fg, width=max(2, period // 2))
    elif pattern == "dots":
        for _ in range(12):
            x, y = rng.randint(0, s), rng.randint(0, s)
            d.ellipse([x - 2, y - 2, x + 2, y + 2], fill=fg)
    elif pattern == "square":
        d.rectangle([cx - r, cy - r, cx + r, cy + r], fill=fg)
    elif pattern != "plain":
        raise InputError(f"unknown pattern {pattern!r}; valid: {PATTERNS}")
    # seeded (PIL's effect_noise is not), so a pattern and seed always give the same pixels
    sigma = rng.uniform(10, 30)
    grey = np.clip(128 + sigma * np.random.default_rng(seed).standard_normal((s, s)), 0, 255).astype(np.uint8)
    return Image.blend(img, Image.fromarray(grey, "L").convert("RGB"), 0.15)


def png_bytes(img: Image.Image) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()


def write_synthetic_dataset(
    root: Path,
    category: str,
    label_names: Sequence[str],
    per_split: dict[str, int],
    *,
    shard_size: int = 50,
    size: int = 64,
    seed: int = 0,
    part: str = "synthetic",
    model: str = "synthetic-shapes",
    patterns: Sequence[str] | None = None,
) -> dict:
    """Write a labelled dataset of drawn patterns (``per_split[split]`` images per label) and its manifest.

    Label ``i`` is drawn as ``patterns[i]`` (default: :data:`PATTERNS` in order). Returns the manifest.
    """
    root = Path(root)
    patterns = list(patterns or PATTERNS[: len(label_names)])
    if len(patterns) < len(label_names):
        raise InputError(f"need {len(label_names)} patterns, got {len(patterns)}")
    shards: dict[ShardSpec, list[tuple[SampleMeta, bytes]]] = {}
    for split, n in per_split.items():
        metas = []
        for i in range(n):
            for label, name in enumerate(label_names):
                key = f"{category}-{part}-{split}-{name}-{i:05d}".replace(".", "_").lower()
                s = _seed(seed, split, label, i)
                metas.append(
                    SampleMeta(
                        key=key, category=category, split=split, label=label, label_name=name, label_names=list(label_names),
                        source="generated", role="positive", concept=name, pair_id=f"{name}-{i:05d}", prompt=f"a {patterns[label]} pattern",
                        prompt_source="synthetic", prompt_index=i, seed=s, image_index=0, model=model, width=size, height=size,
                    )
                )
        metas.sort(key=lambda m: m.seed)  # mix labels within shards
        for index in range(0, len(metas), shard_size):
            chunk = metas[index : index + shard_size]
            shards[ShardSpec(category, split, index // shard_size, part)] = [
                (m, png_bytes(draw_pattern(patterns[m.label], m.seed, size))) for m in chunk
            ]
    config = {"per_split": per_split, "size": size, "seed": seed, "patterns": patterns, "label_names": list(label_names)}
    return write_samples(root, category, label_names, shards, part=part, config=config)


def write_samples(
    root: Path,
    category: str,
    label_names: Sequence[str],
    shards: Mapping[ShardSpec, Sequence[tuple[SampleMeta, bytes]]],
    *,
    part: str = "synthetic",
    config: dict[str, Any] | None = None,
) -> dict:
    """Write the given ``(meta, png bytes)`` samples into the given shards, record them as one part of
    ``category`` and rebuild the manifest (returned): a dataset folder any stage reads."""
    root = Path(root)
    for spec, samples in shards.items():
        sink = ShardSink(root, spec, len(samples))
        for meta, image in samples:
            sink.write(meta, image)
        sink.close()
    config = config or {}
    write_part(root, category, part, PartRecord(kind="synthetic", category=category, label_names=list(label_names), config=config,
                                                config_sha256=str(stable_int(repr(sorted(config.items())), bits=63)),
                                                shards=sorted(spec.relpath for spec in shards)))
    return build_manifest(root)


def _seed(seed: int, split: str, label: int, i: int) -> int:
    return stable_int("synthetic", seed, split, label, i)


def write_synthetic_folder(
    folder: Path, class_names: Sequence[str], n_per_class: int, *, splits: Sequence[str] | None = None, size: int = 64, seed: int = 0
) -> list[Path]:
    """Write an image folder ``[split/]class/NNNN.png`` of drawn patterns, as a real-image import would read."""
    paths = []
    for split in splits or [""]:
        for label, name in enumerate(class_names):
            d = Path(folder) / split / name if split else Path(folder) / name
            d.mkdir(parents=True, exist_ok=True)
            for i in range(n_per_class):
                p = d / f"{i:04d}.png"
                draw_pattern(PATTERNS[label % len(PATTERNS)], _seed(seed, split, label, i), size).save(p)
                paths.append(p)
    return paths
