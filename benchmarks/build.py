"""Build throughput on the embedded tiny model: naive loop vs bare pipeline vs ``dataigm build``.

(a) naive: one prompt at a time, pipeline call, then PNG save to a file;
(b) bare pipeline: the same batches as the build, images discarded (pure generation, the upper bound);
(b+png) the same batches, each image then encoded to PNG in the same thread (the least work a build must do);
(c) dataigm build end to end (pipeline loading, generation, PNG encoding, shard writing, manifest), in the same
    process after (b); then again in fresh processes at 1x and 4x the image count to report its peak memory
    (it must stay flat: nothing may accumulate per image).
(b), (b+png) and (c) are alternated --repeats times; the median of each is printed, with its CPU time per image
(all threads), which other processes on a shared machine inflate less than wall time.

(b) does less than a build: it encodes and writes nothing. What (c) pays beyond it, measured on this machine
(2 cores, torch on 2 threads, 64 px): the one-off costs a run of a few seconds does not amortise (loading the
pipeline, about 0.1 s; the part, settings, stats and manifest records with their fsyncs), and the PNG encoding and
shard writing, which on a CPU build take the cores torch generates on (a GPU build does not pay that: see
``build_emulated.py``). Up to this release the build also ran a full garbage collection at its end (0.36 s idle,
0.6-1.7 s under load, holding the GIL while the writer drained); a CPU build now only drops the pipeline, which
frees it. Also printed: the one-off pipeline load and (c) without it. Last line: ratio=(c)/(b), end to end.

Measured (--limit 4: 48 images, median of 3, load 3.4): (b) 65.4, (b+png) 63.5, (c) 44.3 images/s, ratio 0.677;
(c)/(b+png) 0.698, CPU per image 43 ms against 30-31; the engine's own one-off costs are about 0.01 s per build.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

from _tiny_build import RECIPE, add_build_arguments
from _tiny_build import overrides as tiny_overrides

SHARD_SIZE = 64


def overrides(args: argparse.Namespace) -> list[str]:
    return tiny_overrides(args, SHARD_SIZE)


def planned_samples(args: argparse.Namespace, limit: int):
    from dataigm.generate.plan import plan_build
    from dataigm.recipe import load_recipe

    plan = plan_build(load_recipe(RECIPE, overrides(args)), limit=limit)
    return [m for s in plan.shards for m in s.samples]


def run_child(args: argparse.Namespace, limit: int, out: Path) -> tuple[float, int, int]:
    """Run (c) in a fresh process; returns (seconds, images, peak RSS in MB)."""
    code = f"""
