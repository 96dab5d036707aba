"""Where a detector's data comes from and how dataset labels map to detector classes (no torch import).

A dataset is a build folder, an exported or pulled folder, or a Hub dataset repo, all resolved by
:func:`dataigm.core.datasets.resolve_dataset` (a Hub repo is fetched once, only the category's shards and the manifest). The detector's classes
are derived from the dataset's label names and the recipe (a positive class for a binary judge, a class list
for a multi-class one); the same name-based mapping is used in training and in evaluation, so an exported
detector can be evaluated on any dataigm dataset that shares its label names.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Iterator, Sequence

from dataigm.core.errors import InputError
from dataigm.core.datasets import DatasetSource
from dataigm.core.datasets import resolve_dataset as _resolve
from dataigm.core.shards import iter_samples

__all__ = ["DROP", "DatasetSource", "resolve_dataset", "detector_label_names", "label_mapping", "mapped_counts", "covered_samples"]

DROP = -1  # a dataset label the detector does not cover


def resolve_dataset(path_or_repo: str | Path, category: str, revision: str | None = None) -> DatasetSource:
    """The dataset a detector trains or is evaluated on: see :func:`dataigm.core.datasets.resolve_dataset`."""
    return _resolve(path_or_repo, category, revision)


def detector_label_names(
    dataset_names: Sequence[str], *, positive: str | None = None, classes: Sequence[str] | None = None, other_class: str | None = None
) -> tuple[list[str], int]:
    """The detector's class names and its positive index (-1 for a multi-class detector without one).

    * ``positive`` on a binary dataset keeps its two names (e.g. not_nude/nude); on a larger one the judge
      becomes ``[not_<positive>, <positive>]``.
    * ``classes`` picks and orders classes; ``other_class`` is appended when missing.
    * otherwise the dataset's own label names; a two-class dataset gets positive index 1.
    """
    dataset_names = list(dataset_names)
    if positive is not None:
        if positive not in dataset_names:
            raise InputError(f"data.positive {positive!r} is not a label of the dataset; valid: {dataset_names}")
        names = dataset_names if len(dataset_names) == 2 else [f"not_{positive}", positive]
        return names, names.index(positive)
    if classes:
        names = list(classes)
        missing = [c for c in names if c not in dataset_names and c != other_class]
        if missing:
            raise InputError(f"data.classes {missing} are not labels of the dataset; valid: {dataset_names}")
        if other_class and other_class not in names:
            names.append(other_class)
        return names, -1
    return dataset_names, 1 if len(dataset_names) == 2 else -1


def label_mapping(dataset_names: Sequence[str], detector_names: Sequence[str], positive_label: int | None = None, other_class: str | None = None) -> list[int]:
    """For each dataset label index, the detector class index (or :data:`DROP`).

    A name shared by both maps directly; for a binary judge everything else is the negative class; for a
    multi-class detector everything else becomes ``other_class`` when it has one, and is dropped otherwise.
    """
    detector_names = list(detector_names)
    negative = 1 - positive_label if len(detector_names) == 2 and positive_label in (0, 1) else DROP
    other = detector_names.index(other_class) if other_class and other_class in detector_names else DROP
    out = []
    for name in dataset_names:
        if name in detector_names:
            out.append(detector_names.index(name))
        elif negative != DROP:
            out.append(negative)
        else:
            out.append(other)
    return out


def mapped_counts(counts: dict[str, int], dataset_names: Sequence[str], mapping: Sequence[int], n_classes: int) -> list[int]:
    """Per detector class sample counts, from per dataset-label-name counts."""
    detector_label = dict(zip(dataset_names, mapping))
    out = [0] * n_classes
    for name, n in counts.items():
        label = detector_label.get(name, DROP)
        if label != DROP:
            out[label] += int(n)
    return out


def covered_samples(paths: Sequence[Path], mapping: Sequence[int]) -> Iterator[tuple[bytes, int, dict[str, Any]]]:
    """``(image bytes, detector label, sample metadata)`` of the samples of ``paths`` that ``mapping`` does not drop."""
    for s in iter_samples(paths):
        label = mapping[s.label]
        if label != DROP:
            yield s.image, label, s.meta
