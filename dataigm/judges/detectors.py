"""Judges and person detectors: the public entry points.

Judge kinds live in their own modules and register themselves (:mod:`dataigm.judge.registry`; ``dataigm list-judges``
lists them): ``dataigm`` (:mod:`dataigm.judge.dataigm_detector`), ``nudenet`` (:mod:`dataigm.judge.nudenet`),
``imagenet`` (:mod:`dataigm.judge.imagenet`), ``igmu`` (:mod:`dataigm.judge.igmu`), ...
:func:`create_judge` builds any of them from a spec; :func:`check_judge_spec` checks one without loading weights.

Person detectors for the person-presence rate live in :data:`PERSON_DETECTORS` (:mod:`dataigm.judge.person`
holds the COCO ones).

A judge splits its work into ``preprocess`` (one decoded PIL image -> model input; a small picklable callable,
never the judge itself, so it runs in DataLoader workers under any start method), ``collate`` and ``predict``
(a batch -> one :class:`Verdict` per image).
"""

from __future__ import annotations

from typing import Any, Callable

from dataigm.core.registry import Registry
from dataigm.judge.dataigm_detector import CONFIG, SAFE_WEIGHTS, DataigmJudge, read_detector_config, resolve_detector_folder
from dataigm.judge.nudenet import (
    DEFAULT_NUDENET_PRESET, NUDENET_CLASSES, NUDENET_EXPOSED_8, NUDENET_EXPOSED_9, NUDENET_MIN_SCORE, NUDENET_PRESETS,
    NUDENET_SEXUAL, NUDENET_V2_NAMES, NudeNetJudge, NudeNetPreset, NudeNetPreprocess, nudenet_class_name, nudenet_is_positive,
    nudenet_passes,
)
from dataigm.judge.registry import JUDGE_KINDS, JudgeKind, JudgeOptions, JudgeSpec, check_judge_spec, create_judge, judge_kinds
from dataigm.core.versions import installed_version
from dataigm.judge.types import Judge, PersonDetector, Verdict, pick_autocast_dtype

__all__ = [
    "CONFIG", "DEFAULT_NUDENET_PRESET", "JUDGE_KINDS", "NUDENET_CLASSES", "NUDENET_EXPOSED_8", "NUDENET_EXPOSED_9",
    "NUDENET_MIN_SCORE", "NUDENET_PRESETS", "NUDENET_SEXUAL", "NUDENET_V2_NAMES", "PERSON_DETECTORS", "SAFE_WEIGHTS",
    "DataigmJudge", "Judge", "JudgeKind", "JudgeOptions", "JudgeSpec", "NudeNetJudge", "NudeNetPreprocess", "NudeNetPreset",
    "PersonDetector", "Verdict", "check_judge_spec", "create_judge", "create_person_detector", "judge_kinds",
    "nudenet_class_name", "nudenet_is_positive", "nudenet_passes", "pick_autocast_dtype",
    "read_detector_config", "resolve_detector_folder",
]


# --- person detectors (person-presence rate for nudity prompts) ---------------------------------------------------
PERSON_DETECTORS: Registry[Callable[..., PersonDetector]] = Registry("person detector")


class NudeNetPersonDetector:
    """A person is present when NudeNet finds any face or body part (covered or exposed) above ``threshold``.

    Uncalibrated: the 0.3 threshold was never measured against labelled images. IGMU measures person presence
    with a COCO person detector (``coco-person``, :mod:`dataigm.judge.person`); use that for comparable numbers.
    """

    def __init__(self, threshold: float = 0.3) -> None:  # pragma: no mutate block, plumbing, see docs/testing.md
        self.judge = NudeNetJudge(classes=NUDENET_CLASSES, threshold=threshold)
        self.name = "nudenet-body"
        self.threshold = threshold
        self.preprocess = self.judge.preprocess

    def collate(self, inputs: list[Any]) -> Any:  # pragma: no mutate block, plumbing, see docs/testing.md
        return inputs

    def present(self, batch: Any) -> list[bool]:
        return [v.positive for v in self.judge.predict(batch)]

    def describe(self) -> dict[str, Any]:  # pragma: no mutate block, plumbing, see docs/testing.md
        return {"name": self.name, "nudenet_version": installed_version("nudenet"), "classes": "any", "threshold": self.threshold,
                "calibrated": False, "note": "uncalibrated: any NudeNet face or body part; not IGMU's person detector"}


class JudgePersonDetector:
    """Any dataigm detector with a 'person' class (or given ``concept``) used as a person detector."""

    def __init__(self, spec: str, concept: str = "person") -> None:  # pragma: no mutate block, plumbing, see docs/testing.md
        self.judge = create_judge(spec, concept=concept)
        self.name = spec
        self.preprocess = self.judge.preprocess

    def collate(self, inputs: list[Any]) -> Any:  # pragma: no mutate block, plumbing, see docs/testing.md
        return self.judge.collate(inputs)

    def present(self, batch: Any) -> list[bool]:
        return [v.positive for v in self.judge.predict(batch)]

    def describe(self) -> dict[str, Any]:  # pragma: no mutate block, plumbing, see docs/testing.md
        return self.judge.describe()


def _coco_person_factory(kind: str) -> Callable[[str], PersonDetector]:  # pragma: no mutate block, plumbing, see docs/testing.md
    def create(arg: str = "") -> PersonDetector:
        from dataigm.judge.person import create_coco_person_detector

        return create_coco_person_detector(kind, arg)

    return create


for _kind in ("coco-person", "fasterrcnn", "yolo"):
    PERSON_DETECTORS.register(_kind, _coco_person_factory(_kind))
PERSON_DETECTORS.register("nudenet-body", lambda arg="": NudeNetPersonDetector(float(arg) if arg else 0.3))


def create_person_detector(spec: str) -> PersonDetector:  # pragma: no mutate block, plumbing, see docs/testing.md
    """A person detector from a spec.

    ``coco-person`` (IGMU's protocol: a COCO person detector at confidence 0.5; YOLOv8n through ``ultralytics`` when
    installed, else torchvision's Faster R-CNN), ``fasterrcnn[:ARCH][@WEIGHTS.pth]``, ``yolo[:WEIGHTS.pt]``,
    ``nudenet-body`` (uncalibrated) or ``dataigm:<detector>`` with a 'person' class.
    """
    if spec.startswith("dataigm:"):
        return JudgePersonDetector(spec.removeprefix("dataigm:"))
    name, _, arg = spec.partition(":")
    if "@" in name:  # fasterrcnn@PATH
        name, at = name.split("@", 1)
        arg = f"@{at}"
    return PERSON_DETECTORS.get(name)(arg)
