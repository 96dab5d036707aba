"""A Hugging Face Hub cache written from given files, as ``snapshot_download`` leaves it (offline tests read it back).

Layout (huggingface_hub's documented cache)::

    <HF_HUB_CACHE>/datasets--ORG--NAME/blobs/<sha256>               file contents
    <HF_HUB_CACHE>/datasets--ORG--NAME/snapshots/<commit>/<path>    relative symlinks to the blobs
    <HF_HUB_CACHE>/datasets--ORG--NAME/refs/main                    the commit of ``main``
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path


def write_hub_cache(repo_id: str, files: dict[str, bytes], commit: str, repo_type: str = "dataset") -> Path:
    """Put ``files`` (repo path -> bytes) into the HF cache as commit ``commit`` of ``main``; returns the snapshot."""
    from huggingface_hub import constants

    storage = Path(constants.HF_HUB_CACHE) / f"{repo_type}s--{repo_id.replace('/', '--')}"
    snapshot = storage / "snapshots" / commit
    for rel, data in files.items():
        blob = storage / "blobs" / hashlib.sha256(data).hexdigest()
        blob.parent.mkdir(parents=True, exist_ok=True)
        blob.write_bytes(data)
        link = snapshot / rel
        link.parent.mkdir(parents=True, exist_ok=True)
        link.unlink(missing_ok=True)
        link.symlink_to(os.path.relpath(blob, link.parent))
    (storage / "refs").mkdir(parents=True, exist_ok=True)
    (storage / "refs" / "main").write_text(commit)
    return snapshot
