"""dataigm train: train a detector from a recipe on dataset shards (Lightning, DDP over devices and nodes)."""

from __future__ import annotations

import argparse
from pathlib import Path
from dataigm.commands._options import Command


COMMAND = Command("train", order=40, help="train a detector (judge) from a recipe on dataset shards",
                  description="Train a timm detector with Lightning on the WebDataset shards of a dataigm dataset. "
                  "Extra KEY=VALUE arguments override recipe fields, e.g. trainer.epochs=3 model.mode=finetune.")


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("recipe", type=Path, help="detector recipe YAML (see detectors/)")
    p.add_argument("overrides", nargs="*", metavar="KEY=VALUE", help="recipe overrides, e.g. optim.lr=1e-4")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="a recipe override (repeatable; same as KEY=VALUE after the recipe)")
    p.add_argument("--data", help="dataset folder or Hub dataset repo id (default: the recipe's data.path)")
    p.add_argument("--out", type=Path, help="run folder (default: runs/<recipe name>)")
    p.add_argument("--resume", nargs="?", const="last", help="continue the run in --out from its last checkpoint (or from CKPT)")
    p.add_argument("--devices", help="devices per node (int, 'auto' or a list like 0,1)")
    p.add_argument("--num-nodes", type=int, help="number of nodes (Slurm and torchrun are detected by Lightning)")
    p.add_argument("--accelerator", help="cpu, gpu, auto ...")
    p.add_argument("--strategy", help="Lightning strategy (default: ddp when several devices or nodes)")
    p.add_argument("--precision", help="32-true, 16-mixed, bf16-mixed ...")
    p.add_argument("--epochs", type=int, help="training epochs (overrides the recipe's trainer.epochs)")
    p.add_argument("--batch-size", type=int, help="images per training batch, per device (overrides the recipe's trainer.batch_size)")
    p.add_argument("--num-workers", type=int, help="data-loading worker processes (overrides the recipe's trainer.num_workers)")
    p.add_argument("--seed", type=int, help="random seed (overrides the recipe's trainer.seed)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar (batch jobs)")


FLAG_FIELDS = {"devices": "trainer.devices", "num_nodes": "trainer.num_nodes", "accelerator": "trainer.accelerator",
               "strategy": "trainer.strategy", "precision": "trainer.precision", "epochs": "trainer.epochs",
               "batch_size": "trainer.batch_size", "num_workers": "trainer.num_workers", "seed": "trainer.seed"}


def run(args: argparse.Namespace) -> int:
    from rich.console import Console

    from dataigm.train.present import metrics_table
    from dataigm.train.recipe import load_detector_recipe
    from dataigm.train.run import train_detector

    flags = [f"{field}={getattr(args, name)}" for name, field in FLAG_FIELDS.items() if getattr(args, name) is not None]
    recipe = load_detector_recipe(args.recipe, [*args.overrides, *args.set, *flags])
    out = args.out or Path("runs") / recipe.name
    result = train_detector(recipe, out, data=args.data, resume=args.resume, progress=not args.no_progress)
    if not result.reports:
        return 0  # not rank 0, or nothing to evaluate
    console = Console()
    for split, report in result.reports.items():
        console.print(metrics_table(report, f"{recipe.name}: {split} split"))
    console.print(f"run folder: {out}  (export with: dataigm export-detector {out} --out DIR)")
    return 0
