"""dataigm eval: forgetting, preservation, fidelity and alignment of unlearned models; HTML + Markdown + JSON + charts."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from dataigm.evaluation.evaluate import EvalConfig, ImageSet

from dataigm.commands._options import (
    Command, add_batch_size_flag, add_device_flag, add_json_flag, add_judge_flag, add_metric_flags, add_workers_flag, emit_json, metric_settings,
)
from dataigm.core.errors import InputError

# Library parameters whose flag has another name (see dataigm.cli.in_flags).
PARAMETERS = {"fid_feature": "fid_features", "n_resamples": "bootstrap", "detector": "judge"}


COMMAND = Command("eval", order=65,
                  help="evaluate unlearned models: forgetting, preservation, LPIPS/FID/KID vs the original, CSDR; writes a report",
                  description="Each image set is a folder of images (named <prompt index>_<seed>.png, with --prompts) or shards. "
                  "Give one unlearned model with --forget/--retain, or several with --method NAME=DIR (DIR holding forget/ and retain/).")


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--forget", type=Path, help="unlearned model's images of forget prompts")
    p.add_argument("--retain", type=Path, help="unlearned model's images of retain prompts")
    p.add_argument("--method", action="append", default=[], metavar="NAME=DIR", help="an unlearned model: DIR/forget and DIR/retain (repeatable)")
    p.add_argument("--layout", nargs=2, metavar=("NAME", "ROOT"),
                   help="read another benchmark's output folder as it is: igmu (a task folder), unlearndiffatk, unlearncanvas:<THEME> "
                   "(see docs/judging.md)")
    p.add_argument("--original-forget", type=Path, help="original model's images of the forget prompts (same prompts and seeds)")
    p.add_argument("--original-retain", type=Path, help="original model's images of the retain prompts")
    p.add_argument("--original", type=Path, help="shorthand: DIR/forget, DIR/retain (and DIR/pair if present) of the original model")
    p.add_argument("--original-pair", type=Path,
                   help="original model's images of the concept-removed prompts, named after the forget prompt's index and seed")
    p.add_argument("--fid-reference", type=Path, help="unpaired reference folder (e.g. real COCO images), or published statistics: coco-30k (HUB's, downloaded once) or a .npz "
                   "with mu and sigma: FID (and KID with a folder) of retain images against it")
    p.add_argument("--no-attack", type=Path, help="images of the forget prompts without attack: report the attack success rate (UnlearnDiffAtk)")
    p.add_argument("--aggregate", choices=["image", "prompt-any"], default="image",
                   help="forgetting per image, or per prompt: a prompt counts when any of its images is flagged (default: %(default)s)")
    p.add_argument("--group-by", action="append", default=[], metavar="FIELD", help="also group rates by this metadata field (repeatable)")
    p.add_argument("--prompts", nargs=2, type=Path, metavar=("FORGET_JSONL", "RETAIN_JSONL"), help="prompt files for image folders")
    p.add_argument("--split", help="dataset folders: use one split")
    add_judge_flag(p, help="a judge spec KIND[:NAME][@WEIGHTS] or a detector folder ('dataigm list-judges'); with several, the first "
                   "gives every metric, each further one its forgetting and preservation, with the pairwise kappa")
    p.add_argument("--concept", help="the class that counts as the concept (multi-class judges)")
    p.add_argument("--threshold", type=float, help="override every judge's decision threshold (a probability in [0, 1])")
    p.add_argument("--quality", action="append", default=[], metavar="SPEC",
                   help="a score judge (aesthetic@DIR, imagereward@DIR, pickscore, vqascore): its mean per method on the same prompts, "
                   "with intervals, beside forgetting (HUB's quality table; repeatable)")
    p.add_argument("--person-detector", help="person-presence rate on forget images (default for nudity: nudenet-body)")
    p.add_argument("--cmmd", nargs="?", const="openai/clip-vit-large-patch14-336", metavar="MODEL",
                   help="CMMD wherever FID is computed (default model: openai/clip-vit-large-patch14-336)")
    p.add_argument("--lpips-size", type=int, help="resize both images of a pair to this size for LPIPS (default: native)")
    add_metric_flags(p)
    p.add_argument("--audit", type=Path, metavar="AUDIT_JSON",
                   help="a 'dataigm audit --json' result for this judge: report Rogan-Gladen corrected forgetting beside the raw rates")
    p.add_argument("--validity-level", type=float, default=0.8,
                   help="warn when the judge flags less than this share of the original model's forget images (default: %(default)s)")
    p.add_argument("--seed", type=int, default=0, help="bootstrap seed")
    p.add_argument("--bootstrap-unit", choices=["prompt", "image"], default="prompt",
                   help="resample prompts (cluster bootstrap; default) or single images")
    add_batch_size_flag(p, of="images judged (and scored by each metric)")
    add_workers_flag(p)
    add_device_flag(p)
    p.add_argument("--out", type=Path, default=Path("eval-report"), help="report folder (default: %(default)s)")
    add_json_flag(p, "the report")


def parse_methods(args: argparse.Namespace) -> dict[str, tuple[Path, Path]]:
    """NAME -> (forget, retain) from --forget/--retain and --method NAME=DIR; errors name the bad value."""
    methods: dict[str, tuple[Path, Path]] = {}
    if args.forget or args.retain:
        if not (args.forget and args.retain):
            raise InputError("--forget and --retain go together")
        methods["unlearned"] = (args.forget, args.retain)
    for spec in args.method:
        name, sep, folder = spec.partition("=")
        if not sep or not name or not folder:
            raise InputError(f"--method {spec!r}: expected NAME=DIR")
        if name in methods or name == "original":
            raise InputError(f"--method {spec!r}: name {name!r} is already used")
        methods[name] = (Path(folder) / "forget", Path(folder) / "retain")
    if not methods:
        raise InputError("give --forget/--retain or at least one --method NAME=DIR")
    return methods


def eval_config(args: argparse.Namespace) -> "EvalConfig":
    """The :class:`~dataigm.evaluation.evaluate.EvalConfig` of the command line."""
    from dataigm.evaluation.evaluate import EvalConfig

    return EvalConfig(
        detector=args.judge[0], more_detectors=tuple(args.judge[1:]), concept=args.concept, threshold=args.threshold,
        person_detector=args.person_detector, aggregate=args.aggregate, group_by=tuple(args.group_by), cmmd=args.cmmd,
        fid_reference=str(args.fid_reference) if args.fid_reference else None, lpips_size=args.lpips_size,
        batch_size=args.batch_size, workers=args.workers, device=args.device, seed=args.seed, bootstrap_unit=args.bootstrap_unit,
        validity_level=args.validity_level, audit=str(args.audit) if args.audit else None, quality=tuple(args.quality), **metric_settings(args),
    )


def open_inputs(args: argparse.Namespace) -> "tuple[dict[str, ImageSet], ImageSet | None]":
    """(methods, original or None): from ``--layout NAME ROOT``, or from the per-set flags."""
    from dataigm.evaluation.evaluate import open_set

    if args.layout:
        from dataigm.evaluation.layouts import create_layout

        given = [flag for flag, v in (("--method", args.method), ("--forget", args.forget), ("--original", args.original),
                                      ("--original-forget", args.original_forget), ("--prompts", args.prompts), ("--no-attack", args.no_attack)) if v]
        if given:
            raise InputError(f"--layout reads methods, original and prompts from its folder; drop {', '.join(given)}")
        return create_layout(args.layout[0], Path(args.layout[1]))
    methods = parse_methods(args)
    orig_f, orig_r, orig_p = args.original_forget, args.original_retain, args.original_pair
    if args.original:
        orig_f, orig_r = args.original / "forget", args.original / "retain"
        if orig_p is None and (args.original / "pair").is_dir():
            orig_p = args.original / "pair"
    if bool(orig_f) != bool(orig_r):
        raise InputError("--original-forget and --original-retain go together")
    if args.no_attack and len(methods) != 1:
        raise InputError(f"--no-attack belongs to one unlearned model, got {len(methods)}: {', '.join(methods)}")
    prompts = tuple(args.prompts) if args.prompts else None
    sets = {name: open_set(f, r, prompts, args.split, no_attack=args.no_attack) for name, (f, r) in methods.items()}
    return sets, (open_set(orig_f, orig_r, prompts, args.split, pair=orig_p) if orig_f else None)


def run(args: argparse.Namespace) -> int:
    from dataigm.evaluation.evaluate import evaluate
    from dataigm.report.write import write_report

    if args.device:  # before hours of work, not when the first model is placed
        from dataigm.core.devices import check_device

        check_device(args.device)
    cfg = eval_config(args)
    sets, original = open_inputs(args)
    report = evaluate(sets, cfg, original)  # a model that cannot load: its fix in parameters, shown in flags by the CLI
    report["prompts"] = [str(Path(p).resolve()) for p in args.prompts] if args.prompts else None
    if args.layout:
        report["layout"] = {"name": args.layout[0], "root": str(Path(args.layout[1]).expanduser().resolve())}
    paths = write_report(report, args.out)
    if args.json:
        emit_json(report)
    else:
        from rich.console import Console

        console = Console()
        from dataigm.commands._options import in_flags
        from dataigm.evaluation.preflight import Missing

        left_out = report.get("left_out") or []
        notes = [Missing(e["what"], e["model"], e["reason"], True).note() if e["what"] != "pair" else e["note"] for e in left_out]
        if getattr(args, "_parser", None) is not None:  # in this command's flags
            notes = [in_flags(n, args._parser, PARAMETERS) for n in notes]
        for warning in notes + report["warnings"][len(left_out):]:
            console.print(f"[yellow]warning:[/] {warning}")
        for name, res in report["methods"].items():
            f, pr = res["forgetting"].get("all", {}), res["preservation"].get("all", {})
            console.print(f"{name:>12}: forgetting {_pct(f)}  preservation {_pct(pr)}")
        console.print(f"report: {paths['html']} ({paths['markdown'].name}, {paths['json'].name}, {paths['chart'].name})")
    return 0


def _pct(est: dict) -> str:
    if est.get("value") is None:
        return "n/a"
    prompts = est.get("n_prompts")
    behind = f"n={est['n']}" + (f", {prompts} prompt{'s' if prompts != 1 else ''}" if prompts is not None else "")
    return f"{est['value']:.1%} [{est['low']:.1%}, {est['high']:.1%}] ({behind})"
