"""``dataigm benchmark``: a suite plus an unlearned checkpoint -> forget/retain images of both models -> the
``dataigm eval`` report, in one resumable command.

Layout of ``--out`` (several methods may share it; each run adds or refreshes one method and rewrites the report)::

    benchmark.json                 suite, variant, limit, settings key, original model, one entry per method
    methods/<name>/forget|retain   the unlearned model's images (dataset folders: shards + manifest.json)
    reports/<judge>/report.{json,md}, forgetting_preservation.png

The original model's images live in a cache shared by every ``--out``:
``$DATAIGM_CACHE/benchmark/originals/<suite>-<key>/forget|retain|pair``, keyed by the model, the suite (with variant
and limit), every generation setting that changes pixels and ``--deterministic``, so a second method reuses them.
``pair`` holds the original model's images of the concept-removed prompt p' of every forget prompt and seed
(IGMU's reference for forget fidelity and for CSDR's s_o); suites without forget prompts (coco-10k) have none. Prompt files go to
``$DATAIGM_CACHE/benchmark/prompts/<sha256 of their content>/`` so every run names the same files.

Kill-safety: shards are written atomically and skipped when done (the build engine), every JSON is written with
temp + rename, and the report is derived from what is on disk; a rerun continues where the last one stopped.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

from dataigm.benchmark.suite import ROLES, Suite, SuiteError, load_set, load_suite
from dataigm.core.atomic import json_sha256, write_json_atomic
from dataigm.core.errors import DataigmError, InputError
from dataigm.core.schema import slugify
from dataigm.evaluation.preflight import EVAL_MODEL_HINTS, check_eval_models  # noqa: F401, the check `dataigm eval` runs too
from dataigm.core.sources import CHECKPOINT_SUFFIXES
from dataigm.generate.tiny import TINY_GENERATION, TINY_ID
from dataigm.prompts import PromptRecord, write_prompt_jsonl
from dataigm.recipe import ModelSpec, Recipe, parse_recipe

if TYPE_CHECKING:
    from dataigm.evaluation.evaluate import EvalConfig

log = logging.getLogger(__name__)
STATE = "benchmark.json"
STATE_FORMAT = "dataigm-benchmark/1"
SHARD_SIZE = 64
NAME_RE = re.compile(r"[a-z0-9][a-z0-9_\-]*")


class BenchmarkError(DataigmError):
    """A benchmark cannot run as asked (conflicting --out, unavailable judge, ...)."""


def suite_metrics(**settings: Any) -> EvalConfig:
    """The metric settings of a benchmark: :class:`EvalConfig` with the suite's LPIPS and FID unless ``settings`` say otherwise."""
    from dataigm.evaluation.evaluate import EvalConfig

    return EvalConfig(**{"detector": "", "lpips_net": "suite", "fid_feature": "suite", **settings})


@dataclass
class BenchmarkOptions:
    """Everything ``run_benchmark`` needs besides the suite and the models."""

    name: str
    out: Path
    limit: int | None = None  # first N prompts of each set (per source file)
    variant: str | None = None
    source_dir: Path | None = None  # local copies of the suite's files (offline)
    judges: list[str] | None = None  # override the suite's judge specs
    device: str = "auto"
    dtype: str | None = None
    batch_size: int | None = None
    shard_size: int = SHARD_SIZE
    # How the sets are judged and measured: the settings of `dataigm eval`, less the judge (each suite judge fills
    # detector, concept, threshold and person detector). lpips_net / fid_feature "suite": alex / inception when the
    # suite lists lpips / fid, else off; the device is the generation device above.
    metrics: EvalConfig = field(default_factory=suite_metrics)
    progress: bool = True
    estimate: bool = True
    evaluate: bool = True
    deterministic: bool = False  # BuildOptions(deterministic=True) for every set; part of the cache key
    wait_poll_s: float = 10.0


