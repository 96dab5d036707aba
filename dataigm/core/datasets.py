"""One resolver for every stage that reads a dataset: a build folder, an exported or pulled folder, or a Hub id.

Three layouts hold the same shards::

    DIR/<category>/<split>/*.tar + DIR/manifest.json                 a build folder (build, import-images, curate)
    DIR/data/<category>/<split>/*.tar + DIR/manifest.json ("hub")    an exported folder (export) or a pulled one (pull)
    ORG/NAME[@REVISION]                                              a Hub dataset repo written by export + push

:func:`resolve_dataset` turns any of them into a :class:`DatasetSource` whose :meth:`DatasetSource.shards`
lists the tars of a category and split. A Hub id is fetched with ``huggingface_hub.snapshot_download`` into the
Hugging Face cache, downloading only ``manifest.json`` and ``data/<category>/**`` (``HF_HUB_OFFLINE=1`` reads a
cached snapshot). Nothing heavy is imported at module level.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dataigm.core.atomic import sha256_file
from dataigm.core.errors import DataigmError, InputError
from dataigm.core.manifest import MANIFEST, load_manifest
from dataigm.core.shards import list_shards
from dataigm.core.sources import SourceError, is_hub_id, parse_source

DATA_DIR = "data"  # where an exported repo keeps its shards (the Hub layout)


class DatasetNotFoundError(DataigmError, FileNotFoundError):
    """The dataset (folder or Hub repo) does not exist or cannot be fetched."""


class UnknownCategoryError(DataigmError, ValueError):
    """The dataset has no such category (the message lists those it has)."""


@dataclass
class DatasetSource:
    """A resolved dataset: the folder holding its manifest, the folder holding its shards, and its origin."""

    root: Path  # holds manifest.json
    data_root: Path  # holds <category>/<split>/*.tar: root for a build folder, root/data for an exported one
    repo: str = ""  # Hub dataset repo id, "" for a local folder
    revision: str = ""  # resolved Hub commit
    manifest_sha256: str = ""
    manifest: dict[str, Any] = field(default_factory=dict, repr=False)

    @property
    def layout(self) -> str:
        """``"exported"`` (data/ below the manifest: export, pull, Hub) or ``"build"``."""
        return "build" if self.data_root == self.root else "exported"

    def categories(self) -> list[str]:
        """The categories the manifest counts, sorted."""
        return sorted(self.manifest.get("counts", {}))

    def check_category(self, category: str) -> None:
        """Raise naming the categories present when ``category`` is not one of them."""
        if category not in self.manifest.get("counts", {}):
            raise UnknownCategoryError(
                f"{self.where()}: no category {category!r}; present: {', '.join(self.categories()) or '(none)'}"
            )

    def label_names(self, category: str) -> list[str]:
        """The category's label names from the manifest (raises naming the categories present)."""
        self.check_category(category)
        names = self.manifest["counts"][category].get("label_names") or []
        if not names:
            raise DataigmError(f"{self.where()}: category {category!r} has no label_names")
        return list(names)

    def splits(self, category: str) -> list[str]:
        """The splits of a category that hold samples, from the manifest."""
        splits = self.manifest.get("counts", {}).get(category, {}).get("splits", {})
        return sorted(s for s, sp in splits.items() if sp.get("n", 0) > 0)

    def label_counts(self, category: str, split: str) -> dict[str, int]:
        """Samples per label name of one split, from the manifest (empty when the split is absent)."""
        split_counts = self.manifest.get("counts", {}).get(category, {}).get("splits", {}).get(split, {})
        return dict(split_counts.get("labels", {}))

    def shards(self, category: str | None = None, split: str | None = None) -> list[Path]:
        """The shard files of a category and split (any when None), sorted."""
        return list_shards(self.data_root, category, split)

    def where(self) -> str:
        """How to name this dataset in a message: the Hub id (and revision) or the folder."""
        return f"{self.repo}@{self.revision[:12]}" if self.repo else str(self.root)

    def describe(self) -> dict[str, str]:
        """Where the data came from, for run.json and the model card."""
        return {"path": "" if self.repo else str(self.root), "repo": self.repo, "revision": self.revision, "manifest_sha256": self.manifest_sha256}


def check_repo_id(repo_id: str) -> None:
    """Raise ValueError unless ``repo_id`` is of the form ``ORG/NAME`` (no revision)."""
    if not is_hub_id(repo_id):
        raise InputError(f"repo_id={repo_id!r} is not of the form ORG/NAME")


