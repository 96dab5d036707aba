"""What the score judges share (``imagereward``, ``pickscore``, ``aesthetic``, ``vqascore``): a number per image,
optionally conditioned on the image's prompt, and a verdict read off that number.

A score judge is a :class:`~dataigm.judges.types.Judge` (it runs through ``dataigm judge`` and ``dataigm eval`` like
every kind) with one more method, ``score(batch, texts) -> list[float]``: the reference's number for each image with
its text (the prompt it was generated from). ``predict`` scores every image against one fixed text
(``settings["prompt"]``, else the concept) and calls the image positive when the score is at least ``min_score``
(``settings["min_score"]``, else the kind's default; ``None``: the kind takes no decision and every verdict is
negative). The evaluation's quality table (:mod:`dataigm.evaluation.quality`) calls ``score`` with each image's own
prompt, as HUB and ErasureBenchmark do.

Also here, because two score judges share them: :func:`openai_clip_transform` (OpenAI ``clip``'s preprocessing,
which is also ImageReward's ``_transform``), the MLP head the aesthetic predictor and ImageReward share
(:func:`build_score_mlp`), and :func:`load_plain_state_dict` for their published ``.pth`` files.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

from dataigm.core.errors import DataigmError
from dataigm.judges.types import Verdict


class ScoreJudge:
    """Base of the score judges: subclasses set ``name``, ``needs_text`` and ``min_score`` and implement ``score``."""

    name: str
    needs_text: bool = True  # the score depends on the prompt (aesthetic does not)
    min_score: float | None = None
    threshold: float | None = None
    autocast_dtype: Any = None  # score judges run in float32, as their references report
    label_names: list[str]
    target: str | None

    def _init_decision(self, kind: str, concept: str | None, settings: dict[str, Any], default_min: float | None) -> None:
        self.target = concept or kind
        self.label_names = ["other", self.target]
        self.text = settings.get("prompt") or concept or ""
        self.min_score = float(settings["min_score"]) if settings.get("min_score") is not None else default_min

    def collate(self, inputs: list[Any]) -> Any:
        import torch

        return torch.stack(inputs)

    def score(self, batch: Any, texts: Sequence[str]) -> list[float]:
        raise NotImplementedError

    def predict(self, batch: Any) -> list[Verdict]:
        n = len(batch)
        return [self.verdict(s) for s in self.score(batch, [self.text] * n)]

    def verdict(self, score: float) -> Verdict:
        """The verdict of one score: positive when it is at least ``min_score`` (never without one)."""
        positive = self.min_score is not None and score >= self.min_score
        return Verdict({self.name: score}, self.target if positive else "other", positive, score, {"score": score})

    def summarize(self, predictions: Sequence[Any]) -> dict[str, Any]:
        """``mean_score``: the mean of the scores (HUB reports this per method)."""
        scores = [p.positive_score for p in predictions]
        return {"mean_score": sum(scores) / len(scores) if scores else None}

    def decision(self) -> str:
        return (f"positive when the score >= {self.min_score}" if self.min_score is not None
                else "no decision (a score; every verdict is negative): give settings min_score to decide")


def check_texts(batch: Any, texts: Sequence[str]) -> None:
    if len(texts) != len(batch):
        raise DataigmError(f"score needs one text per image: {len(batch)} images, {len(texts)} texts")


def openai_clip_transform(n_px: int) -> Any:
    """ImageReward's ``_transform(n_px)``, which is OpenAI ``clip``'s: ``Resize(n_px, BICUBIC)`` on the PIL image,
    ``CenterCrop(n_px)``, RGB, ``ToTensor``, ``Normalize`` with OpenAI's mean/std. The one implementation is
    :class:`dataigm.judges.clip.OpenAIClipPreprocess` (picklable)."""
    from dataigm.judges.clip import OpenAIClipPreprocess

    return OpenAIClipPreprocess(int(n_px))


def build_score_mlp(input_size: int) -> Any:
    """The MLP of the aesthetic predictor (``simple_inference.py`` ``MLP.layers``) and of ImageReward (``ImageReward.py``
    ``MLP.layers``), the same layers: the same module indices, so their state dicts load."""
    from torch import nn

    return nn.Sequential(
        nn.Linear(input_size, 1024), nn.Dropout(0.2), nn.Linear(1024, 128), nn.Dropout(0.2), nn.Linear(128, 64), nn.Dropout(0.1),
        nn.Linear(64, 16), nn.Linear(16, 1))


def load_plain_state_dict(path: Path, what: str) -> dict[str, Any]:
    """A published ``.pth``/``.pt`` that is a plain state dict, read with ``torch.load(weights_only=True)`` (tensors and
    plain containers only: pickled code is refused); errors name the file."""
    import torch

    path = Path(path)
    if not path.is_file():
        raise DataigmError(f"{what} {path} not found")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:
        raise DataigmError(f"{path}: not a PyTorch file of tensors only: torch.load(weights_only=True) refused it ({type(e).__name__}); "
                           "dataigm never runs pickled code") from e
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise DataigmError(f"{path}: expected a state dict of tensors, got {type(state).__name__}")
    return state