@dataclass
class BenchmarkResult:
    out: Path
    total_images: int  # images of both models the suite needs (at this limit)
    todo_images: int  # of which this run had to generate
    generated: dict[str, int] = field(default_factory=dict)  # "<model>/<role>" -> images written by this run
    folders: dict[str, Path] = field(default_factory=dict)  # "<model>/<role>" -> dataset folder
    reports: dict[str, Path] = field(default_factory=dict)  # judge spec -> report folder
    seconds_per_image: float | None = None


# --- preparation -----------------------------------------------------------------------------------------------
def cache_root() -> Path:
    from dataigm.core.cache import cache_dir

    return cache_dir() / "benchmark"


def write_prompt_sets(suite: Suite, sets: dict[str, list[PromptRecord]]) -> dict[str, Path]:
    """Write the sets' prompt JSONLs to a content-addressed folder (the same path for every run)."""
    lines = {role: [json.dumps(r.to_dict(), ensure_ascii=False, sort_keys=True) for r in recs] for role, recs in sets.items()}
    digest = json_sha256(lines)[:20]
    folder = cache_root() / "prompts" / f"{suite.name}-{digest}"
    paths = {}
    for role, recs in sets.items():
        path = folder / f"{role}.jsonl"
        if not path.is_file():
            write_prompt_jsonl(recs, path)
        paths[role] = path
    return paths


def _seeded(suite: Suite, records: list[PromptRecord]) -> list[PromptRecord]:
    """Every record gets a seed: its own (``seeds.from_file``) or ``seeds.start``; image k then uses seed + k."""
    for r in records:
        if not suite.seeds.from_file or r.seed is None:
            r.seed = suite.seeds.start
    return records


def concept_removed(suite: Suite, record: PromptRecord, concept: str) -> str:
    """p' of a forget prompt: the source's paired negative, else the taxonomy's concept removal (as paired negatives
    are built, :meth:`dataigm.taxonomy.Concept.negative`); a prompt that names no trigger stays as it is, which is
    what IGMU's ``prompt.replace(item, '')`` gives it."""
    from dataigm.taxonomy import get_concept

    if record.paired_negative:
        return record.paired_negative
    try:
        return get_concept(suite.taxonomy, record.concept or concept).negative(record.prompt)
    except ValueError:
        return record.prompt


def pair_set(suite: Suite, forget: list[PromptRecord], concept: str) -> list[PromptRecord]:
    """The original model's ``pair`` prompts: each forget record's p' with the same index, seed and guidance.

    Sets each forget record's ``paired_negative`` to its p' too, so every forget image records the p' that CSDR scores.
    """
    from dataclasses import replace

    out = []
    for r in forget:
        r.paired_negative = concept_removed(suite, r, concept)
        out.append(replace(r, prompt=r.paired_negative, paired_negative=r.prompt, concept="", extra={**r.extra, "forget_prompt": r.prompt}))
    return out


def set_recipe(suite: Suite, role: str, prompts: Path, concept: str, options: BenchmarkOptions, tiny: bool = False) -> Recipe:
    """The build recipe of one set: one class (the suite's target or retain label), every prompt of the file; ``tiny``:
    the tiny model's own size and steps (:data:`~dataigm.generate.tiny.TINY_GENERATION`) over the suite's.

    ``pair`` (the p' images) uses the forget set's class name, so its samples share ``pair_id`` and seed with the
    forget images they belong to (the key ``dataigm eval`` pairs them by).
    """
    label = suite.retain_label if role == "retain" else suite.target
    generation = suite.generation.model_dump(mode="json")
    if tiny:
        generation.update(TINY_GENERATION)
    generation.update({k: v for k, v in (("batch_size", options.batch_size), ("dtype", options.dtype)) if v is not None})
    data = {
        "name": f"{suite.name}-{role}", "category": suite.taxonomy, "description": suite.description, "labels": [label],
        "classes": [{"name": label, "concept": concept or None, "prompts": {"files": [str(prompts)]}}],
        "paired_negatives": False, "images_per_prompt": suite.images_per_prompt, "seed": suite.seeds.start,
        "generation": generation, "splits": {"test": 1.0}, "shard_size": options.shard_size,
    }
    return parse_recipe(data, f"suite {suite.name} ({role})")


