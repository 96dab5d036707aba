"""The cost of ``--deterministic`` and what the thread count does to pixels, on the embedded tiny model (CPU).

In one process, alternated ``--repeats`` times (best of each):
(a) a plain build at the single-process default thread count;
(b) the same build with ``--deterministic`` (same thread count: the cost of deterministic kernels alone);
(c) a plain build at 1 thread (what each rank gets under ``torchrun``).
Then ``dataigm compare`` of (a) with (b) and of (a) with (c): images that differ and by how many levels.
With ``--torchrun``, also 2 ranks under torchrun, plain and ``--deterministic`` (2 ranks x the default thread
count: on a machine with fewer cores than that, the ranks compete for them), each compared with (a).
Last line: ratio=(b)/(a).
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _tiny_build import RECIPE, add_build_arguments
from _tiny_build import overrides as tiny_overrides

SHARD_SIZE = 8


def overrides(args: argparse.Namespace) -> list[str]:
    return tiny_overrides(args, SHARD_SIZE)


def summary(a: Path, b: Path) -> str:
    from dataigm.core.compare import compare_datasets

    c = compare_datasets(a, b)
    settings = ", ".join(f"{s.setting} {s.a}->{s.b}" for s in c.settings) or "none"
    return f"{len(c.differing)} of {c.n_a} images differ, by at most {c.max_abs} level(s); settings that differ: {settings}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_build_arguments(parser, limit=10, images_per_prompt=2, batch_size=4)
    parser.add_argument("--torchrun", action="store_true", help="also build with 2 ranks under torchrun, plain and --deterministic")
    args = parser.parse_args()

    import torch

    from dataigm.generate.determinism import default_threads
    from dataigm.generate.engine import BuildOptions, build
    from dataigm.generate.tiny import ensure_tiny_pipeline
    from dataigm.recipe import load_recipe

    ensure_tiny_pipeline()
    recipe = load_recipe(RECIPE, overrides(args))
    threads = default_threads()
    tmp = Path(tempfile.mkdtemp(prefix="dataigm-bench-determinism-"))
    runs = {"plain": (threads, False), "deterministic": (threads, True), "one_thread": (1, False)}
    best: dict[str, tuple[float, float]] = {}
    try:
        for i in range(args.repeats):
            for name, (n, deterministic) in runs.items():
                out = tmp / f"{name}-{i}"
                torch.set_num_threads(n)
                wall, cpu = time.perf_counter(), time.process_time()
                result = build(recipe, out, BuildOptions(device="cpu", limit=args.limit, progress=False, deterministic=deterministic))
                wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
                if name not in best or wall < best[name][0]:
                    best[name] = (wall, cpu)
                if i:
                    shutil.rmtree(out)
        images = result.samples_written
        for name, (wall, cpu) in best.items():
            print(f"({'abc'[list(runs).index(name)]}) {name:13s} threads={runs[name][0]}: {wall:.2f} s wall, {cpu:.2f} s CPU, "
                  f"{images / wall:.1f} images/s")
        print(f"(a) vs (b): {summary(tmp / 'plain-0', tmp / 'deterministic-0')}")
        print(f"(a) vs (c): {summary(tmp / 'plain-0', tmp / 'one_thread-0')}")
        if args.torchrun:
            env = {k: v for k, v in os.environ.items() if k not in ("OMP_NUM_THREADS", "MKL_NUM_THREADS")}
            sets = [a for s in overrides(args) for a in ("--set", s)]
            for flag in ("", "--deterministic"):
                out = tmp / f"torchrun{flag}"
                t = time.perf_counter()
                subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", "-m", "dataigm",
                                "build", str(RECIPE), "--out", str(out), "--limit", str(args.limit), "--device", "cpu", "--no-progress",
                                *sets, *([flag] if flag else [])], env=env, check=True, capture_output=True)
                print(f"torchrun 2 ranks {flag or 'plain'}: {time.perf_counter() - t:.1f} s wall (with start-up); (a) vs it: {summary(tmp / 'plain-0', out)}")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print(f"ratio={best['deterministic'][0] / best['plain'][0]:.3f}")


if __name__ == "__main__":
    main()
