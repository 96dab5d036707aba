"""Helpers shared by the curation tests."""

from __future__ import annotations

import hashlib
import json
import threading
from pathlib import Path
from typing import Any

from dataigm.core.manifest import load_manifest
from dataigm.core.shards import list_shards


def tree_digest(root: Path) -> dict[str, str]:
    """sha256 of every file that must be reproducible (per-shard stats hold timings, so they are compared via the manifest)."""
    files = [*list_shards(root), root / "curation_report.md", root / "curation_report.json", *sorted((root / "_curation").rglob("*.*"))]
    digest = {p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest() for p in files}
    digest["manifest.shards"] = hashlib.sha256(json.dumps(load_manifest(root)["shards"]).encode()).hexdigest()
    return digest


def curate_on_two_ranks(dataset: Path, out: Path, config: Any, **kwargs: Any) -> None:
    """Run curation as ranks 1 and 0 of 2 at once (threads; they meet at the engine's file barriers); re-raise any error."""
    from dataigm.curate import curate

    errors: list[BaseException] = []

    def run(rank: int) -> None:
        try:
            curate(dataset, out, config, rank=rank, world_size=2, progress=False, barrier_timeout=120, **kwargs)
        except Exception as e:  # surfaced below
            errors.append(e)

    threads = [threading.Thread(target=run, args=(r,)) for r in (1, 0)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
