"""Explicit ``datasets`` features for an exported category, declared in the card's ``dataset_info``.

Declaring them (instead of letting ``datasets`` infer from the first five samples) gives ``cls`` a ``ClassLabel``
with the category's class names and types every ``json`` field from *all* samples, so a field that is empty in
the first samples (or a key only some parts add) cannot break loading later.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

from dataigm.core.errors import InputError
from dataigm.core.schema import IMAGE_FIELD
from dataigm.core.shards import iter_samples

SAMPLES_FOR_FEATURES = 100_000  # more than any realistic category needs; bounds memory on huge exports


def category_features(tar_paths: Sequence[Path], label_names: Sequence[str], max_samples: int = SAMPLES_FOR_FEATURES) -> Any:
    """The ``datasets.Features`` of one category: ``png`` image, ``cls`` class label, ``json`` struct.

    The ``json`` struct is the union of the keys of the samples read (up to ``max_samples``), typed by Arrow.
    Every sample read must carry the same ``label_names`` (those given, or the first sample's when none are).
    """
    import datasets
    import pyarrow as pa

    metas: list[dict[str, Any]] = []
    names = list(label_names)
    for sample in iter_samples(tar_paths):
        names = names or list(sample.meta.get("label_names", []))
        if sample.meta.get("label_names") != names or not 0 <= sample.label < len(names):
            raise InputError(
                f"{sample.shard}: sample {sample.key} has label {sample.label} and label_names {sample.meta.get('label_names')}, "
                f"expected an index into {names}"
            )
        metas.append(sample.meta)
        if len(metas) >= max_samples:
            break
    if not metas:
        raise InputError(f"no samples in {[str(p) for p in tar_paths]}: cannot type the json field")
    json_features = datasets.Features.from_arrow_schema(pa.Table.from_pylist(metas).schema)
    return datasets.Features(
        {
            IMAGE_FIELD: datasets.Image(),
            "cls": datasets.ClassLabel(names=names),
            "json": dict(json_features),
        }
    )


def features_to_yaml(features_by_config: dict[str, Any]) -> list[dict[str, Any]]:
    """The card's ``dataset_info`` list (one entry per config), in the YAML format ``datasets`` reads back."""
    # ``_to_yaml_list`` is what ``datasets`` itself uses to write ``dataset_info`` into cards.
    return [{"config_name": name, "features": features._to_yaml_list()} for name, features in features_by_config.items()]
