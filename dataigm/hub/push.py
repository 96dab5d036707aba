"""``dataigm push``: publish an exported dataset repo folder (or an exported detector folder) to the Hub.

The upload is a series of commits of bounded size (files and bytes). Before committing, the files already on the
Hub are listed and those with the same content are skipped, so a push that failed half-way is resumed by running
it again. Data goes first; ``manifest.json`` and ``README.md`` go in the last commit, together with the removal of
tars that are no longer part of the export, so the card never describes data that is not there.

A dataset with an NSFW category is refused for a public repo that is not gated, unless the caller gates it
(``gated="auto"|"manual"``) or says so explicitly (``allow_public_nsfw=True``). The Hub token comes from the usual
login / ``HF_TOKEN``; it is never taken as an argument, logged or written.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from dataigm.core.errors import InputError
from dataigm.core.datasets import check_repo_id
from dataigm.core.manifest import MANIFEST, load_manifest, verify
from dataigm.hub import DATA_DIR, README
from dataigm.hub.card import nsfw_categories

logger = logging.getLogger(__name__)

MAX_COMMIT_FILES = 100
MAX_COMMIT_BYTES = 4 << 30  # 4 GiB of new data per commit
LAST_FILES = (MANIFEST, README)  # committed last: they describe the data already uploaded
MODEL_FILES = ("config.json", "model.safetensors")


@dataclass
class LocalFile:
    """A file to publish, with the two ids the Hub may report for it (LFS sha256, git blob sha1)."""

    path_in_repo: str
    local: Path
    size: int
    sha256: str
    git_sha1: str


@dataclass
class PushResult:
    """What a push did."""

    url: str
    repo_id: str
    repo_type: str
    uploaded: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)  # already on the Hub with the same content
    deleted: list[str] = field(default_factory=list)
    commits: int = 0


def folder_kind(folder: Path) -> Literal["dataset", "model"]:
    """"dataset" for an exported dataset repo (manifest + README + data/), "model" for an exported detector."""
    folder = Path(folder)
    if (folder / MANIFEST).exists() and (folder / README).exists() and (folder / DATA_DIR).is_dir():
        return "dataset"
    if all((folder / name).exists() for name in MODEL_FILES):
        return "model"
    raise InputError(
        f"{folder} is neither an exported dataset ({MANIFEST}, {README}, {DATA_DIR}/: run `dataigm export-dataset` first) "
        f"nor an exported detector ({', '.join(MODEL_FILES)})"
    )


def push_folder(
    folder: Path,
    repo_id: str,
    *,
    private: bool = False,
    revision: str | None = None,
    gated: Literal["auto", "manual"] | None = None,
    allow_public_nsfw: bool = False,
    delete_stale: bool = True,
    max_commit_files: int = MAX_COMMIT_FILES,
    max_commit_bytes: int = MAX_COMMIT_BYTES,
    api: Any = None,
) -> PushResult:
    """Create ``repo_id`` if needed and upload ``folder`` to it in bounded, resumable commits; returns what was done.

    ``api`` is a ``huggingface_hub.HfApi`` (default: one using the logged-in token).
    """
    from huggingface_hub import HfApi

    # 1. Check inputs
    folder = Path(folder)
    kind = folder_kind(folder)
    check_repo_id(repo_id)
    if gated not in (None, "auto", "manual"):
        raise InputError(f"gated={gated!r}; valid: auto, manual")
    if max_commit_files < 1 or max_commit_bytes < 1:
        raise InputError(f"commit bounds must be positive, got files={max_commit_files} bytes={max_commit_bytes}")
    nsfw: list[str] = []
    if kind == "dataset":
        problems = verify(folder)
        if problems:
            raise InputError(f"{folder} fails verification, not pushing: " + "; ".join(str(p) for p in problems[:5]))
        nsfw = nsfw_categories(load_manifest(folder))
    api = api or HfApi()

    # 2. Content policy: NSFW data only to a private or gated repo, unless explicitly allowed.
    if nsfw:
        _check_nsfw_target(api, repo_id, kind, nsfw, private=private, gated=gated, allow_public_nsfw=allow_public_nsfw)

    # 3. Repo, branch and gating
    url = str(api.create_repo(repo_id, repo_type=kind, private=private, exist_ok=True))
    if gated:
        api.update_repo_settings(repo_id, repo_type=kind, gated=gated)
    if revision and revision != "main":
        api.create_branch(repo_id, repo_type=kind, branch=revision, exist_ok=True)

    # 4. What is already there: same content is skipped (this is what makes a retry resume).
    result = PushResult(url, repo_id, kind)
    to_upload, stale = plan_upload(api, folder, repo_id, kind, revision, delete_stale, result)

    # 5. Commits: data in bounded batches, then the card and manifest with the removals.
    commit_batches(api, repo_id, kind, revision, to_upload, stale, max_commit_files, max_commit_bytes, result)
    return result


def plan_upload(api: Any, folder: Path, repo_id: str, kind: str, revision: str | None, delete_stale: bool,
                result: PushResult) -> tuple[list[Any], list[str]]:
    """The local files whose content the repo lacks (the others go to ``result.skipped``) and, for a dataset, the
    remote data files no longer in ``folder``."""
    from huggingface_hub.hf_api import RepoFile

    remote = {f.path: f for f in api.list_repo_tree(repo_id, repo_type=kind, revision=revision, recursive=True) if isinstance(f, RepoFile)}
    local_files = _local_files(folder, kind)
    to_upload = []
    for local in local_files:
        if _same_content(local, remote.get(local.path_in_repo)):
            result.skipped.append(local.path_in_repo)
        else:
            to_upload.append(local)
    stale: list[str] = []
    if delete_stale and kind == "dataset":
        local_paths = {f.path_in_repo for f in local_files}
        stale = sorted(p for p in remote if p.startswith(f"{DATA_DIR}/") and p not in local_paths)
    return to_upload, stale


def commit_batches(api: Any, repo_id: str, kind: str, revision: str | None, to_upload: list[Any], stale: list[str],
                   max_commit_files: int, max_commit_bytes: int, result: PushResult) -> None:
    """Commit the data in bounded batches, then the card and manifest with the removals (recorded in ``result``)."""
    from huggingface_hub import CommitOperationAdd, CommitOperationDelete

    batches = _batches([f for f in to_upload if f.path_in_repo not in LAST_FILES], max_commit_files, max_commit_bytes)
    last = [f for f in to_upload if f.path_in_repo in LAST_FILES]
    if last or stale:
        batches.append(last)
    for i, batch in enumerate(batches, 1):
        operations: list[Any] = [CommitOperationAdd(path_in_repo=f.path_in_repo, path_or_fileobj=str(f.local)) for f in batch]
        if i == len(batches):
            operations += [CommitOperationDelete(path_in_repo=p) for p in stale]
        n_bytes = sum(f.size for f in batch)
        logger.info("commit %d/%d: %d files, %.1f MB", i, len(batches), len(operations), n_bytes / 1e6)
        api.create_commit(
            repo_id,
            operations=operations,
            commit_message=f"dataigm push ({i}/{len(batches)}): {len(batch)} files",
            repo_type=kind,
            revision=revision,
        )
        result.uploaded += [f.path_in_repo for f in batch]
        result.commits += 1
    result.deleted = stale


def _check_nsfw_target(
    api: Any, repo_id: str, kind: str, nsfw: list[str], *, private: bool, gated: str | None, allow_public_nsfw: bool
) -> None:
    exists = api.repo_exists(repo_id, repo_type=kind)
    info = api.repo_info(repo_id, repo_type=kind) if exists else None
    will_be_private = bool(info.private) if info is not None else private
    will_be_gated = bool(gated) or bool(info is not None and info.gated)
    if will_be_private or will_be_gated or allow_public_nsfw:
        return
    where = "the existing public repo" if exists else "a new public repo"
    raise InputError(
        f"refusing to publish NSFW categories {nsfw} to {where} {repo_id} without gating; "
        "use private=True, gated=auto|manual, or allow_public_nsfw=True if you really mean it"
    )


def _local_files(folder: Path, kind: str) -> list[LocalFile]:
    """Files to publish: the dataset layout, or every file of a detector folder; never hidden ones (temp files of
    an interrupted export, ``.cache/`` of a download)."""
    if kind == "dataset":
        paths = [folder / name for name in LAST_FILES] + sorted((folder / DATA_DIR).rglob("*.tar"))
    else:
        paths = sorted(p for p in folder.rglob("*") if p.is_file())
    files = []
    for p in paths:
        rel = p.relative_to(folder)
        if any(part.startswith(".") for part in rel.parts):
            continue
        size = p.stat().st_size
        files.append(LocalFile(rel.as_posix(), p, size, *_digests(p, size)))
    return files


def _digests(path: Path, size: int) -> tuple[str, str]:
    """sha256 (the Hub's id of an LFS file) and git blob sha1 (its id of any other file), in one read of the file."""
    sha256, sha1 = hashlib.sha256(), hashlib.sha1(f"blob {size}\0".encode())
    with open(path, "rb") as f:
        while block := f.read(1 << 20):
            sha256.update(block)
            sha1.update(block)
    return sha256.hexdigest(), sha1.hexdigest()


def _same_content(local: LocalFile, remote: Any) -> bool:
    if remote is None:
        return False
    if remote.lfs is not None:
        return remote.lfs.sha256 == local.sha256
    return remote.blob_id == local.git_sha1


def _batches(files: list[LocalFile], max_files: int, max_bytes: int) -> list[list[LocalFile]]:
    """Consecutive groups of at most ``max_files`` files and ``max_bytes`` bytes (a larger file goes alone)."""
    batches: list[list[LocalFile]] = []
    current: list[LocalFile] = []
    size = 0
    for f in files:
        if current and (len(current) >= max_files or size + f.size > max_bytes):
            batches.append(current)
            current, size = [], 0
        current.append(f)
        size += f.size
    if current:
        batches.append(current)
    return batches
