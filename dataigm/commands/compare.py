"""dataigm compare: how far apart two dataset folders are (keys, pixels, metadata, generation settings)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from dataigm.commands._options import Command, add_json_flag, emit_json

SHOWN = 10  # rows of each list printed in the text report


COMMAND = Command("compare", order=13,
                  help="compare two dataset folders key by key: missing keys, pixel and metadata differences, settings; exit 1 if they differ",
                  description="Compare dataset folder B with A key by key: missing/extra keys, identical images, differing images "
                  "(max and mean absolute difference in pixel levels, PSNR), differing metadata fields, and the manifest settings "
                  "(recipe, model revisions, device, dtype, threads, TF32...) that differ. Exit 0 when B matches A within "
                  "--tolerance, 1 when keys are missing or extra, metadata differs or a pixel differs by more than --tolerance.")


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("a", type=Path, help="reference dataset folder")
    p.add_argument("b", type=Path, help="dataset folder compared with it")
    p.add_argument("--tolerance", type=int, default=0, metavar="LEVELS",
                   help="largest allowed absolute pixel difference, in levels of 0-255 (default 0: identical pixels)")
    p.add_argument("--ignore-field", action="append", default=[], metavar="FIELD",
                   help="a metadata field not to compare, e.g. model (repeatable)")
    add_json_flag(p, "the comparison (instead of tables)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")


def _short(value: Any, width: int = 60) -> str:
    text = value if isinstance(value, str) else json.dumps(value)
    return text if len(text) <= width else text[: width - 3] + "..."


def _more(items: list, shown: int = SHOWN) -> str:
    return f" ... and {len(items) - shown} more" if len(items) > shown else ""


def print_report(c: Any, console: Any) -> None:
    """The comparison as lines and tables for people."""
    from rich.table import Table

    console.print(f"A: {c.a} ({c.n_a} samples)\nB: {c.b} ({c.n_b} samples)")
    console.print(f"keys: {len(c.missing)} missing from B, {len(c.extra)} extra in B, {len(c.duplicates)} duplicated")
    for label, keys in (("missing", c.missing), ("extra", c.extra), ("duplicated", c.duplicates)):
        if keys:
            console.print(f"  {label}: " + ", ".join(keys[:SHOWN]) + _more(keys))
    line = f"images: {c.identical} identical ({c.identical_bytes} byte-identical), {len(c.differing)} differ"
    if c.differing:
        line += (f", by at most {c.max_abs} level(s); {len(c.above_tolerance)} above tolerance {c.tolerance}; "
                 f"lowest PSNR {min(d.psnr for d in c.differing):.2f} dB")
    console.print(line)
    if c.differing:
        table = Table("key", "max", "mean", "PSNR dB", "pixels", title="differing images (largest first)")
        for d in sorted(c.differing, key=lambda d: (-d.max_abs, d.key))[:SHOWN]:
            table.add_row(d.key, str(d.max_abs), f"{d.mean_abs:.4f}", f"{d.psnr:.2f}", str(d.differing_pixels) + (f" {d.note}" if d.note else ""))
        console.print(table)
    if c.metadata:
        table = Table("field", "samples", "example key", "A", "B", title="differing metadata")
        for f in c.metadata:
            ex = f.examples[0]
            table.add_row(f.field, str(f.n), ex["key"], _short(ex["a"]), _short(ex["b"]))
        console.print(table)
    else:
        console.print("metadata: identical for every common key")
    if not all(c.manifests.values()):
        console.print("settings: not compared (" + ", ".join(f"{k.upper()} has no manifest.json" for k, v in c.manifests.items() if not v) + ")")
    elif c.settings:
        table = Table("setting", "A", "B", title="settings that differ between the manifests")
        for s in c.settings:
            table.add_row(s.setting, _short(s.a), _short(s.b))
        console.print(table)
    else:
        console.print("settings: the same in both manifests")
    if c.ok:
        verdict = "identical" if not c.differing else f"within tolerance ({c.max_abs} <= {c.tolerance} levels)"
        console.print(f"[green]same: {verdict}[/green]")
    else:
        console.print("[red]DIFFERENT[/red]")


def run(args: argparse.Namespace) -> int:
    from rich.console import Console

    from dataigm.core.compare import compare_datasets

    result = compare_datasets(args.a, args.b, args.tolerance, tuple(args.ignore_field), progress=not (args.no_progress or args.json))
    if args.json:
        emit_json(result.to_dict())
    else:
        print_report(result, Console())
    return 0 if result.ok else 1
