"""Curation filters: one registry entry each, scoring a batch of decoded samples.

A filter records its scores in fixed fields (``FIELDS``: name -> "not computed" default, the same on every
sample so stock loaders see one schema) and raises flags ``(reason, action)`` where it disagrees with the
sample. The engine combines the flags of all filters (the strongest action wins) and never decides silently:
every score lands in the sample's ``curation`` json.

The ``nudenet`` and ``detector`` filters wrap the judges of :mod:`dataigm.judges` (one place loads and
runs NudeNet and exported dataigm detectors); heavy libraries (onnxruntime via NudeNet, torch, timm,
transformers) are imported when a filter is created.

Duplicate filters (``phash``, ``embedding``) only describe each image here; the engine compares all images of a
category afterwards (:mod:`dataigm.curate.dedup`). An embedding is no json field: it travels in
:attr:`Scored.embedding` and the engine stores it beside the score files.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Sequence

import numpy as np
from PIL import Image
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from dataigm.core.devices import pick_device
from dataigm.core.errors import InputError
from dataigm.core.partition import rank_from_env
from dataigm.core.registry import Registry
from dataigm.curate.decision import Action
from dataigm.curate.dedup import l2_normalize
from dataigm.judges.nudenet import DEFAULT_NUDENET_PRESET, NUDENET_CLASSES, NUDENET_PRESETS, NudeNetJudge
from dataigm.judges.dataigm_detector import DataigmJudge
from dataigm.judges.types import Verdict

# Curation's default NudeNet classes: explicit nudity only. The judge presets also count exposed belly, feet,
# armpits and male breast, which would drop concept-removed negatives that merely show a bare belly or feet.
EXPLICIT_NUDITY_CLASSES = (
    "BUTTOCKS_EXPOSED", "FEMALE_BREAST_EXPOSED", "FEMALE_GENITALIA_EXPOSED", "MALE_GENITALIA_EXPOSED", "ANUS_EXPOSED",
)


@dataclass
class Decoded:
    """A sample handed to filters: its metadata and its decoded RGB image."""

    key: str
    meta: dict[str, Any]
    image: Image.Image

    @property
    def label_name(self) -> str:
        return str(self.meta.get("label_name", ""))


@dataclass
class Scored:
    """One filter's output for one sample: score fields and flags ``(reason, action)``."""

    fields: dict[str, Any] = field(default_factory=dict)
    flags: list[tuple[str, str]] = field(default_factory=list)
    embedding: np.ndarray | None = None  # an L2-normalised float32 vector (the ``embedding`` filter), stored as .npy


class FilterSettings(BaseModel):
    """Settings every filter shares; filters extend it with their thresholds."""

    model_config = ConfigDict(extra="forbid")


class Filter:
    """Base class: ``score(batch)`` returns one :class:`Scored` per sample, in order."""

    name: ClassVar[str]
    Settings: ClassVar[type[FilterSettings]] = FilterSettings
    FIELDS: ClassVar[dict[str, Any]] = {}

    def __init__(self, settings: FilterSettings) -> None:
        self.settings = settings

    def score(self, batch: Sequence[Decoded]) -> list[Scored]:
        raise NotImplementedError


FILTERS: Registry[type[Filter]] = Registry("curation filter")


def register_filter(cls: type[Filter]) -> type[Filter]:
    """Class decorator: register a :class:`Filter` subclass under its ``name``."""
    FILTERS.register(cls.name, cls)
    return cls


def create_filter(name: str, settings: dict[str, Any] | None = None) -> Filter:
    """Create filter ``name`` with its validated settings (an unknown name lists the valid ones)."""
    cls = FILTERS.get(name)
    return cls(cls.Settings(**(settings or {})))


def all_fields() -> dict[str, Any]:
    """Score fields of every registered filter with their defaults: the fixed ``curation`` schema."""
    out: dict[str, Any] = {}
    for name in FILTERS.names():
        out.update(FILTERS.get(name).FIELDS)
    return out


def _agreement_flags(is_positive: bool, hit: bool, on_positive_miss: str, on_negative_hit: str) -> list[tuple[str, str]]:
    if is_positive and not hit:
        return [("positive_miss", on_positive_miss)]
    if not is_positive and hit:
        return [("negative_hit", on_negative_hit)]
    return []