def settings_key(suite: Suite, recipes: dict[str, Recipe], variant: str | None, limit: int | None, deterministic: bool = False) -> str:
    """What the generated images depend on apart from the model: suite, variant, limit, recipes (prompts by content)
    and ``--deterministic``.

    ``--deterministic`` is in the key because it changes what the pixels guarantee, not only (possibly) the pixels:
    it pins the thread count and the kernels, so its images are reproducible by any later run and launcher; images
    cached by a run without it (torchrun's one thread, TF32, autotuning) can differ from those by a level and must
    not stand in for them, nor the other way round, or one report would compare images made under two guarantees.
    """
    def content(recipe: Recipe) -> dict[str, Any]:
        data = recipe.model_dump(mode="json")
        data["classes"] = [{**c, "prompts": {"sha256": hashlib.sha256(Path(c["prompts"]["files"][0]).read_bytes()).hexdigest()}}
                           for c in data["classes"]]
        return data

    # Judges, metrics and prose do not change a pixel: a suite may rename its judges without invalidating the cache.
    pixels = suite.model_dump(mode="json", exclude={"judges", "metrics", "description", "reference"})
    if pixels["concepts_file"] is None:  # unset: the keys of suites written before the field existed
        del pixels["concepts_file"]
    payload = {"suite": pixels, "variant": variant, "limit": limit, "recipes": {k: content(r) for k, r in recipes.items()}}
    if deterministic:  # absent when off: keys of runs made before the flag existed stay valid
        payload["deterministic"] = True
    return json_sha256(payload)


def model_key(spec: ModelSpec) -> str:
    return json_sha256(spec.model_dump(mode="json", exclude={"name"}))


def original_folder(suite: Suite, spec: ModelSpec, key: str) -> Path:
    digest = hashlib.sha256((key + model_key(spec)).encode()).hexdigest()[:16]
    return cache_root() / "originals" / f"{suite.name}-{digest}"


# How to hand a benchmark the weights a judge kind needs, when the suite's spec names none (offline machines).
JUDGE_WEIGHTS_HINTS = {
    "igmu": "judge=igmu:<task>@DIR, DIR being IGMU's classifier_head.pth converted (dataigm convert-judge igmu)",
    "imagenet": "judge=imagenet:<class>@MODEL, MODEL being local-dir:PATH, hf-hub:org/name, a cached timm name or a transformers folder",
    "i2p": "judge=i2p@DIR, DIR being Q16's prompts.p converted (dataigm convert-judge q16; ViT-L/14 prompts)",
    "q16": "judge=q16@DIR, DIR being Q16's prompts.p converted (dataigm convert-judge q16)",
    "sd-safety-checker": "judge=sd-safety-checker@DIR, DIR a local copy of CompVis/stable-diffusion-safety-checker",
    "wikiart": "judge=wikiart:vincent-van-gogh@MODEL, MODEL being UnlearnDiffAtk's WikiArt classifier folder (transformers, safetensors)",
}


def check_local_paths(*models: ModelSpec | None) -> None:
    """A model or component given as a local path must exist: found now, not after the original's images are generated.

    A value counts as a path when it is absolute, starts with ``.`` or ``~``, or names a weights file; anything else
    may be a Hub id.
    """
    for spec in filter(None, models):
        named = {"unet": "unet=", "text_encoder": "text_encoder="}
        for what, value in (("model=", spec.id), *((named.get(name, f"component={name}="), v) for name, v in spec.components.items())):
            path = Path(value).expanduser()
            looks_local = value.startswith((".", "~", "/")) or path.suffix in CHECKPOINT_SUFFIXES
            if looks_local and not path.exists():
                raise FileNotFoundError(f"{what}{value} not found (a diffusers folder, a state-dict file or a Hub id)")


