"""``Verdicts``: what a :class:`~dataigm.judges.load.Judge` call returns, one entry per image, as arrays.

    >>> v = dataigm.load_judge("nudenet")("samples/")          # doctest: +SKIP
    >>> v.positive_rate, v.interval()                          # the rate and its 95% Wilson interval
    >>> v.to_pandas().head()

The records are the lines the ``dataigm judge`` command writes to its predictions file, and the summary is the one it
prints: the command and the Python call share :func:`dataigm.judges.judge.judge`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from dataigm.judges.judge import JudgeResult, Prediction


@dataclass(frozen=True)
class Verdicts:
    """One judge's verdicts over a set of images, sorted by id (input order for images in memory).

    Attributes:
        spec: the judge spec that ran.
        ids: each image's id (its path below the folder, ``<shard>#<key>``, or its index for images in memory).
        scores: the score each decision thresholds (probability of the target class, or NudeNet's best detection).
        positive: whether each image is judged to show the concept.
        predicted: each image's predicted class name.
        classes: the class names of :attr:`class_scores`' columns (empty when the judge gives no per-class scores).
        class_scores: ``len(ids) x len(classes)`` per-class scores, or None.
        failed: ``{"file", "error"}`` for each image that could not be read (never silently dropped).
        summary: the summary ``dataigm judge`` prints (counts, per-class counts, the judge's description).
        preprocessing: what the judge does to each decoded RGB image before its model (its transform, as printed).
    """

    spec: str
    ids: list[str]
    scores: np.ndarray
    positive: np.ndarray
    predicted: list[str]
    classes: list[str]
    class_scores: np.ndarray | None
    failed: list[dict[str, str]]
    summary: dict[str, Any]
    preprocessing: str = ""
    predictions: list["Prediction"] = field(repr=False, default_factory=list)

    @classmethod
    def from_result(cls, spec: str, result: "JudgeResult", label_names: list[str], preprocessing: str = "") -> "Verdicts":
        """Arrays from a :class:`~dataigm.judges.judge.JudgeResult`: the per-class columns are the judge's
        ``label_names`` when every image scored them, else every class any image scored, in first-seen order."""
        preds = result.predictions
        keys = [dict.fromkeys(p.scores) for p in preds]
        every = preds and all(set(label_names) <= set(k) for k in keys)
        classes = list(label_names) if every else list(dict.fromkeys(c for k in keys for c in k))
        class_scores = np.array([[p.scores.get(c, np.nan) for c in classes] for p in preds], dtype=float) if classes else None
        return cls(
            spec=spec,
            ids=[p.file for p in preds],
            scores=np.array([p.positive_score for p in preds], dtype=float),
            positive=np.array([p.positive for p in preds], dtype=bool),
            predicted=[p.predicted for p in preds],
            classes=classes,
            class_scores=class_scores,
            failed=list(result.failed),
            summary=result.summary,
            preprocessing=preprocessing,
            predictions=list(preds),
        )

    def __len__(self) -> int:
        return len(self.ids)

    @property
    def n_positive(self) -> int:
        """How many images are judged positive."""
        return int(self.positive.sum())

    @property
    def positive_rate(self) -> float | None:
        """The share of judged images that are positive (None when none was judged)."""
        return self.n_positive / len(self) if len(self) else None

    def interval(self, confidence: float = 0.95) -> tuple[float | None, float | None]:
        """The Wilson score interval of :attr:`positive_rate` at ``confidence`` (images counted as independent).

            >>> low, high = verdicts.interval(0.95)                # doctest: +SKIP
        """
        from dataigm.core.errors import InputError
        from dataigm.evaluation.agreement import wilson_interval

        if not 0.0 < confidence < 1.0:
            raise InputError(f"confidence must be in (0, 1), got {confidence}")
        return wilson_interval(self.n_positive, len(self), confidence)

    def to_records(self) -> list[dict[str, Any]]:
        """One dict per image: the predictions file ``dataigm judge`` writes (failures not included; see :attr:`failed`)."""
        return [p.to_dict() for p in self.predictions]

    def to_pandas(self) -> Any:
        """A pandas DataFrame indexed by id: predicted, positive, score and one ``score_<class>`` column per class.

        Needs pandas (not a dependency of dataigm): ``pip install pandas``.
        """
        try:
            import pandas as pd
        except ModuleNotFoundError:
            raise ModuleNotFoundError("Verdicts.to_pandas needs pandas: pip install pandas", name="pandas") from None
        frame = pd.DataFrame({"predicted": self.predicted, "positive": self.positive, "score": self.scores},
                             index=pd.Index(self.ids, name="id"))
        for j, name in enumerate(self.classes):
            frame[f"score_{name}"] = self.class_scores[:, j]
        return frame

    def describe(self) -> dict[str, Any]:
        """What ran: the spec, the judge's own description (weights and their sha256, precision, preprocessing,
        threshold, reference), the images read, and the counts."""
        judge = self.summary.get("detector", {})
        return {
            "spec": self.spec,
            "kind": judge.get("kind"),
            "weights_sha256": judge.get("weights_sha256"),
            "precision": judge.get("precision", "fp32"),
            "preprocessing": judge.get("pipeline") or self.preprocessing,
            "threshold": self.summary.get("threshold"),
            "target": self.summary.get("target"),
            "images": self.summary.get("images"),
            "n_images": len(self),
            "n_positive": self.n_positive,
            "n_failed": len(self.failed),
            "judge": judge,
        }
