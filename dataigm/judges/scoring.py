"""What the score judges share (``imagereward``, ``pickscore``, ``aesthetic``, ``vqascore``): a number per image,
optionally conditioned on the image's prompt, and a verdict read off that number.

A score judge is a :class:`~dataigm.judges.types.Judge` (it runs through ``dataigm judge`` and ``dataigm eval`` like
every kind) with one more method, ``score(batch, texts) -> list[float]``: the reference's number for each image with
its text (the prompt it was generated from). ``predict`` scores every image against one fixed text
(``settings["prompt"]``, else the concept) and calls the image positive when the score is at least ``min_score``
(``settings["min_score"]``, else the kind's default; ``None``: the kind takes no decision and every verdict is
negative). The evaluation's quality table (:mod:`dataigm.evaluation.quality`) calls ``score`` with each image's own
prompt, as HUB and ErasureBenchmark do.
"""

from __future__ import annotations

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
