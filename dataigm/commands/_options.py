"""Option groups several commands share, defined once so a flag means the same thing everywhere.

* :func:`add_model_source_flags`: the pipeline and the components that replace parts of it (build, benchmark);
* :func:`add_metric_flags` + :func:`metric_settings`: CLIP, CSDR, CLIP score, LPIPS, FID/KID and bootstrap settings,
  as :class:`~dataigm.evaluation.evaluate.EvalConfig` fields (eval, benchmark);
* :func:`add_distributor_flags` + :func:`distributor_settings`: ``--distributor {local,ray}`` and ``--ray-address``
  (build, import-images, curate, judge);
* :func:`add_device_flag`, :func:`add_json_flag` and :func:`emit_json` (one JSON object on stdout).

A flag renamed because its old name meant two things keeps the old spelling for one release, through
:func:`add_deprecated_alias`: it still works and says which name to use.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

DTYPES = ["auto", "float32", "float16", "bfloat16"]
CLIP_IGMU = "openai/clip-vit-base-patch16"


class _DeprecatedAlias(argparse.Action):
    """Stores like the new flag and prints one warning line naming it."""

    def __init__(self, option_strings: list[str], dest: str, new: str = "", **kwargs: Any) -> None:
        self.new = new
        super().__init__(option_strings, dest, **kwargs)

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace, values: Any, option_string: str | None = None) -> None:
        print(f"{parser.prog}: warning: {option_string} is deprecated (it means something else in other commands); use {self.new}", file=sys.stderr)
        setattr(namespace, self.dest, values)


def add_deprecated_alias(p: argparse.ArgumentParser, old: str, new: str, dest: str, **kwargs: Any) -> None:
    """Accept ``old`` (hidden from --help) as a deprecated spelling of ``new``, stored in ``dest``."""
    p.add_argument(old, dest=dest, action=_DeprecatedAlias, new=new, help=argparse.SUPPRESS, **kwargs)


def add_model_source_flags(p: argparse.ArgumentParser, *, model_help: str, model_required: bool = False) -> None:
    """--model, --revision, --pipeline-class, --model-config, --unet, --text-encoder, --component, --weights-variant and
    --lora (see model_override)."""
    p.add_argument("--model", required=model_required, help=model_help)
    p.add_argument("--revision", help="Hub revision of --model")
    p.add_argument("--pipeline-class", help="force the diffusers pipeline class of a single-file checkpoint (default: inferred from it)")
    p.add_argument("--model-config", dest="model_config", help="diffusers folder/Hub id providing configs for a single-file checkpoint "
                   "(and the VAE/text encoders of a transformer-only SD3/Flux file)")
    add_deprecated_alias(p, "--config", "--model-config", "model_config")
    p.add_argument("--unet", help="replace the UNet: diffusers folder, Hub id[:SUBFOLDER], or a full or partial state dict "
                   "(.safetensors/.pt/.pth/.bin/.ckpt; diffusers or LDM 'model.diffusion_model.' keys), e.g. an ESD/UCE model")
    p.add_argument("--text-encoder", help="replace the text encoder: diffusers folder, Hub id[:SUBFOLDER] (AdvUnlearn), "
                   "or a state dict (also 'text_model.'-prefixed)")
    p.add_argument("--component", action="append", default=[], metavar="NAME=PATH", help="replace any component (repeatable)")
    p.add_argument("--weights-variant", dest="weights_variant", help="diffusers weight variant of --model, e.g. fp16 (a folder "
                   "holding only *.fp16.safetensors)")
    p.add_argument("--lora", action="append", default=[], metavar="FILE[:SCALE]",
                   help="a LoRA adapter (.safetensors, diffusers/PEFT or kohya layout) loaded onto --model at SCALE "
                   "(default 1; 0 gives the base model's images); repeatable; sha256 and scale are recorded")


def add_generation_flags(p: argparse.ArgumentParser, *, what: str) -> None:
    """--device, --dtype and --generation-batch-size of image generation (``what``: whose settings they override)."""
    add_device_flag(p, default="auto", help="auto (cuda:<LOCAL_RANK> if available, else cpu), cpu, cuda, cuda:1, mps")
    p.add_argument("--dtype", choices=DTYPES, help=f"override the {what}'s dtype")
    p.add_argument("--generation-batch-size", dest="batch_size", type=int, help=f"images generated per batch (overrides the {what}'s; "
                   "batched kernels change the pixels, so it is part of the settings)")
    add_deprecated_alias(p, "--batch-size", "--generation-batch-size", "batch_size", type=int)


def add_metric_flags(p: argparse.ArgumentParser, *, suite_defaults: bool = False) -> None:
    """The metric settings of ``eval`` (and of ``benchmark``, whose defaults follow the suite's metrics)."""
    suite = ["suite"] if suite_defaults else []
    p.add_argument("--clip", nargs="?", const=CLIP_IGMU, metavar="MODEL",
                   help=f"CLIP model path or Hub id: compute CSDR (IGMU) and csdr_win_rate; without MODEL: {CLIP_IGMU}, IGMU's")
    p.add_argument("--csdr-unit", choices=["image", "prompt"], default="image",
                   help="CSDR per image (IGMU's README: their reported numbers; default) or per prompt (their published script as written)")
    p.add_argument("--csdr-prompts", choices=["igmu", "pair"], default="igmu",
                   help="text CSDR scores against: IGMU's cleaned text, bug included (default: IGMU's CSDR), or the "
                        "concept-removed prompt p' (ours, reported as csdr-pair)")
    p.add_argument("--clip-score", choices=["torchmetrics", "torchmetrics-eot", "clipscore"],
                   help="CLIP score of forget and retain images: torchmetrics max(100 mean cos, 0) (token ids sliced to 77, as "
                   "torchmetrics), torchmetrics-eot (the same, keeping the end-of-text token) or SPM's 2.5 max(cos, 0)")
    p.add_argument("--clip-score-model", help="CLIP model for --clip-score (default: ViT-L/14 for torchmetrics, ViT-B/32 for clipscore)")
    p.add_argument("--forget-reference", choices=["pair", "same-prompt"], default="pair",
                   help="forget LPIPS/FID/KID against the original's image of the concept-removed prompt (pair, IGMU; default) "
                   "or of the same prompt (same-prompt); retain images always use the same prompt")
    p.add_argument("--lpips-net", default=(suite or ["alex"])[0], choices=[*suite, "alex", "vgg", "squeeze", "none"],
                   help="LPIPS network" + (" (default: alex when the suite lists lpips)" if suite else " (default: %(default)s)"))
    p.add_argument("--fid-features", default=(suite or ["inception"])[0],
                   help=("suite | " if suite else "") + "inception | local-dir:PATH | hf-hub:org/name | timm name | none")
    p.add_argument("--fid-weights", help="local copy of the FID Inception weights")
    p.add_argument("--kid-subset-size", type=int, default=1000,
                   help="KID subset size; KID is left out (with a note) when a side has fewer images (default: %(default)s)")
    add_nudenet_model_flag(p)
    p.add_argument("--bootstrap", type=int, default=1000, help="bootstrap resamples (default: %(default)s)")


def add_nudenet_model_flag(p: argparse.ArgumentParser) -> None:
    """--nudenet-model: a local copy of a NudeNet preset's detector file, for offline machines."""
    p.add_argument("--nudenet-model", help="nudenet presets: a local copy of the preset's detector file (best.onnx for "
                   "rece/unlearndiffatk, 320n.onnx) or its nudenet wheel; default: installed, cached, or fetched from PyPI")


def metric_settings(args: argparse.Namespace) -> dict[str, Any]:
    """The :class:`~dataigm.evaluation.evaluate.EvalConfig` fields that :func:`add_metric_flags` set (``none`` -> off)."""
    def off(v: Any) -> Any:
        return None if v == "none" else v

    return {"clip": args.clip, "csdr_unit": args.csdr_unit, "csdr_prompts": args.csdr_prompts, "clip_score": args.clip_score,
            "clip_score_model": args.clip_score_model, "forget_reference": args.forget_reference, "lpips_net": off(args.lpips_net),
            "fid_feature": off(args.fid_features), "fid_weights": args.fid_weights, "n_resamples": args.bootstrap,
            "kid_subset_size": args.kid_subset_size, "nudenet_model": args.nudenet_model}


def add_array_task_flag(p: argparse.ArgumentParser) -> None:
    """--array-task I/N: this process is task I of N of a job array (a world that never meets)."""
    p.add_argument("--array-task", metavar="I/N", help="run as task I of N (from 0) of a job array whose tasks never meet: "
                   "each writes its share of shards and the last to finish writes the manifest (Slurm arrays are read from "
                   "SLURM_ARRAY_TASK_ID/SLURM_ARRAY_TASK_COUNT without it); see docs/many-machines.md")


def add_device_flag(p: argparse.ArgumentParser, default: str | None = None, help: str = "cpu, cuda, cuda:1, mps (default: cuda when available)") -> None:
    p.add_argument("--device", default=default, help=help)


def add_json_flag(p: argparse.ArgumentParser, what: str = "the result") -> None:
    p.add_argument("--json", action="store_true", help=f"print {what} as exactly one JSON object on stdout")


def emit_json(obj: Any) -> None:
    """Print ``obj`` as one JSON line on stdout (sorted keys, ASCII-escaped): what every ``--json`` prints."""
    sys.stdout.write(json.dumps(obj, sort_keys=True) + "\n")


def add_distributor_flags(p: argparse.ArgumentParser) -> None:
    """--distributor and --ray-address: where the command's shards are done (see dataigm.distributors)."""
    from dataigm.distributors import DISTRIBUTORS

    p.add_argument("--distributor", choices=DISTRIBUTORS, default="local",
                   help="local: this process is one rank (alone, under torchrun or srun); ray: this one process hands every "
                   "shard to actors on a Ray cluster, one per GPU (needs the ray extra; default: %(default)s)")
    p.add_argument("--ray-address", metavar="ADDR", help="--distributor ray: the cluster to join (default: RAY_ADDRESS, else a "
                   "local cluster on this machine), e.g. auto or ray://head:10001")


def distributor_settings(args: argparse.Namespace) -> dict[str, Any]:
    """The ``distributor`` and ``ray_address`` keyword arguments of the library call, checked: a missing extra or a
    --ray-address without --distributor ray fails here in one line."""
    from dataigm.core.errors import InputError
    from dataigm.distributors import EXTRA_OF, is_installed

    if args.ray_address and args.distributor != "ray":
        raise InputError(f"--ray-address {args.ray_address} needs --distributor ray")
    if not is_installed(args.distributor):
        extra = EXTRA_OF[args.distributor]
        raise InputError(f"--distributor {args.distributor} needs the {extra} extra: pip install 'dataigm[{extra}]'")
    return {"distributor": args.distributor, "ray_address": args.ray_address}
