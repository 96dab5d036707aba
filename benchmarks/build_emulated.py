"""Does the build keep a fast GPU busy? A stand-in pipeline emulates one, through the real build engine.

The stand-in sleeps for the GPU time of each batch (``batch / rate`` seconds, releasing the CPU as a GPU-bound
pipeline does while it waits on CUDA) and returns real 512 px photographs (scikit-image's, cropped and resized),
so the PNG encoder gets real work. ``dataigm build`` runs it end to end (planning, the writer, the encoder pool,
shard writing, stats, manifest) at 5, 20 and 100 images/s of emulated GPU speed; the baseline is the stand-in
alone, the same batches with nothing done with the images.

Printed: the PNG encoder's ceiling per core (images/s), then per speed the ratio build/stand-in with the encoder
pool (one thread per core, what a GPU build uses) and with one encoder thread (the former writer). A ratio below 1
where speed > ceiling x cores is the CPU's limit, not the engine's. Last line: ratio=<the pool's lowest ratio at
the speeds the CPU can encode>.
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
RECIPE = ROOT / "builders" / "nudity.yaml"
PHOTOS = ("astronaut", "coffee", "chelsea", "rocket", "immunohistochemistry", "hubble_deep_field", "retina", "cat")


def photos(size: int) -> list[Any]:
    """Real photographs as float arrays in [0, 1], centre-cropped and resized to ``size`` (diffusers' ``np`` output)."""
    import numpy as np
    import skimage.data
    from PIL import Image

    out = []
    for name in PHOTOS:
        img = Image.fromarray(getattr(skimage.data, name)()).convert("RGB")
        side = min(img.size)
        left, top = (img.width - side) // 2, (img.height - side) // 2
        img = img.crop((left, top, left + side, top + side)).resize((size, size), Image.BICUBIC)
        out.append(np.asarray(img, dtype=np.float32) / 255.0)
    return out


class EmulatedScheduler:
    """Named in each sample's record, like a real scheduler."""

    config: dict[str, Any] = {}


class EmulatedGPUPipeline:
    """Sleeps ``len(prompt) / rate`` seconds per call and returns real photographs, chosen by each generator's seed."""

    vae_scale_factor = 8

    def __init__(self, rate: float, images: list[Any]) -> None:
        self.rate, self.images = rate, images
        self.scheduler = EmulatedScheduler()

    def __call__(self, prompt: list[str], generator: list[Any], **kwargs: Any) -> Any:
        time.sleep(len(prompt) / self.rate)
        picked = [self.images[g.initial_seed() % len(self.images)] for g in generator]
        return type("Output", (), {"images": picked})()

    def set_progress_bar_config(self, **kwargs: Any) -> None:
        pass


def encoder_ceiling(images: list[Any], seconds: float = 2.0) -> float:
    """PNG encodes per second on one core (Pillow, dataigm's encoder)."""
    from dataigm.generate.engine import encode_png

    n, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        encode_png(images[n % len(images)])
        n += 1
    return n / (time.perf_counter() - start)


def standin_alone(pipe: EmulatedGPUPipeline, samples: list[Any], batch_size: int) -> float:
    import torch

    from dataigm.generate.engine import iter_batches

    start = time.perf_counter()
    for batch in iter_batches(samples, batch_size):
        pipe(prompt=[m.prompt for m in batch], generator=[torch.Generator().manual_seed(m.seed) for m in batch])
    return len(samples) / (time.perf_counter() - start)


def through_build(pipe: EmulatedGPUPipeline, recipe: Any, limit: int, workers: int, out: Path) -> float:
    """images/s of ``dataigm build`` with ``pipe`` standing in for the loaded model."""
    from dataigm.generate import pipeline
    from dataigm.generate.engine import BuildOptions, build

    def load_standin(spec: Any, device: str, *args: Any, **kwargs: Any) -> Any:
        return pipeline.LoadedModel(pipe, spec.tag, spec.id, "emulated", dtype="float16", device=device,
                                    call={"negative_prompt": True, "guidance_scale": True})

    real_load, pipeline.load_pipeline = pipeline.load_pipeline, load_standin
    try:
        start = time.perf_counter()
        result = build(recipe, out, BuildOptions(device="cpu", limit=limit, progress=False, encode_workers=workers))
        return result.samples_written / (time.perf_counter() - start)
    finally:
        pipeline.load_pipeline = real_load


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rates", default="5,20,100", help="emulated GPU speeds, images/s")
    parser.add_argument("--seconds", type=float, default=10.0, help="emulated GPU time per speed and run")
    parser.add_argument("--max-images", type=int, default=240, help="cap per run (the fastest speeds are CPU-bound anyway)")
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--repeats", type=int, default=2, help="each measurement repeated; best kept (shared machine)")
    args = parser.parse_args()

    from dataigm.generate.plan import plan_build
    from dataigm.recipe import load_recipe

    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    images = photos(args.size)
    ceiling = encoder_ceiling(images)
    print(f"PNG encoder ceiling: {ceiling:.1f} images/s per core at {args.size} px; {cores} cores -> about {ceiling * cores:.0f} images/s")
    tmp = Path(tempfile.mkdtemp(prefix="dataigm-bench-emulated-"))
    keeps_up = []
    overrides = [f"generation.width={args.size}", f"generation.height={args.size}", f"generation.batch_size={args.batch_size}",
                 "models=[tiny]", "shard_size=256", "images_per_prompt=2"]
    recipe = load_recipe(RECIPE, overrides)
    per_limit = plan_build(recipe, limit=1).n_samples
    try:
        through_build(EmulatedGPUPipeline(1000.0, images), recipe, 1, cores, tmp / "warm-up")  # imports, first-call costs
        for rate in (float(r) for r in args.rates.split(",")):
            limit = max(1, round(min(rate * args.seconds, args.max_images) / per_limit))
            samples = [m for s in plan_build(recipe, limit=limit).shards for m in s.samples]
            pipe = EmulatedGPUPipeline(rate, images)
            alone = max(standin_alone(pipe, samples, args.batch_size) for _ in range(args.repeats))
            ratios = {}
            for workers in (cores, 1):
                runs = [through_build(pipe, recipe, limit, workers, tmp / f"{rate}-{workers}-{r}") for r in range(args.repeats)]
                ratios[workers] = (min(runs) / alone, max(runs) / alone)
            pool, single = ratios[cores], ratios[1]
            print(f"{rate:5.0f} images/s emulated, {len(samples)} images: stand-in alone {alone:6.1f}/s; build/stand-in "
                  f"{pool[0]:.3f}-{pool[1]:.3f} with {cores} encoder threads, {single[0]:.3f}-{single[1]:.3f} with 1")
            if rate <= 0.9 * ceiling * cores:
                keeps_up.append(pool[1])
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print(f"ratio={min(keeps_up) if keeps_up else float('nan'):.3f}")


if __name__ == "__main__":
    main()
