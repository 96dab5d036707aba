"""dataigm build: generate a recipe's images into WebDataset shards."""

from __future__ import annotations

import argparse
from pathlib import Path

from dataigm.commands._options import (
    Command, add_alias, add_array_task_flag, add_distributor_flags, add_generation_flags, add_model_source_flags, distributor_settings,
)
from dataigm.core.errors import InputError

# Library parameters whose flag has another name (see dataigm.cli.in_flags).
PARAMETERS = {"config": "model_config"}


COMMAND = Command("build", order=10, help="generate a recipe's images with a diffusers pipeline into WebDataset shards",
                  description="Generate a recipe's images into DIR/<category>/<split>/*.tar with a manifest. Resumable: run the same "
                  "command again after a crash or Ctrl-C (a stop keeps the batch in flight). Multi-GPU/multi-node: launch with "
                  "torchrun/accelerate/srun or as a job array; each rank takes its own shards (docs/many-machines.md).")


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("recipe", type=Path, help="builder recipe YAML (see builders/)")
    p.add_argument("--out", type=Path, required=True, help="dataset folder to write (shared by all ranks)")
    add_model_source_flags(p, model_help="Hub id (REPO or REPO:SUBFOLDER), diffusers folder, single-file checkpoint "
                           "(.safetensors/.ckpt/.pt/.pth/.bin; SD 1.x/2.x, SDXL, SD3, Flux are recognised), or 'tiny'; overrides the recipe's models")
    add_alias(p, "--variant", "--weights-variant", "weights_variant", metavar="VARIANT")
    p.add_argument("--model-name", help="tag recorded per sample for --model (default: the id plus each overridden component)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="FIELD=VALUE",
                   help="override a recipe field, e.g. --set generation.width=768 (repeatable; recorded in the manifest)")
    p.add_argument("--limit", type=int, help="only the first N prompts of each class (quick trials)")
    add_generation_flags(p, what="recipe")
    p.add_argument("--offload", choices=["model", "sequential"], help="diffusers CPU offload for models that do not fit "
                   "on the GPU (model: whole components, sequential: submodules, slowest, least memory)")
    p.add_argument("--vae-slicing", action="store_true", help="decode a batch one image at a time (less memory)")
    p.add_argument("--vae-tiling", action="store_true", help="decode large images in tiles (less memory)")
    p.add_argument("--max-failure-rate", type=float, default=0.05, help="fraction of a shard's images that may fail "
                   "(recorded, retried by a rerun) before the build aborts without publishing the shard (default 0.05)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    add_array_task_flag(p)
    p.add_argument("--deterministic", action="store_true",
                   help="deterministic kernels, no cuDNN autotuning or TF32, the same CPU thread count under torchrun and alone "
                   "(generation.threads, default: one per physical core); see docs/build.md, Reproducibility")
    add_distributor_flags(p)


def model_override(args: argparse.Namespace):
    """The single ModelSpec that --model and the component flags describe, or None to use the recipe's."""
    from dataigm.recipe import ModelSpec

    components = dict(c.split("=", 1) for c in args.component if "=" in c)
    bad = [c for c in args.component if "=" not in c]
    if bad:
        raise InputError(f"--component expects NAME=PATH, got {bad[0]!r}")
    if args.unet:
        components["unet"] = args.unet
    if args.text_encoder:
        components["text_encoder"] = args.text_encoder
    if not (args.model or components or args.lora):
        return None
    return ModelSpec(id=args.model or "tiny", name=args.model_name, revision=args.revision, variant=args.weights_variant,
                     pipeline_class=args.pipeline_class, config=args.model_config, components=components, loras=args.lora)


def run(args: argparse.Namespace) -> int:
    from rich.console import Console

    from dataigm.core.partition import rank_from_env
    from dataigm.generate.engine import BuildOptions, build
    from dataigm.generate.report import print_dataset_summary
    from dataigm.recipe import load_recipe

    recipe = load_recipe(args.recipe, args.overrides)
    override = model_override(args)
    if args.limit is not None and args.limit < 1:
        raise InputError(f"--limit must be >= 1, got {args.limit}")
    options = BuildOptions(device=args.device, dtype=args.dtype, batch_size=args.batch_size, limit=args.limit, progress=not args.no_progress,
                           offload=args.offload, vae_slicing=args.vae_slicing, vae_tiling=args.vae_tiling,
                           max_failure_rate=args.max_failure_rate, deterministic=args.deterministic)
    rank = rank_from_env(array_task=args.array_task)
    result = build(recipe, args.out, options, models=[override] if override else None, rank=rank, **distributor_settings(args))
    console = Console(stderr=True)
    console.print(f"wrote {result.samples_written} images in {result.written_shards} shards "
                  f"({result.skipped_shards} already done, {result.samples_failed} failed)")
    if result.samples_failed:
        console.print(f"{result.samples_failed} images failed (see {args.out}/_stats); run the same command again to retry them")
    if result.manifest is None:
        console.print("other ranks, array tasks or parts are still running; the last one to finish writes manifest.json "
                      f"(or run `dataigm finalize {args.out}` once they are done)")
    else:
        print_dataset_summary(result.manifest, console, args.out)
    return 0
