"""What a command module declares (:class:`Command`), and the option groups several commands share, defined once so a
flag means the same thing everywhere.

* :func:`add_model_source_flags`: the pipeline and the components that replace parts of it (build, benchmark);
* :func:`add_metric_flags` + :func:`metric_settings`: CLIP, CSDR, CLIP score, LPIPS, FID/KID and bootstrap settings,
  as :class:`~dataigm.evaluation.evaluate.EvalConfig` fields (eval, benchmark);
* :func:`add_distributor_flags` + :func:`distributor_settings`: ``--distributor {local,ray}`` and ``--ray-address``
  (build, import-images, curate, judge);
* :func:`add_device_flag`, :func:`add_json_flag` and :func:`emit_json` (one JSON object on stdout).

A renamed flag keeps its old spelling for one release through :func:`add_alias` (a renamed command through
:func:`add_command`): hidden from --help, it still works and prints one note naming the new spelling.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass
from typing import Any

DTYPES = ["auto", "float32", "float16", "bfloat16"]
CLIP_IGMU = "openai/clip-vit-base-patch16"


@dataclass(frozen=True)
class Command:
    """One row of the command table: each module of :mod:`dataigm.commands` declares ``COMMAND = Command(...)``
    beside ``add_arguments(p)`` and ``run(args) -> int``, and :func:`dataigm.cli.build_parser` makes the sub-parser.

    ``order`` places the command in ``dataigm --help`` (pipeline order); ``description`` is the ``--help`` text,
    ``help`` when left out; each of ``old_names`` still runs it, hidden, with a note (see :func:`add_command`).

        >>> Command("verify", order=12, help="check shards against the manifest").description
        'check shards against the manifest'
    """

    name: str
    order: int
    help: str
    description: str = ""
    old_names: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not self.description:
            object.__setattr__(self, "description", self.help)

    def add_to(self, sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
        """The sub-parser of this command (its arguments still to add)."""
        return add_command(sub, self.name, old_names=self.old_names, help=self.help, description=self.description)


# The release in which the old names go (the CHANGELOG lists them).
ALIASES_UNTIL = "0.3.0"
_NOTED: set[str] = set()  # notes already printed by this process: one line per old name, however often it is typed


def alias_note(old: str, note: str) -> None:
    """Print, once per process, the one-line note that ``old`` is an old name: ``note`` says what to type instead."""
    if old in _NOTED:
        return
    _NOTED.add(old)
    print(f"dataigm: note: {old} is an old name (it works until {ALIASES_UNTIL}); {note}", file=sys.stderr)


class _OldName(argparse.Action):
    """A hidden old spelling of a flag: stores what the new flag would (appending for a repeatable one, ``const``
    when it takes no value) and prints one note naming the new spelling."""

    def __init__(self, option_strings: list[str], dest: str, note: str = "", append: bool = False, **kwargs: Any) -> None:
        self.note, self.append = note, append
        super().__init__(option_strings, dest, **kwargs)

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace, values: Any, option_string: str | None = None) -> None:
        alias_note(str(option_string), self.note)
        value = self.const if self.nargs == 0 or (self.nargs == "?" and values is None) else values
        if self.append:
            value = [*(getattr(namespace, self.dest, None) or []), value]
        setattr(namespace, self.dest, value)


def add_alias(p: argparse.ArgumentParser, old: str, new: str, dest: str, *, note: str = "", append: bool = False, **kwargs: Any) -> None:
    """Accept ``old`` (hidden from --help) as an old spelling of ``new``, stored in ``dest``; typing it prints one note
    (``note``, or "use NEW"). The one helper every renamed flag goes through."""
    p.add_argument(old, dest=dest, action=_OldName, note=note or f"use {new}", append=append, help=argparse.SUPPRESS, **kwargs)


def add_deprecated_alias(p: argparse.ArgumentParser, old: str, new: str, dest: str, **kwargs: Any) -> None:
    """Accept ``old`` (hidden from --help) as a deprecated spelling of ``new``, stored in ``dest``."""
    add_alias(p, old, new, dest, **kwargs)


def add_command(sub: argparse._SubParsersAction, name: str, *, old_names: tuple[str, ...] = (), **kwargs: Any) -> argparse.ArgumentParser:
    """A sub-command ``name``; each of ``old_names`` runs it too, hidden from the command list, with a note
    (printed by :func:`note_old_command` once the command line is parsed)."""
    p = sub.add_parser(name, **kwargs)
    for old in old_names:
        sub._name_parser_map[old] = p  # the same parser under the old name; no help entry, so --help does not list it
    p.set_defaults(_new_name=name)
    return p


def note_old_command(args: argparse.Namespace) -> None:
    """The note for a command typed by its old name (see :func:`add_command`)."""
    new = getattr(args, "_new_name", None)
    if new and args.command != new:
        alias_note(f"'dataigm {args.command}'", f"use 'dataigm {new}'")


def add_judge_flag(p: argparse.ArgumentParser, *, help: str, required: bool = True, repeat: bool = True) -> None:
    """--judge SPEC (repeatable unless ``repeat`` is false), with --detector as its old spelling; ``required``: the
    command line refuses a run without one (checked after parsing, so that the old spelling counts)."""
    p.add_argument("--judge", dest="judge", metavar="SPEC", required=False, action="append" if repeat else "store",
                   help=help + ("; repeatable" if repeat else ""))
    add_alias(p, "--detector", "--judge", "judge", append=repeat, metavar="SPEC")
    if required:
        p.set_defaults(_required_judge=True)


WEIGHT_FLAGS = {  # old per-kind weight flag -> (dest, the spec that replaces it)
    "--nudenet-model": ("nudenet_model", "--judge nudenet[:PRESET]@PATH"),
    "--imagenet-model": ("imagenet_model", "--judge imagenet:<class>@MODEL"),
    "--igmu-head": ("igmu_head", "--judge igmu:<task>@DIR"),
}


def add_weight_aliases(p: argparse.ArgumentParser, *flags: str) -> None:
    """The old per-kind weight flags: hidden, still applied to the judges of their kind, each with a note giving the
    ``KIND[:NAME]@LOCATION`` spelling that replaces it."""
    for flag in flags:
        dest, spec = WEIGHT_FLAGS[flag]
        add_alias(p, flag, spec, dest, note=f"give the weights in the judge spec: {spec}", metavar="PATH")


def add_clip_model_flag(p: argparse.ArgumentParser, *, what: str) -> None:
    """--clip-model MODEL: the one flag for CLIP weights (``what`` says which parts of the command use them)."""
    p.add_argument("--clip-model", dest="clip_model", metavar="MODEL",
                   help=f"CLIP weights (a local folder or Hub id) for {what}; default: each part's published CLIP model")


def add_batch_size_flag(p: argparse.ArgumentParser, *, of: str, default: int | None = 32) -> None:
    """--batch-size N; ``of`` says of what (images judged per batch, images generated per batch...)."""
    p.add_argument("--batch-size", type=int, default=default,
                   help=f"{of} per batch" + (" (default: %(default)s)" if default is not None else ""))


def add_workers_flag(p: argparse.ArgumentParser) -> None:
    p.add_argument("--workers", type=int, default=None, help="image decoding worker processes (default: automatic)")


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
    p.add_argument("--csdr", action="store_true", help=f"compute CSDR (IGMU) and csdr_win_rate with CLIP (default model: {CLIP_IGMU}, IGMU's)")
    add_clip_model_flag(p, what="CSDR, the CLIP score and CLIP-based judges (e.g. igmu:<task>)")
    add_alias(p, "--clip", "--csdr", "clip_old", nargs="?", const="", metavar="MODEL", note="use --csdr, and --clip-model MODEL for the weights")
    p.add_argument("--csdr-unit", choices=["image", "prompt"], default="image",
                   help="CSDR per image (IGMU's README: their reported numbers; default) or per prompt (their published script as written)")
    p.add_argument("--csdr-prompts", choices=["igmu", "pair"], default="igmu",
                   help="text CSDR scores against: IGMU's cleaned text, bug included (default: IGMU's CSDR), or the "
                        "concept-removed prompt p' (ours, reported as csdr-pair)")
    p.add_argument("--clip-score", choices=["torchmetrics", "torchmetrics-eot", "clipscore"],
                   help="CLIP score of forget and retain images: torchmetrics max(100 mean cos, 0) (token ids sliced to 77, as "
                   "torchmetrics), torchmetrics-eot (the same, keeping the end-of-text token) or SPM's 2.5 max(cos, 0)")
    add_alias(p, "--clip-score-model", "--clip-model", "clip_model", metavar="MODEL")
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
    add_weight_aliases(p, "--nudenet-model")
    p.add_argument("--bootstrap", type=int, default=1000, help="bootstrap resamples (default: %(default)s)")


def metric_settings(args: argparse.Namespace) -> dict[str, Any]:
    """The :class:`~dataigm.evaluation.evaluate.EvalConfig` fields that :func:`add_metric_flags` set (``none`` -> off)."""
    def off(v: Any) -> Any:
        return None if v == "none" else v

    csdr = args.csdr or args.clip_old is not None
    clip_model = args.clip_model or args.clip_old or None
    return {"clip": (clip_model or CLIP_IGMU) if csdr else None, "csdr_unit": args.csdr_unit, "csdr_prompts": args.csdr_prompts,
            "clip_score": args.clip_score, "clip_score_model": clip_model, "forget_reference": args.forget_reference,
            "lpips_net": off(args.lpips_net), "fid_feature": off(args.fid_features), "fid_weights": args.fid_weights,
            "n_resamples": args.bootstrap, "kid_subset_size": args.kid_subset_size, "nudenet_model": args.nudenet_model,
            "clip_model": clip_model}


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


def in_flags(message: str, parser: argparse.ArgumentParser, parameters: dict[str, str] | None = None) -> str:
    """A library message in the command's words: the library names its parameters (``force=True``, ``out=DIR``,
    ``clip_model=DIR``); where the command has a flag for the parameter, the flag replaces it (``--force``,
    ``--out DIR``, ``--clip-model DIR``). ``parameters`` maps a library parameter to the flag's dest where the two
    names differ. Parameters the command has no flag for stay as the library wrote them."""
    import re

    flags: dict[str, argparse.Action] = {}
    for action in parser._actions:
        if any(o.startswith("--") for o in action.option_strings) and action.help != argparse.SUPPRESS:
            flags.setdefault(action.dest, action)

    def flag(m: re.Match) -> str:
        action = flags.get((parameters or {}).get(m.group(1), m.group(1)))
        if action is None:
            return m.group(0)
        name = next(o for o in action.option_strings if o.startswith("--"))
        switch = action.nargs in (0, "?")
        if m.group(2) == "True" and switch:  # 'force=True' -> '--force'
            return name
        if m.group(2) == "False" and switch:  # 'split_from_folders=False' -> '--no-split-from-folders'
            return next((o for o in action.option_strings if o.startswith("--no-")), m.group(0))
        if m.group(2):
            return f"{name} {m.group(2)}"
        following = m.string[m.end():m.end() + 1]
        return name if following in ("", " ", ",", ")", ";") else f"{name} "  # 'judge= a copy' -> '--judge a copy'

    return re.sub(r"(?<![\w.\-])([a-z][a-z0-9_]*)=(True\b|False\b)?", flag, message)