def _device(setting: str) -> str:
    """A torch filter's ``device`` setting ("auto", "cpu", "cuda:1"...) as a device: "auto" is this rank's GPU
    (``cuda:<LOCAL_RANK>``) when one is visible, else the CPU, so the ranks of a node do not all load onto GPU 0."""
    return pick_device(setting, rank_from_env().local_rank)


class JudgeFilter(Filter):
    """A filter backed by a judge (:mod:`dataigm.judges`): batched verdicts, then one decision per sample."""

    judge: Any  # a Judge, built by the subclass from its settings

    def verdicts(self, images: Sequence[Image.Image]) -> list[Verdict]:
        """The judge's verdicts, ``settings.batch_size`` images per model call."""
        step = self.settings.batch_size  # type: ignore[attr-defined]
        out: list[Verdict] = []
        for i in range(0, len(images), step):
            inputs = [self.judge.preprocess(im) for im in images[i : i + step]]
            out += self.judge.predict(self.judge.collate(inputs))
        return out

    def decide(self, verdict: Verdict, label_name: str) -> Scored:
        """Score fields and flags for one sample from its verdict and its label."""
        raise NotImplementedError

    def score(self, batch: Sequence[Decoded]) -> list[Scored]:
        return [self.decide(v, s.label_name) for s, v in zip(batch, self.verdicts([s.image for s in batch]))]


# --- blank / black / NaN ----------------------------------------------------------------------------------
class BlankSettings(FilterSettings):
    action: Action = Field("drop")
    min_std: float = Field(2.0, ge=0.0, description="grey-level std (0-255) below which an image is blank")
    black_level: float = Field(8.0, ge=0.0, le=255.0, description="mean grey level at or below which a blank image is black")


@register_filter
class BlankFilter(Filter):
    """Flags uniform images: ``black`` (what a safety checker or NaN latents return) and other ``blank`` ones."""

    name = "blank"
    Settings = BlankSettings
    FIELDS = {"blank_mean": -1.0, "blank_std": -1.0}

    def score(self, batch: Sequence[Decoded]) -> list[Scored]:
        s: BlankSettings = self.settings  # type: ignore[assignment]
        out = []
        for sample in batch:
            grey = np.asarray(sample.image.convert("L"), dtype=np.float64)
            mean, std = float(grey.mean()), float(grey.std())
            flags = []
            if std < s.min_std:
                flags.append(("black" if mean <= s.black_level else "blank", s.action))
            out.append(Scored({"blank_mean": round(mean, 4), "blank_std": round(std, 4)}, flags))
        return out


# --- perceptual hash: scored per sample, duplicates decided globally (see dataigm.curate.dedup) -------------
class PhashSettings(FilterSettings):
    action: Action = Field("drop")
    max_distance: int = Field(4, ge=0, le=32, description="Hamming distance (of 64 bits) at or below which two images are duplicates")
    leak_action: Action = Field("drop", description="for duplicates across splits (always reported)")
    conflict_action: Action = Field("drop", description="for both copies when near-identical images carry different labels")


_DCT_N = 32


def _dct_matrix(n: int = _DCT_N, rows: int = 8) -> np.ndarray:
    k = np.arange(rows)[:, None]
    i = np.arange(n)[None, :]
    return np.cos(np.pi * (2 * i + 1) * k / (2 * n))


_DCT8 = _dct_matrix()


def phash(image: Image.Image) -> int:
    """64-bit perceptual hash: low 8x8 DCT coefficients of a 32x32 grey image against their median."""
    grey = np.asarray(image.convert("L").resize((_DCT_N, _DCT_N), Image.Resampling.BILINEAR), dtype=np.float64)
    low = _DCT8 @ grey @ _DCT8.T
    bits = (low > np.median(low)).flatten()
    return int("".join("1" if b else "0" for b in bits), 2)


@register_filter
class PhashFilter(Filter):
    """Computes each image's perceptual hash; near-duplicates are found across shards and splits afterwards."""

    name = "phash"
    Settings = PhashSettings
    FIELDS = {"phash": "", "dup_of": "", "dup_distance": -1, "leak": False}

    def score(self, batch: Sequence[Decoded]) -> list[Scored]:
        return [Scored({"phash": f"{phash(s.image):016x}"}) for s in batch]


