"""Where a detector's data comes from and how dataset labels map to detector classes (no torch import).

A dataset is a local folder (see :mod:`dataigm.core.shards`) or a Hub dataset repo, downloaded once with
``huggingface_hub.snapshot_download`` (only the category's shards and the manifest). The detector's classes
are derived from the dataset's label names and the recipe (a positive class for a binary judge, a class list
for a multi-class one); the same name-based mapping is used in training and in evaluation, so an exported
detector can be evaluated on any dataigm dataset that shares its label names.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator, Sequence

from dataigm.core.atomic import sha256_file
from dataigm.core.manifest import MANIFEST, load_manifest
from dataigm.core.shards import iter_samples, list_shards

DROP = -1  # a dataset label the detector does not cover


@dataclass
class DatasetSource:
    """A resolved dataset: local root plus where it came from (for the model card and reproducibility)."""

    root: Path
    repo: str = ""  # Hub dataset repo id, "" for a local folder
    revision: str = ""  # resolved Hub commit
    manifest_sha256: str = ""
    manifest: dict[str, Any] = field(default_factory=dict, repr=False)

    def label_names(self, category: str) -> list[str]:
        """The category's label names from the manifest (raises naming the categories present)."""
        counts = self.manifest.get("counts", {})
        if category not in counts:
            raise ValueError(f"{self.root / MANIFEST}: no category {category!r}; present: {', '.join(sorted(counts)) or '(none)'}")
        names = counts[category].get("label_names") or []
        if not names:
            raise ValueError(f"{self.root / MANIFEST}: category {category!r} has no label_names")
        return list(names)

    def label_counts(self, category: str, split: str) -> dict[str, int]:
        """Samples per label name of one split, from the manifest (empty when the split is absent)."""
        split_counts = self.manifest.get("counts", {}).get(category, {}).get("splits", {}).get(split, {})
        return dict(split_counts.get("labels", {}))

    def shards(self, category: str, split: str) -> list[Path]:
        """The shard files of one category and split, sorted."""
        return list_shards(self.root, category, split)

    def describe(self) -> dict[str, str]:
        """Where the data came from, for run.json and the model card."""
        return {"path": "" if self.repo else str(self.root), "repo": self.repo, "revision": self.revision, "manifest_sha256": self.manifest_sha256}


def resolve_dataset(path_or_repo: str | Path, category: str, revision: str | None = None) -> DatasetSource:
    """A local dataset folder, or a Hub dataset repo id downloaded (category shards + manifest) to the HF cache."""
    text = str(path_or_repo)
    if not text:
        raise ValueError("no dataset given: set data.path in the recipe or pass --data DIR_OR_REPO")
    local = Path(text).expanduser()
    repo, resolved = "", ""
    if local.exists():
        root = local
    elif text.count("/") == 1 and not text.startswith((".", "/")):
        from huggingface_hub import snapshot_download

        root = Path(
            snapshot_download(
                text, repo_type="dataset", revision=revision,
                allow_patterns=[MANIFEST, "_parts/**", f"_stats/{category}/**", f"{category}/**"],
            )
        )
        repo, resolved = text, root.name  # snapshot folders are named by commit
    else:
        raise FileNotFoundError(f"dataset {text!r}: no such folder, and not a Hub repo id (org/name)")
    manifest = load_manifest(root)
    return DatasetSource(root, repo, resolved, sha256_file(root / MANIFEST), manifest)


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
            raise ValueError(f"data.positive {positive!r} is not a label of the dataset; valid: {dataset_names}")
        names = dataset_names if len(dataset_names) == 2 else [f"not_{positive}", positive]
        return names, names.index(positive)
    if classes:
        names = list(classes)
        missing = [c for c in names if c not in dataset_names and c != other_class]
        if missing:
            raise ValueError(f"data.classes {missing} are not labels of the dataset; valid: {dataset_names}")
        if other_class and other_class not in names:
            names.append(other_class)
        return names, -1
    return dataset_names, 1 if len(dataset_names) == 2 else -1


def label_mapping(dataset_names: Sequence[str], detector_names: Sequence[str], positive_label: int = -1, other_class: str | None = None) -> list[int]:
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
