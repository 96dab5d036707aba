"""Rates with bootstrap confidence intervals: forgetting (positive rate on forget images, lower is better) and
preservation (accuracy on retain images, higher is better), per concept and subcategory.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import asdict, dataclass
from typing import Any, Callable, Iterable, Sequence

import numpy as np

DEFAULT_RESAMPLES = 1000
DEFAULT_CONFIDENCE = 0.95
DEFAULT_SEED = 0


@dataclass(frozen=True)
class Estimate:
    """A statistic over ``n`` items with a percentile-bootstrap interval [low, high]."""

    value: float | None
    low: float | None
    high: float | None
    n: int

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def bootstrap_ci(
    values: Sequence[float], statistic: Callable[[np.ndarray], np.ndarray] | None = None, *, n_resamples: int = DEFAULT_RESAMPLES,
    confidence: float = DEFAULT_CONFIDENCE, seed: int = DEFAULT_SEED,
) -> Estimate:
    """Percentile bootstrap of ``statistic`` (default: the mean) over ``values``, with a fixed seed.

    ``statistic`` maps an array of shape (n_resamples, n) to (n_resamples,). An empty input gives ``None`` values.
    """
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")
    if n_resamples < 1:
        raise ValueError(f"n_resamples must be >= 1, got {n_resamples}")
    x = np.asarray(values, dtype=np.float64)
    if x.size == 0:
        return Estimate(None, None, None, 0)
    stat = statistic or (lambda a: a.mean(axis=-1))
    rng = np.random.default_rng(seed)
    samples = x[rng.integers(0, x.size, size=(n_resamples, x.size))]
    dist = stat(samples)
    alpha = (1.0 - confidence) / 2.0
    low, high = np.quantile(dist, [alpha, 1.0 - alpha])
    return Estimate(float(stat(x[None, :])[0]), float(low), float(high), int(x.size))


def rate(flags: Iterable[bool], **kwargs: Any) -> Estimate:
    """The share of true ``flags`` with its bootstrap interval."""
    return bootstrap_ci([float(bool(f)) for f in flags], **kwargs)


def group_key(meta: dict[str, Any]) -> tuple[str, str]:
    """(concept, subcategory) of an image, from its sample json or prompt record; "" where unknown."""
    return str(meta.get("concept") or ""), str(meta.get("subcategory") or "")


def grouped(items: Sequence[tuple[dict[str, Any], bool]], **kwargs: Any) -> dict[str, dict[str, Any]]:
    """Rates per concept and per (concept, subcategory), plus "all": ``{name: Estimate dict}``."""
    groups: dict[str, list[bool]] = defaultdict(list)
    for meta, flag in items:
        concept, sub = group_key(meta)
        groups["all"].append(flag)
        if concept:
            groups[concept].append(flag)
            if sub:
                groups[f"{concept}/{sub}"].append(flag)
    return {name: rate(flags, **kwargs).to_dict() for name, flags in sorted(groups.items())}


def expected_retain_label(meta: dict[str, Any], label_names: Sequence[str], target: str) -> str | None:
    """The class a retain image should get: its own label when the detector knows it, else "not the target".

    Returns a label name, or None meaning "anything but ``target``" (e.g. unrelated prompts on a binary detector).
    """
    for field in ("label_name", "label", "concept"):
        value = meta.get(field)
        if isinstance(value, str) and value in label_names and value != target:
            return value
    return None


def retain_correct(meta: dict[str, Any], predicted: str, positive: bool, label_names: Sequence[str], target: str) -> bool:
    """Whether a retain image was judged correctly: its own class if known, else simply not the target."""
    expected = expected_retain_label(meta, label_names, target)
    if expected is None or len(label_names) == 2:
        return not positive
    return predicted == expected