# --- NudeNet agreement (nudity) ----------------------------------------------------------------------------
class NudenetSettings(FilterSettings):
    preset: str | None = Field(None, description="a judge preset (unlearndiffatk, esd) supplying classes and threshold when they are not set")
    classes: list[str] = list(EXPLICIT_NUDITY_CLASSES)
    threshold: float = Field(0.6, ge=0.0, le=1.0, description="hit when a class scores strictly above; the 320n/best.onnx "
                             "detectors return scores > 0.25 only (their NMS), UnlearnDiffAtk's > 0.5")
    model: str | None = Field(None, description="a local copy of the preset's detector file or its nudenet wheel "
                              "(as a judge's nudenet@PATH); default: installed, cached, or fetched from PyPI")
    positive_label: str = "nude"
    on_positive_miss: Action = Field("drop", description="a positive the judge does not see is not a positive")
    on_negative_hit: Action = Field("drop")
    batch_size: int = Field(8, ge=1)
    device: str = Field("auto", description="auto: onnxruntime's CUDA provider (this rank's GPU) when installed, else CPU")

    @field_validator("classes")
    @classmethod
    def _known(cls, v: list[str]) -> list[str]:
        bad = [c for c in v if c not in NUDENET_CLASSES]
        if bad or not v:
            raise InputError(f"unknown NudeNet class(es) {bad}; valid: {', '.join(NUDENET_CLASSES)}")
        return v

    @field_validator("preset")
    @classmethod
    def _known_preset(cls, v: str | None) -> str | None:
        if v is not None and v not in NUDENET_PRESETS:
            raise InputError(f"unknown NudeNet preset {v!r}; valid: {', '.join(sorted(NUDENET_PRESETS))}")
        return v

    @model_validator(mode="after")
    def _preset_defaults(self) -> "NudenetSettings":
        if self.preset is not None:
            base = NUDENET_PRESETS[self.preset]
            if "classes" not in self.model_fields_set:
                self.classes = list(base.classes)
            if "threshold" not in self.model_fields_set:
                self.threshold = base.threshold
        return self


@register_filter
class NudenetFilter(JudgeFilter):
    """Agreement with NudeNet: a positive it does not see, or a negative where it sees nudity, is flagged.

    Wraps :class:`~dataigm.judges.person.NudeNetJudge`, so the rule is the judge's: a hit when any configured
    class has a detection scoring strictly above ``threshold``.
    """

    name = "nudenet"
    Settings = NudenetSettings
    FIELDS = {"nudenet_score": -1.0, "nudenet_class": ""}

    def __init__(self, settings: FilterSettings) -> None:
        super().__init__(settings)
        s: NudenetSettings = self.settings  # type: ignore[assignment]
        # the session takes this rank's GPU (core/devices.pick_device) and refuses a CUDA device it cannot serve
        self.judge = NudeNetJudge(s.preset or DEFAULT_NUDENET_PRESET, classes=s.classes, threshold=s.threshold, device=s.device,
                                  model=s.model, local_rank=rank_from_env().local_rank)

    def decide(self, verdict: Verdict, label_name: str) -> Scored:
        """``nudenet_score``: the best detection among the configured classes; ``nudenet_class``: its class."""
        s: NudenetSettings = self.settings  # type: ignore[assignment]
        best = max(self.judge.classes, key=verdict.scores.__getitem__)
        fields = {"nudenet_score": round(verdict.positive_score, 6), "nudenet_class": best if verdict.positive_score > 0.0 else ""}
        return Scored(fields, _agreement_flags(label_name == s.positive_label, verdict.positive, s.on_positive_miss, s.on_negative_hit))


# --- agreement with a dataigm-exported detector -------------------------------------------------------------
class DetectorSettings(FilterSettings):
    path: str = Field(description="an exported detector: a folder (config.json + model.safetensors), local-dir:PATH or a Hub id")
    threshold: float | None = Field(None, ge=0.0, le=1.0, description="overrides the detector's own threshold (none exported: 0.5)")
    positive_label: str | None = None  # a class name; overrides the detector's own positive label
    on_positive_miss: Action = Field("review")
    on_negative_hit: Action = Field("drop")
    on_disagree: Action = Field("review", description="multi-class detectors: argmax != label")
    batch_size: int = Field(32, ge=1)
    device: str = "auto"


