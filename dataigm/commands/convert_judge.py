"""dataigm convert-judge: turn a published judge's pickled weights into safetensors + config, loading tensors only."""

from __future__ import annotations

import argparse
from pathlib import Path

ORDER = 61
CONVERTERS = ("igmu", "unlearncanvas")


def add_parser(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    p = sub.add_parser(
        "convert-judge",
        help="convert a published judge's pickled head (IGMU) to safetensors + config.json",
        description="Convert IGMU's classifier_head.pth (loaded with torch.load(weights_only=True): tensors only) into "
        "model.safetensors + config.json with the task's label orientation and threshold; judge with --detector igmu:<task> "
        "--igmu-head DIR.",
    )
    p.add_argument("kind", choices=CONVERTERS, help="which published judge")
    p.add_argument("weights", type=Path, help="the pickled head, e.g. Weights/bi_multiC/nudity/classifier_head.pth")
    p.add_argument("--out", type=Path, required=True, help="output folder")
    p.add_argument("--task", help="nudity | vangogh | church | parachute (default: from the head's folder name)")
    p.add_argument("--clip", help="CLIP model the head was trained on (default: openai/clip-vit-base-patch32)")
    p.add_argument("--arch", help="unlearncanvas: the timm model the checkpoint fits (default vit_large_patch16_224.augreg_in21k)")
    return p


def run(args: argparse.Namespace) -> int:
    import json

    if args.kind == "unlearncanvas":
        return _run_unlearncanvas(args)

    from dataigm.judge.igmu import IGMU_CLIP, convert_igmu_head

    out = convert_igmu_head(args.weights, args.out, task=args.task, clip=args.clip or IGMU_CLIP)
    cfg = json.loads((out / "config.json").read_text())
    if cfg["architecture"] == "Multi_MultiC":
        print(f"wrote {out}: IGMU Multi_MultiC {cfg['task']} head ({cfg['num_classes']} classes, argmax), CLIP {cfg['clip_model']}")
        return 0
    print(f"wrote {out}: IGMU {cfg['task']} head, P({cfg['concept']}) = {cfg['p_concept']}, threshold {cfg['threshold']}, CLIP {cfg['clip_model']}")
    return 0


def _run_unlearncanvas(args: argparse.Namespace) -> int:
    from dataigm.judge.unlearncanvas import UNLEARNCANVAS_ARCH, convert_unlearncanvas

    out = convert_unlearncanvas(args.weights, args.out, arch=args.arch or UNLEARNCANVAS_ARCH)
    print(f"wrote {out}: UnlearnCanvas classifier (timm local-dir); judge with unlearncanvas:<style|object>@{out}")
    return 0
