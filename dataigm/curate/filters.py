"""Curation filters: one registry entry each, scoring a batch of decoded samples.

A filter records its scores in fixed fields (``FIELDS``: name -> "not computed" default, the same on every
sample so stock loaders see one schema) and raises flags ``(reason, action)`` where it disagrees with the
sample. The engine combines the flags of all filters (the strongest action wins) and never decides silently:
every score lands in the sample's ``curation`` json.

Heavy libraries (onnxruntime via NudeNet, torch, timm, transformers) are imported when a filter is created.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Sequence

import numpy as np
from PIL import Image
from pydantic import BaseModel, ConfigDict, Field, field_validator

from dataigm.core.registry import Registry

# Labels of NudeNet's 320n detector, in its output order.
NUDENET_LABELS = (
    "FEMALE_GENITALIA_COVERED", "FACE_FEMALE", "BUTTOCKS_EXPOSED", "FEMALE_BREAST_EXPOSED", "FEMALE_GENITALIA_EXPOSED",
    "MALE_BREAST_EXPOSED", "ANUS_EXPOSED", "FEET_EXPOSED", "BELLY_COVERED", "FEET_COVERED", "ARMPITS_COVERED",
    "ARMPITS_EXPOSED", "FACE_MALE", "BELLY_EXPOSED", "MALE_GENITALIA_EXPOSED", "ANUS_COVERED", "FEMALE_BREAST_COVERED",
    "BUTTOCKS_COVERED",
)
# The exposed-nudity classes unlearning evaluations count (I2P / ESD convention).
NUDENET_NUDE_CLASSES = (
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


# --- blank / black / NaN ----------------------------------------------------------------------------------
class BlankSettings(FilterSettings):
    action: str = Field("drop", pattern="^(keep|review|drop)$")
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
    action: str = Field("drop", pattern="^(keep|review|drop)$")
    max_distance: int = Field(4, ge=0, le=32, description="Hamming distance (of 64 bits) at or below which two images are duplicates")
    leak_action: str = Field("drop", pattern="^(keep|review|drop)$", description="for duplicates across splits (always reported)")
    conflict_action: str = Field("drop", pattern="^(keep|review|drop)$", description="for both copies when near-identical images carry different labels")


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
    classes: list[str] = list(NUDENET_NUDE_CLASSES)
    threshold: float = Field(0.6, ge=0.2, le=1.0, description="NudeNet reports detections from 0.2 up")
    positive_label: str = "nude"
    on_positive_miss: str = Field("review", pattern="^(keep|review|drop)$")
    on_negative_hit: str = Field("drop", pattern="^(keep|review|drop)$")
    batch_size: int = Field(8, ge=1)

    @field_validator("classes")
    @classmethod
    def _known(cls, v: list[str]) -> list[str]:
        bad = [c for c in v if c not in NUDENET_LABELS]
        if bad or not v:
            raise ValueError(f"unknown NudeNet class(es) {bad}; valid: {', '.join(NUDENET_LABELS)}")
        return v


def nudenet_score(detections: Sequence[dict[str, Any]], classes: Sequence[str]) -> tuple[float, str]:
    """The highest detection score among ``classes`` and its class; ``(0.0, "")`` when none."""
    best = max((d for d in detections if d["class"] in classes), key=lambda d: d["score"], default=None)
    return (round(float(best["score"]), 6), best["class"]) if best else (0.0, "")


@register_filter
class NudenetFilter(Filter):
    """Agreement with NudeNet: a positive it does not see, or a negative where it sees nudity, is flagged."""

    name = "nudenet"
    Settings = NudenetSettings
    FIELDS = {"nudenet_score": -1.0, "nudenet_class": ""}

    def __init__(self, settings: FilterSettings) -> None:
        super().__init__(settings)
        from nudenet import NudeDetector

        self.detector = NudeDetector()

    def detect(self, images: Sequence[Image.Image]) -> list[list[dict[str, Any]]]:
        """NudeNet's raw detections; arrays are given in the BGR order its own decoder produces."""
        arrays = [np.ascontiguousarray(np.asarray(im.convert("RGB"))[:, :, ::-1]) for im in images]
        if hasattr(self.detector, "detect_batch"):
            return self.detector.detect_batch(arrays, batch_size=self.settings.batch_size)  # type: ignore[attr-defined]
        return [self.detector.detect(a) for a in arrays]

    def judge(self, detections: Sequence[dict[str, Any]], label_name: str) -> Scored:
        s: NudenetSettings = self.settings  # type: ignore[assignment]
        score, cls = nudenet_score(detections, s.classes)
        return Scored({"nudenet_score": score, "nudenet_class": cls},
                      _agreement_flags(label_name == s.positive_label, score >= s.threshold, s.on_positive_miss, s.on_negative_hit))

    def score(self, batch: Sequence[Decoded]) -> list[Scored]:
        return [self.judge(d, s.label_name) for s, d in zip(batch, self.detect([s.image for s in batch]))]