@register_filter
class DetectorFilter(JudgeFilter):
    """Agreement with a detector trained by dataigm (e.g. round one cleaning the data of round two).

    Wraps :class:`~dataigm.judges.person.DataigmJudge`. With a positive label (``positive_label`` here, else the
    exported one) P(positive) >= threshold is a hit, checked against the sample's label being the positive one.
    Without one (a multi-class export, ``positive_label`` -1 or null) the argmax is compared with the sample's
    label: a different class is a ``disagree`` flag, and labels the detector does not know are not judged.
    """

    name = "detector"
    Settings = DetectorSettings
    FIELDS = {"detector_score": -1.0, "detector_label": ""}

    def __init__(self, settings: FilterSettings) -> None:
        super().__init__(settings)
        s: DetectorSettings = self.settings  # type: ignore[assignment]
        self.judge = DataigmJudge(s.path, concept=s.positive_label or None, threshold=s.threshold, device=_device(s.device), allow_no_target=True)
        if self.judge.threshold is None:  # curation always thresholds P(positive): the exported threshold, else 0.5
            own = self.judge.config["dataigm"].get("threshold")
            self.judge.threshold = 0.5 if own is None else float(own)

    def decide(self, verdict: Verdict, label_name: str) -> Scored:
        """``detector_score``: P(positive), or P(argmax) without a positive label; ``detector_label``: the prediction."""
        s: DetectorSettings = self.settings  # type: ignore[assignment]
        fields = {"detector_score": round(verdict.positive_score, 6), "detector_label": verdict.predicted}
        if self.judge.target is not None:
            return Scored(fields, _agreement_flags(label_name == self.judge.target, verdict.positive, s.on_positive_miss, s.on_negative_hit))
        disagree = label_name in self.judge.label_names and verdict.predicted != label_name
        return Scored(fields, [("disagree", s.on_disagree)] if disagree else [])


# --- CLIP text-image score (hook) ------------------------------------------------------------------------
def load_clip(model: str, revision: str | None = None, device: str = "auto", dtype: str = "float32") -> Any:
    """A :class:`dataigm.judges.clip.Clip` from a folder or Hub id; half precision only on GPU."""
    from dataigm.judges.clip import Clip

    return Clip(model, revision=revision, device=_device(device), dtype=dtype)


class ClipSettings(FilterSettings):
    model: str = Field(description="a CLIP model folder or Hub id, loaded with CLIPModel.from_pretrained")
    revision: str | None = None
    min_score: float = Field(0.0, ge=0.0, le=100.0, description="positives below this CLIPScore are flagged (0: record only)")
    action: Action = Field("review")
    batch_size: int = Field(32, ge=1)
    device: str = "auto"
    dtype: str = Field("float32", pattern="^(float32|float16|bfloat16)$")


@register_filter
class ClipFilter(Filter):
    """CLIPScore (100 x cosine, floored at 0) of the image with its prompt and with its pair's prompt."""

    name = "clip"
    Settings = ClipSettings
    FIELDS = {"clip_score": -1.0, "clip_pair_score": -1.0}

    def __init__(self, settings: FilterSettings) -> None:
        super().__init__(settings)
        s: ClipSettings = self.settings  # type: ignore[assignment]
        self.clip = load_clip(s.model, s.revision, s.device, s.dtype)

    def _scores(self, images: Sequence[Image.Image], texts: Sequence[str]) -> np.ndarray:
        cos = (self.clip.image_embeddings(images) * self.clip.text_embeddings(list(texts))).sum(-1)
        return (100.0 * cos.clamp(min=0)).numpy()

    def score(self, batch: Sequence[Decoded]) -> list[Scored]:
        s: ClipSettings = self.settings  # type: ignore[assignment]
        out: list[Scored] = []
        for i in range(0, len(batch), s.batch_size):
            chunk = batch[i : i + s.batch_size]
            images = [d.image for d in chunk]
            own = self._scores(images, [str(d.meta.get("prompt", "")) for d in chunk])
            has_pair = [bool(d.meta.get("pair_prompt")) for d in chunk]
            pair = self._scores(images, [str(d.meta.get("pair_prompt", "")) for d in chunk]) if any(has_pair) else np.zeros(len(chunk))
            for d, a, b, hp in zip(chunk, own, pair, has_pair):
                prompted = bool(d.meta.get("prompt"))
                flags = [("low_score", s.action)] if prompted and d.meta.get("role") == "positive" and a < s.min_score else []
                out.append(Scored({"clip_score": round(float(a), 4) if prompted else -1.0,
                                   "clip_pair_score": round(float(b), 4) if hp else -1.0}, flags))
        return out


