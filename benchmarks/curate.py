"""Curation throughput against just reading and decoding the same shards, measured in the same run.

    python benchmarks/curate.py [--per-label 100] [--size 64] [--no-nudenet]

Curation runs the default config (blank + perceptual hash everywhere, NudeNet on nudity) and writes curated
shards, report and contact sheets. The last line is ``ratio=<curation images/s / read+decode images/s>``.
"""

from __future__ import annotations

import argparse
import io
import tempfile
import time
from pathlib import Path

from PIL import Image

from dataigm.core.shards import iter_samples, list_shards
from dataigm.curate import curate, default_config, parse_curation_config
from dataigm.synthetic import write_synthetic_dataset


def read_and_decode(root: Path) -> int:
    n = 0
    for raw in iter_samples(list_shards(root)):
        Image.open(io.BytesIO(raw.image)).convert("RGB")
        n += 1
    return n


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--per-label", type=int, default=100, help="train images per label (val/test get a tenth each)")
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--no-nudenet", action="store_true")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="dataigm-bench-curate-") as tmp:
        root = Path(tmp) / "dataset"
        per_split = {"train": args.per_label, "val": max(1, args.per_label // 10), "test": max(1, args.per_label // 10)}
        write_synthetic_dataset(root, "object", ["church", "parachute", "other"], per_split, shard_size=100, size=args.size)
        write_synthetic_dataset(root, "nudity", ["not_nude", "nude"], per_split, shard_size=100, size=args.size)
        config = default_config()
        if args.no_nudenet:
            config = parse_curation_config({"default": {"filters": {"blank": {}, "phash": {}}}})

        read_and_decode(root)  # warm the page cache for both measurements alike
        t0 = time.perf_counter()
        n = read_and_decode(root)
        base = n / (time.perf_counter() - t0)

        t0 = time.perf_counter()
        result = curate(root, Path(tmp) / "curated", config, progress=False)
        seconds = time.perf_counter() - t0
        ours = len(result.decisions) / seconds

    print(f"images: {n} ({args.size} px), filters: {'blank, phash' + ('' if args.no_nudenet else ', nudenet (nudity only)')}")
    print(f"read+decode: {base:.1f} images/s")
    print(f"curation (score + decide + write + report + sheets, incl. model load): {ours:.1f} images/s")
    print(f"ratio={ours / base:.4f}")


if __name__ == "__main__":
    main()
