"""What the tiny-model build benchmarks (``build.py``, ``determinism.py``) share: the recipe they build, its
overrides and their command-line settings. Not a benchmark itself (``make bench`` skips ``_*.py``)."""

from __future__ import annotations

import argparse
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RECIPE = ROOT / "builders" / "nudity.yaml"


def add_build_arguments(parser: argparse.ArgumentParser, *, limit: int, images_per_prompt: int, batch_size: int,
                        limit_help: str = "prompts per class", repeats_help: str = "runs of each; best kept") -> None:
    """The tiny build's size and shape on the command line (``overrides`` turns them into recipe overrides)."""
    parser.add_argument("--limit", type=int, default=limit, help=limit_help)
    parser.add_argument("--images-per-prompt", type=int, default=images_per_prompt)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--batch-size", type=int, default=batch_size)
    parser.add_argument("--repeats", type=int, default=3, help=repeats_help)


def overrides(args: argparse.Namespace, shard_size: int) -> list[str]:
    """The nudity recipe on the tiny model at the command line's size, steps, batch and images per prompt."""
    return [f"generation.width={args.size}", f"generation.height={args.size}", f"generation.steps={args.steps}",
            f"generation.batch_size={args.batch_size}", "models=[tiny]", f"shard_size={shard_size}",
            f"images_per_prompt={args.images_per_prompt}"]
