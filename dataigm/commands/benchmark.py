"""dataigm benchmark: evaluate an unlearned checkpoint on a suite in one command (generate, cache, judge, report)."""

from __future__ import annotations

import argparse
from pathlib import Path

ORDER = 67


def add_parser(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    p = sub.add_parser(
        "benchmark",
        help="evaluate an unlearned model on a suite: generate forget/retain images of it and of the original, judge, report",
        description="Generate the suite's forget and retain sets with the unlearned model and (cached) with the original model, "
        "same prompts and seeds, judge them with the suite's judges and write the `dataigm eval` report to OUT/reports/. "
        "Runs into the same --out add methods to one report. Resumable: rerun the same command after a crash. "
        "Multi-GPU: launch with torchrun/accelerate/srun; rank 0 writes the report.",
    )
    p.add_argument("suite", help="a suite name (see `dataigm suites`) or a suite YAML")
    p.add_argument("--model", required=True, help="Hub id, diffusers folder, single-file checkpoint or 'tiny': the base pipeline")
    p.add_argument("--unet", help="the unlearned UNet: diffusers folder, Hub id or state-dict file")
    p.add_argument("--text-encoder", help="the unlearned text encoder: diffusers folder, Hub id or state-dict file")
    p.add_argument("--component", action="append", default=[], metavar="NAME=PATH", help="replace any component (repeatable)")
    p.add_argument("--pipeline-class", help="diffusers pipeline class for single-file checkpoints")
    p.add_argument("--config", dest="model_config", help="diffusers folder/Hub id providing configs for a single-file checkpoint")
    p.add_argument("--revision", help="Hub revision of --model")
    p.add_argument("--name", required=True, help="the method's name in the report (e.g. esd)")
    p.add_argument("--out", type=Path, required=True, help="run folder; several methods may share it")
    p.add_argument("--original", help="the original model (default: --model without the replaced components)")
    p.add_argument("--limit", type=int, help="only the first N prompts of each set (quick trials)")
    p.add_argument("--variant", help="a prompt selection the suite defines (e.g. i2p-nudity: sexual, nudity50)")
    p.add_argument("--from", dest="source_dir", type=Path, help="folder with local copies of the suite's prompt files (offline)")
    p.add_argument("--judge", action="append", metavar="SPEC", help="judge with SPEC instead of the suite's judges (repeatable)")
    p.add_argument("--device", default="auto", help="auto (cuda:<LOCAL_RANK> if available, else cpu), cpu, cuda, cuda:1, mps")
    p.add_argument("--dtype", choices=["auto", "float32", "float16", "bfloat16"], help="override the suite's dtype")
    p.add_argument("--batch-size", type=int, help="generation batch size (part of the settings: same for every method of an --out)")
    p.add_argument("--shard-size", type=int, default=64, help="images per shard: the unit a killed run loses (default: %(default)s)")
    p.add_argument("--lpips-net", default="suite", choices=["suite", "alex", "vgg", "squeeze", "none"], help="LPIPS network (default: the suite's metrics)")
    p.add_argument("--fid-features", default="suite", help="suite | inception | local-dir:PATH | hf-hub:org/name | timm name | none")
    p.add_argument("--fid-weights", help="local copy of the FID Inception weights")
    p.add_argument("--clip", nargs="?", const="openai/clip-vit-base-patch16", metavar="MODEL",
                   help="CLIP model path or Hub id: CSDR (IGMU) and csdr_win_rate; without MODEL: openai/clip-vit-base-patch16, IGMU's")
    p.add_argument("--csdr-unit", choices=["image", "prompt"], default="image",
                   help="CSDR per image (IGMU's README: their reported numbers; default) or per prompt over its seed images (their script as written)")
    p.add_argument("--nudenet-model", help="nudenet presets: a local copy of the preset's detector file (best.onnx for rece/unlearndiffatk, 320n.onnx) or its nudenet wheel; default: installed, cached, or fetched from PyPI")
    p.add_argument("--csdr-prompts", choices=["pair", "igmu"], default="pair",
                   help="text CSDR scores against: the concept-removed prompt p' (default) or IGMU's cleaned text, bug included")
    p.add_argument("--clip-score", choices=["torchmetrics", "torchmetrics-eot", "clipscore"], help="CLIP score of forget and retain images")
    p.add_argument("--clip-score-model", help="CLIP model for --clip-score (default: ViT-L/14 for torchmetrics, ViT-B/32 for clipscore)")
    p.add_argument("--forget-reference", choices=["pair", "same-prompt"], default="pair",
                   help="forget-image fidelity against the original's image of the concept-removed prompt p', same seed (IGMU, default), "
                   "or of the same prompt")
    p.add_argument("--deterministic", action="store_true",
                   help="build every set with deterministic kernels, no cuDNN autotuning or TF32, pinned CPU threads (as `dataigm build "
                   "--deterministic`); part of the original-image cache key")
    p.add_argument("--bootstrap", type=int, default=1000, help="bootstrap resamples (default: %(default)s)")
    p.add_argument("--workers", type=int, help="image decoding workers for judging")
    p.add_argument("--no-estimate", action="store_true", help="skip the timed batch that estimates the generation time")
    p.add_argument("--no-eval", action="store_true", help="generate only; a later run without it writes the report")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    return p


def run(args: argparse.Namespace) -> int:
    from rich.console import Console

    from dataigm.benchmark.run import BenchmarkOptions, run_benchmark
    from dataigm.commands.build import model_override
    from dataigm.recipe import ModelSpec

    args.model_name = None
    model = model_override(args)
    none = lambda v: None if v == "none" else v  # noqa: E731
    options = BenchmarkOptions(
        name=args.name, out=args.out, limit=args.limit, variant=args.variant, source_dir=args.source_dir, judges=args.judge,
        device=args.device, dtype=args.dtype, batch_size=args.batch_size, shard_size=args.shard_size, lpips_net=none(args.lpips_net), fid_features=none(args.fid_features),
        fid_weights=args.fid_weights, clip=args.clip, bootstrap=args.bootstrap, workers=args.workers, progress=not args.no_progress,
        estimate=not args.no_estimate, evaluate=not args.no_eval, deterministic=args.deterministic, forget_reference=args.forget_reference,
        csdr_unit=args.csdr_unit, csdr_prompts=args.csdr_prompts, clip_score=args.clip_score, clip_score_model=args.clip_score_model,
        nudenet_model=args.nudenet_model,
    )
    console = Console(stderr=True, highlight=False)
    original = ModelSpec(id=args.original) if args.original else None
    result = run_benchmark(args.suite, model, options, original, say=lambda m: console.print(m, markup=False))
    for label, n in result.generated.items():
        console.print(f"{label}: {n} images generated now ({result.folders[label]})", markup=False)
    for judge, folder in result.reports.items():
        console.print(f"report ({judge}): {folder / 'report.html'} ({folder / 'report.md'})", markup=False)
    return 0