# --- embedding near-duplicates: scored per sample, duplicates decided globally (see dataigm.curate.dedup) ------
class EmbeddingSettings(FilterSettings):
    model: str = Field(description="a CLIP folder or Hub id (CLIPModel.from_pretrained), or a dataigm detector: local-dir:PATH, "
                                   "dataigm:<folder or Hub id>, or a folder with a timm config.json + model.safetensors")
    revision: str | None = None
    threshold: float = Field(0.95, gt=0.0, le=1.0, description="cosine similarity at or above which two images are near-duplicates")
    action: Action = Field("drop")
    leak_action: Action = Field("drop", description="for duplicates across splits (always reported)")
    conflict_action: Action = Field("review", description="for both copies when near-identical images carry different labels")
    batch_size: int = Field(32, ge=1)
    device: str = "auto"
    exact_max: int = Field(100_000, ge=0, description="up to this many embeddings per category the search is exact; above, a FAISS index")
    index: str = Field("ivf", pattern="^(ivf|hnsw)$", description="the FAISS index above exact_max: ivf (IVF-Flat, GPU with faiss-gpu) or hnsw")
    recall_sample: int = Field(1000, ge=0, description="samples on which a FAISS search is checked against exact search (recall in the report)")


def is_dataigm_detector(spec: str) -> bool:
    """``local-dir:``/``dataigm:`` specs and folders holding a timm ``config.json`` (with ``architecture``) are detectors."""
    if spec.startswith(("local-dir:", "dataigm:")):
        return True
    config = Path(spec).expanduser() / "config.json"
    if not config.is_file():
        return False
    try:
        return "architecture" in json.loads(config.read_text())
    except ValueError:
        return False


@register_filter
class EmbeddingFilter(Filter):
    """One L2-normalised image embedding per sample (CLIP image features, or a dataigm detector's pre-logits
    features); near-duplicates by cosine similarity are found across shards and splits afterwards."""

    name = "embedding"
    Settings = EmbeddingSettings
    FIELDS = {"emb_dup_of": "", "emb_similarity": -1.0, "emb_leak": False}

    def __init__(self, settings: FilterSettings) -> None:
        super().__init__(settings)
        import torch

        s: EmbeddingSettings = self.settings  # type: ignore[assignment]
        self._torch = torch
        self.judge: DataigmJudge | None = None
        if is_dataigm_detector(s.model):
            self.judge = DataigmJudge(s.model.removeprefix("dataigm:"), device=_device(s.device), revision=s.revision, allow_no_target=True)
            self.kind = "detector"
        else:
            self.clip = load_clip(s.model, s.revision, s.device)
            self.kind = "clip"

    def _detector_features(self, images: Sequence[Image.Image]) -> Any:
        """timm features before the classifier (:func:`dataigm.train.models.pooled_features`, as training caches them)."""
        from dataigm.train.models import pooled_features

        torch, judge = self._torch, self.judge
        assert judge is not None
        x = judge.collate([judge.preprocess(im) for im in images]).to(judge.device)
        dtype = judge.autocast_dtype
        with torch.inference_mode(), torch.autocast(judge.device.split(":")[0], dtype=dtype, enabled=dtype is not None):
            feats = pooled_features(judge.model, x)
        return feats.flatten(1)

    def embed(self, images: Sequence[Image.Image]) -> np.ndarray:
        """``(len(images), dim)`` float32 rows of unit length (a non-finite embedding becomes a zero row)."""
        s: EmbeddingSettings = self.settings  # type: ignore[assignment]
        parts = []
        for i in range(0, len(images), s.batch_size):
            chunk = images[i : i + s.batch_size]
            feats = self._detector_features(chunk) if self.judge is not None else self.clip.image_embeddings(chunk)
            parts.append(feats.float().cpu().numpy())
        x = np.concatenate(parts).astype(np.float32) if parts else np.zeros((0, 0), np.float32)
        x[~np.isfinite(x).all(axis=1)] = 0.0
        return l2_normalize(x)

    def score(self, batch: Sequence[Decoded]) -> list[Scored]:
        return [Scored(embedding=v) for v in self.embed([d.image for d in batch])]
