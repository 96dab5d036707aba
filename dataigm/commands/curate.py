"""dataigm curate: filter a dataset folder into a curated one (same layout), with scores, report and contact sheets."""

from __future__ import annotations

import argparse
from pathlib import Path

from dataigm.commands._options import Command, add_distributor_flags, distributor_settings
from dataigm.core.errors import InputError


COMMAND = Command("curate", order=20,
                  help="filter a dataset (blank, near-duplicates, judges in the loop) into a curated dataset",
                  description="Curate DATASET_DIR shard by shard into --out. Spread over ranks with torchrun or srun; rerun the same "
                  "command to resume.")


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("dataset", type=Path, metavar="DATASET_DIR", help="the built dataset folder (with manifest.json)")
    p.add_argument("--config", type=Path, default=None,
                   help="curation YAML (builders/curation/*.yaml) or a builder recipe with a 'curation:' key (default: blank + phash everywhere, NudeNet on nudity)")
    p.add_argument("--out", type=Path, default=None, help="curated dataset folder (default: DATASET_DIR-curated)")
    p.add_argument("--review-tags", type=Path, default=None, help="JSON {sample key: reject|accept|relabel:<class>} to apply")
    p.add_argument("--batch-size", type=int, default=32, help="images scored by each filter (embeddings, judges) per batch (default: %(default)s)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar (batch jobs)")
    add_distributor_flags(p)


def read_review_tags_file(path: Path) -> dict[str, str]:
    """The ``--review-tags`` JSON: an object mapping sample keys to tags; errors name the file."""
    import json

    try:
        tags = json.loads(path.read_text())
    except (OSError, ValueError) as e:
        raise InputError(f"--review-tags {path}: cannot read it as JSON: {e}") from None
    if not isinstance(tags, dict) or not all(isinstance(t, str) for t in tags.values()):
        raise InputError(f"--review-tags {path}: expected a JSON object {{sample key: reject|accept|relabel:<class>}}")
    return tags


def run(args: argparse.Namespace) -> int:
    from rich.console import Console

    from dataigm.curate import curate, load_curation_config
    from dataigm.curate.present import kept_dropped_table

    distribution = distributor_settings(args)
    config = load_curation_config(args.config)
    tags = read_review_tags_file(args.review_tags) if args.review_tags else None
    out = args.out or args.dataset.with_name(args.dataset.name + "-curated")
    result = curate(args.dataset, out, config, review_tags=tags, batch_size=args.batch_size, progress=not args.no_progress,
                    **distribution)
    console = Console()
    if result.report is not None:  # rank 0
        console.print(kept_dropped_table(result))
        console.print(f"curated dataset: {out}\nreport: {result.report}")
    return 0
