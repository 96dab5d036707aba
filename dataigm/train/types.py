"""The types the training stage's modules share (a loaded detector, the predictions on a split), in a module of
their own so that evaluation and plotting do not import each other for them."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
from torch import nn


@dataclass
class Detector:
    """A loaded detector: timm model in eval mode plus what it predicts and how."""

    model: nn.Module
    label_names: list[str]
    data_config: dict[str, Any]
    category: str = ""
    concept: str = ""
    threshold: float | None = None
    threshold_rule: str = ""
    positive_label: int | None = None  # index of the positive class; None: multi-class without one
    other_class: str | None = None
    source: str = ""  # where it was loaded from
    info: dict[str, Any] = field(default_factory=dict)  # the run.json or config.json it came from

    @property
    def binary(self) -> bool:
        """Two classes: decisions threshold P(positive class)."""
        return len(self.label_names) == 2


@dataclass
class Predictions:
    """Softmax probabilities, detector labels and sample metadata of one evaluated split."""

    probs: np.ndarray
    labels: np.ndarray
    metas: list[dict[str, Any]]
