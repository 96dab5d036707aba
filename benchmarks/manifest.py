"""Benchmark: the manifest at scale. Planning (which planned shards are done), manifest writing (``finalize``) and
``verify`` (hash checks off and on) at 1k, 10k and 100k synthetic shards, with the growth exponent from 10k to 100k.

Each synthetic shard is a small real tar (one 64-byte sample; the same bytes for every shard, so writing 100k of
them stays quick) with its stats file, all in one part, as a job array's tasks leave them:

* plan: ``missing_shards`` (what every task checks at its end: one listing per stats folder; best of 3 runs);
* manifest: ``finalize`` on a complete folder (reads every stats file once, writes ``manifest.json``);
* verify off: ``verify(deep=False, hashes=False)`` (presence and size of every shard, in threads);
* verify on: ``verify(deep=False, hashes=True)`` (sha256 of every shard, in threads; ``dataigm verify --fast``).

The growth exponent of a step is log(t(100k) / t(10k)) / log(10): 1 is linear, 2 quadratic.

The baseline is the naive implementation dataigm had before (copied below): ``missing_shards`` parsing every stats
file, the manifest reading them twice, ``verify`` one shard after the other. It runs at 1k and 10k shards only. The
last line is ``ratio=<baseline seconds / dataigm seconds>`` for writing the manifest and verifying it with hashes at
10k shards (dataigm's throughput over the baseline's; above 1 is faster).

The synthetic folders go to ``/dev/shm`` where it has room (memory-backed: making and deleting 200k files takes
seconds there, minutes on a busy disk; the steps timed are dataigm's own work, not the disk's), else to the temp
folder; ``--dir`` chooses.

    python benchmarks/manifest.py [--sizes 1000,10000,100000] [--dir DIR]
"""

from __future__ import annotations

import argparse
import io
import json
import math
import os
import shutil
import tarfile
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from dataigm.core.atomic import sha256_file, write_json_atomic
from dataigm.core.manifest import MANIFEST, finalize, missing_shards, read_parts, verify, write_part, PartRecord
from dataigm.core.shards import ShardSpec, count_samples


def sample_tar() -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for ext, data in (("cls", b"0"), ("json", b'{"label": 0}'), ("png", b"\x89PNG" + bytes(60))):
            info = tarfile.TarInfo(f"sample-000000.{ext}")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def make_dataset(root: Path, n: int) -> None:
    """``n`` shards of one sample in one part, each with its stats file."""
    tar = sample_tar()
    digest = __import__("hashlib").sha256(tar).hexdigest()
    specs = [ShardSpec("object", "train", i, "bench") for i in range(n)]
    write_part(root, "object", "bench", PartRecord(kind="real", category="object", label_names=["church", "other"],
                                                   config_sha256="bench", shards=[s.relpath for s in specs]))
    (root / "object" / "train").mkdir(parents=True)
    (root / "_stats" / "object" / "train").mkdir(parents=True)

    def write(spec: ShardSpec) -> None:
        spec.tar_path(root).write_bytes(tar)
        stats = {"shard": spec.relpath, "category": "object", "split": "train", "part": "bench", "planned": 1, "ok": 1,
                 "failed": 0, "errors": [], "error_counts": {}, "labels": {"church": 1}, "sources": {"real": 1}, "models": {},
                 "sha256": digest, "bytes": len(tar), "seconds": 0.001}
        spec.stats_path(root).write_text(json.dumps(stats, indent=2, sort_keys=True) + "\n")  # as ShardSink writes it

    with ThreadPoolExecutor(16) as pool:
        list(pool.map(write, specs, chunksize=512))


# --- the baseline: dataigm's earlier code, one thing after the other -------------------------------------------
# Copied from dataigm 0.1.0 core/shards.py (read_stats) and core/manifest.py (missing_shards, build_manifest, verify).
def naive_read_stats(root: Path) -> list[dict]:
    stats = [json.loads(p.read_text()) for p in sorted((root / "_stats").rglob("*.json"))]
    return sorted(stats, key=lambda s: s["shard"])


def naive_missing(root: Path) -> list[str]:
    done = {s["shard"] for s in naive_read_stats(root)}
    return [s for s in sorted(s for p in read_parts(root).values() for s in p.get("shards", [])) if s not in done]


def naive_manifest(root: Path) -> None:
    parts = read_parts(root)
    stats = naive_read_stats(root)
    shards = [{"path": s["shard"], "sha256": s["sha256"], "n": s["ok"], "failed": s["failed"], "bytes": s["bytes"]} for s in stats if s["ok"]]
    write_json_atomic(root / "naive-manifest.json", {"parts": parts, "incomplete": naive_missing(root), "shards": shards})


