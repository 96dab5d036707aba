"""Loading throughput of an exported Hub repo: ``datasets.load_dataset(..., streaming=True)``, the package's
training loader (``dataigm.train.data.ShardStream``) and plain ``webdataset``, all on the same shards.

Every loader decodes the PNG and turns it into a tensor (the same function), so the numbers compare the loaders.
Last line: ``ratio=<package loader samples/s / plain webdataset samples/s>``.

    python benchmarks/load.py [--per-class 1000] [--size 64] [--shard-size 250] [--repeats 2]
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import time
from itertools import islice
from pathlib import Path
from typing import Callable, Iterable

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")

LABELS = ["church", "parachute", "other"]


def measure(name: str, make_iter: Callable[[], Iterable], n: int, repeats: int) -> float:
    """Best samples/s over ``repeats`` passes of ``n`` samples."""
    best = 0.0
    for _ in range(repeats):
        t0 = time.perf_counter()
        seen = sum(1 for _ in islice(make_iter(), n))
        seconds = time.perf_counter() - t0
        if seen != n:
            raise RuntimeError(f"{name}: read {seen} samples, expected {n}")
        best = max(best, n / seconds)
    print(f"{name:<34} {best:10.1f} samples/s  ({n} samples)")
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--per-class", type=int, default=1000, help="train images per class (default: %(default)s)")
    parser.add_argument("--size", type=int, default=64, help="image size in pixels (default: %(default)s)")
    parser.add_argument("--shard-size", type=int, default=250, help="samples per shard (default: %(default)s)")
    parser.add_argument("--repeats", type=int, default=2, help="passes per loader, best is kept (default: %(default)s)")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="dataigm-bench-load-"))
    try:
        run(args, work)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def run(args: argparse.Namespace, work: Path) -> None:
    import datasets
    import webdataset as wds
    from torchvision.transforms.functional import pil_to_tensor

    from dataigm.hub.export import export_dataset
    from dataigm.synthetic import write_synthetic_dataset
    from dataigm.train.data import ShardStream

    t0 = time.perf_counter()
    write_synthetic_dataset(work / "dataset", "object", LABELS, {"train": args.per_class}, shard_size=args.shard_size, size=args.size)
    repo = work / "repo"
    export_dataset(work / "dataset", repo)
    cache = str(work / "hf-datasets-cache")
    tars = sorted(str(p) for p in (repo / "data" / "object" / "train").glob("*.tar"))
    n = args.per_class * len(LABELS)
    print(f"data: {n} samples of {args.size}px in {len(tars)} shards, written and exported in {time.perf_counter() - t0:.1f} s")

    def plain_webdataset() -> Iterable:
        ds = wds.WebDataset(tars, shardshuffle=False).decode("pil").to_tuple("png", "json", "cls")
        return ((pil_to_tensor(img.convert("RGB")), meta, cls) for img, meta, cls in ds)

    def hub_streaming() -> Iterable:
        ds = datasets.load_dataset(str(repo), "object", split="train", streaming=True, cache_dir=cache)
        return ((pil_to_tensor(row["png"].convert("RGB")), row["json"], row["cls"]) for row in ds)

    baseline = measure("webdataset (plain)", plain_webdataset, n, args.repeats)
    streaming = measure("load_dataset(streaming=True)", hub_streaming, n, args.repeats)
    stream = ShardStream(tars, list(range(len(LABELS))), pil_to_tensor, shuffle_buffer=1000)  # as in training
    package = measure("dataigm.train.data.ShardStream", lambda: iter(stream), n, args.repeats)
    print(f"load_dataset streaming / webdataset: {streaming / baseline:.3f}")
    print(f"ratio={package / baseline:.3f}")


if __name__ == "__main__":
    main()
