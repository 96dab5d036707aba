"""``detect:OBJECT``: an open-vocabulary detector (OWLv2 by default, or OWL-ViT) through transformers'
``zero-shot-object-detection`` pipeline; the image shows OBJECT when any box of OBJECT scores above the threshold.

Receler and "Erasing with Precision" judge object erasure with an open-vocabulary detector (OWL-ViT, Grounding DINO):
an image counts as showing the object when the detector finds a box of it. dataigm asks the pipeline for the
object's query (``settings["query"]``, default the object's name as given, the pipeline's ``candidate_labels``;
``{object}`` in the query is filled in) with the box score ``threshold`` (default 0.1, the pipeline's and OWL-ViT's
model card's), and keeps every box whose label is the query (the pipeline's post-processing keeps scores ``> threshold``). The verdict's score is the best box's score (0 when
there is none); ``extra["boxes"]`` lists the boxes (score, ``xmin, ymin, xmax, ymax`` in pixels). The papers' own
query wording and threshold were not published as code; both are recorded in every verdict's description.
"""

from __future__ import annotations

from typing import Any

from dataigm.core.errors import DataigmError
from dataigm.judges.registry import JudgeKind, JudgeOptions, JudgeSpec, JudgeSpecError, register_judge
from dataigm.judges.types import Verdict
from dataigm.judges.vlm import rgb

DETECT_MODEL = "google/owlv2-base-patch16-ensemble"
DETECT_THRESHOLD = 0.1
DETECT_REFERENCE = ("transformers ZeroShotObjectDetectionPipeline (OWLv2 / OWL-ViT, post_process_object_detection); "
                    "the rule of Receler and Erasing with Precision: any box of the object")


class DetectJudge:
    """Any box of ``object`` above ``threshold`` (see the module docstring)."""

    def __init__(self, obj: str, model: str | None = None, *, threshold: float | None = None, settings: dict[str, Any] | None = None,
                 device: str | None = None) -> None:
        from dataigm.core.devices import pick_device

        settings = dict(settings or {})
        self.object = obj
        self.query = str(settings.get("query") or "{object}").format(object=obj)
        self.threshold = DETECT_THRESHOLD if threshold is None else float(threshold)
        self.model_spec = str(model or DETECT_MODEL).removeprefix("local-dir:").removeprefix("hf-hub:")
        self.name, self.target, self.label_names = f"detect:{obj}", obj, ["other", obj]
        self.device = pick_device(device)
        self.autocast_dtype = None
        self.pipe = load_detector(self.model_spec, self.device)
        self.preprocess = rgb

    def collate(self, inputs: list[Any]) -> Any:
        return list(inputs)

    def boxes(self, images: list[Any]) -> list[list[dict[str, Any]]]:
        """Per image, the boxes of the query above the threshold (post_process_object_detection keeps scores > threshold), best first."""
        out = self.pipe([{"image": im, "candidate_labels": [self.query]} for im in images], threshold=self.threshold)
        out = out if images and isinstance(out[0], list) else [out]
        return [sorted(({"score": float(b["score"]), "box": [b["box"][k] for k in ("xmin", "ymin", "xmax", "ymax")]}
                        for b in found if b["label"] == self.query), key=lambda b: -b["score"])
                for found in out]

    def predict(self, batch: Any) -> list[Verdict]:
        verdicts = []
        for found in self.boxes(batch):
            best = found[0]["score"] if found else 0.0
            positive = bool(found)
            verdicts.append(Verdict({"other": 1.0 - best, self.object: best}, self.object if positive else "other", positive, best,
                                    {"boxes": found}))
        return verdicts

    def describe(self) -> dict[str, Any]:
        return DetectKind.description(
            self, "transformers", spec=f"detect:{self.object}@{self.model_spec}", model=self.model_spec,
            architecture=type(self.pipe.model).__name__, query=self.query, threshold=self.threshold,
            rule=f"positive when any box of {self.query!r} scores > {self.threshold}", reference=DETECT_REFERENCE)


def load_detector(spec: str, device: str) -> Any:
    """transformers' ``zero-shot-object-detection`` pipeline of ``spec`` (safetensors only)."""
    from transformers import pipeline

    try:
        return pipeline("zero-shot-object-detection", model=spec, device=device, model_kwargs={"use_safetensors": True})
    except (OSError, ValueError) as e:
        raise DataigmError(f"detector {spec!r} could not be loaded ({type(e).__name__}: {str(e).splitlines()[0][:200] if str(e) else ''}); "
                           "give a local transformers folder (safetensors) or a cached Hub id") from None


@register_judge
class DetectKind(JudgeKind):
    kind = "detect"
    syntax = "detect:OBJECT[@MODEL]"
    decides = (f"an open-vocabulary detector (default {DETECT_MODEL}) through transformers' zero-shot-object-detection pipeline: "
               f"positive when any box of OBJECT scores > the threshold (default {DETECT_THRESHOLD})")
    reference = DETECT_REFERENCE
    weights = f"{DETECT_MODEL} (or google/owlvit-*, any zero-shot-object-detection model): Hub cache or a local folder"
    licence = "Apache-2.0 (OWLv2 / OWL-ViT weights)"
    options = frozenset({"concept", "model"})
    settings = frozenset({"query"})

    @classmethod
    def check_spec(cls, spec: JudgeSpec) -> None:
        if not spec.name:
            raise JudgeSpecError("detect needs the object to look for: detect:OBJECT (e.g. detect:church)")

    @classmethod
    def from_spec(cls, spec: JudgeSpec, options: JudgeOptions) -> Any:
        if options.concept not in (None, spec.name):
            raise JudgeSpecError(f"detect:{spec.name} looks for {spec.name!r}; got concept {options.concept!r}")
        return DetectJudge(spec.name, cls.weights_location(spec, options), threshold=options.threshold, settings=options.settings,
                           device=options.device)

    @classmethod
    def offline(cls) -> str:
        from dataigm.judges.clip import hub_cached

        return "yes (Hub cache)" if hub_cached(DETECT_MODEL) else f"no: needs {DETECT_MODEL} (Hub cache or a local folder)"
