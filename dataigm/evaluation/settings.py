"""The settings of an evaluation, split by what each part of it needs: which judges decide (:class:`JudgeSettings`),
which fidelity and alignment metrics run (:class:`MetricSettings`), how rates are aggregated and their intervals
made (:class:`StatsSettings`), and how images are read (:class:`RunSettings`). Which images are evaluated is an
:class:`~dataigm.evaluation.evaluate.ImageSet` per method; where the report goes is
:func:`dataigm.report.write.write_report`'s ``out``.

:class:`~dataigm.evaluation.evaluate.EvalConfig` is the one flat spelling callers and the command line use; its
``judging``, ``metrics``, ``stats`` and ``run`` properties hand each function of the evaluation the part it reads.

Example::

    >>> from dataigm.evaluation.evaluate import EvalConfig
    >>> cfg = EvalConfig(detector="nudenet", lpips_net=None, n_resamples=200)
    >>> cfg.stats.kwargs()
    {'n_resamples': 200, 'confidence': 0.95, 'seed': 0}
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

from dataigm.core.errors import InputError
from dataigm.evaluation.clip_metrics import CLIP_SCORE_MODES
from dataigm.evaluation.csdr import CSDR_PROMPTS, CSDR_UNITS
from dataigm.evaluation.metrics import AGGREGATIONS, DEFAULT_CONFIDENCE, DEFAULT_RESAMPLES, DEFAULT_SEED, prompt_key
from dataigm.evaluation.validity import DEFAULT_VALIDITY_LEVEL

FORGET_REFERENCES = ("pair", "same-prompt")
BOOTSTRAP_UNITS = ("prompt", "image")


def _check_choices(*checks: tuple[str, Any, Sequence[Any]]) -> None:
    for name, value, allowed in checks:
        if value not in allowed:
            raise InputError(f"{name} {value!r} not in {tuple(allowed)}")


@dataclass(frozen=True)
class JudgeSettings:
    """Which judges decide, and how their verdicts are checked and corrected."""

    detector: str
    more_detectors: tuple[str, ...] = ()  # further judges: their forgetting, preservation and kappa beside the first's
    concept: str | None = None
    threshold: float | None = None
    person_detector: str | None = None  # e.g. "nudenet-body"; default: nudenet-body for nudity judges
    nudenet_model: str | None = None  # a local copy of a NudeNet preset's detector file (offline machines)
    clip_model: str | None = None  # CLIP weights of the CLIP-based judges (igmu:<task>, clip:...); default: each one's own
    validity_level: float = DEFAULT_VALIDITY_LEVEL  # warn when the judge flags less of the original's forget images
    audit: str | None = None  # a 'dataigm audit --json' file of this judge: Rogan-Gladen corrected rates

    @property
    def specs(self) -> list[str]:
        return [self.detector, *self.more_detectors]

    def check(self) -> None:
        if not 0.0 <= self.validity_level <= 1.0:
            raise InputError(f"validity_level must be in [0, 1], got {self.validity_level}")


@dataclass(frozen=True)
class MetricSettings:
    """The optional metrics beside the judges' rates; ``None`` switches one off."""

    clip: str | None = None  # CLIP model path or Hub id -> CSDR (IGMU: openai/clip-vit-base-patch16) and csdr_win_rate
    csdr_unit: str = "image"  # IGMU's README: comment out torchmetrics' score.mean(0), so a ratio per image
    csdr_prompts: str = "igmu"  # IGMU's cleaned text: the metric named CSDR; "pair" is ours, named csdr-pair
    clip_score: str | None = None  # "torchmetrics" | "clipscore": CLIP score of forget and retain images
    clip_score_model: str | None = None  # default: CLIP_SCORE_DEFAULT_MODEL[clip_score]
    cmmd: str | None = None  # CLIP model for CMMD (paper: openai/clip-vit-large-patch14-336)
    forget_reference: str = "pair"  # forget fidelity against the original's image of p' ("pair") or of p ("same-prompt")
    fid_reference: str | None = None  # an unpaired folder (e.g. real COCO images): FID/KID of retain images against it
    lpips_net: str | None = "alex"
    lpips_size: int | None = None
    fid_feature: str | None = "inception"
    fid_weights: str | None = None
    fid_size: int = 299
    kid_subset_size: int = 1000  # KID is left out (with a note) when a side has fewer images
    quality: tuple[str, ...] = ()  # score judges (aesthetic, imagereward, pickscore, vqascore): mean per method (HUB's table)

    def check(self) -> None:
        _check_choices(("forget_reference", self.forget_reference, FORGET_REFERENCES), ("csdr_unit", self.csdr_unit, CSDR_UNITS),
                       ("csdr_prompts", self.csdr_prompts, CSDR_PROMPTS))
        if self.clip_score is not None:
            _check_choices(("clip_score", self.clip_score, CLIP_SCORE_MODES))


@dataclass(frozen=True)
class StatsSettings:
    """How rates are aggregated and grouped, and how their intervals are made (:mod:`dataigm.evaluation.stats`)."""

    aggregate: str = "image"  # forgetting per image, or per prompt ("prompt-any", UnlearnDiffAtk)
    group_by: tuple[str, ...] = ()  # extra metadata fields to group rates by
    n_resamples: int = DEFAULT_RESAMPLES
    confidence: float = DEFAULT_CONFIDENCE
    seed: int = DEFAULT_SEED
    bootstrap_unit: str = "prompt"  # group images by prompt for intervals (cluster bootstrap), or treat each alone

    @property
    def by_prompt(self) -> bool:
        return self.bootstrap_unit == "prompt"

    def kwargs(self) -> dict[str, Any]:
        """The keyword arguments of the interval functions."""
        return {"n_resamples": self.n_resamples, "confidence": self.confidence, "seed": self.seed}

    def clusters(self, refs: Sequence[Any]) -> list[tuple[Any, ...]] | None:
        """The prompt of each image (the interval's unit), or None when each image is its own unit."""
        return [prompt_key(r.meta, r.id) for r in refs] if self.by_prompt else None

    def check(self) -> None:
        _check_choices(("aggregate", self.aggregate, AGGREGATIONS), ("bootstrap_unit", self.bootstrap_unit, BOOTSTRAP_UNITS))


@dataclass(frozen=True)
class RunSettings:
    """How images are read and models placed."""

    batch_size: int = 32
    workers: int | None = None
    device: str | None = None


PARTS = {"judging": JudgeSettings, "metrics": MetricSettings, "stats": StatsSettings, "run": RunSettings}
