"""Demo stage: build the paper's four targets with the embedded tiny model at 64 px."""

from __future__ import annotations

from dataigm.core.manifest import load_manifest
from dataigm.generate.engine import BuildOptions, build
from dataigm.generate.report import print_dataset_summary
from dataigm.recipe import ModelSpec, load_recipe
from dataigm.resources import resource_dir

DEMO_RECIPES = ("nudity", "van_gogh", "church", "parachute")
DEMO_OVERRIDES = ["generation.width=64", "generation.height=64", "generation.steps=4", "images_per_prompt=1", "shard_size=16"]
DEMO_PROMPTS_PER_CLASS = 40


def stage(ctx) -> None:
    out = ctx.out / "dataset"
    for name in DEMO_RECIPES:
        recipe = load_recipe(resource_dir("builders") / f"{name}.yaml", DEMO_OVERRIDES)
        limit = ctx.artifacts.get("prompts_per_class", DEMO_PROMPTS_PER_CLASS)
        result = build(recipe, out, BuildOptions(device="cpu", limit=limit), models=[ModelSpec(id="tiny")])
        ctx.console.print(f"{name}: {result.samples_written} images written, {result.skipped_shards} shards already done")
    print_dataset_summary(load_manifest(out), ctx.console, out)
    ctx.console.print("[dim]The tiny model's images are noise-like by design; build with a real model for real data.[/dim]")
    ctx.artifacts["dataset"] = out
