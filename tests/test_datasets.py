"""The one dataset resolver (dataigm.core.datasets): build folder, exported/pulled folder, Hub id from the HF cache."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from dataigm.core.datasets import DatasetNotFoundError, UnknownCategoryError, dataset_shards, hub_allow_patterns, resolve_dataset
from dataigm.core.sources import is_hub_id, parse_source
from dataigm.core.errors import DataigmError
from dataigm.hub.export import export_dataset
from hub_cache import write_hub_cache

COMMIT = "fedcba9876543210fedcba9876543210fedcba98"


@pytest.fixture(scope="module")
def exported(shapes_with_nudity: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("resolver") / "hub"
    export_dataset(shapes_with_nudity, out)
    return out


def _rel(paths: list[Path], base: Path) -> list[str]:
    return [p.relative_to(base).as_posix() for p in paths]


def test_build_and_exported_folders_give_the_same_shards(shapes_with_nudity: Path, exported: Path) -> None:
    built, published = resolve_dataset(shapes_with_nudity, "object"), resolve_dataset(exported, "object")
    assert (built.layout, published.layout) == ("build", "exported")
    assert published.data_root == exported / "data" and built.data_root == shapes_with_nudity
    for split in ("train", "val", "test"):
        assert _rel(published.shards("object", split), published.data_root) == _rel(built.shards("object", split), built.data_root) != []
    assert published.label_names("object") == built.label_names("object") == ["church", "parachute", "other"]
    assert published.splits("nudity") == ["test", "train"] and published.categories() == ["nudity", "object"]
    assert published.label_counts("object", "test") == {"church": 10, "parachute": 10, "other": 10}
    # without a manifest, a data/ folder of tars is still found (judging a copied folder)
    bare = exported.parent / "bare"
    shutil.copytree(exported / "data", bare / "data")
    assert _rel(dataset_shards(bare, "nudity", "train"), bare / "data") == _rel(built.shards("nudity", "train"), built.data_root)


def test_hub_id_resolves_from_the_cache_offline(exported: Path) -> None:
    # only what a resolution of "object" downloads: the manifest and data/object/**
    assert hub_allow_patterns("object") == ["manifest.json", "data/object/**"] and hub_allow_patterns(None) == ["manifest.json", "data/**"]
    files = {p.relative_to(exported).as_posix(): p.read_bytes() for p in [exported / "manifest.json", *exported.glob("data/object/*/*.tar")]}
    snapshot = write_hub_cache("acme/resolver", files, COMMIT)
    for source in (resolve_dataset("acme/resolver", "object"), resolve_dataset("acme/resolver@" + COMMIT, "object"),
                   resolve_dataset("acme/resolver", "object", revision=COMMIT)):
        assert (source.repo, source.revision, source.root) == ("acme/resolver", COMMIT, snapshot)
        assert source.layout == "exported" and len(source.shards("object", "train")) == len(list(exported.glob("data/object/train/*.tar")))
        assert source.describe() == {"path": "", "repo": "acme/resolver", "revision": COMMIT, "manifest_sha256": source.manifest_sha256}
    with pytest.raises(UnknownCategoryError, match="no category 'tree'; present: nudity, object"):
        resolve_dataset("acme/resolver", "tree")
    with pytest.raises(DatasetNotFoundError, match=r"Hub dataset acme/not-cached: cannot fetch it \(LocalEntryNotFoundError"):
        resolve_dataset("acme/not-cached", "object")
    with pytest.raises(DatasetNotFoundError, match=r"acme/resolver@v9: cannot fetch it"):
        resolve_dataset("acme/resolver@v9", "object")


def test_bad_inputs_are_one_line_errors(tmp_path: Path) -> None:
    assert is_hub_id("ORG/name") and not is_hub_id("./a/b") and not is_hub_id("a/b/c")
    assert (parse_source("ORG/name@v1").location, parse_source("ORG/name@v1").revision) == ("ORG/name", "v1")  # how resolve_dataset reads it
    with pytest.raises(DatasetNotFoundError, match="no such folder, and not a Hub dataset id"):
        resolve_dataset(tmp_path / "missing" / "x" / "y", "object")
    with pytest.raises(DataigmError, match="no dataset given"):
        resolve_dataset("", "object")
    with pytest.raises(FileNotFoundError, match="manifest.json not found"):
        resolve_dataset(tmp_path, "object")


def test_training_resolves_through_core() -> None:
    import dataigm.core.datasets as core
    import dataigm.train.source as train

    assert train.DatasetSource is core.DatasetSource
