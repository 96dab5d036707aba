"""``dataigm export-dataset``: a dataset folder becomes a Hub dataset repo folder that stock tools load.

Layout written below ``OUT``::

    README.md                               dataset card: YAML front matter (configs, features, licence, gating) + body
    manifest.json                           the dataset manifest, shard paths relative to OUT (``data/...``)
    data/<category>/<split>/<shard>.tar     the shards, unchanged (hard links when possible, else copies)

``datasets.load_dataset(OUT, "<category>")`` then reads every config and split (streaming or not) and
``webdataset.WebDataset`` reads the same tars. Re-running updates the folder in place: unchanged tars are kept,
tars no longer exported are removed, README and manifest are rewritten atomically.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

from dataigm.core.errors import InputError
from dataigm import __version__
from dataigm.core.atomic import publish, sha256_file, tmp_path_for, write_bytes_atomic
from dataigm.core.datasets import DatasetSource, check_repo_id, open_dataset_folder
from dataigm.core.manifest import MANIFEST, verify
from dataigm.hub import DATA_DIR, README, category_of
from dataigm.hub.card import CardOptions, find_token, render_card

logger = logging.getLogger(__name__)


@dataclass
class ExportResult:
    """What an export wrote."""

    out: Path
    categories: list[str]
    samples: int
    shards: int
    linked: int = 0  # tars hard-linked instead of copied
    unchanged: int = 0  # tars already in place from an earlier export
    removed: list[str] = field(default_factory=list)  # stale tars deleted from OUT/data


def export_dataset(
    dataset_dir: Path,
    out: Path,
    *,
    categories: Sequence[str] | None = None,
    options: CardOptions | None = None,
    link: bool = True,
    check_source: bool = True,
) -> ExportResult:
    """Write the Hub layout of ``dataset_dir`` (or of some ``categories``) to ``out``; returns what was written.

    Raises ValueError when the dataset is incomplete, fails verification, a category is unknown, or the card or
    manifest would contain a Hub token (then nothing is written).
    """
    dataset_dir, out = Path(dataset_dir), Path(out)
    options = options or CardOptions()
    # 1. Check inputs: a complete, intact dataset, known categories and a repo id the card can show.
    check_repo_id(options.repo_id)
    source = open_dataset_folder(dataset_dir)  # a build folder, or an exported/pulled one (re-export)
    manifest = source.manifest
    chosen = _check_categories(manifest, categories, dataset_dir)
    if out.resolve() == dataset_dir.resolve():
        raise InputError(f"out={out} is the dataset folder itself; export to a new folder")
    if manifest.get("incomplete"):
        raise InputError(f"{dataset_dir / MANIFEST}: {len(manifest['incomplete'])} planned shards never finished "
                         f"(e.g. {manifest['incomplete'][0]}); finish or resume the build before exporting")
    if check_source:
        problems = [p for p in verify(dataset_dir) if category_of(p.shard) in chosen]
        if problems:
            listed = "; ".join(str(p) for p in problems[:5])
            raise InputError(f"{dataset_dir} fails verification ({len(problems)} problems): {listed}")

    # 2. The repo's manifest and card (features typed from the source tars), refused before anything is written
    #    if they would carry a Hub token.
    repo_manifest = _repo_manifest(manifest, chosen, dataset_dir, source)
    card = render_card(repo_manifest, _dataset_info(dataset_dir, manifest, chosen), options)
    manifest_text = json.dumps(repo_manifest, indent=2, sort_keys=True, ensure_ascii=False) + "\n"
    for name, text in ((README, card), (MANIFEST, manifest_text)):
        if token := find_token(text):
            raise InputError(f"refusing to write {out / name}: it would contain a Hub token ({token}); remove it from the recipe/config")

    # 3. Place the shards under data/ (hard links: the tars are write-once, so sharing them is safe and free).
    shards = _published_shards(manifest, chosen)
    result = ExportResult(out, chosen, sum(s["n"] for s in shards), len(shards))
    wanted = set()
    for shard in shards:
        dest = out / DATA_DIR / _data_relpath(shard["path"], source)
        wanted.add(dest.resolve())
        state = _place(dataset_dir / shard["path"], dest, shard["sha256"], link)
        result.linked += state == "linked"
        result.unchanged += state == "unchanged"
    for stale in sorted((out / DATA_DIR).rglob("*.tar")) if (out / DATA_DIR).exists() else []:
        if stale.resolve() not in wanted:
            stale.unlink()
            result.removed.append(stale.relative_to(out).as_posix())

    # 4. Manifest and card last: they describe data that is already in place.
    write_bytes_atomic(out / MANIFEST, manifest_text.encode())
    write_bytes_atomic(out / README, card.encode())
    logger.info("exported %d samples of %s in %d shards to %s", result.samples, ", ".join(chosen), result.shards, out)
    return result


def _check_categories(manifest: dict[str, Any], categories: Sequence[str] | None, dataset_dir: Path) -> list[str]:
    available = sorted(manifest["counts"])
    if not available:
        raise InputError(f"{dataset_dir / MANIFEST} lists no samples: nothing to export")
    if not categories:
        return available
    unknown = sorted(set(categories) - set(available))
    if unknown:
        raise InputError(f"unknown categories {unknown} for {dataset_dir}; valid: {', '.join(available)}")
    return sorted(set(categories))


def _place(src: Path, dest: Path, sha256: str, link: bool) -> str:
    """Put ``src`` at ``dest`` atomically; returns "unchanged", "linked" or "copied"."""
    if dest.exists() and sha256_file(dest) == sha256:
        return "unchanged"
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = tmp_path_for(dest)
    tmp.unlink(missing_ok=True)
    if link:
        try:
            os.link(src, tmp)
            os.replace(tmp, dest)
            return "linked"
        except OSError:  # another file system, or links not allowed: copy instead
            tmp.unlink(missing_ok=True)
    shutil.copyfile(src, tmp)
    publish(tmp, dest)
    return "copied"


def _published_shards(manifest: dict[str, Any], chosen: list[str]) -> list[dict[str, Any]]:
    """The manifest's shards of ``chosen`` that hold samples: an empty tar is never published (``webdataset``
    refuses it and ``datasets`` would list an empty split)."""
    return [s for s in manifest["shards"] if category_of(s["path"]) in chosen and s["n"] > 0]


def _data_relpath(path: str, source: DatasetSource) -> str:
    """A manifest shard path relative to the data folder (``<category>/<split>/<name>.tar``) in either layout."""
    return (source.root / path).relative_to(source.data_root).as_posix()


def _nonempty_counts(counts: dict[str, Any]) -> dict[str, Any]:
    """A category's counts without its splits that hold no sample (their failures stay in the source manifest)."""
    return {**counts, "splits": {k: v for k, v in counts.get("splits", {}).items() if v.get("n", 0) > 0}}