def check_judges(specs: list[str], device: str | None) -> None:
    """Create each judge once before the long part: a missing judge fails now, not after hours of generation."""
    from dataigm.judges.registry import create_judge

    for spec in specs:
        try:
            create_judge(spec, device=device)
        except (DataigmError, KeyError, ValueError, OSError) as e:
            msg = e.args[0] if e.args else str(e)
            hint = JUDGE_WEIGHTS_HINTS.get(spec.partition(":")[0], "judge=SPEC")
            raise BenchmarkError(f"judge {spec!r} is not available: {msg}; to replace the suite's judges pass {hint}") from None


def update_state(out: Path, suite: Suite, key: str, options: BenchmarkOptions, original: ModelSpec, orig_dir: Path, model: ModelSpec) -> dict[str, Any]:
    """Record this run in ``out/benchmark.json``; refuse an ``--out`` that holds another suite/settings or another model under this name."""
    path = out / STATE
    state = json.loads(path.read_text()) if path.is_file() else {}
    if state and (state.get("suite") != suite.name or state.get("settings_key") != key):
        raise BenchmarkError(f"{path} holds a benchmark of suite {state.get('suite')} with other settings (key {state.get('settings_key', '')[:12]} "
                             f"!= {key[:12]}: prompt set, limit, batch size, dtype, determinism or the suite changed); use another out=DIR")
    if state and state.get("original", {}).get("folder") != str(orig_dir):
        raise BenchmarkError(f"{path} compares against the original images in {state['original']['folder']} (model "
                             f"{state['original']['model']['id']}); this run's are in {orig_dir} (model {original.id}, DATAIGM_CACHE "
                             "or the original model changed): use another out=DIR")
    methods = state.get("methods", {})
    spec = model.model_dump(mode="json")
    if options.name in methods and methods[options.name]["model"] != spec:
        raise BenchmarkError(f"method name={options.name!r} in {out} already holds model {methods[options.name]['model']}; "
                             "use another name= or another out=DIR")
    methods[options.name] = {"model": spec, "folder": str(out / "methods" / options.name)}
    state = {
        "format": STATE_FORMAT, "suite": suite.name, "suite_sha256": suite.sha256(), "variant": options.variant, "limit": options.limit,
        "settings_key": key, "deterministic": options.deterministic, "reference": suite.reference, "source": suite.source.model_dump() if suite.source else {"local": True},
        "original": {"model": original.model_dump(mode="json"), "folder": str(orig_dir)}, "methods": methods,
    }
    write_json_atomic(path, state)
    return state


# --- generation --------------------------------------------------------------------------------------------------
def _todo(recipe: Recipe, spec: ModelSpec, folder: Path) -> tuple[int, int]:
    """(planned, not yet generated) images of ``recipe`` by ``spec`` in ``folder``."""
    from dataigm.core.shards import is_done
    from dataigm.generate.plan import plan_build

    plan = plan_build(recipe, [spec])
    return plan.n_samples, sum(len(s.samples) for s in plan.shards if not is_done(folder, s.spec))


def time_one_batch(recipe: Recipe, spec: ModelSpec, device: str, local_rank: int = 0) -> float:
    """Seconds per image of one generated batch (after a warm-up call), for the estimate printed before the long part."""
    from dataclasses import replace

    from dataigm.core.devices import pick_device
    from dataigm.generate.engine import generate_batch
    from dataigm.generate.pipeline import load_pipeline
    from dataigm.generate.plan import plan_build

    plan = plan_build(recipe, [spec])
    dev = pick_device(device, local_rank)
    model = load_pipeline(spec, dev, recipe.generation.dtype, recipe.generation.scheduler)
    first = list(plan.shards[0].samples[: recipe.generation.batch_size])
    generate_batch(model.pipe, [replace(first[0], steps=1)], dev)  # warm-up: kernels, allocator
    start = time.perf_counter()
    generate_batch(model.pipe, first, dev)
    seconds = (time.perf_counter() - start) / len(first)
    del model
    return seconds


def finalize_when_complete(folder: Path, poll_s: float, say: Callable[[str], None]) -> None:
    """Wait (without a time limit: other ranks may generate for hours) until every planned shard of ``folder`` is
    done, then write its manifest."""
    from dataigm.core.manifest import missing_shards
    from dataigm.core.stage import wait_until
    from dataigm.generate.engine import finalize

    if missing_shards(folder):
        say(f"waiting for other ranks to finish {folder} ...")
    wait_until(lambda: True if not missing_shards(folder) else None, f"the shards of {folder}", None, poll_s)
    finalize(folder)


