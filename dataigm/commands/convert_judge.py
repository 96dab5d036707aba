"""dataigm convert-judge: turn a published judge's pickled weights into safetensors + config, loading tensors only."""

from __future__ import annotations

import argparse
from pathlib import Path

from dataigm.commands._options import Command, add_alias

CONVERTERS = ("aesthetic", "igmu", "imagereward", "q16", "unlearncanvas")


COMMAND = Command("convert-judge", order=61,
                  help="convert a published judge's pickled weights (IGMU's head, Q16's prompts) to safetensors + config.json",
                  description="Convert IGMU's classifier_head.pth (loaded with torch.load(weights_only=True): tensors only) into "
                  "model.safetensors + config.json with the task's label orientation and threshold; judge with --judge igmu:<task>@DIR. "
                  "Q16's prompts.p (a pickled numpy array, read by an unpickler that accepts numpy arrays only) becomes a q16@DIR judge. "
                  "The LAION aesthetic predictor's .pth and ImageReward.pt (plain state dicts, weights_only) become aesthetic@DIR and "
                  "imagereward@DIR.")


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("kind", choices=CONVERTERS, help="which published judge")
    p.add_argument("weights", type=Path, help="the pickled head, e.g. Weights/bi_multiC/nudity/classifier_head.pth")
    p.add_argument("--out", type=Path, required=True, help="output folder")
    p.add_argument("--task", help="nudity | vangogh | church | parachute (default: from the head's folder name)")
    p.add_argument("--clip-model", dest="clip_model", metavar="MODEL", help="CLIP weights (a local folder or Hub id) the head/prompts were "
                   "trained on (default: IGMU openai/clip-vit-base-patch32; Q16 from the data/<CLIP>/ folder, else ViT-L/14 for 768-dim prompts)")
    add_alias(p, "--clip", "--clip-model", "clip_model", metavar="MODEL")
    p.add_argument("--tokenizer", help="imagereward: BLIP's BERT tokenizer (default google-bert/bert-base-uncased: Hub cache or a folder)")
    p.add_argument("--arch", help="unlearncanvas: the timm model the checkpoint fits (default vit_large_patch16_224.augreg_in21k)")


def run(args: argparse.Namespace) -> int:
    return {"aesthetic": _aesthetic, "igmu": _igmu, "imagereward": _imagereward, "q16": _q16, "unlearncanvas": _unlearncanvas}[args.kind](args)


def _aesthetic(args: argparse.Namespace) -> int:
    from dataigm.judges.aesthetic import AESTHETIC_CLIP, convert_aesthetic

    out = convert_aesthetic(args.weights, args.out, clip=args.clip_model or AESTHETIC_CLIP)
    print(f"wrote {out}: LAION aesthetic predictor MLP; judge with --judge aesthetic@{out} or eval --quality aesthetic@{out}")
    return 0


def _imagereward(args: argparse.Namespace) -> int:
    from dataigm.judges.imagereward import IMAGEREWARD_TOKENIZER, convert_imagereward, imagereward_blip_config, imagereward_tokenizer

    out = convert_imagereward(args.weights, imagereward_blip_config(), imagereward_tokenizer(args.tokenizer or IMAGEREWARD_TOKENIZER), args.out)
    print(f"wrote {out}: ImageReward (BLIP + MLP); judge with --judge imagereward@{out} or eval --quality imagereward@{out}")
    return 0


def _q16(args: argparse.Namespace) -> int:
    import json

    from dataigm.core.errors import DataigmError
    from dataigm.judges.q16 import convert_q16_prompts

    if args.task:
        raise DataigmError("--task is for igmu heads; Q16's prompts have one task (inappropriate content)")
    out = convert_q16_prompts(args.weights, args.out, clip=args.clip_model)
    cfg = json.loads((out / "config.json").read_text())
    print(f"wrote {out}: Q16 prompts ({cfg['dim']}-dim, {cfg['dtype']}), CLIP {cfg['clip_model']}; judge with --judge q16@{out}")
    return 0


def _igmu(args: argparse.Namespace) -> int:
    import json

    from dataigm.judges.igmu import IGMU_CLIP, convert_igmu_head

    out = convert_igmu_head(args.weights, args.out, task=args.task, clip=args.clip_model or IGMU_CLIP)
    cfg = json.loads((out / "config.json").read_text())
    if cfg["architecture"] == "Multi_MultiC":
        print(f"wrote {out}: IGMU Multi_MultiC {cfg['task']} head ({cfg['num_classes']} classes, argmax), CLIP {cfg['clip_model']}")
        return 0
    print(f"wrote {out}: IGMU {cfg['task']} head, P({cfg['concept']}) = {cfg['p_concept']}, threshold {cfg['threshold']}, CLIP {cfg['clip_model']}")
    return 0


def _unlearncanvas(args: argparse.Namespace) -> int:
    from dataigm.judges.unlearncanvas import UNLEARNCANVAS_ARCH, convert_unlearncanvas

    out = convert_unlearncanvas(args.weights, args.out, arch=args.arch or UNLEARNCANVAS_ARCH)
    print(f"wrote {out}: UnlearnCanvas classifier (timm local-dir); judge with unlearncanvas:<style|object>@{out}")
    return 0
