"""Benchmark: importing a real-image folder, dataigm vs a naive single-threaded loop.

Both read the same folder (drawn images saved as JPEG and PNG, a train/test level, one class folder per
label), apply EXIF orientation, convert to RGB, downscale above --max-size, encode PNG and write tar shards.
The naive loop does it file by file with the standard library's tarfile; dataigm uses ``import_images``
(thread-pool decoding, webdataset TarWriter, per-shard stats, manifest).

    python benchmarks/ingest.py [--images 240] [--size 512] [--max-size 384] [--workers N]

The last line is ``ratio=<dataigm images/s / naive images/s>``.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import shutil
import tarfile
import tempfile
import time
from pathlib import Path

from PIL import Image, ImageOps

from dataigm.ingest.images import import_images
from dataigm.synthetic import draw_pattern

CLASSES = ("church", "parachute", "other")


def make_folder(root: Path, n_images: int, size: int) -> list[Path]:
    """``root/<split>/<class>/NNNN.{jpg,png}``: 3/4 JPEG (photo-like), 1/4 PNG."""
    paths = []
    for i in range(n_images):
        split = "test" if i % 5 == 0 else "train"
        cls = CLASSES[i % len(CLASSES)]
        img = draw_pattern(("disc", "hstripes", "checker")[i % 3], seed=i, size=64).resize((size, size * 3 // 4), Image.Resampling.BICUBIC)
        img = Image.blend(img, Image.effect_noise(img.size, 40).convert("RGB"), 0.2)
        folder = root / split / cls
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"{i:04d}.{'png' if i % 4 == 0 else 'jpg'}"
        img.save(path, **({"quality": 90} if path.suffix == ".jpg" else {}))
        paths.append(path)
    return sorted(paths)


def naive_import(folder: Path, out: Path, max_size: int, shard_size: int) -> int:
    """The loop one writes first: one file at a time, Pillow + tarfile, no stats, no resume."""
    out.mkdir(parents=True, exist_ok=True)
    files = sorted(p for p in folder.rglob("*") if p.is_file())
    n = 0
    for start in range(0, len(files), shard_size):
        with tarfile.open(out / f"shard-{start // shard_size:06d}.tar", "w") as tar:
            for path in files[start : start + shard_size]:
                img = ImageOps.exif_transpose(Image.open(path)).convert("RGB")
                img.thumbnail((max_size, max_size), Image.Resampling.LANCZOS)
                buf = io.BytesIO()
                img.save(buf, format="PNG")
                rel = path.relative_to(folder).as_posix()
                key = f"{n:08d}"
                meta = json.dumps({"original_path": rel, "label_name": path.parent.name, "split": rel.split("/")[0]}).encode()
                for name, data in ((f"{key}.png", buf.getvalue()), (f"{key}.json", meta)):
                    info = tarfile.TarInfo(name)
                    info.size = len(data)
                    tar.addfile(info, io.BytesIO(data))
                n += 1
    return n


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, default=240)
    parser.add_argument("--size", type=int, default=512, help="width of the test images (height is 3/4 of it)")
    parser.add_argument("--max-size", type=int, default=384, help="downscale above this (the import's --max-size)")
    parser.add_argument("--shard-size", type=int, default=100)
    parser.add_argument("--workers", type=int, default=None, help="dataigm decode threads (default: its own default)")
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="dataigm-bench-ingest-"))
    try:
        folder = work / "photos"
        files = make_folder(folder, args.images, args.size)
        mb = sum(p.stat().st_size for p in files) / 1e6
        print(f"folder: {len(files)} images ({args.size}x{args.size * 3 // 4}, JPEG+PNG, {mb:.1f} MB), max_size={args.max_size}, "
              f"cpus={os.cpu_count()}")

        t0 = time.perf_counter()
        n_naive = naive_import(folder, work / "naive", args.max_size, args.shard_size)
        naive_s = time.perf_counter() - t0
        naive_rate = n_naive / naive_s
        print(f"naive single-threaded loop: {n_naive} images in {naive_s:.2f} s = {naive_rate:.1f} images/s")

        t0 = time.perf_counter()
        report = import_images(folder, work / "dataigm", "object", split_from_folders=True, max_size=args.max_size,
                               shard_size=args.shard_size, workers=args.workers, progress=False)
        ours_s = time.perf_counter() - t0
        ours_rate = report.ok / ours_s
        print(f"dataigm import_images: {report.ok} images in {ours_s:.2f} s = {ours_rate:.1f} images/s "
              f"({report.shards_written} shards, {report.failed} failed, manifest written)")
        if report.ok != n_naive:
            raise SystemExit(f"image counts differ: dataigm {report.ok} != naive {n_naive}")
        print(f"ratio={ours_rate / naive_rate:.2f}")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
