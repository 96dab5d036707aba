"""Build throughput on the embedded tiny model: naive loop vs bare pipeline vs ``dataigm build``.

(a) naive: one prompt at a time, pipeline call, then PNG save to a file;
(b) bare pipeline: the same batches as the build, images discarded (pure generation, the upper bound);
(c) dataigm build end to end (pipeline loading, generation, PNG encoding, shard writing, manifest), in the same
    process after (b); then again in fresh processes at 1x and 4x the image count to report its peak memory
    (it must stay flat: nothing may accumulate per image).
Also printed: the build's one-off costs (loading the pipeline, freeing it at the end), which a run of a few seconds
does not amortise, and (c) without them. Last line: ratio=(c)/(b), end to end.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RECIPE = ROOT / "builders" / "nudity.yaml"


def overrides(args: argparse.Namespace) -> list[str]:
    return [f"generation.width={args.size}", f"generation.height={args.size}", f"generation.steps={args.steps}",
            f"generation.batch_size={args.batch_size}", "models=[tiny]", "shard_size=64", f"images_per_prompt={args.images_per_prompt}"]


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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--limit", type=int, default=16, help="prompts per class at 1x (images = limit x classes x roles x images_per_prompt)")
    parser.add_argument("--images-per-prompt", type=int, default=4)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=3, help="(b) and (c) are alternated this often; best of each")
    args = parser.parse_args()

    import torch

    from dataigm.generate.engine import generate_batch, iter_batches
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

        # (b) bare pipeline in the same batches, and (c) dataigm build end to end in this process (imports
        # already paid, as for (b)); alternated, best of --repeats, since this machine is shared.
        from dataigm.generate.engine import BuildOptions, build
        from dataigm.recipe import load_recipe

        recipe = load_recipe(RECIPE, overrides(args))
        bare = built = 0.0
        for r in range(args.repeats):
            t = time.perf_counter()
            for batch in iter_batches(samples, args.batch_size):
                generate_batch(pipe, batch, "cpu")
            bare = max(bare, n / (time.perf_counter() - t))
            t = time.perf_counter()
            result = build(recipe, tmp / f"inprocess{r}", BuildOptions(device="cpu", limit=args.limit, progress=False))
            built = max(built, result.samples_written / (time.perf_counter() - t))
            assert result.samples_written == n, (result.samples_written, n)
        del pipe
        # the build's one-off costs, which a short benchmark run does not amortise: loading the pipeline from its
        # folder, and freeing it at the end (a full garbage collection with torch and diffusers imported)
        from dataigm.generate.engine import release_memory

        load_s = release_s = float("inf")
        for _ in range(args.repeats):
            t = time.perf_counter()
            loaded = load_pipeline(ModelSpec(id="tiny"), "cpu", "float32")
            load_s = min(load_s, time.perf_counter() - t)
            del loaded
            t = time.perf_counter()
            release_memory()
            release_s = min(release_s, time.perf_counter() - t)

        # (c) at 1x and 4x in fresh processes: peak memory
        sec1, img1, rss1 = run_child(args, args.limit, tmp / "build1")
        sec4, img4, rss4 = run_child(args, args.limit * 4, tmp / "build4")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    print(f"images: {n} at 1x ({img4} at 4x), {args.size}px, {args.steps} steps, batch {args.batch_size}, CPU, torch threads {torch.get_num_threads()}")
    print(f"(a) naive loop (1 prompt/call + PNG save): {naive:8.1f} images/s")
    print(f"(b) bare pipeline, same batches:          {bare:8.1f} images/s")
    print(f"(c) dataigm build end to end:              {built:8.1f} images/s")
    print(f"(c) fresh processes, incl. imports: {img1 / sec1:.1f} images/s at 1x, {img4 / sec4:.1f} images/s at 4x")
    print(f"(c) peak RSS: {rss1} MB at 1x, {rss4} MB at 4x ({(rss4 - rss1) / max(rss1, 1) * 100:+.1f} %)")
    steady = n / max(n / built - load_s - release_s, 1e-9)
    print(f"(c) one-off costs: pipeline load {load_s:.2f} s, freeing it {release_s:.2f} s, of {n / built:.2f} s; "
          f"without them {steady:.1f} images/s = {steady / bare:.3f} of (b)")
    print(f"(c)/(a) = {built / naive:.2f}")
    print(f"ratio={built / bare:.3f}")


if __name__ == "__main__":
    main()