import json, resource, sys, time
from dataigm.generate.engine import BuildOptions, build
from dataigm.recipe import load_recipe
from dataigm.generate.tiny import ensure_tiny_pipeline
ensure_tiny_pipeline()
recipe = load_recipe({str(RECIPE)!r}, {overrides(args)!r})
t = time.perf_counter()
r = build(recipe, {str(out)!r}, BuildOptions(device="cpu", limit={limit}, progress=False))
dt = time.perf_counter() - t
print(json.dumps({{"seconds": dt, "images": r.samples_written, "rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024}}))
"""
    res = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True)
    data = json.loads(res.stdout.strip().splitlines()[-1])
    return data["seconds"], data["images"], data["rss_mb"]


def timed(work: Callable[[], Any]) -> float:
    start = time.perf_counter()
    work()
    return time.perf_counter() - start


def alternated(pipe: Any, samples: list[Any], recipe: Any, args: argparse.Namespace, tmp: Path) -> dict[str, tuple[float, float]]:
    """(b), (b+png) and (c), alternated ``--repeats`` times: the median run of each as (images/s, ms CPU per image)."""
    from dataigm.generate.engine import BuildOptions, build, encode_png, generate_batch, iter_batches

    def bare(encode: bool) -> None:
        for batch in iter_batches(samples, args.batch_size):
            images = generate_batch(pipe, batch, "cpu")
            if encode:
                for image in images:
                    encode_png(image)

    def dataigm_build(out: Path) -> None:
        result = build(recipe, out, BuildOptions(device="cpu", limit=args.limit, progress=False))
        assert result.samples_written == len(samples), (result.samples_written, len(samples))

    runs: dict[str, list[tuple[float, float]]] = {"b": [], "b+png": [], "c": []}
    for r in range(args.repeats):
        for name, work in (("b", lambda: bare(False)), ("b+png", lambda: bare(True)), ("c", lambda: dataigm_build(tmp / f"inprocess{r}"))):
            cpu = time.process_time()
            seconds = timed(work)
            runs[name].append((len(samples) / seconds, (time.process_time() - cpu) / len(samples) * 1000.0))
    return {name: sorted(values)[len(values) // 2] for name, values in runs.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_build_arguments(parser, limit=16, images_per_prompt=4, batch_size=8,
                        limit_help="prompts per class at 1x (images = limit x classes x roles x images_per_prompt)",
                        repeats_help="(b), (b+png) and (c) are alternated this often; median of each")
    args = parser.parse_args()

    import torch

    from dataigm.generate.engine import generate_batch
    from dataigm.generate.pipeline import load_pipeline
    from dataigm.recipe import ModelSpec

    samples = planned_samples(args, args.limit)
    n = len(samples)
    pipe = load_pipeline(ModelSpec(id="tiny"), "cpu", "float32").pipe
    generate_batch(pipe, samples[: args.batch_size], "cpu")  # warm-up
    tmp = Path(tempfile.mkdtemp(prefix="dataigm-bench-build-"))
    try:
        # (a) naive loop
        naive_dir = tmp / "naive"
        naive_dir.mkdir()
        t = time.perf_counter()
        for i, m in enumerate(samples):
            g = torch.Generator("cpu").manual_seed(m.seed)
            img = pipe(m.prompt, num_inference_steps=m.steps, guidance_scale=m.guidance, height=m.height, width=m.width, generator=g).images[0]
            img.save(naive_dir / f"{i:06d}.png")
        naive = n / (time.perf_counter() - t)

        # (b), (b+png) and (c) in this process (imports already paid), alternated: this machine is shared
        from dataigm.recipe import load_recipe

        medians = alternated(pipe, samples, load_recipe(RECIPE, overrides(args)), args, tmp)
        del pipe
        load_s = min(timed(lambda: load_pipeline(ModelSpec(id="tiny"), "cpu", "float32")) for _ in range(args.repeats))

        # (c) at 1x and 4x in fresh processes: peak memory
        sec1, img1, rss1 = run_child(args, args.limit, tmp / "build1")
        sec4, img4, rss4 = run_child(args, args.limit * 4, tmp / "build4")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    print(f"images: {n} at 1x ({img4} at 4x), {args.size}px, {args.steps} steps, batch {args.batch_size}, CPU, torch threads {torch.get_num_threads()}")
    print(f"(a) naive loop (1 prompt/call + PNG save): {naive:8.1f} images/s")
    bare, png, built = (medians[k] for k in ("b", "b+png", "c"))
    for label, (rate, cpu_ms) in (("(b) bare pipeline, same batches:", bare), ("(b+png) the same, then PNG encoding:", png),
                                  ("(c) dataigm build end to end:", built)):
        print(f"{label:40s} {rate:8.1f} images/s, {cpu_ms:6.1f} ms CPU per image (median of {args.repeats})")
    print(f"(c) fresh processes, incl. imports: {img1 / sec1:.1f} images/s at 1x, {img4 / sec4:.1f} images/s at 4x")
    print(f"(c) peak RSS: {rss1} MB at 1x, {rss4} MB at 4x ({(rss4 - rss1) / max(rss1, 1) * 100:+.1f} %)")
    steady = n / max(n / built[0] - load_s, 1e-9)
    print(f"(c) one-off pipeline load {load_s:.2f} s of {n / built[0]:.2f} s; without it {steady:.1f} images/s = {steady / bare[0]:.3f} of (b); "
          f"(c)/(b+png) = {built[0] / png[0]:.3f}; CPU per image (c)/(b) = {built[1] / bare[1]:.3f}; load average {os.getloadavg()[0]:.1f}")
    print(f"(c)/(a) = {built[0] / naive:.2f}")
    print(f"ratio={built[0] / bare[0]:.3f}")


if __name__ == "__main__":
    main()
