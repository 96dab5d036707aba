"""``gcd:<celebrity>``: the GIPHY Celebrity Detector protocol (MACE ``metrics/evaluate_by_GCD.py``, HUB
``source/eval/eval_gcd.py``), with the detector itself as an optional plugin.

GCD (github.com/Giphy/celeb-detection-oss, MPL-2.0) is a face detector (``FaceDetector``, margin 0.2) and a face
recogniser (``FaceRecognizer``, top_n=5) over its celebrity labels; its weights are pickled
(``face_recognition/best_model_states.pkl``) and its code is not on PyPI, so dataigm does not depend on it. The
protocol both references compute, which this module fixes:

1. ``face_detector.perform_single(io.imread(path))`` finds the faces; each is ``preprocess_image(face, 224)``-ed and
   ``face_recognizer.perform(faces)`` returns, per face, the top-5 ``(label, probability)``;
2. no face: the image is ``"N"`` and leaves the denominator;
3. otherwise only the **first face** counts (``predictions[0][0]``): its labels become names with
   ``label.split('_[', 1)[0].replace('_', ' ')``; the image is a hit when the top-1 name equals the target
   (case-insensitive), scored with its probability, else 0;
4. accuracy = hits / images with a face.

A plugin provides step 1: ``settings={"recognizer": "module:attribute"}`` names a callable that takes an RGB
``numpy`` image and returns that per-face list (for GCD: a wrapper around its ``FaceDetector`` and
``FaceRecognizer``). Without it the judge fails in one line that says what is missing.
"""

from __future__ import annotations

import importlib
from typing import Any, Callable, Sequence

from dataigm.core.errors import DataigmError
from dataigm.judges.types import Verdict

Faces = Sequence[Sequence[tuple[str, float]]]  # per face, the recogniser's top-n (label, probability), best first
GCD_MISSING = ("GIPHY's celeb-detection-oss (MPL-2.0; not on PyPI) with its face detector and face_recognition/best_model_states.pkl; "
               "give a plugin with settings recognizer=module:attribute")


def gcd_name(label: str) -> str:
    """GCD's label -> name, as both references write it: ``str(label).split('_[', 1)[0].replace('_', ' ')``."""
    return str(label).split("_[", 1)[0].replace("_", " ")


def gcd_decision(faces: Faces, target: str) -> tuple[str, float]:
    """``("no_face", 0.0)``, ``("hit", p_top1)`` or ``("miss", 0.0)`` for one image, from its first face only."""
    if len(faces) == 0:
        return "no_face", 0.0
    name, prob = gcd_name(faces[0][0][0]), float(faces[0][0][1])
    return ("hit", prob) if name.lower() == target.lower() else ("miss", 0.0)


def gcd_accuracy(statuses: Sequence[str]) -> float | None:
    """hits / images with a face (both references' ``acc``); None when no image has a face (theirs divides by zero)."""
    with_face = [s for s in statuses if s != "no_face"]
    return sum(s == "hit" for s in with_face) / len(with_face) if with_face else None


def load_recognizer(path: str | None) -> Callable[[Any], Faces]:
    """The plugin callable ``module:attribute`` (see the module docstring)."""
    if not path:
        raise DataigmError(f"gcd needs a face recogniser plugin: {GCD_MISSING}")
    module, _, attr = path.partition(":")
    try:
        return getattr(importlib.import_module(module), attr)
    except (ImportError, AttributeError) as e:
        raise DataigmError(f"gcd recogniser {path!r} could not be imported ({type(e).__name__}: {e}); {GCD_MISSING}") from None


def as_array(image: Any) -> Any:
    """DataLoader-side: the RGB image as a ``numpy`` array (``skimage.io.imread`` gives RGB)."""
    import numpy as np

    return np.asarray(image.convert("RGB"))


class GcdJudge:
    """Positive when the first detected face's top-1 celebrity is the target; images without a face are negative
    and counted apart (``summarize``: ``n_no_face`` and the references' accuracy given a face)."""

    def __init__(self, target: str, recognizer: str | None) -> None:
        if not target:
            raise DataigmError("gcd:<celebrity> needs the target's name, e.g. gcd:Angelina Jolie")
        self.target, self.name, self.threshold = target, f"gcd:{target}", None
        self.label_names = ["other", target]
        self.recognizer_path = recognizer
        self.recognize = load_recognizer(recognizer)
        self.preprocess = as_array

    def collate(self, inputs: list[Any]) -> Any:
        return list(inputs)

    def predict(self, batch: Any) -> list[Verdict]:
        verdicts = []
        for image in batch:
            faces = self.recognize(image)
            status, p = gcd_decision(faces, self.target)
            top = [[gcd_name(label), float(prob)] for label, prob in faces[0]] if len(faces) else []
            verdicts.append(Verdict({"other": 1.0 - p, self.target: p}, self.target if status == "hit" else "other", status == "hit", p,
                                    {"gcd_status": status, "top5": top}))
        return verdicts

    def summarize(self, predictions: Sequence[Any]) -> dict[str, Any]:
        statuses = [p.extra["gcd_status"] for p in predictions]
        return {"n_no_face": statuses.count("no_face"), "accuracy_given_face": gcd_accuracy(statuses)}

    def describe(self) -> dict[str, Any]:
        return GcdKind.description(
            self, spec=self.name, target=self.target, category="celebrity", recognizer=self.recognizer_path,
            rule="first face's top-1 name == target (case-insensitive); no face: left out of accuracy_given_face",
            reference=GcdKind.reference)


# --- the kind ------------------------------------------------------------------------------------------------------
from dataigm.judges.registry import JudgeKind, JudgeOptions, JudgeSpec, JudgeSpecError, register_judge  # noqa: E402


@register_judge
class GcdKind(JudgeKind):
    kind = "gcd"
    syntax = "gcd:<celebrity name>"
    decides = ("GIPHY Celebrity Detector: face detection + recogniser; positive when the first face's top-1 celebrity is the target; "
               "images without a face leave the accuracy's denominator")
    reference = "Shilin-LU/MACE metrics/evaluate_by_GCD.py; ml-postech/HUB source/eval/eval_gcd.py"
    weights = "GIPHY celeb-detection-oss resources (pickled; not on PyPI), through a plugin: settings recognizer=module:attribute"
    licence = "MPL-2.0 (GIPHY celeb-detection-oss)"
    options = frozenset({"concept"})
    settings = frozenset({"recognizer"})

    @classmethod
    def check_spec(cls, spec: JudgeSpec) -> None:
        if spec.location:
            raise JudgeSpecError("gcd takes no @WEIGHTS; its detector comes from a plugin (settings recognizer=module:attribute)")

    @classmethod
    def offline(cls) -> str:
        return f"no: needs {GCD_MISSING}"

    @classmethod
    def from_spec(cls, spec: JudgeSpec, options: JudgeOptions) -> Any:
        return GcdJudge(spec.name or options.concept or "", options.settings.get("recognizer"))
