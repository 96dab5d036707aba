"""The contract of an exported detector folder: timm's Hub layout (``config.json`` + ``model.safetensors``) with a
``dataigm`` section that says what the detector judges.

:class:`DetectorExport` is that section. ``dataigm export-detector`` (:mod:`dataigm.train.export`) and the tiny
test detector (:mod:`dataigm.judges.tiny`) write it; :func:`read_detector_config` validates it for every reader
(the ``dataigm`` judge, curation's ``detector`` filter, ``dataigm detector-eval``). ``positive_label`` has one spelling:
an index, or ``None`` for a multi-class detector without a positive class (older exports wrote ``-1``).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from dataigm.core.errors import InputError
from dataigm.core.settings import format_validation_error
from dataigm.core.sources import PICKLE_WEIGHT_SUFFIXES, parse_source

EXPORT_FORMAT = "dataigm-detector/1"
SAFE_WEIGHTS = "model.safetensors"
CONFIG = "config.json"


def normalize_positive_label(value: Any) -> int | None:
    """``-1`` and ``None`` (no positive class) -> ``None``; an index stays an index."""
    return None if value is None or value == -1 else value


class DetectorExport(BaseModel):
    """The ``dataigm`` section of an exported detector's ``config.json``. Unknown fields are kept."""

    model_config = ConfigDict(extra="allow")

    format: str = Field(EXPORT_FORMAT, description="the version of this contract")
    name: str = ""
    category: str = Field("", description="the dataset category it was trained on")
    concept: str = ""
    positive_label: int | None = Field(None, description="index of the positive class; None: multi-class, no positive class")
    other_class: str | None = None
    threshold: float | None = Field(None, ge=0.0, le=1.0, description="decision threshold on P(positive)")
    threshold_rule: str = ""
    target_fpr: float | None = None
    training_data: dict[str, Any] | None = None
    dataset_label_names: list[str] = Field(default_factory=list)
    recipe: dict[str, Any] | None = None
    metrics: dict[str, Any] = Field(default_factory=dict)
    versions: dict[str, str] = Field(default_factory=dict)

    @field_validator("positive_label", mode="before")
    @classmethod
    def _one_spelling(cls, v: Any) -> Any:
        return normalize_positive_label(v)


class DetectorConfig(BaseModel):
    """The fields of ``config.json`` dataigm reads (timm's own fields are kept as they are)."""

    model_config = ConfigDict(extra="allow")

    architecture: str
    num_classes: int
    label_names: list[str]
    pretrained_cfg: dict[str, Any]
    dataigm: DetectorExport = Field(default_factory=DetectorExport)

    @model_validator(mode="after")
    def _consistent(self) -> "DetectorConfig":
        if len(self.label_names) != self.num_classes:
            raise ValueError(f"label_names {self.label_names} has {len(self.label_names)} entries, num_classes is {self.num_classes}")
        section = self.dataigm
        if "positive_label" not in section.model_fields_set and self.num_classes == 2:
            section.positive_label = 1  # a binary export without one: the second class is the positive one
        if section.positive_label is not None and not 0 <= section.positive_label < self.num_classes:
            raise ValueError(f"dataigm.positive_label must be an int in [0, {self.num_classes}), got {section.positive_label!r}")
        return self


def check_detector_folder(folder: Path) -> None:
    """Refuse a folder without ``config.json`` or ``model.safetensors`` (pickled weights are never loaded)."""
    folder = Path(folder)
    if not (folder / CONFIG).is_file():
        raise FileNotFoundError(f"{folder / CONFIG} not found: an exported dataigm detector needs {CONFIG} + {SAFE_WEIGHTS}")
    if not (folder / SAFE_WEIGHTS).is_file():
        found = sorted(p.name for p in folder.iterdir() if p.suffix in PICKLE_WEIGHT_SUFFIXES)
        raise FileNotFoundError(
            f"{folder} has no {SAFE_WEIGHTS}" + (f" (found {', '.join(found)})" if found else "")
            + ": dataigm loads detector weights from safetensors only and never unpickles"
        )


def read_detector_config(folder: Path) -> dict[str, Any]:  # pragma: no mutate block, plumbing, see docs/testing.md
    """Read and validate an exported detector's ``config.json`` (the folder must hold ``model.safetensors``).

    Returns the config as a dict whose ``dataigm`` section is a validated :class:`DetectorExport` dump
    (``positive_label`` an index or None); errors name the file, field and value.
    """
    check_detector_folder(folder)
    cfg_path = Path(folder) / CONFIG
    try:
        raw = json.loads(cfg_path.read_text())
        cfg = DetectorConfig.model_validate(raw)
    except json.JSONDecodeError as e:
        raise InputError(f"{cfg_path}: not valid JSON ({e.msg}, line {e.lineno})") from None
    except ValidationError as e:
        raise InputError(format_validation_error(str(cfg_path), e, "detector config")) from None
    raw["dataigm"] = cfg.dataigm.model_dump(mode="json")
    return raw


def resolve_detector_folder(spec: str, revision: str | None = None) -> tuple[Path, str]:  # pragma: no mutate block, plumbing, see docs/testing.md
    """Turn ``local-dir:PATH``, a folder path, ``hf-hub:org/name`` or ``org/name[@rev]`` into a local folder.

    Returns ``(folder, revision)``; the revision is the Hub commit for Hub ids and "" for local folders. Only
    ``config.json``, ``model.safetensors`` and the card are fetched from the Hub, so pickled weights never arrive.
    """
    if spec.startswith("local-dir:") and not Path(spec.removeprefix("local-dir:")).expanduser().is_dir():
        raise FileNotFoundError(f"detector folder {spec.removeprefix('local-dir:')} not found")
    source = parse_source(spec, what="detector", allow_subfolder=False)
    if source.kind == "local":
        return source.path, ""
    if source.kind == "file":
        raise FileNotFoundError(f"detector {spec!r} is a file; a dataigm detector is a folder with {CONFIG} + {SAFE_WEIGHTS}")
    from huggingface_hub import snapshot_download

    folder = Path(snapshot_download(source.location, revision=source.revision or revision,
                                    allow_patterns=[CONFIG, SAFE_WEIGHTS, "README.md"]))
    return folder, folder.name  # snapshots/<commit sha>
