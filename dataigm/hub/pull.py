"""``dataigm pull``: download a dataset repo (or some of its categories) and verify it against its manifest.

The manifest is fetched first so unknown categories are refused before any data is downloaded; then
``snapshot_download`` fetches the card, the manifest and ``data/<category>/**``; then every downloaded tar is
checked (sha256 and sample count) with :func:`dataigm.core.manifest.verify`.
"""

from __future__ import annotations

import json
import logging
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

from dataigm.core.atomic import publish, sha256_file, tmp_path_for
from dataigm.core.datasets import DatasetNotFoundError
from dataigm.core.sources import is_hub_id
from dataigm.core.errors import DataigmError, InputError
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
    """Download ``repo_id`` (a dataset repo written by ``dataigm export-dataset``) into ``out`` and verify it.

    With ``HF_HUB_OFFLINE=1`` the files come from the Hugging Face cache (a snapshot fetched earlier, e.g. on a
    login node) and are copied into ``out``.
    """
    from huggingface_hub import constants
    from huggingface_hub.errors import HfHubHTTPError, LocalEntryNotFoundError

    out = Path(out)
    if not is_hub_id(repo_id):
        raise DataigmError(f"{repo_id!r} is not a Hub dataset id of the form ORG/NAME (give a revision as revision=)")
    fetch = _from_cache if constants.HF_HUB_OFFLINE else _from_hub
    try:
        # 1. The manifest first: it names the categories that exist.
        manifest = json.loads(fetch(repo_id, revision, out, [MANIFEST]).joinpath(MANIFEST).read_text())
        available = sorted(manifest["counts"])
        chosen = sorted(set(categories)) if categories else available
        unknown = sorted(set(chosen) - set(available))
        if unknown:
            raise InputError(f"unknown categories {unknown} in {repo_id}; valid: {', '.join(available)}")
        # 2. The data of those categories.
        fetch(repo_id, revision, out, allow_patterns(chosen if categories else None))
    except (HfHubHTTPError, LocalEntryNotFoundError) as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise DatasetNotFoundError(f"Hub dataset {repo_id}{'@' + revision if revision else ''}: cannot fetch it ({type(e).__name__}: {first})") from e
    # 3. Verification against the manifest.
    problems = verify_pulled(out, chosen) if check else []
    samples = sum(s["n"] for s in load_manifest(out)["shards"] if category_of(s["path"]) in chosen)
    return PullResult(out, chosen, samples, problems)


def _from_hub(repo_id: str, revision: str | None, out: Path, patterns: list[str]) -> Path:
    from huggingface_hub import snapshot_download

    snapshot_download(repo_id, repo_type="dataset", revision=revision, local_dir=out, allow_patterns=patterns)
    return out


def _from_cache(repo_id: str, revision: str | None, out: Path, patterns: list[str]) -> Path:
    """Copy the files of a cached snapshot that match ``patterns`` into ``out`` (offline mode)."""
    from huggingface_hub import snapshot_download
    from huggingface_hub.utils import filter_repo_objects

    snapshot = Path(snapshot_download(repo_id, repo_type="dataset", revision=revision, allow_patterns=patterns))
    files = [p.relative_to(snapshot).as_posix() for p in snapshot.rglob("*") if p.is_file()]
    for rel in filter_repo_objects(files, allow_patterns=patterns):
        dest = out / rel
        if dest.exists() and dest.stat().st_size == (snapshot / rel).stat().st_size and sha256_file(dest) == sha256_file(snapshot / rel):
            continue
        dest.parent.mkdir(parents=True, exist_ok=True)
        tmp = tmp_path_for(dest)
        shutil.copyfile(snapshot / rel, tmp)  # follows the cache's symlink to the blob
        publish(tmp, dest)
    return out


def verify_pulled(folder: Path, categories: Sequence[str] | None = None) -> list[VerifyProblem]:
    """Check the tars of ``categories`` (default: all) in an exported/pulled repo folder against its manifest.

    Shards of other categories are not expected to be present. Tars below ``data/`` that the manifest does not
    list are problems too (a glob in the card would load them).
    """
    folder = Path(folder)
    manifest = load_manifest(folder)
    chosen = set(categories or manifest["counts"])
    return [p for p in verify(folder) if category_of(p.shard) in chosen]