# --- agreement with a dataigm-exported detector -------------------------------------------------------------
class DetectorSettings(FilterSettings):
    path: str = Field(description="an exported detector folder (timm config.json + model.safetensors)")
    threshold: float | None = Field(None, ge=0.0, le=1.0, description="overrides the detector's own threshold")
    positive_label: str | None = None  # overrides the detector's own positive label
    on_positive_miss: str = Field("review", pattern="^(keep|review|drop)$")
    on_negative_hit: str = Field("drop", pattern="^(keep|review|drop)$")
    on_disagree: str = Field("review", pattern="^(keep|review|drop)$", description="multi-class detectors: argmax != label")
    batch_size: int = Field(32, ge=1)
    device: str = "auto"


def read_detector_config(path: Path) -> dict[str, Any]:
    """The exported detector's ``config.json``, checked for what curation needs (label names)."""
    cfg_path = Path(path) / "config.json"
    if not cfg_path.exists():
        raise FileNotFoundError(f"{cfg_path}: not found; a detector folder holds config.json and model.safetensors")
    cfg = json.loads(cfg_path.read_text())
    names = cfg.get("label_names") or cfg.get("pretrained_cfg", {}).get("label_names")
    if not isinstance(names, list) or not names:
        raise ValueError(f"{cfg_path}: field 'label_names' missing or empty")
    return cfg


def positive_label_name(value: Any, label_names: list[str], where: str) -> str | None:
    """The positive class as a name: exported detectors store its index (-1 or null: multi-class), configs a name."""
    if value is None or value == -1 or value == "":
        return None
    if isinstance(value, int):
        if not 0 <= value < len(label_names):
            raise ValueError(f"{where}: positive_label index {value} out of range for label_names {label_names}")
        return label_names[value]
    return str(value)


def pick_device(device: str) -> str:
    import torch

    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    return device