# --- evaluation --------------------------------------------------------------------------------------------------
def _eval_config(suite: Suite, judge: dict[str, Any], options: BenchmarkOptions) -> EvalConfig:
    m = options.metrics
    lpips = ("alex" if "lpips" in suite.metrics else None) if m.lpips_net == "suite" else m.lpips_net
    fid = ("inception" if "fid" in suite.metrics else None) if m.fid_feature == "suite" else m.fid_feature
    return dataclasses.replace(m, detector=judge["detector"], concept=judge.get("concept"), threshold=judge.get("threshold"),
                               person_detector=judge.get("person_detector"), lpips_net=lpips, fid_feature=fid,
                               device=None if options.device == "auto" else options.device)


def judge_slug(spec: str) -> str:
    return slugify(spec.replace(":", "_"))[-48:].strip("_") or "judge"


def evaluate_state(state: dict[str, Any], suite: Suite, options: BenchmarkOptions) -> dict[str, Path]:
    """Write one report per judge over every method in ``state`` against the original (``dataigm eval``'s code)."""
    from dataigm.evaluation.evaluate import evaluate, open_set
    from dataigm.report.write import write_report

    out = Path(options.out)
    original = Path(state["original"]["folder"])
    methods = {name: Path(m["folder"]) for name, m in sorted(state["methods"].items()) if (Path(m["folder"]) / "retain" / "manifest.json").is_file()}
    judges = [{"detector": j} for j in options.judges] if options.judges else [j.model_dump() for j in suite.judges]
    reports = {}
    if suite.utility_only:
        reports["utility"] = write_utility_report(state, suite, options, original, methods, out / "reports" / "utility")
        return reports
    sets = {name: open_set(folder / "forget", folder / "retain") for name, folder in methods.items()}
    orig = open_set(original / "forget", original / "retain", pair=original / "pair" if (original / "pair" / "manifest.json").is_file() else None)
    for judge in judges:
        report = evaluate(sets, _eval_config(suite, judge, options), orig)
        report["benchmark"] = {k: state[k] for k in ("suite", "variant", "limit", "settings_key", "reference", "source", "original")}
        report["benchmark"]["generation"] = suite.generation.model_dump(mode="json")
        report["benchmark"]["images_per_prompt"] = suite.images_per_prompt
        report["benchmark"]["deterministic"] = state.get("deterministic", False)
        folder = out / "reports" / judge_slug(judge["detector"])
        write_report(report, folder)
        reports[judge["detector"]] = folder
    return reports


