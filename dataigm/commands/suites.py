"""dataigm suites: list the benchmark suites (pinned prompt files, what is generated, the judges)."""

from __future__ import annotations

import argparse
from dataigm.commands._options import Command


COMMAND = Command("suites", order=66, help="list the benchmark suites that `dataigm benchmark` runs",
                  description="List the shipped benchmark suites (builders/suites/*.yaml): source, prompts, images and judges.")


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("name", nargs="?", help="show one suite in full (its YAML, as validated)")


def run(args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.table import Table

    from dataigm.benchmark.suite import load_suite, suite_names

    console = Console(highlight=False)
    if args.name:
        import yaml

        console.print(yaml.safe_dump(load_suite(args.name).model_dump(mode="json"), sort_keys=False, width=140, allow_unicode=True), markup=False)
        return 0
    table = Table(title="benchmark suites")
    table.add_column("suite", no_wrap=True)
    for col in ("source", "forget", "retain", "img/prompt", "judges"):
        table.add_column(col, overflow="fold")
    for name in suite_names():
        s = load_suite(name)
        files = {role: ", ".join(s.files[src.file].path.rsplit("/", 1)[-1] for src in getattr(s, role)) or "-" for role in ("forget", "retain")}
        table.add_row(name, f"{s.source.repo.split('/')[-1]}@{s.source.commit[:7]}", files["forget"], files["retain"], str(s.images_per_prompt),
                      ", ".join(j.detector for j in s.judges) or "fidelity only")
    console.print(table)
    return 0
