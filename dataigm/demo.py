"""``dataigm demo``: the whole pipeline end to end on the embedded tiny model, offline, on CPU.

Each stage is a function ``stage(ctx: DemoContext) -> None`` living beside the stage it shows; it reads what
earlier stages left in ``ctx.artifacts`` and adds its own outputs there.
"""

from __future__ import annotations

import importlib
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from rich.console import Console


@dataclass
class DemoContext:
    out: Path  # everything the demo writes goes below this folder
    console: Console
    artifacts: dict[str, Any] = field(default_factory=dict)  # e.g. "dataset", "curated", "detector"
    timings: dict[str, float] = field(default_factory=dict)


# "module:function" in pipeline order; each is imported only when it runs.
STAGES: list[str] = [
    "dataigm.generate.demo:stage",
    "dataigm.ingest.demo:stage",
    "dataigm.curate.demo:stage",
    "dataigm.hub.demo:stage",
    "dataigm.train.demo:stage",
    "dataigm.evaluation.demo:stage",
]


def run_demo(out: Path, console: Console | None = None, prompts_per_class: int | None = None) -> DemoContext:
    """Run every stage into ``out``. The stages after the export read the exported folder, as a user of the
    published dataset would; ``prompts_per_class`` makes the generation smaller (a quicker run)."""
    for noisy in ("dataigm", "timm"):
        logging.getLogger(noisy).setLevel(logging.WARNING)  # the demo prints its own summaries
    ctx = DemoContext(Path(out), console or Console())
    if prompts_per_class is not None:
        ctx.artifacts["prompts_per_class"] = prompts_per_class
    ctx.out.mkdir(parents=True, exist_ok=True)
    for spec in STAGES:
        module, func = spec.split(":")
        stage: Callable[[DemoContext], None] = getattr(importlib.import_module(module), func)
        name = module.split(".")[1]
        ctx.console.rule(f"[bold]{name}")
        t0 = time.perf_counter()
        stage(ctx)
        ctx.timings[name] = time.perf_counter() - t0
    ctx.console.rule("[bold]done")
    for name, seconds in ctx.timings.items():
        ctx.console.print(f"{name:>12}: {seconds:6.1f} s")
    ctx.console.print(f"outputs are below {ctx.out}")
    return ctx
