"""dataigm new-concept: write the files that build a new concept's dataset, train its judge and benchmark it."""

from __future__ import annotations

import argparse
from pathlib import Path
from dataigm.commands._options import Command


COMMAND = Command("new-concept", order=4,
                  help="from a concept name to a builder recipe, a detector recipe and a benchmark suite",
                  description="Write DIR/concept.yaml, DIR/build.yaml (the category's templates with paired negatives), "
                  "DIR/detector.yaml and DIR/suite.yaml (forget and retain prompts), then print the commands that build, "
                  "train, export and benchmark it. No code: every file is YAML to read and edit.")


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("name", help="the concept as prompts name it, e.g. 'Greg Rutkowski' or 'teapot'")
    p.add_argument("--category", required=True, help="its taxonomy category (see `dataigm concepts`)")
    p.add_argument("--synonym", action="append", default=[], metavar="S", help="another phrase that names it (repeatable)")
    p.add_argument("--replacement", help="what the concept becomes in a paired negative (default: the category's)")
    p.add_argument("--model", default=None, help="text-to-image model of the recipe and the suite (default: CompVis/stable-diffusion-v1-4); "
                   "'tiny' writes a CPU-sized kit (64 px, 2 steps, the tiny detector)")
    p.add_argument("--out", type=Path, required=True, help="folder to write the kit into")
    p.add_argument("--force", action="store_true", help="overwrite a kit already in --out")


def next_steps(out: Path, model: str) -> list[str]:
    """The commands that build, train, export and benchmark the kit in ``out`` (absolute paths), each runnable as
    printed: the benchmark measures the base model itself (the row every unlearned model is compared with)."""
    return [
        f"dataigm build {out / 'build.yaml'} --out {out / 'data'}",
        f"dataigm train {out / 'detector.yaml'} --out {out / 'runs' / 'judge'}",
        f"dataigm export-detector {out / 'runs' / 'judge'} --out {out / 'judge'}",
        f"dataigm benchmark {out / 'suite.yaml'} --model {model} --name base --out {out / 'benchmark'}",
    ]


def run(args: argparse.Namespace) -> int:
    from dataigm.concept_kit import DEFAULT_MODEL, write_concept_kit

    model = args.model or DEFAULT_MODEL
    kit = write_concept_kit(args.name, args.category, args.out, args.synonym, args.replacement, model, args.force)
    print(f"wrote {', '.join(kit.files)} to {kit.out} ({kit.positives} concept prompts with paired negatives, {kit.retained} retained prompts)")
    if kit.dropped:
        print(f"left out {len(kit.dropped)} of the category's concept-free prompts that name the concept: "
              + "; ".join(repr(p) for p in kit.dropped))
    print("next steps:")
    for i, step in enumerate(next_steps(kit.out, model), 1):
        print(f"  {i}. {step}")
    print(f"then, for each unlearned model: step {i} with its weights (e.g. --unet PATH) and its own --name")
    return 0
