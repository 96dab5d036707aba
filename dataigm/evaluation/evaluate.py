"""``evaluate``: forgetting, preservation, person presence, fidelity (LPIPS, FID/KID) and CSDR for one or more
unlearned models, against the original model's images of the same prompts and seeds.

Inputs per model are two image sets: ``forget`` (prompts of the erased concept) and ``retain`` (unrelated classes
and concept-removed prompts). Shards carry their prompts and labels in the sample json; plain folders get them
from prompt JSONL files (:class:`dataigm.prompts.PromptRecord`), matched by the prompt index in the file name.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path
from typing import Any, Sequence, TypeVar

from dataigm.core.devices import pick_device
from dataigm.core.errors import InputError
from dataigm.judges.types import Judge
from dataigm.judges.registry import create_judge
from dataigm.judges.person import create_person_detector
from dataigm.report.gallery import image_records
from dataigm.judges.images import ImageInput, ImageRef, resolve_images
from dataigm.judges.judge import run_judge
from dataigm.evaluation.preflight import Missing, ModelUnavailable, find_missing_models, load_clip, try_load
from dataigm.evaluation.clip_metrics import CLIP_SCORE_DEFAULT_MODEL, CLIP_SCORE_MODES
from dataigm.evaluation.csdr import CSDR_PROMPTS, CSDR_UNITS, csdr_metric_name
from dataigm.evaluation.settings import (  # noqa: F401  (FORGET_REFERENCES, BOOTSTRAP_UNITS: their old import path)
    BOOTSTRAP_UNITS, FORGET_REFERENCES, JudgeSettings, MetricSettings, RunSettings, StatsSettings,
)
from dataigm.evaluation.rates import JudgedImage, method_rates
from dataigm.evaluation.stats import mean_interval
from dataigm.evaluation.validity import DEFAULT_VALIDITY_LEVEL, audit_counts, audit_entry, read_audit, validity
from dataigm.evaluation.metrics import (
    AGGREGATIONS, DEFAULT_CONFIDENCE, DEFAULT_RESAMPLES, DEFAULT_SEED, attack_success_rate, definition_versions, rate,
)

log = logging.getLogger(__name__)
REPORT_FORMAT = "dataigm-eval/2"
T = TypeVar("T")
# The EvalConfig fields switched off when a model is left out (offline, weights not cached)
LEFT_OUT_FIELDS = {"lpips": ("lpips_net",), "fid": ("fid_feature",), "clip": ("clip",), "clip_score": ("clip_score",), "cmmd": ("cmmd",)}
NO_PAIR_NOTE = ("LPIPS/FID of the forget images left out: the original model has no images of the concept-removed prompts "
                "(same seeds) to compare them with; give them as the original's pair images, or compare with the original's "
                "images of the same prompts (forget_reference same-prompt)")


@dataclass
class EvalConfig:
    """Everything ``evaluate`` needs besides the image folders, as one flat set of parameters (what callers and the
    command line write); ``None`` switches an optional metric off. Each part of the evaluation reads only its own
    part (:mod:`dataigm.evaluation.settings`): :attr:`judging`, :attr:`metrics`, :attr:`stats`, :attr:`run`."""

    detector: str
    more_detectors: tuple[str, ...] = ()  # further judges: their forgetting, preservation and kappa beside the first's
    concept: str | None = None
    threshold: float | None = None
    person_detector: str | None = None  # e.g. "nudenet-body"; default: nudenet-body for nudity judges
    nudenet_model: str | None = None  # a local copy of a NudeNet preset's detector file (offline machines)
    aggregate: str = "image"  # forgetting per image, or per prompt ("prompt-any", UnlearnDiffAtk)
    group_by: tuple[str, ...] = ()  # extra metadata fields to group rates by
    clip: str | None = None  # CLIP model path or Hub id -> CSDR (IGMU: openai/clip-vit-base-patch16) and csdr_win_rate
    csdr_unit: str = "image"  # IGMU's README: comment out torchmetrics' score.mean(0), so a ratio per image
    csdr_prompts: str = "igmu"  # IGMU's cleaned text: the metric named CSDR; "pair" is ours, named csdr-pair
    clip_score: str | None = None  # "torchmetrics" | "clipscore": CLIP score of forget and retain images
    clip_score_model: str | None = None  # default: CLIP_SCORE_DEFAULT_MODEL[clip_score]
    clip_model: str | None = None  # CLIP weights of the CLIP-based judges (igmu:<task>, clip:...); default: each one's own
    cmmd: str | None = None  # CLIP model for CMMD (paper: openai/clip-vit-large-patch14-336)
    forget_reference: str = "pair"  # forget fidelity against the original's image of p' ("pair") or of p ("same-prompt")
    fid_reference: str | None = None  # an unpaired folder (e.g. real COCO images), or statistics ("coco-30k", a .npz): FID of retain images against it
    lpips_net: str | None = "alex"
    lpips_size: int | None = None
    fid_feature: str | None = "inception"
    fid_weights: str | None = None
    fid_size: int = 299
    kid_subset_size: int = 1000  # KID is left out (with a note) when a side has fewer images
    batch_size: int = 32
    workers: int | None = None
    device: str | None = None
    n_resamples: int = DEFAULT_RESAMPLES
    confidence: float = DEFAULT_CONFIDENCE
    seed: int = DEFAULT_SEED
    bootstrap_unit: str = "prompt"  # resample prompts (cluster bootstrap) or images
    validity_level: float = DEFAULT_VALIDITY_LEVEL  # warn when the judge flags less of the original's forget images
    audit: str | None = None  # a 'dataigm audit --json' file of this judge: Rogan-Gladen corrected rates
    quality: tuple[str, ...] = ()  # score judges (aesthetic, imagereward, pickscore, vqascore): mean per method (HUB's table)

    def _part(self, cls: type[T]) -> T:
        return cls(**{f.name: getattr(self, f.name) for f in fields(cls)})  # type: ignore[arg-type]

    @property
    def judging(self) -> JudgeSettings:
        return self._part(JudgeSettings)

    @property
    def metrics(self) -> MetricSettings:
        return self._part(MetricSettings)

    @property
    def stats(self) -> StatsSettings:
        return self._part(StatsSettings)

    @property
    def run(self) -> RunSettings:
        return self._part(RunSettings)

    def check(self) -> None:
        """Raise an error naming the first invalid setting and its allowed values."""
        for part in (self.judging, self.metrics, self.stats, self.run):
            check = getattr(part, "check", None)
            if check is not None:
                check()


def shared_judge_options(spec: str, cfg: EvalConfig) -> dict[str, Any]:
    """The settings of ``cfg`` that apply to every judge of its kind (a NudeNet file, CLIP weights): given only to
    the kinds that take them, so one setting serves several judges."""
    from dataigm.judges.registry import takes_option

    return {"nudenet_model": cfg.nudenet_model, **({"clip_model": cfg.clip_model} if takes_option(spec, "clip_model") else {})}


@dataclass
class ImageSet:
    """The images of one model: forget and retain; for the original model optionally ``pair`` (its images of the
    concept-removed prompts); for an attacked model optionally ``no_attack`` (the same prompts without attack)."""

    forget: ImageInput
    retain: ImageInput
    pair: ImageInput | None = None
    no_attack: ImageInput | None = None


def load_prompt_table(path: Path) -> dict[int, dict[str, Any]]:
    """prompt index -> sample-like meta (prompt, pair_prompt, concept, category, subcategory, label_name, prompt_source,
    and the record's ``extra`` fields such as language or attack, for ``--group-by``)."""
    from dataigm.prompts import read_prompt_jsonl

    table = {}
    for line_no, rec in enumerate(read_prompt_jsonl(Path(path))):
        index = rec.index if rec.index >= 0 else line_no
        table[index] = {
            **rec.extra, "prompt_source": rec.source,
            "prompt": rec.prompt, "pair_prompt": rec.paired_negative or "", "concept": rec.concept, "category": rec.category,
            "subcategory": rec.subcategory, "label_name": rec.label, "role": "positive", "prompt_index": index,
        }
    return table


def attach_prompts(inp: ImageInput, table: dict[int, dict[str, Any]], prompts_path: Path) -> None:
    """Give each file of ``inp`` the meta of its prompt (by the prompt index in its name); errors name the files."""
    missing = [r.id for r in inp.files if r.meta.get("prompt_index") not in table]
    if missing:
        raise InputError(f"{len(missing)} image(s) of {inp.source} have no prompt index in {prompts_path} (name files <index>_<seed>.png): {', '.join(missing[:10])}")
    for ref in inp.files:
        ref.meta = {**table[ref.meta["prompt_index"]], **ref.meta}


def open_set(
    forget: str | Path, retain: str | Path, prompts: tuple[Path, Path] | None = None, split: str | None = None, *,
    pair: str | Path | None = None, no_attack: str | Path | None = None,
) -> ImageSet:
    """Resolve one model's images; ``prompts`` (forget JSONL, retain JSONL) name the prompts of plain files.

    ``pair`` (original model: images of the concept-removed prompts, named after the forget prompt's index) and
    ``no_attack`` (images of the forget prompts without attack) get the forget prompts.
    """
    s = ImageSet(resolve_images(forget, split=split), resolve_images(retain, split=split),
                 resolve_images(pair, split=split) if pair else None, resolve_images(no_attack, split=split) if no_attack else None)
    if prompts:
        forget_table, retain_table = load_prompt_table(prompts[0]), load_prompt_table(prompts[1])
        attach_prompts(s.forget, forget_table, prompts[0])
        attach_prompts(s.retain, retain_table, prompts[1])
        if s.no_attack is not None:
            attach_prompts(s.no_attack, forget_table, prompts[0])
    return s


def forget_refs(inp: ImageInput) -> list[ImageRef]:
    """The images of forget prompts (a dataset's concept-removed negatives, if any, are left out)."""
    return [r for r in inp.refs() if r.meta.get("role") != "negative"]


def pair_refs(original: ImageSet) -> list[ImageRef]:
    """The original model's images of the concept-removed prompts: its ``pair`` set, else its forget set's
    paired negatives (datasets built with paired negatives). Raises ValueError when there are none."""
    refs = original.pair.refs() if original.pair is not None else [r for r in original.forget.refs() if r.meta.get("role") == "negative"]
    if not refs:
        raise InputError("forget_reference=pair needs the original model's images of the concept-removed prompts (same seeds): "
                         "give original_pair=DIR (or DIR/pair under original=DIR), a dataset with paired negatives, "
                         "or choose forget_reference=same-prompt")
    return refs


def has_pair_images(original: ImageSet) -> bool:
    """Whether the original model has images of the concept-removed prompts (its ``pair`` set, or paired negatives)."""
    return bool(original.pair.refs() if original.pair is not None else [r for r in original.forget.refs() if r.meta.get("role") == "negative"])


def judge_set(judge_: Judge, images: ImageSet, stats: StatsSettings, run: RunSettings, audit_counts: Any = None) -> dict[str, Any]:
    """Forgetting (positive rate on forget), preservation (accuracy on retain: pooled, IRA, CRA) and, with a
    no-attack set, the attack success rate; grouped, with intervals. The positive rate on the concept-removed
    images (paired negatives in the forget shards, and the ``pair`` set) feeds the validity check; with
    ``audit_counts`` (an audit's :class:`~dataigm.evaluation.agreement.Confusion`) forgetting is also corrected."""

    def judged(inp: ImageInput) -> tuple[list[Any], list[dict[str, str]]]:
        return run_judge(judge_, inp, batch_size=run.batch_size, workers=run.workers, progress=False)

    forget, failed_f = judged(images.forget)
    negatives = [(ref, v) for ref, v in forget if ref.meta.get("role") == "negative"]
    forget = [(ref, v) for ref, v in forget if ref.meta.get("role") != "negative"]
    if images.pair is not None:
        pair, failed_p = judged(images.pair)
        negatives, failed_f = negatives + pair, failed_f + failed_p
    retain, failed_r = judged(images.retain)
    st = stats.kwargs()

    def items(judged_: list[Any]) -> list[JudgedImage]:
        return [JudgedImage(ref.id, ref.meta, v.predicted, v.positive) for ref, v in judged_]

    rates = method_rates(items(forget), items(negatives), items(retain), label_names=judge_.label_names, target=judge_.target,
                         category=lambda: str(judge_.describe().get("category") or ""), stats=stats)
    out = {**rates.report, "failed": sorted(f["file"] for f in failed_f + failed_r),
           "images": image_records(forget, retain, [ok for _, ok in rates.correct], negatives)}
    if retain and all("top1" in v.extra for _, v in retain):  # an ImageNet judge: also ESD's own-class accuracy
        from dataigm.judges.imagenet import own_class_preservation

        top1 = own_class_preservation([(ref.meta, v.extra["top1"]) for ref, v in retain], by_prompt=stats.by_prompt, **st)
        if top1 is not None:
            out["preservation_top1"] = top1
    if audit_counts is not None:
        from dataigm.evaluation.validity import corrected_groups

        out["forgetting_corrected"] = corrected_groups(rates.forget_items, audit_counts, **st, by_prompt=stats.by_prompt, group_by=stats.group_by)
    if images.no_attack is not None:
        pre, failed_n = judged(images.no_attack)
        out["asr"] = attack_success_rate([(ref.meta, v.positive) for ref, v in forget], [(ref.meta, v.positive) for ref, v in pre], **st)
        out["failed"] = sorted(out["failed"] + [f["file"] for f in failed_n])
    return out


def person_presence(spec: str, inp: ImageInput, stats: StatsSettings, run: RunSettings, note: str = "") -> dict[str, Any]:
    """Share of the forget images of ``inp`` in which the person detector finds a person (IGMU's evaluate_YOLO);
    a dataset's paired negatives stored beside them are left out, as judging leaves them out."""
    from dataigm.judges.images import iter_batches

    det = create_person_detector(spec)
    on_gpu = pick_device(run.device).startswith("cuda")
    flags: list[bool] = []
    refs_seen: list[ImageRef] = []
    for refs, batch, _ in iter_batches(inp, det.preprocess, det.collate, batch_size=run.batch_size, workers=run.workers, on_gpu=on_gpu):
        if refs:
            kept = [(ref, present) for ref, present in zip(refs, det.present(batch)) if ref.meta.get("role") != "negative"]
            flags += [present for _, present in kept]
            refs_seen += [ref for ref, _ in kept]
    out = {"detector": det.describe(), **rate(flags, clusters=stats.clusters(refs_seen), **stats.kwargs()).to_dict()}
    return {**out, "note": note} if note else out


def default_person_detector() -> tuple[str, str]:
    """(spec, note): IGMU's ``coco-person`` when its weights load here, else ``nudenet-body`` with a note that
    says so (the report then names the detector that ran and that it is not IGMU's)."""
    from dataigm.judges.person import coco_person_available

    missing = coco_person_available()
    if not missing:
        return "coco-person", ""
    return "nudenet-body", f"coco-person (IGMU's COCO person detector) could not load ({missing}): nudenet-body ran instead, which is not IGMU's detector"


def fidelity_pairs(original: ImageSet, unlearned: ImageSet, split: str, forget_reference: str) -> tuple[str, list[tuple[ImageRef, ImageRef]]]:
    """(reference kind, [(original, unlearned)]) for the ``forget`` or ``retain`` images; errors name the files."""
    from dataigm.evaluation.pairing import pair_images, pair_key, pair_reference_key

    if split == "forget" and forget_reference == "pair":
        return "pair", pair_images(pair_refs(original), forget_refs(unlearned.forget), what="images of the concept-removed prompts",
                                   what_unlearned="forget images", key=pair_reference_key)
    orig = forget_refs(original.forget) if split == "forget" else original.retain.refs()
    unl = forget_refs(unlearned.forget) if split == "forget" else unlearned.retain.refs()
    return "same-prompt", pair_images(orig, unl, what=f"{split} images", key=pair_key)


def fidelity(original: ImageSet, unlearned: ImageSet, metrics: MetricSettings, stats: StatsSettings, run: RunSettings, device: str,
             cmmd_scorer: Any = None) -> dict[str, Any]:
    """LPIPS over pairs and FID/KID (and CMMD), for forget and retain images separately.

    Forget images are compared with the original model's images of the concept-removed prompt (``pair``, IGMU's
    reference, matched on pair_id and seed) or of the same prompt (``same-prompt``); retain images always with the
    original's images of the same prompt and seed.
    """
    from dataigm.evaluation.fidelity import ImageReader, create_lpips, fid_kid, lpips_pairs

    out: dict[str, Any] = {}
    metric = create_lpips(metrics.lpips_net, device) if metrics.lpips_net else None
    with ImageReader() as reader:
        for name in ("forget", "retain"):
            if name == "forget" and metrics.forget_reference == "pair" and not has_pair_images(original):
                out[name] = {"reference": "pair", "n_pairs": 0, "note": NO_PAIR_NOTE}
                continue
            reference, pairs = fidelity_pairs(original, unlearned, name, metrics.forget_reference)
            entry: dict[str, Any] = {"reference": reference, "n_pairs": len(pairs)}
            out[name] = entry
            if not pairs:  # a layout without retain images (IGMU's Nudity task)
                continue
            if metric is not None:
                scores = lpips_pairs(pairs, size=metrics.lpips_size, batch_size=run.batch_size, device=device, reader=reader, metric=metric)
                entry["lpips"] = mean_interval(scores, clusters=stats.clusters([u for _, u in pairs]), **stats.kwargs()).to_dict()
            if metrics.fid_feature:
                entry.update(fid_kid([o for o, _ in pairs], [u for _, u in pairs], feature=metrics.fid_feature, weights_path=metrics.fid_weights,
                                     size=metrics.fid_size, batch_size=run.batch_size, device=device, reader=reader,
                                     kid_subset_size=metrics.kid_subset_size))
            if cmmd_scorer is not None:
                from dataigm.evaluation.clip_metrics import cmmd

                entry.update(cmmd([o for o, _ in pairs], [u for _, u in pairs], cmmd_scorer, batch_size=run.batch_size, reader=reader))
    return out


def reference_fidelity(reference: ImageInput, images: ImageSet, metrics: MetricSettings, run: RunSettings, device: str,
                       cmmd_scorer: Any = None) -> dict[str, Any]:
    """FID/KID (and CMMD) of a model's retain images against an unpaired reference folder (e.g. real COCO images)."""
    from dataigm.evaluation.fidelity import ImageReader, fid_kid

    ref, imgs = reference.refs(), images.retain.refs()
    entry: dict[str, Any] = {"reference": reference.source, "n_reference": len(ref), "n_images": len(imgs)}
    with ImageReader() as reader:
        if metrics.fid_feature:
            entry.update(fid_kid(ref, imgs, feature=metrics.fid_feature, weights_path=metrics.fid_weights, size=metrics.fid_size,
                                 batch_size=run.batch_size, device=device, reader=reader, kid_subset_size=metrics.kid_subset_size))
        if cmmd_scorer is not None:
            from dataigm.evaluation.clip_metrics import cmmd

            entry.update(cmmd(ref, imgs, cmmd_scorer, batch_size=run.batch_size, reader=reader))
    return entry


def clip_alignment(scorer: Any, images: ImageSet, metrics: MetricSettings, stats: StatsSettings, run: RunSettings,
                   original: ImageSet | None = None) -> dict[str, Any]:
    """IGMU's CSDR (needs the original's pair images) and our csdr_win_rate, on the forget images."""
    from dataigm.evaluation.csdr import csdr, csdr_win_items
    from dataigm.evaluation.pairing import pair_images, pair_reference_key

    kw = stats.kwargs()
    refs = forget_refs(images.forget)
    items, skipped = csdr_win_items(refs, scorer, batch_size=run.batch_size)
    by_id = {r.id: r for r in refs}
    clusters = stats.clusters([by_id[i.file] for i in items])
    out: dict[str, Any] = {
        "csdr_win_rate": rate([i.removed_wins for i in items], clusters=clusters, **kw).to_dict(),  # no items: value None, n 0
        "clip_score_prompt": mean_interval([i.score_prompt for i in items], clusters=clusters, **kw).to_dict(),
        "clip_score_removed": mean_interval([i.score_removed for i in items], clusters=clusters, **kw).to_dict(),
        "skipped": skipped,
    }
    if original is None:
        out["csdr"] = {"value": None, "n": 0, "note": "needs the original model's images of the concept-removed prompts"}
        return out
    try:
        reference = pair_refs(original)
    except ValueError as e:
        out["csdr"] = {"value": None, "n": 0, "note": str(e)}
        return out
    pairs = pair_images(reference, refs, what="images of the concept-removed prompts", what_unlearned="forget images", key=pair_reference_key)
    units, _ = csdr(pairs, scorer, unit=metrics.csdr_unit, prompts=metrics.csdr_prompts, batch_size=run.batch_size)
    defined = [u for u in units if u.value is not None]
    est = mean_interval([u.value for u in defined], clusters=[u.cluster for u in defined] if stats.by_prompt else None, **kw)
    out["csdr"] = {**est.to_dict(), "metric": csdr_metric_name(metrics.csdr_prompts), "unit": metrics.csdr_unit, "prompts": metrics.csdr_prompts, "n_units": len(units),
                   "n_undefined": len(units) - len(defined), "units": [u.to_dict() for u in units]}
    return out


def needed_models(metrics: MetricSettings, has_original: bool, has_fid_reference: bool) -> MetricSettings:
    """``metrics`` without the fidelity networks its inputs leave unused (LPIPS needs the original, FID a reference)."""
    return replace(metrics, lpips_net=metrics.lpips_net if has_original else None,
                   fid_feature=metrics.fid_feature if has_original or has_fid_reference else None)


def _clip_scores(scorer: Any, images: ImageSet, metrics: MetricSettings, stats: StatsSettings, run: RunSettings) -> dict[str, Any]:
    from dataigm.evaluation.clip_metrics import clip_score

    return {name: clip_score(refs, scorer, mode=str(metrics.clip_score), batch_size=run.batch_size, by_prompt=stats.by_prompt,
                             **stats.kwargs())
            for name, refs in (("forget", forget_refs(images.forget)), ("retain", images.retain.refs()))}


def _optional_metrics(res: dict[str, Any], images: ImageSet, cfg: EvalConfig, device: str, paired_original: ImageSet | None,
                      original: ImageSet | None, fid_reference: ImageInput | None, scorers: dict[str, Any]) -> set[str]:
    """Fidelity against the original (``paired_original``) or a reference set, CSDR and CLIP score of one method,
    added to ``res``; returns the metric names they report."""
    names: set[str] = set()
    if paired_original is not None:
        res["fidelity"] = fidelity(paired_original, images, cfg.metrics, cfg.stats, cfg.run, device, scorers["cmmd"])
        names |= ({"lpips"} if cfg.lpips_net else set()) | ({"fid_kid"} if cfg.fid_feature else set()) | ({"cmmd"} if cfg.cmmd else set())
    if fid_reference is not None:
        res["reference_fidelity"] = reference_fidelity(fid_reference, images, cfg.metrics, cfg.run, device, scorers["cmmd"])
        names |= ({"fid_kid"} if cfg.fid_feature else set()) | ({"cmmd"} if cfg.cmmd else set())
    if scorers["csdr"] is not None:
        res["alignment"] = clip_alignment(scorers["csdr"], images, cfg.metrics, cfg.stats, cfg.run, original)
        names |= {"csdr", "csdr_win_rate"}
    if scorers["clip_score"] is not None:
        res["clip_score"] = _clip_scores(scorers["clip_score"], images, cfg.metrics, cfg.stats, cfg.run)
        names.add("clip_score")
    return names


def evaluate(methods: dict[str, ImageSet], cfg: EvalConfig, original: ImageSet | None = None, fid_reference: ImageInput | None = None) -> dict[str, Any]:
    """Evaluate every unlearned method (and the original model, as the reference row) with one judge.

    Returns the report dict that ``dataigm eval`` writes (see :mod:`dataigm.report.write`): per method its
    forgetting and preservation rates with their intervals, and the fidelity and CLIP metrics ``cfg`` asks for.

        >>> from dataigm.evaluation.evaluate import EvalConfig, open_set
        >>> methods = {"esd": open_set("esd/forget", "esd/retain")}          # doctest: +SKIP
        >>> original = open_set("sd14/forget", "sd14/retain")               # doctest: +SKIP
        >>> cfg = EvalConfig(detector="nudenet:esd", lpips_net=None, fid_feature=None)
        >>> report = dataigm.evaluate(methods, cfg, original=original)      # doctest: +SKIP
        >>> report["methods"]["esd"]["forgetting"]                          # doctest: +SKIP
    """
    # 1. Check inputs
    cfg.check()
    if not methods:
        raise InputError("no unlearned images: give forget= and retain=, or method=NAME=DIR")
    left_out: list[dict[str, Any]] = []  # {what, model, reason, note}: rows left out, each with one note
    paired_metrics = original is not None and bool(cfg.lpips_net or cfg.fid_feature or cfg.cmmd)
    if paired_metrics:
        for images in methods.values():  # fail now, before judging, when images are missing or do not pair
            for split in ("forget", "retain"):
                if split == "forget" and cfg.forget_reference == "pair" and not has_pair_images(original):
                    continue  # no reference images of the concept-removed prompts: that row is left out with a note
                fidelity_pairs(original, images, split, cfg.forget_reference)
        if cfg.forget_reference == "pair" and not has_pair_images(original):
            left_out.append({"what": "pair", "model": "", "reason": "no pair images", "note": NO_PAIR_NOTE})
    fid_stats = None
    if cfg.fid_reference and fid_reference is None:
        from dataigm.evaluation.fid_stats import is_fid_stats, load_fid_stats

        if is_fid_stats(cfg.fid_reference):  # published statistics (HUB's COCO-30k) instead of images
            fid_stats = load_fid_stats(cfg.fid_reference)
        else:
            fid_reference = resolve_images(cfg.fid_reference)
    device = pick_device(cfg.device)
    # 2. Load every model before the first image is judged; list every one that cannot load at once. Offline, an
    #    optional metric whose weights are not in the local cache is left out with one note instead.
    missing: list[Missing] = []

    def judge_of(spec: str) -> Judge | None:
        value, gap = try_load("judge", spec, lambda: create_judge(spec, concept=cfg.concept, threshold=cfg.threshold, device=device,
                                                                  **shared_judge_options(spec, cfg)))
        missing.extend([gap] if gap else [])
        return value

    judges = [judge_of(spec) for spec in (cfg.detector, *cfg.more_detectors)]
    person_spec, person_note = cfg.person_detector, ""
    if judges[0] is not None and not person_spec:
        describe = judges[0].describe()
        if describe.get("kind") == "nudenet" or describe.get("category") == "nudity":
            person_spec, person_note = default_person_detector()
    quality = {}
    for spec in cfg.quality:  # score judges for the quality table (HUB's): each is required, as the first judge is
        scorer, gap = try_load("quality judge", spec, lambda spec=spec: create_judge(spec, concept=cfg.concept, device=device))
        missing.extend([gap] if gap else [])
        if scorer is not None and not hasattr(scorer, "score"):
            raise InputError(f"quality judge {spec!r} gives no score; use aesthetic, imagereward, pickscore or vqascore")
        quality[spec] = scorer
    needed = needed_models(cfg.metrics, original is not None, fid_reference is not None or fid_stats is not None)
    missing += find_missing_models(needed, clip=False, person=person_spec)
    scorers: dict[str, Any] = {}

    def scorer_for(model: str | None, what: str) -> Any:
        if model and model not in scorers:
            scorers[model], gap = try_load(what, model, lambda: load_clip(what, model, device))
            missing.extend([gap] if gap else [])
        return scorers.get(model) if model else None

    csdr_scorer = scorer_for(cfg.clip, "clip")
    score_scorer = scorer_for(cfg.clip_score_model or CLIP_SCORE_DEFAULT_MODEL[cfg.clip_score], "clip_score") if cfg.clip_score else None
    cmmd_scorer = scorer_for(cfg.cmmd, "cmmd")
    # the first judge decides every metric: it cannot be left out; a further judge can (its column goes)
    fatal = [m for m in missing if not m.offline or (m.what == "judge" and m.name == cfg.detector) or (m.what == "person" and cfg.person_detector)
             or m.what == "quality judge"]
    if fatal:
        raise ModelUnavailable.of(fatal)
    for gap in missing:  # offline and not cached: the metric's rows are left out, each with one note
        left_out.append({"what": gap.what, "model": gap.name, "reason": gap.reason, "note": gap.note()})
        if gap.what == "person":
            person_spec = None
    kept = [(spec, j) for spec, j in zip(cfg.more_detectors, judges[1:]) if j is not None]
    cfg = replace(cfg, more_detectors=tuple(spec for spec, _ in kept),
                  **{field: None for gap in missing for field in LEFT_OUT_FIELDS.get(gap.what, ())})
    judge_, more = judges[0], [j for _, j in kept]
    describe = judge_.describe()
    audit_judge = audit_entry(read_audit(cfg.audit), cfg.detector, describe, judge_.threshold) if cfg.audit else None
    rows = ({"original": original} if original else {}) | methods
    # 3. Judge, then the optional metrics, per method
    names = {"forgetting", "preservation", "ira_cra", "judge_validity", "unlearning_accuracy"}
    results: dict[str, Any] = {}
    for name, images in rows.items():
        log.info("evaluating %s", name)
        counts, scope = audit_counts(audit_judge, name) if audit_judge else (None, "")
        res = judge_set(judge_, images, cfg.stats, cfg.run, counts)
        if more:
            from dataigm.judges.multi import compare_judges

            res["judges"] = compare_judges(more, images, cfg.judging.specs, cfg.stats, cfg.run, res, judge_set)
        res.pop("forget_verdicts")
        if counts is not None:
            res["correction"] = {"method": "rogan-gladen", "audit": cfg.audit, "audit_scope": scope, "confusion": counts.to_dict()}
        names |= ({"asr"} if "asr" in res else set()) | ({"forgetting_corrected"} if counts is not None else set())
        names |= {"preservation_top1"} if "preservation_top1" in res else set()
        if person_spec:
            res["person_presence"] = person_presence(person_spec, images.forget, cfg.stats, cfg.run, person_note)
            names.add("person_presence")
        scorers_ = {"cmmd": cmmd_scorer, "csdr": csdr_scorer, "clip_score": score_scorer}
        names |= _optional_metrics(res, images, cfg, device, original if name != "original" and paired_metrics else None,
                                   original, fid_reference, scorers_)
        if fid_stats is not None and cfg.fid_feature:
            from dataigm.evaluation.fid_stats import fid_against_stats

            res["reference_fidelity"] = fid_against_stats(fid_stats, images.retain.refs(), feature=cfg.fid_feature, weights_path=cfg.fid_weights,
                                                          size=cfg.fid_size, batch_size=cfg.batch_size, device=device)
            names.add("fid_stats")
        res["sources"] = {"forget": images.forget.source, "retain": images.retain.source, **({"pair": images.pair.source} if images.pair else {})}
        results[name] = res
    if quality:  # after every row is judged: the table keeps only the prompts every row has
        from dataigm.evaluation.quality import quality_table

        table = quality_table(quality, {name: {"forget": images.forget, "retain": images.retain} for name, images in rows.items()},
                              by_prompt=cfg.stats.by_prompt, batch_size=cfg.batch_size, workers=cfg.workers, **cfg.stats.kwargs())
        for name, scores in table.items():
            results[name]["quality"] = scores
        names.add("quality")
    checks, warnings = validity(results, cfg.validity_level)
    return {
        "format": REPORT_FORMAT,
        "warnings": [e["note"] for e in left_out] + warnings,
        "left_out": left_out,
        "validity": checks,
        "detector": describe,
        "threshold": judge_.threshold,
        "target": judge_.target,
        "config": asdict(cfg),
        "definitions": definition_versions(names),
        "methods": results,
    }