@register_filter
class DetectorFilter(Filter):
    """Agreement with a detector trained by dataigm (e.g. round one cleaning the data of round two)."""

    name = "detector"
    Settings = DetectorSettings
    FIELDS = {"detector_score": -1.0, "detector_label": ""}

    def __init__(self, settings: FilterSettings) -> None:
        super().__init__(settings)
        import timm
        import torch
        from timm.data import create_transform, resolve_data_config

        s: DetectorSettings = self.settings  # type: ignore[assignment]
        cfg = read_detector_config(Path(s.path))
        self.label_names: list[str] = list(cfg.get("label_names") or cfg["pretrained_cfg"]["label_names"])
        own = cfg.get("dataigm", {}) if isinstance(cfg.get("dataigm"), dict) else {}
        self.positive_label = s.positive_label or positive_label_name(own.get("positive_label"), self.label_names, s.path)
        if self.positive_label is not None and self.positive_label not in self.label_names:
            raise ValueError(f"{s.path}: positive_label {self.positive_label!r} not in label_names {self.label_names}")
        own_threshold = own.get("threshold")
        self.threshold = float(s.threshold if s.threshold is not None else (own_threshold if own_threshold is not None else 0.5))
        self.device = pick_device(s.device)
        self.model = timm.create_model("local-dir:" + str(Path(s.path).resolve()), pretrained=True).eval().to(self.device)
        self.transform = create_transform(**resolve_data_config({}, model=self.model))
        self._torch = torch

    def probabilities(self, images: Sequence[Image.Image]) -> np.ndarray:
        torch = self._torch
        x = torch.stack([self.transform(im.convert("RGB")) for im in images]).to(self.device)
        with torch.inference_mode():
            return torch.softmax(self.model(x).float(), dim=-1).cpu().numpy()

    def judge(self, probs: np.ndarray, label_name: str) -> Scored:
        s: DetectorSettings = self.settings  # type: ignore[assignment]
        if self.positive_label is not None:  # binary use: P(positive) against the threshold
            p = float(probs[self.label_names.index(self.positive_label)])
            hit = p >= self.threshold
            predicted = self.positive_label if hit else next((n for n in self.label_names if n != self.positive_label), "")
            flags = _agreement_flags(label_name == self.positive_label, hit, s.on_positive_miss, s.on_negative_hit)
            return Scored({"detector_score": round(p, 6), "detector_label": predicted}, flags)
        top = int(np.argmax(probs))
        predicted = self.label_names[top]
        flags = [("disagree", s.on_disagree)] if label_name in self.label_names and predicted != label_name else []
        return Scored({"detector_score": round(float(probs[top]), 6), "detector_label": predicted}, flags)

    def score(self, batch: Sequence[Decoded]) -> list[Scored]:
        out: list[Scored] = []
        step = self.settings.batch_size  # type: ignore[attr-defined]
        for i in range(0, len(batch), step):
            chunk = batch[i : i + step]
            out += [self.judge(p, s.label_name) for s, p in zip(chunk, self.probabilities([s.image for s in chunk]))]
        return out


# --- CLIP text-image score (hook) ------------------------------------------------------------------------
class ClipSettings(FilterSettings):
    model: str = Field(description="a CLIP model folder or Hub id, loaded with CLIPModel.from_pretrained")
    revision: str | None = None
    min_score: float = Field(0.0, ge=0.0, le=100.0, description="positives below this CLIPScore are flagged (0: record only)")
    action: str = Field("review", pattern="^(keep|review|drop)$")
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
        import torch
        from transformers import CLIPModel, CLIPProcessor

        s: ClipSettings = self.settings  # type: ignore[assignment]
        self.device = pick_device(s.device)
        dtype = getattr(torch, s.dtype) if self.device != "cpu" else torch.float32  # half precision only on GPU
        self.model = CLIPModel.from_pretrained(s.model, revision=s.revision, torch_dtype=dtype).eval().to(self.device)
        self.processor = CLIPProcessor.from_pretrained(s.model, revision=s.revision)
        self._torch = torch

    def _scores(self, images: Sequence[Image.Image], texts: Sequence[str]) -> np.ndarray:
        torch = self._torch
        inputs = self.processor(text=list(texts), images=[im.convert("RGB") for im in images], return_tensors="pt", padding=True, truncation=True)
        inputs = {k: v.to(self.device) for k, v in inputs.items()}
        with torch.inference_mode():
            img = self.model.get_image_features(pixel_values=inputs["pixel_values"].to(self.model.dtype))
            txt = self.model.get_text_features(input_ids=inputs["input_ids"], attention_mask=inputs.get("attention_mask"))
            img = getattr(img, "pooler_output", img)  # some versions return a model output object
            txt = getattr(txt, "pooler_output", txt)
            cos = torch.nn.functional.cosine_similarity(img.float(), txt.float(), dim=-1)
        return (100.0 * cos.clamp(min=0)).cpu().numpy()

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
