"""``dataigm``: an exported dataigm detector (timm Hub layout: ``config.json`` + ``model.safetensors``).

From a local folder (``local-dir:PATH`` or a plain path) or a Hub repo (``org/name`` or
``hf-hub:org/name[@revision]``, fetched with ``huggingface_hub.snapshot_download``). Weights are read from
safetensors only; nothing is unpickled.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from dataigm.core.atomic import sha256_file
from dataigm.core.detector_export import CONFIG, SAFE_WEIGHTS, read_detector_config, resolve_detector_folder  # noqa: F401 (re-exported)
from dataigm.core.devices import pick_device
from dataigm.core.errors import InputError
from dataigm.core.precision import DEFAULT_JUDGE_PRECISION
from dataigm.core.sources import parse_source
from dataigm.judges.registry import DATAIGM_KIND, JudgeKind, JudgeOptions, JudgeSpec, NameBy, register_judge
from dataigm.judges.types import Judge, RGBTransform, Verdict, pick_autocast_dtype, run_inference, stack

log = logging.getLogger(__name__)


# --- the detector --------------------------------------------------------------------------------
class DataigmJudge:
    """An exported dataigm detector, loaded with ``timm.create_model("local-dir:...", pretrained=True)``.

    Binary detectors call an image positive when P(positive class) >= threshold (the exported one unless
    overridden; 0.5 when the export has none). Multi-class detectors judge a target class (``concept``; default
    the exported positive label): positive when it is the argmax, or, when a threshold is given, when its
    probability reaches it.

    With ``allow_no_target=True`` a detector without a positive label (and no ``concept``) is accepted: ``target``
    is None and each image's target is its own argmax, so ``positive_score`` is P(argmax) and ``positive`` is True
    (or P(argmax) >= threshold when one is set). Curation uses this to compare the argmax with a sample's label.
    """

    def __init__(
        self, spec: str, *, concept: str | None = None, threshold: float | None = None, device: str | None = None,
        precision: str = DEFAULT_JUDGE_PRECISION, revision: str | None = None, allow_no_target: bool = False,
    ) -> None:  # pragma: no mutate block, plumbing, see docs/testing.md
        import timm
        from timm.data import create_transform, resolve_data_config

        self.folder, self.revision = resolve_detector_folder(spec, revision)
        self.config = read_detector_config(self.folder)
        self.name = spec
        self.label_names: list[str] = [str(n) for n in self.config["label_names"]]
        section = self.config["dataigm"]
        if concept is not None:
            if concept not in self.label_names:
                raise InputError(f"concept {concept!r} is not a class of detector {spec}; valid: {', '.join(self.label_names)}")
            self.target_index = self.label_names.index(concept)
        else:
            positive = section.get("positive_label")
            if positive is None and not allow_no_target:
                raise InputError(f"detector {spec} has {len(self.label_names)} classes and no dataigm.positive_label: pass concept=one of {self.label_names}")
            self.target_index = None if positive is None else int(positive)
        self.target = None if self.target_index is None else self.label_names[self.target_index]
        self.binary = len(self.label_names) == 2
        if threshold is not None and not 0.0 <= threshold <= 1.0:
            raise InputError(f"threshold must be in [0, 1], got {threshold}")
        if threshold is None and self.binary and self.target is not None:  # an export without a threshold: 0.5
            threshold = 0.5 if section.get("threshold") is None else float(section["threshold"])
        self.threshold = threshold
        self.category = section.get("category", "")
        self.weights_sha256 = sha256_file(self.folder / SAFE_WEIGHTS)

        self.device = pick_device(device)
        self.autocast_dtype = pick_autocast_dtype(self.device, precision)
        self.model = timm.create_model(f"local-dir:{self.folder}", pretrained=True).eval().to(self.device)
        self.data_config = resolve_data_config(model=self.model)
        self.transform = create_transform(**self.data_config, is_training=False)
        self.preprocess = RGBTransform(self.transform)  # PIL image -> input tensor; picklable for DataLoader workers

    def collate(self, inputs: list[Any]) -> Any:  # pragma: no mutate block, plumbing, see docs/testing.md
        """Stack preprocessed images into one batch tensor."""
        return stack(inputs)

    def logits(self, batch: Any) -> Any:
        """Raw logits (float32, on CPU) for a preprocessed batch."""
        return run_inference(self.model, batch, self.device, self.autocast_dtype)  # pragma: no mutate, autocast is None on CPU

    def predict(self, batch: Any) -> list[Verdict]:
        """One verdict per image of a collated batch (see the class docstring for the decision rule)."""
        logits = self.logits(batch)
        probs = logits.softmax(dim=-1)  # pragma: no mutate, (batch, classes): -1 is 1
        verdicts = []
        for row_logits, row in zip(logits.tolist(), probs.tolist()):
            argmax = max(range(len(row)), key=row.__getitem__)
            target = argmax if self.target_index is None else self.target_index  # no target: each image's argmax
            p_target = row[target]
            if self.threshold is None:
                positive = argmax == target
            else:
                positive = p_target >= self.threshold
            if self.binary and self.target_index is not None:
                predicted = self.target if positive else self.label_names[1 - self.target_index]
            else:
                predicted = self.label_names[argmax]
            verdicts.append(Verdict(dict(zip(self.label_names, row)), predicted, positive, p_target, {"logits": row_logits}))
        return verdicts

    def describe(self) -> dict[str, Any]:  # pragma: no mutate block, plumbing, see docs/testing.md
        """What judged: architecture, classes, target, weights digest, device and precision (for reports)."""
        return DataigmKind.description(
            self, "timm",
            architecture=self.config["architecture"],
            label_names=self.label_names,
            target=self.target,
            category=self.category,
            revision=self.revision,
            weights_sha256=self.weights_sha256,
            input_size=list(self.data_config["input_size"]),
        )


# --- the kind ------------------------------------------------------------------------------------------------------
def check_detector_location(location: str) -> None:
    """A detector location that is not a local path must be a valid source (``org/name[@revision]``, ``hf-hub:``)."""
    if not Path(location.removeprefix("local-dir:")).expanduser().exists() and not location.startswith("local-dir:"):
        parse_source(location, what="detector", allow_subfolder=False)


@register_judge
class DataigmKind(JudgeKind):
    kind = DATAIGM_KIND
    syntax = "PATH | local-dir:PATH | org/name[@revision] | hf-hub:org/name | dataigm:<any of these>"
    decides = ("a dataigm detector (any timm architecture): binary, P(positive) >= the exported threshold; multi-class, "
               "the target class is the argmax (or its probability reaches a given threshold)")
    reference = "dataigm (this package): DataIGM's detectors, trained with 'dataigm train' (arXiv 2506.02761)"
    weights = "an exported detector folder or Hub repo: config.json + model.safetensors (never a pickle)"
    licence = "the detector repo's own"
    options = frozenset({"concept", "model"})
    names = NameBy(check_detector_location)  # the NAME of a dataigm spec is the detector's location

    @classmethod
    def parse(cls, spec: str) -> JudgeSpec:
        location = spec.removeprefix(f"{DATAIGM_KIND}:")
        return JudgeSpec(spec, cls.kind, location, "")

    @classmethod
    def from_spec(cls, spec: JudgeSpec, options: JudgeOptions) -> Judge:
        return DataigmJudge(options.model or spec.name, concept=options.concept, threshold=options.threshold,
                            device=options.device, precision=options.precision)

    @classmethod
    def offline(cls) -> str:
        return "yes for local folders; Hub repos once cached"