def data_root_of(root: Path, manifest: dict[str, Any] | None = None) -> Path:
    """The folder holding ``<category>/<split>/*.tar`` below a dataset folder.

    An exported or pulled folder says so in its manifest (``hub.data_dir``); without a manifest, a ``data/``
    folder holding tars and no tars at the top marks the exported layout too.
    """
    root = Path(root)
    if manifest is not None and "hub" in manifest:
        return root / manifest["hub"].get("data_dir", DATA_DIR)
    if manifest is None and not list_shards(root) and list_shards(root / DATA_DIR):
        return root / DATA_DIR
    return root


def refuse_exported(out: str | Path, stage: str) -> None:
    """Refuse to write a stage's output into an exported or pulled folder (the published layout): that folder is
    what ``push`` uploads, and a build part inside it would never reach its ``data/`` shards."""
    out = Path(out)
    manifest_path = out / MANIFEST
    exported = (manifest_path.is_file() and "hub" in load_manifest(out)) or (not manifest_path.exists() and (out / DATA_DIR).is_dir())
    if exported:
        raise DataigmError(f"out={out} is an exported dataset folder (data/<category>/<split>); {stage} writes into a build "
                           "folder: give another out=DIR, then export it again")


def dataset_shards(folder: str | Path, category: str | None = None, split: str | None = None) -> list[Path]:
    """The tars of a local dataset folder in either layout (build or exported), optionally of one category/split."""
    folder = Path(folder)
    manifest = load_manifest(folder) if (folder / MANIFEST).exists() else None
    return list_shards(data_root_of(folder, manifest), category, split)


def open_dataset_folder(folder: str | Path) -> DatasetSource:
    """A local dataset folder (build or exported layout) with its manifest."""
    root = Path(folder).expanduser()
    if not root.is_dir():
        raise DatasetNotFoundError(f"dataset folder {root} not found")
    manifest = load_manifest(root)
    return DatasetSource(root, data_root_of(root, manifest), manifest_sha256=sha256_file(root / MANIFEST), manifest=manifest)


def hub_allow_patterns(category: str | None) -> list[str]:
    """What a Hub dataset resolution downloads: the manifest and one category's data (or all data)."""
    return [MANIFEST, f"{DATA_DIR}/{category}/**" if category else f"{DATA_DIR}/**"]


def resolve_dataset(path_or_repo: str | Path, category: str | None = None, revision: str | None = None) -> DatasetSource:
    """A local dataset folder (build or exported layout), or a Hub dataset repo id fetched into the HF cache.

    ``ORG/NAME@REV`` is the same as ``ORG/NAME`` with ``revision=REV``. When ``category`` is given it must be one
    of the manifest's categories (the error lists them), and only its shards are downloaded.
    """
    text = str(path_or_repo)
    if not text:
        raise DataigmError("no dataset given: set data.path in the recipe or give data=DIR_OR_REPO")
    local = Path(text).expanduser()
    if local.exists():
        source = open_dataset_folder(local)
    else:
        try:
            hub = parse_source(text, what="dataset", allow_subfolder=False)
        except SourceError:
            hub = None
        if hub is None or not hub.is_hub:
            raise DatasetNotFoundError(f"dataset {text!r}: no such folder, and not a Hub dataset id (ORG/NAME[@REVISION])")
        source = _from_hub(hub.location, category, revision or hub.revision)
    if category is not None:
        source.check_category(category)
    return source


def _from_hub(repo: str, category: str | None, revision: str | None) -> DatasetSource:
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import HfHubHTTPError, LocalEntryNotFoundError

    try:
        root = Path(snapshot_download(repo, repo_type="dataset", revision=revision, allow_patterns=hub_allow_patterns(category)))
    except (HfHubHTTPError, LocalEntryNotFoundError, OSError, ValueError) as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise DatasetNotFoundError(f"Hub dataset {repo}{'@' + revision if revision else ''}: cannot fetch it ({type(e).__name__}: {first})") from e
    if not (root / MANIFEST).exists():
        raise DatasetNotFoundError(f"Hub dataset {repo}: no {MANIFEST}; is it a repo written by `dataigm export-dataset` + `dataigm push`?")
    manifest = load_manifest(root)
    return DatasetSource(root, data_root_of(root, manifest), repo, root.name, sha256_file(root / MANIFEST), manifest)  # snapshot folders are named by commit
