"""Perceptual-hash near-duplicate search at 10k, 100k and 1M hashes, against brute force at the smallest size.

    python benchmarks/dedup.py [--max-distance 4] [--sizes 10000 100000 1000000]

The hashes are synthetic and clustered like a real dataset's: a tenth of them are seeds of groups of 1 to 9 near
copies (each within ``max_distance`` bits of its seed, exact copies included), the rest unrelated; splits are 80/10/10
train/val/test. dataigm's time covers all of :func:`dataigm.curate.dedup.find_duplicates` (global order, search,
greedy decision). Brute force is the rule spelled out, vectorised with numpy: visit in the global order and compare
each hash with every kept one. Both results are checked equal. CPU time is printed beside wall time, since
wall time on a shared machine also measures the other processes. Printed: time per size, the growth exponent between
sizes (1 = linear, 2 = quadratic), and last ``ratio=<brute-force time / dataigm time at the smallest size>``.
"""

from __future__ import annotations

import argparse
import math
import time

import numpy as np

from dataigm.curate.dedup import Duplicate, HashedSample, find_duplicates, global_order, plan_search, popcount


def clustered_samples(n: int, max_distance: int, seed: int = 0) -> list[HashedSample]:
    """``n`` samples: groups of near copies (seed + 1 to 9 copies within ``max_distance`` bits) and unrelated hashes."""
    rng = np.random.default_rng(seed)
    hashes = rng.integers(0, 2**64 - 1, n, dtype=np.uint64, endpoint=True)
    seeds = rng.choice(n, n // 10, replace=False)
    copies = np.repeat(seeds, rng.integers(1, 10, len(seeds)))[: n - n // 10 - 1]
    slots = rng.choice(np.setdiff1d(np.arange(n), seeds), len(copies), replace=False)
    flips = np.zeros(len(copies), dtype=np.uint64)
    for k in range(max_distance):  # up to max_distance flipped bits (a repeated bit position flips fewer)
        flips ^= np.where(rng.random(len(copies)) < 0.7, np.uint64(1) << rng.integers(0, 64, len(copies)).astype(np.uint64), np.uint64(0))
    hashes[slots] = hashes[copies] ^ flips
    splits = rng.choice(np.array(["train", "val", "test"]), n, p=[0.8, 0.1, 0.1])
    keys = rng.permutation(n)
    return [HashedSample(f"{k:08d}", str(s), int(h)) for k, s, h in zip(keys.tolist(), splits.tolist(), hashes.tolist())]


def brute_force(samples: list[HashedSample], max_distance: int) -> dict[str, Duplicate]:
    ordered = global_order(samples)
    kept_h = np.zeros(len(ordered), dtype=np.uint64)
    kept: list[HashedSample] = []
    out = {}
    for s in ordered:
        dist = popcount(kept_h[: len(kept)] ^ np.uint64(s.phash))
        i = int(dist.argmin()) if len(kept) else -1
        if i >= 0 and dist[i] <= max_distance:
            out[s.key] = Duplicate(s.key, kept[i].key, int(dist[i]), kept[i].split != s.split)
            continue
        kept_h[len(kept)] = s.phash
        kept.append(s)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--max-distance", type=int, default=4, help="the phash filter's max_distance (default 4, its default)")
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000, 1_000_000])
    args = parser.parse_args()
    d = args.max_distance

    times: list[float] = []
    for n in args.sizes:
        samples = clustered_samples(n, d, seed=n)
        t0, c0 = time.perf_counter(), time.process_time()
        found = find_duplicates(samples, d)
        times.append(time.perf_counter() - t0)
        cpu = time.process_time() - c0
        leaks = sum(x.leak for x in found.values())
        plan = plan_search(len({s.phash for s in samples}), d)
        print(f"n={n}: {times[-1]:.2f} s ({cpu:.2f} s CPU), {len(found)} duplicates ({leaks} leaks); {plan.describe()}", flush=True)
        if n == args.sizes[0]:
            t0 = time.perf_counter()
            expected = brute_force(samples, d)
            brute = time.perf_counter() - t0
            assert found == expected and list(found) == list(expected), "dataigm differs from brute force"
            print(f"n={n}: brute force {brute:.2f} s (same result)", flush=True)
    for (n0, t0_), (n1, t1) in zip(zip(args.sizes, times), zip(args.sizes[1:], times[1:])):
        print(f"growth {n0} -> {n1}: exponent {math.log(t1 / t0_) / math.log(n1 / n0):.2f}")
    if len(args.sizes) > 2:
        n0, n1 = args.sizes[0], args.sizes[-1]
        print(f"growth {n0} -> {n1}: exponent {math.log(times[-1] / times[0]) / math.log(n1 / n0):.2f}")
    print(f"ratio={brute / times[0]:.2f}")


if __name__ == "__main__":
    main()
