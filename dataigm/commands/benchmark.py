"""dataigm benchmark: evaluate an unlearned checkpoint on a suite in one command (generate, cache, judge, report)."""

from __future__ import annotations

import argparse
from pathlib import Path

from dataigm.commands._options import (
    Command, add_alias, add_generation_flags, add_judge_flag, add_metric_flags, add_model_source_flags, add_workers_flag, metric_settings,
)

# Library parameters whose flag has another name (see dataigm.cli.in_flags).
PARAMETERS = {"fid_feature": "fid_features", "n_resamples": "bootstrap", "variant": "prompt_set", "config": "model_config"}


COMMAND = Command("benchmark", order=67,
                  help="evaluate an unlearned model on a suite: generate forget/retain images of it and of the original, judge, report",
                  description="Generate the suite's forget and retain sets with the unlearned model and (cached) with the original model, "
                  "same prompts and seeds, judge them with the suite's judges and write the `dataigm eval` report to OUT/reports/. "
                  "Runs into the same --out add methods to one report. Resumable: rerun the same command after a crash. "
                  "Multi-GPU: launch with torchrun/accelerate/srun; rank 0 writes the report.")


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("suite", help="a suite name (see `dataigm suites`) or a suite YAML")
    add_model_source_flags(p, model_help="Hub id, diffusers folder, single-file checkpoint or 'tiny': the base pipeline", model_required=True)
    p.add_argument("--name", required=True, help="the method's name in the report (e.g. esd)")
    p.add_argument("--out", type=Path, required=True, help="run folder; several methods may share it")
    p.add_argument("--original-model", dest="original", help="the original model (default: --model without the replaced components)")
    add_alias(p, "--original", "--original-model", "original")
    p.add_argument("--limit", type=int, help="only the first N prompts of each set (quick trials)")
    p.add_argument("--prompt-set", dest="prompt_set", help="a prompt selection the suite defines (e.g. i2p-nudity: sexual, nudity50; "
                   "`dataigm suites NAME` shows a suite's variants)")
    add_alias(p, "--variant", "--prompt-set", "prompt_set", metavar="NAME")
    p.add_argument("--from", dest="source_dir", type=Path, help="folder with local copies of the suite's prompt files (offline)")
    add_judge_flag(p, help="judge with SPEC instead of the suite's judges", required=False)
    add_generation_flags(p, what="suite")
    p.add_argument("--shard-size", type=int, default=64, help="images per shard: the unit a killed run loses (default: %(default)s)")
    add_metric_flags(p, suite_defaults=True)
    p.add_argument("--deterministic", action="store_true",
                   help="build every set with deterministic kernels, no cuDNN autotuning or TF32, pinned CPU threads (as `dataigm build "
                   "--deterministic`); part of the original-image cache key")
    add_workers_flag(p)
    p.add_argument("--no-estimate", action="store_true", help="skip the timed batch that estimates the generation time")
    p.add_argument("--no-eval", action="store_true", help="generate only; a later run without it writes the report")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")


def run(args: argparse.Namespace) -> int:
    from rich.console import Console

    from dataigm.benchmark.run import BenchmarkOptions, run_benchmark, suite_metrics
    from dataigm.commands.build import model_override
    from dataigm.recipe import ModelSpec

    args.model_name = None
    model = model_override(args)
    options = BenchmarkOptions(
        name=args.name, out=args.out, limit=args.limit, variant=args.prompt_set, source_dir=args.source_dir, judges=args.judge,
        device=args.device, dtype=args.dtype, batch_size=args.batch_size, shard_size=args.shard_size,
        metrics=suite_metrics(**metric_settings(args), workers=args.workers), progress=not args.no_progress,
        estimate=not args.no_estimate, evaluate=not args.no_eval, deterministic=args.deterministic,
    )
    console = Console(stderr=True, highlight=False)
    original = ModelSpec(id=args.original) if args.original else None
    result = run_benchmark(args.suite, model, options, original, say=lambda m: console.print(m, markup=False))
    for label, n in result.generated.items():
        console.print(f"{label}: {n} images generated now ({result.folders[label]})", markup=False)
    for judge, folder in result.reports.items():
        console.print(f"report ({judge}): {folder / 'report.html'} ({folder / 'report.md'})", markup=False)
    return 0
