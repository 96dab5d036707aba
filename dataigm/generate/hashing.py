"""sha256 of local weight files, computed once per node and shared by every rank on it.

Provenance hashes every local weight file a build loads; a node with 8 ranks would otherwise read tens of GB
eight times. The first rank to ask takes an exclusive lock on the file's cache entry and hashes; the others
wait on the lock and read the result. Entries are keyed by the file's real path, size and mtime, so a changed
file is hashed again.
"""

from __future__ import annotations

import fcntl
import json
from pathlib import Path

from dataigm.core.atomic import json_sha256, sha256_file, write_json_atomic
from dataigm.core.cache import cache_dir


def hash_cache_dir() -> Path:
    """Where hashes are cached on this node (``DATAIGM_CACHE``/hashes)."""
    return cache_dir() / "hashes"


def _entry(path: Path) -> tuple[Path, dict[str, object]]:
    real = path.resolve()
    st = real.stat()
    ident = {"path": str(real), "size": st.st_size, "mtime_ns": st.st_mtime_ns}
    name = json_sha256(ident)[:32]
    return hash_cache_dir() / f"{name}.json", ident


def cached_sha256(path: Path) -> str:
    """sha256 of ``path``, hashed at most once per node for a given (path, size, mtime)."""
    entry, ident = _entry(Path(path))
    if entry.exists():
        return json.loads(entry.read_text())["sha256"]
    entry.parent.mkdir(parents=True, exist_ok=True)
    with open(entry.with_suffix(".lock"), "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # the other ranks wait here while one hashes
        try:
            if entry.exists():
                return json.loads(entry.read_text())["sha256"]
            digest = sha256_file(Path(path))
            write_json_atomic(entry, {**ident, "sha256": digest})
            return digest
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def hashes_computed() -> int:
    """How many entries the node cache holds (for tests and logs)."""
    return len(list(hash_cache_dir().glob("*.json"))) if hash_cache_dir().exists() else 0


__all__ = ["cached_sha256", "hash_cache_dir", "hashes_computed"]
