"""``dataigm``: an exported dataigm detector (timm Hub layout: ``config.json`` + ``model.safetensors``).

From a local folder (``local-dir:PATH`` or a plain path) or a Hub repo (``org/name`` or
``hf-hub:org/name[@revision]``, fetched with ``huggingface_hub.snapshot_download``). Weights are read from
safetensors only; nothing is unpickled.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

from dataigm.core.atomic import sha256_file
from dataigm.core.devices import pick_device
from dataigm.core.precision import DEFAULT_JUDGE_PRECISION
from dataigm.core.sources import parse_source
from dataigm.judge.registry import DATAIGM_KIND, JudgeKind, JudgeOptions, JudgeSpec, register_judge
from dataigm.judge.types import Judge, RGBTransform, Verdict, package_version, pick_autocast_dtype, precision_name, run_inference, stack

log = logging.getLogger(__name__)

SAFE_WEIGHTS = "model.safetensors"
CONFIG = "config.json"

# --- the detector --------------------------------------------------------------------------------
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


def read_detector_config(folder: Path) -> dict[str, Any]:  # pragma: no mutate block, plumbing, see docs/testing.md
    """Read and check an exported detector's ``config.json``; errors name the file, field and value."""
    folder = Path(folder)
    cfg_path = folder / CONFIG
    if not cfg_path.is_file():
        raise FileNotFoundError(f"{cfg_path} not found: an exported dataigm detector needs config.json + {SAFE_WEIGHTS}")
    if not (folder / SAFE_WEIGHTS).is_file():
        found = sorted(p.name for p in folder.iterdir() if p.suffix in {".bin", ".pth", ".pt", ".ckpt", ".pkl"})
        raise FileNotFoundError(
            f"{folder} has no {SAFE_WEIGHTS}" + (f" (found {', '.join(found)})" if found else "")
            + ": dataigm loads detector weights from safetensors only and never unpickles"
        )
    cfg = json.loads(cfg_path.read_text())
    for key, kind in (("architecture", str), ("num_classes", int), ("label_names", list), ("pretrained_cfg", dict)):
        if not isinstance(cfg.get(key), kind):
            raise ValueError(f"{cfg_path}: field {key!r} must be a {kind.__name__}, got {cfg.get(key)!r}")
    if len(cfg["label_names"]) != cfg["num_classes"]:
        raise ValueError(f"{cfg_path}: label_names {cfg['label_names']} has {len(cfg['label_names'])} entries, num_classes is {cfg['num_classes']}")
    section = cfg.setdefault("dataigm", {})
    positive = section.get("positive_label", 1 if cfg["num_classes"] == 2 else None)
    if positive == -1:  # the trainer's export writes -1 for a multi-class detector without a positive class
        positive = None
    if positive is not None and not (isinstance(positive, int) and 0 <= positive < cfg["num_classes"]):
        raise ValueError(f"{cfg_path}: dataigm.positive_label must be an int in [0, {cfg['num_classes']}), got {positive!r}")
    section["positive_label"] = positive
    threshold = section.get("threshold")
    if threshold is not None and not (isinstance(threshold, (int, float)) and 0.0 <= threshold <= 1.0):
        raise ValueError(f"{cfg_path}: dataigm.threshold must be a number in [0, 1], got {threshold!r}")
    return cfg


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
                raise ValueError(f"concept {concept!r} is not a class of detector {spec}; valid: {', '.join(self.label_names)}")
            self.target_index = self.label_names.index(concept)
        else:
            positive = section.get("positive_label")
            if positive is None and not allow_no_target:
                raise ValueError(f"detector {spec} has {len(self.label_names)} classes and no dataigm.positive_label: pass concept=one of {self.label_names}")
            self.target_index = None if positive is None else int(positive)
        self.target = None if self.target_index is None else self.label_names[self.target_index]
        self.binary = len(self.label_names) == 2
        if threshold is not None and not 0.0 <= threshold <= 1.0:
            raise ValueError(f"threshold must be in [0, 1], got {threshold}")
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
        return {
            "kind": "dataigm",
            "name": self.name,
            "architecture": self.config["architecture"],
            "label_names": self.label_names,
            "target": self.target,
            "category": self.category,
            "revision": self.revision,
            "weights_sha256": self.weights_sha256,
            "input_size": list(self.data_config["input_size"]),
            "timm": package_version("timm"),
            "device": self.device,
            "precision": precision_name(self.autocast_dtype),
        }


# --- the kind ------------------------------------------------------------------------------------------------------
@register_judge
class DataigmKind(JudgeKind):
    kind = DATAIGM_KIND
    syntax = "PATH | local-dir:PATH | org/name[@revision] | hf-hub:org/name | dataigm:<any of these>"
    decides = ("a dataigm detector (any timm architecture): binary, P(positive) >= the exported threshold; multi-class, "
               "the target class is the argmax (or its probability reaches --threshold)")
    reference = "dataigm (this package): DataIGM's detectors, trained with 'dataigm train' (arXiv 2506.02761)"
    weights = "an exported detector folder or Hub repo: config.json + model.safetensors (never a pickle)"
    licence = "the detector repo's own"
    options = frozenset({"concept", "model"})

    @classmethod
    def parse(cls, spec: str) -> JudgeSpec:
        location = spec.removeprefix(f"{DATAIGM_KIND}:")
        return JudgeSpec(spec, cls.kind, location, "")

    @classmethod
    def check_spec(cls, spec: JudgeSpec) -> None:
        if not Path(spec.name.removeprefix("local-dir:")).expanduser().exists() and not spec.name.startswith("local-dir:"):
            parse_source(spec.name, what="detector", allow_subfolder=False)

    @classmethod
    def from_spec(cls, spec: JudgeSpec, options: JudgeOptions) -> Judge:
        return DataigmJudge(options.model or spec.name, concept=options.concept, threshold=options.threshold,
                            device=options.device, precision=options.precision)

    @classmethod
    def offline(cls) -> str:
        return "yes for local folders; Hub repos once cached"