def write_utility_report(state: dict[str, Any], suite: Suite, options: BenchmarkOptions, original: Path,
                         methods: dict[str, Path], folder: Path) -> Path:
    """Fidelity only (LPIPS over pairs, FID/KID) of each method's images against the original's: suites without a concept."""
    from dataigm.core.atomic import write_bytes_atomic
    from dataigm.core.devices import pick_device
    from dataigm.evaluation.fidelity import ImageReader, create_lpips, fid_kid, lpips_pairs
    from dataigm.judges.images import resolve_images
    from dataigm.evaluation.metrics import bootstrap_ci
    from dataigm.evaluation.pairing import pair_images

    cfg = _eval_config(suite, {"detector": "none"}, options)
    device = pick_device(cfg.device)
    metric = create_lpips(cfg.lpips_net, device) if cfg.lpips_net else None
    orig = resolve_images(original / "retain").refs()
    results = {}
    with ImageReader() as reader:
        for name, path in methods.items():
            pairs = pair_images(orig, resolve_images(path / "retain").refs(), what="retain images")
            entry: dict[str, Any] = {"n_pairs": len(pairs)}
            if metric is not None:
                scores = lpips_pairs(pairs, size=cfg.lpips_size, batch_size=cfg.batch_size, device=device, reader=reader, metric=metric)
                entry["lpips"] = bootstrap_ci(scores, n_resamples=cfg.n_resamples, seed=cfg.seed).to_dict()
            if cfg.fid_feature:
                entry.update(fid_kid([o for o, _ in pairs], [u for _, u in pairs], feature=cfg.fid_feature, weights_path=cfg.fid_weights,
                                     size=cfg.fid_size, batch_size=cfg.batch_size, device=device, reader=reader))
            results[name] = {"fidelity": entry, "source": str(path / "retain")}
    report = {"format": "dataigm-eval-utility/1", "benchmark": {k: state[k] for k in ("suite", "variant", "limit", "settings_key", "reference")},
              "config": {"lpips_net": cfg.lpips_net, "fid_feature": cfg.fid_feature}, "methods": results}
    write_json_atomic(folder / "report.json", report)
    lines = ["# Utility vs the original model", "", f"suite: {suite.name}", "", "| method | LPIPS (↓) | FID (↓) | KID (↓) | pairs |", "|---|---|---|---|---|"]
    for name, r in results.items():
        f = r["fidelity"]
        lp = f"{f['lpips']['value']:.4f}" if f.get("lpips", {}).get("value") is not None else "n/a"
        fid = f"{f['fid']:.3f}" if "fid" in f else "n/a"
        kid = f"{f['kid_mean']:.5f}" if "kid_mean" in f else "n/a"
        lines.append(f"| {name} | {lp} | {fid} | {kid} | {f['n_pairs']} |")
    write_bytes_atomic(folder / "report.md", ("\n".join(lines) + "\n").encode())
    return folder


# --- the command -------------------------------------------------------------------------------------------------
def run_benchmark(suite_name: str | Path, model: ModelSpec, options: BenchmarkOptions, original: ModelSpec | None = None,
                  say: Callable[[str], None] = print) -> BenchmarkResult:
    """Generate (or reuse) the suite's images of ``original`` and ``model``, judge them, write the reports.

    ``--deterministic`` is applied first, before any CUDA operation (the time estimate's matmuls, a judge check):
    cuBLAS reads its workspace setting when it creates its handle, so applying it per build would be too late.
    """
    from dataigm.generate import determinism

    restore = determinism.prepare(None, options.deterministic) if options.deterministic else (lambda: None)
    try:
        return _run_benchmark(suite_name, model, options, original, say)
    finally:
        restore()


