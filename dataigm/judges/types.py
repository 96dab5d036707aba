"""Types every judge module shares: a judge's :class:`Verdict`, the :class:`Judge` and :class:`PersonDetector`
interfaces, and the small picklable preprocessing callables DataLoader workers run.

Judges hand DataLoader workers a *transform* (``judge.preprocess``), never themselves: under the ``spawn`` and
``forkserver`` start methods (Python 3.14's Linux default) every worker unpickles what it is given, and a judge
holds a model (possibly on CUDA) and module references. The transforms here are small module-level dataclasses,
so they pickle by value.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Protocol, Sequence


@dataclass
class Verdict:
    """A judge's answer for one image."""

    scores: dict[str, float]  # one score per class (probabilities, or NudeNet's best detection score per class)
    predicted: str  # the predicted class name
    positive: bool  # whether the image is judged to show the target concept
    positive_score: float  # the score the decision thresholds (probability of the target, or best preset detection)
    extra: dict[str, Any] = field(default_factory=dict)  # e.g. raw logits, NudeNet detections


class Judge(Protocol):
    """What every judge offers: ``preprocess`` (a picklable PIL image -> model input callable, run in DataLoader
    workers), ``collate`` and ``predict`` (a batch -> one :class:`Verdict` per image), and ``describe`` for reports.

    A judge may also define ``summarize(predictions) -> dict``: judge-specific summary fields (NudeNet's
    ``per_body_part``, the ImageNet judge's per-class top-1).
    """

    name: str
    label_names: list[str]
    target: str | None  # the class that means "the concept is shown" (None: see DataigmJudge(allow_no_target=True))
    threshold: float | None
    preprocess: Callable[[Any], Any]

    def collate(self, inputs: list[Any]) -> Any: ...

    def predict(self, batch: Any) -> list[Verdict]: ...

    def describe(self) -> dict[str, Any]: ...


class PersonDetector(Protocol):
    """Answers "is a person in the image?" for the person-presence rate of nudity evaluations."""

    name: str
    preprocess: Callable[[Any], Any]

    def collate(self, inputs: list[Any]) -> Any: ...

    def present(self, batch: Any) -> list[bool]: ...

    def describe(self) -> dict[str, Any]: ...


@dataclass
class RGBTransform:
    """``transform(image.convert("RGB"))``: wraps a picklable torchvision/timm transform for DataLoader workers."""

    transform: Callable[[Any], Any]

    def __call__(self, image: Any) -> Any:
        return self.transform(image.convert("RGB"))


def stack(inputs: list[Any]) -> Any:
    """Stack preprocessed image tensors into one batch tensor."""
    import torch

    return torch.stack(inputs)


def pick_autocast_dtype(device: str, precision: str = "fp32") -> Any:
    """The autocast dtype for ``precision`` on ``device`` (:func:`dataigm.core.precision.autocast_dtype`)."""
    from dataigm.core.precision import autocast_dtype

    return autocast_dtype(device, precision)


def run_inference(fn: Callable[[Any], Any], batch: Any, device: str, autocast_dtype: Any) -> Any:
    """``fn(batch on device)`` under ``torch.inference_mode`` (and autocast to ``autocast_dtype`` when set), as float32 on CPU."""
    import torch

    x = batch.to(device, non_blocking=True)
    with torch.inference_mode(), torch.autocast(device.split(":")[0], dtype=autocast_dtype, enabled=autocast_dtype is not None):
        out = fn(x)
    return out.float().cpu()


def precision_name(dtype: Any) -> str:
    """``torch.bfloat16`` -> ``bfloat16``; None (no autocast) -> ``fp32``."""
    return str(dtype).replace("torch.", "") if dtype else "fp32"


def require_files(folder: str | Path, files: Sequence[str], remedy: str, *, error: type[Exception] = FileNotFoundError) -> None:
    """Raise ``error``: "FOLDER: no A + B; REMEDY" unless each of ``files`` is a file in ``folder`` (a converted
    judge's folder: its config and weights)."""
    if not all((Path(folder) / name).is_file() for name in files):
        raise error(f"{folder}: no {' + '.join(files)}; {remedy}")