def _repo_manifest(manifest: dict[str, Any], chosen: list[str], dataset_dir: Path, source: DatasetSource) -> dict[str, Any]:
    """The source manifest restricted to ``chosen`` with shard paths relative to the repo root."""
    shards = [dict(s, path=f"{DATA_DIR}/{_data_relpath(s['path'], source)}") for s in _published_shards(manifest, chosen)]
    return {
        **manifest,
        "parts": {k: v for k, v in manifest.get("parts", {}).items() if v.get("category", k.split("/", 1)[0]) in chosen},
        "counts": {c: _nonempty_counts(manifest["counts"][c]) for c in chosen},
        "totals": {"samples": sum(s["n"] for s in shards), "failed": sum(s["failed"] for s in shards), "shards": len(shards)},
        "incomplete": [],
        "shards": shards,
        "hub": {"data_dir": DATA_DIR, "exported_with": f"dataigm {__version__}",
                "source_manifest_sha256": sha256_file(dataset_dir / MANIFEST)},
    }


def _dataset_info(dataset_dir: Path, manifest: dict[str, Any], chosen: list[str]) -> list[dict[str, Any]]:
    """The card's ``dataset_info``, typed from the source tars (the exported ones are the same bytes)."""
    from dataigm.hub.features import category_features, features_to_yaml

    features = {}
    for cat in chosen:
        tars = [dataset_dir / s["path"] for s in _published_shards(manifest, [cat])]
        features[cat] = category_features(tars, manifest["counts"][cat].get("label_names") or [])
    return features_to_yaml(features)