def _run_benchmark(suite_name: str | Path, model: ModelSpec, options: BenchmarkOptions, original: ModelSpec | None,
                   say: Callable[[str], None]) -> BenchmarkResult:
    from dataigm.benchmark.fetch import fetch_suite
    from dataigm.core.partition import rank_from_env, refuse_array
    from dataigm.generate.engine import BuildOptions, build

    # 1. Check inputs: suite, prompt files, judges, --out
    suite = load_suite(suite_name)
    for flag, value in (("limit", options.limit), ("batch_size", options.batch_size), ("shard_size", options.shard_size)):
        if value is not None and value < 1:
            raise InputError(f"{flag}={value}: must be >= 1")
    check_local_paths(model, original)
    if not NAME_RE.fullmatch(options.name or "") or options.name == "original":
        raise InputError(f"name={options.name!r}: use lowercase letters, digits, '-' and '_' (not 'original')")
    rank = rank_from_env()
    refuse_array(rank, "benchmark")  # rank 0 waits for the other ranks' shards before judging
    files = fetch_suite(suite, options.source_dir)
    sets = {role: _seeded(suite, load_set(suite, role, files, options.variant, options.limit)) for role in ROLES if suite.sets(options.variant)[role]}
    concept = next((r.concept for r in sets.get("forget", []) if r.concept), "")
    if sets.get("forget"):  # the original's images of p' (IGMU's fidelity reference and CSDR's s_o)
        sets["pair"] = pair_set(suite, sets["forget"], concept)
        unchanged = sum(r.prompt == r.paired_negative for r in sets["pair"])
        if unchanged and rank.rank == 0:
            say(f"{unchanged} of {len(sets['pair'])} forget prompts name no trigger of concept {concept!r}: their p' is the prompt itself (as IGMU's cleaning leaves it)")
    prompts = write_prompt_sets(suite, sets)
    tiny = model.id == TINY_ID and (original is None or original.id == TINY_ID)
    recipes = {role: set_recipe(suite, role, path, concept if role == "forget" else "", options, tiny) for role, path in prompts.items()}
    if rank.rank == 0 and options.evaluate:
        if not suite.utility_only:
            check_judges(options.judges or [j.detector for j in suite.judges], None if options.device == "auto" else options.device)
        check_eval_models(_eval_config(suite, {"detector": "none"}, options))
    original = original or ModelSpec(id=model.id, revision=model.revision, pipeline_class=model.pipeline_class, config=model.config)
    original = original.model_copy(update={"name": "original"})
    model = model.model_copy(update={"name": options.name})
    key = settings_key(suite, recipes, options.variant, options.limit, options.deterministic)
    orig_dir = original_folder(suite, original, key)
    out = Path(options.out)
    state = update_state(out, suite, key, options, original, orig_dir, model) if rank.rank == 0 else None
    write_json_atomic(orig_dir / "original.json", {"model": original.model_dump(mode="json"), "suite": suite.name, "settings_key": key})

    # 2. Count the work and estimate its time
    jobs = [(f"original/{role}", recipes[role], original, orig_dir / role) for role in recipes]
    jobs += [(f"{options.name}/{role}", recipes[role], model, out / "methods" / options.name / role) for role in recipes if role != "pair"]
    counts = {label: _todo(recipe, spec, folder) for label, recipe, spec, folder in jobs}
    total, todo = sum(c[0] for c in counts.values()), sum(c[1] for c in counts.values())
    result = BenchmarkResult(out, total, todo, folders={label: folder for label, _, _, folder in jobs})
    n_prompts = sum(len(v) for k, v in sets.items() if k != "pair")
    pair_note = f" + the original's {len(sets['pair'])} concept-removed prompts" if "pair" in sets else ""
    say(f"suite {suite.name}: {n_prompts} prompts x {suite.images_per_prompt} images x 2 models{pair_note} = {total} images; "
        f"{todo} to generate" + (f" (rank {rank.rank}/{rank.world_size})" if rank.world_size > 1 else "")
        + (f"; the tiny model at its own {TINY_GENERATION['width']} px and {TINY_GENERATION['steps']} steps" if tiny else ""))
    if todo and options.estimate:
        label, recipe, spec, _ = next(j for j in jobs if counts[j[0]][1])
        result.seconds_per_image = time_one_batch(recipe, spec, options.device, rank.local_rank)
        share = todo / rank.world_size
        say(f"estimate: {result.seconds_per_image:.2f} s/image from a timed batch -> about {_hms(share * result.seconds_per_image)} "
            f"of generation{' per rank' if rank.world_size > 1 else ''}")

    # 3. Generate (each build resumes finished shards; the original's are shared by every method)
    build_opts = BuildOptions(device=options.device, progress=options.progress, deterministic=options.deterministic)
    for label, recipe, spec, folder in jobs:
        if counts[label][1] == 0 and (folder / "manifest.json").is_file():
            result.generated[label] = 0
            continue
        res = build(recipe, folder, build_opts, models=[spec], rank=rank)
        result.generated[label] = res.samples_written
        if res.samples_failed:
            say(f"{label}: {res.samples_failed} images failed (listed in the shard stats)")

    # 4. Judge and report (rank 0, once every rank's shards are there)
    if rank.rank != 0 or not options.evaluate:
        return result
    for _, _, _, folder in jobs:
        finalize_when_complete(folder, options.wait_poll_s, say)
    result.reports = evaluate_state(state, suite, options)
    return result


def _hms(seconds: float) -> str:
    seconds = int(round(seconds))
    return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m{seconds % 60:02d}s"


__all__ = ["BenchmarkOptions", "BenchmarkResult", "BenchmarkError", "run_benchmark", "SuiteError"]
