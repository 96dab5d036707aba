"""dataigm import-images: add a folder of real images (one sub-folder per class) to a dataset as its own part."""

from __future__ import annotations

import argparse
from pathlib import Path

from dataigm.commands._options import Command, add_array_task_flag, add_distributor_flags, distributor_settings
from dataigm.core.errors import InputError


def _fractions(text: str) -> dict[str, float]:
    """``train=0.8,test=0.2`` -> {"train": 0.8, "test": 0.2}; split names and the sum are checked by the import."""
    out = {}
    for item in text.split(","):
        name, _, value = item.partition("=")  # no "=": value is "", which float() refuses
        try:
            out[name.strip()] = float(value)
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"expected SPLIT=FRACTION[,...] such as train=0.8,val=0.1,test=0.1, got {text!r}"
            ) from None
    return out


COMMAND = Command("import-images", order=15,
                  help="import a folder of real images (one sub-folder per class) into a dataset folder",
                  description="Import FOLDER/<class>/... or FOLDER/<split>/<class>/... into the dataset folder's shard layout and sample "
                  "schema, as part PART of CATEGORY. Top-level folders named train, validation/val/valid/dev and test are splits "
                  "(Hugging Face imagefolder's convention); --no-split-from-folders reads them as classes. Bad files are recorded, "
                  "never fatal; re-running is idempotent and resumes after a kill.")


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("folder", type=Path, help="folder with one sub-folder per class")
    p.add_argument("--category", "-c", required=True, help="dataset category, i.e. its folder (e.g. nudity, church, style)")
    p.add_argument("--taxonomy", default=None,
                   help="taxonomy category of its concepts, one of `dataigm concepts` (default: that of the dataset's other parts, or CATEGORY)")
    p.add_argument("--out", "-o", type=Path, required=True, help="dataset folder (may already hold generated parts)")
    p.add_argument("--part", default="real", help="name of this part (default: %(default)s)")
    p.add_argument("--split-from-folders", action=argparse.BooleanOptionalAction, default=None,
                   help="FOLDER's top-level folders are splits (default: detected by name); --no-split-from-folders: they are classes")
    p.add_argument("--split-fractions", type=_fractions, default=None, metavar="SPLIT=F,...",
                   help="class folders only: fractions per split, drawn per class by a stable hash (default: train=0.8,val=0.1,test=0.1)")
    p.add_argument("--source-from-name", default=None, metavar="REGEX",
                   help="regular expression with a named group 'source' searched in each file name, e.g. "
                   "'^(?P<source>[A-Za-z]+(?:-[A-Za-z]+)?)_' (LAION_1.jpg -> LAION); the sample's source, default 'real'")
    p.add_argument("--class-map", type=Path, default=None, metavar="FILE", help="YAML/JSON mapping folder name -> label name")
    p.add_argument("--labels", default=None, help="label names in label order, comma-separated (default: the dataset's, else the folder names)")
    p.add_argument("--max-size", type=int, default=1024, help="downscale images whose longest side is larger (default: %(default)s)")
    p.add_argument("--shard-size", type=int, default=1000, help="samples per shard (default: %(default)s)")
    p.add_argument("--png-compress-level", type=int, default=1, choices=range(10), metavar="0-9",
                   help="zlib level of the stored PNGs (default: %(default)s; fastest, and on photos no larger than 6)")
    p.add_argument("--workers", type=int, default=None, help="decode threads (default: number of CPUs, at most 8)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    add_distributor_flags(p)
    add_array_task_flag(p)


def run(args: argparse.Namespace) -> int:
    from rich.console import Console

    from dataigm.core.partition import rank_from_env
    from dataigm.core.present import manifest_table
    from dataigm.ingest.images import import_images, load_class_map

    rank = rank_from_env(array_task=args.array_task)

    report = import_images(
        args.folder, args.out, args.category, taxonomy=args.taxonomy, part=args.part, split_from_folders=args.split_from_folders,
        splits=args.split_fractions, source_from_name=args.source_from_name, class_map=load_class_map(args.class_map) if args.class_map else None,
        label_names=_labels(args.labels), max_size=args.max_size,
        shard_size=args.shard_size, png_compress_level=args.png_compress_level, workers=args.workers, progress=not args.no_progress,
        rank=rank.rank, world_size=rank.world_size, **distributor_settings(args),
    )
    console = Console()
    console.print(
        f"{args.category}/{report.part}: {report.ok} images imported, {report.failed} failed, {report.ignored} non-image files ignored; "
        f"shards written {report.shards_written}, already done {report.shards_skipped} of {report.shards_planned}"
    )
    if report.failures:
        console.print("failures: " + ", ".join(f"{k} {v}" for k, v in sorted(report.failures.items())) + " (reasons in the shard stats)")
    if report.manifest is None:
        console.print("other ranks or array tasks are still running; the last one to finish writes manifest.json")
        return 0
    console.print(manifest_table(report.manifest, f"{args.out} / {args.category}", category=args.category))
    if report.manifest.get("incomplete"):
        console.print(f"[yellow]{len(report.manifest['incomplete'])} planned shard(s) not finished yet (other ranks?)")
    return 0


def _labels(text: str | None) -> list[str] | None:
    """``--labels a,b,c`` as a list; an empty name is an error, not a label."""
    if not text:
        return None
    names = [s.strip() for s in text.split(",")]
    if not all(names):
        raise InputError(f"--labels {text!r}: empty label name; give comma-separated names such as other,church")
    return names
