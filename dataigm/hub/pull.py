"""``dataigm pull``: download a dataset repo (or some of its categories) and verify it against its manifest.

The manifest is fetched first so unknown categories are refused before any data is downloaded; then
``snapshot_download`` fetches the card, the manifest and ``data/<category>/**``; then every downloaded tar is
checked (sha256 and sample count) with :func:`dataigm.core.manifest.verify`.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

from dataigm.core.manifest import MANIFEST, VerifyProblem, load_manifest, verify
from dataigm.hub import DATA_DIR, README, category_of

logger = logging.getLogger(__name__)


@dataclass
class PullResult:
    """Where the snapshot is, which categories it holds, and what verification found (empty = intact)."""

    path: Path
    categories: list[str]
    samples: int
    problems: list[VerifyProblem] = field(default_factory=list)


def allow_patterns(categories: Sequence[str] | None) -> list[str]:
    """``snapshot_download`` patterns: card, manifest and the data of the chosen categories (all when None)."""
    data = [f"{DATA_DIR}/{c}/**" for c in categories] if categories else [f"{DATA_DIR}/**"]
    return [README, MANIFEST, *data]


def pull_dataset(
    repo_id: str, out: Path, *, categories: Sequence[str] | None = None, revision: str | None = None, check: bool = True
) -> PullResult:
    """Download ``repo_id`` (a dataset repo written by ``dataigm export``) into ``out`` and verify it."""
    from huggingface_hub import hf_hub_download, snapshot_download

    out = Path(out)
    # 1. The manifest first: it names the categories that exist.
    manifest_path = hf_hub_download(repo_id, MANIFEST, repo_type="dataset", revision=revision, local_dir=out)
    available = sorted(json.loads(Path(manifest_path).read_text())["counts"])
    chosen = sorted(set(categories)) if categories else available
    unknown = sorted(set(chosen) - set(available))
    if unknown:
        raise ValueError(f"unknown categories {unknown} in {repo_id}; valid: {', '.join(available)}")
    # 2. The data of those categories.
    patterns = allow_patterns(chosen if categories else None)
    snapshot_download(repo_id, repo_type="dataset", revision=revision, local_dir=out, allow_patterns=patterns)
    # 3. Verification against the manifest.
    problems = verify_pulled(out, chosen) if check else []
    samples = sum(s["n"] for s in load_manifest(out)["shards"] if category_of(s["path"]) in chosen)
    return PullResult(out, chosen, samples, problems)


def verify_pulled(folder: Path, categories: Sequence[str] | None = None) -> list[VerifyProblem]:
    """Check the tars of ``categories`` (default: all) in an exported/pulled repo folder against its manifest.

    Shards of other categories are not expected to be present. Tars below ``data/`` that the manifest does not
    list are problems too (a glob in the card would load them).
    """
    folder = Path(folder)
    manifest = load_manifest(folder)
    chosen = set(categories or manifest["counts"])
    problems = [p for p in verify(folder) if category_of(p.shard) in chosen]
    listed = {s["path"] for s in manifest["shards"]}
    for tar in sorted((folder / DATA_DIR).rglob("*.tar")):
        rel = tar.relative_to(folder).as_posix()
        if rel not in listed and not tar.name.startswith("."):
            problems.append(VerifyProblem(rel, "not in manifest"))
    return problems