def naive_verify(root: Path, hashes: bool, deep: bool = False) -> int:
    problems = 0
    for entry in json.loads((root / MANIFEST).read_text())["shards"]:
        path = root / entry["path"]
        if not path.exists():
            problems += 1
        elif hashes and sha256_file(path) != entry["sha256"]:
            problems += 1
        elif deep and count_samples(path) != entry["n"]:
            problems += 1
    listed = {s["path"] for s in json.loads((root / MANIFEST).read_text())["shards"]}
    for path in sorted(p for p in root.glob("*/*/*.tar") if not p.name.startswith(".")):
        problems += path.relative_to(root).as_posix() not in listed
    return problems


def timed(fn, check=None) -> float:
    start = time.perf_counter()
    result = fn()
    seconds = time.perf_counter() - start
    if check is not None:
        assert check(result), f"unexpected result: {str(result)[:200]}"
    return seconds


def run(sizes: list[int], work: Path, baseline_up_to: int = 10_000) -> dict[int, dict[str, float]]:
    rows: dict[int, dict[str, float]] = {}
    for n in sizes:
        root = work / f"shards-{n}"
        t_make = timed(lambda: make_dataset(root, n))
        row = {"make": t_make}
        row["plan"] = min(timed(lambda: missing_shards(root), lambda missing: missing == []) for _ in range(3))  # best of 3: short
        row["manifest"] = timed(lambda: finalize(root), lambda done: done.written and done.manifest["totals"]["shards"] == n)
        row["verify_off"] = timed(lambda: verify(root, deep=False, hashes=False), lambda problems: problems == [])
        row["verify_on"] = timed(lambda: verify(root, deep=False, hashes=True), lambda problems: problems == [])
        row["manifest_mb"] = (root / MANIFEST).stat().st_size / 1e6
        if n <= baseline_up_to:
            row["naive_plan"] = timed(lambda: naive_missing(root))
            row["naive_manifest"] = timed(lambda: naive_manifest(root))
            row["naive_verify_off"] = timed(lambda: naive_verify(root, hashes=False))
            row["naive_verify_on"] = timed(lambda: naive_verify(root, hashes=True))
        rows[n] = row
        print(f"{n:>7} shards: made in {t_make:6.1f} s | plan {row['plan']:6.2f} s | manifest {row['manifest']:6.2f} s "
              f"({row['manifest_mb']:.1f} MB) | verify off {row['verify_off']:6.2f} s | on {row['verify_on']:6.2f} s"
              + (f" || naive: plan {row['naive_plan']:.2f} manifest {row['naive_manifest']:.2f} verify off "
                 f"{row['naive_verify_off']:.2f} on {row['naive_verify_on']:.2f}" if "naive_plan" in row else ""), flush=True)
        shutil.rmtree(root)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="1000,10000,100000", help="shard counts (default: %(default)s)")
    parser.add_argument("--dir", type=Path, help="make the synthetic shards below this folder (default: /dev/shm where it "
                        "has 4 GB free, else the temp folder); removed at the end")
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    start = time.perf_counter()
    base = args.dir
    if base is None and Path("/dev/shm").is_dir() and shutil.disk_usage("/dev/shm").free > 4e9:
        base = Path("/dev/shm")
    work = Path(tempfile.mkdtemp(prefix="dataigm-manifest-bench-", dir=base))
    print(f"synthetic shards in {work}")
    try:
        rows = run(sizes, work)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    if 10_000 in rows and 100_000 in rows:
        for step in ("plan", "manifest", "verify_off", "verify_on"):
            exponent = math.log(max(rows[100_000][step], 1e-9) / max(rows[10_000][step], 1e-9)) / math.log(10)
            print(f"growth exponent 10k -> 100k, {step}: {exponent:.2f}")
    print(f"cpus: {os.cpu_count()}, load average: {os.getloadavg()[0]:.1f}, whole benchmark {time.perf_counter() - start:.0f} s "
          "(most of it making and deleting the synthetic shards)")
    base_n = 10_000 if 10_000 in rows else min(rows)
    r = rows[base_n]
    ratio = (r["naive_manifest"] + r["naive_verify_on"]) / (r["manifest"] + r["verify_on"])
    print(f"ratio={ratio:.2f}")


if __name__ == "__main__":
    main()
