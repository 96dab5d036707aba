"""dataigm export-detector: a training run -> timm Hub layout (config.json, model.safetensors, README.md)."""

from __future__ import annotations

import argparse
from pathlib import Path
from dataigm.commands._options import Command


COMMAND = Command("export-detector", order=50, help="export a trained detector in timm's Hub layout with a model card",
                  description="Writes config.json + model.safetensors as timm's own Hub models (timm.create_model('local-dir:DIR', "
                  "pretrained=True) loads it) and README.md from cards/detector.md.j2. Publish with dataigm push.")


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("run_dir", type=Path, help="training run folder (dataigm train --out)")
    p.add_argument("--out", type=Path, required=True, help="export folder")
    p.add_argument("--checkpoint", type=Path, help="checkpoint to export (default: RUN_DIR/checkpoints/last.ckpt)")
    p.add_argument("--repo-id", default="", help="Hub model repo id the card's usage example should name")
    p.add_argument("--card", type=Path, help="model card template (default: cards/detector.md.j2)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing export folder")


def run(args: argparse.Namespace) -> int:
    import json

    from dataigm.train.export import export_detector

    out = export_detector(args.run_dir, args.out, checkpoint=args.checkpoint, repo_id=args.repo_id, card_template=args.card, overwrite=args.overwrite)
    config = json.loads((out / "config.json").read_text())
    d = config["dataigm"]
    print(f"exported {config['architecture']} ({config['num_classes']} classes: {', '.join(config['label_names'][:6])}"
          f"{' ...' if config['num_classes'] > 6 else ''}; threshold {d['threshold']}) to {out}")
    print(f"load with: timm.create_model('local-dir:{out}', pretrained=True)")
    return 0
