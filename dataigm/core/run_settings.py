"""The settings each rank generated its images under, and whether the ranks of a dataset agreed.

Everything that changes pixels and is not in the recipe (device, resolved dtype, CPU thread count, cuDNN and
TF32 switches, deterministic-algorithms mode, library versions; see :mod:`dataigm.generate.determinism`) is
written by every rank that generates shards, beside the dataset::

    DIR/_settings/<category>/<part>/rank<r>of<W>-<digest>.json   {part, rank, world_size, settings, shards}

The digest names the settings, so a resumed run under other settings adds a record instead of replacing one.
``manifest.json`` carries :func:`summarize_settings` of all records: the values every rank shared, the fields
whose values differ between ranks, and ``agreed``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Sequence

from dataigm.core.atomic import json_sha256, write_json_atomic

SETTINGS_DIR = "_settings"


def settings_digest(settings: dict[str, Any]) -> str:
    """A short stable name for a settings dict."""
    return json_sha256(settings)[:12]


def record_rank_settings(root: Path, category: str, part: str, rank: int, world_size: int,
                         settings: dict[str, Any], shards: Sequence[str]) -> Path:
    """Record that rank ``rank`` of ``world_size`` generates ``shards`` under ``settings``; returns the file.

    A record with the same settings from an earlier (resumed) run is merged, never replaced.
    """
    part_name = part or "generated"
    path = Path(root) / SETTINGS_DIR / category / part_name / f"rank{rank:03d}of{world_size:03d}-{settings_digest(settings)}.json"
    known: set[str] = set()
    if path.exists():
        known = set(json.loads(path.read_text()).get("shards", []))
    write_json_atomic(path, {"part": f"{category}/{part_name}", "rank": rank, "world_size": world_size,
                             "settings": settings, "shards": sorted(known | set(shards))})
    return path


def read_rank_settings(root: Path) -> list[dict[str, Any]]:
    """Every rank's settings record of a dataset folder, in a stable order."""
    files = sorted((Path(root) / SETTINGS_DIR).glob("*/*/*.json"))
    return [json.loads(p.read_text()) for p in files if not p.name.startswith(".")]


def _canon(value: Any) -> str:
    return json.dumps(value, sort_keys=True)


def summarize_settings(records: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """``{agreed, values, differing, ranks}``: shared values, ``field -> distinct values`` where ranks differ."""
    fields = sorted({k for r in records for k in r["settings"]})
    values: dict[str, Any] = {}
    differing: dict[str, list[Any]] = {}
    for field in fields:
        seen: dict[str, Any] = {}
        for r in records:
            v = r["settings"].get(field)
            seen.setdefault(_canon(v), v)
        if len(seen) == 1:
            values[field] = next(iter(seen.values()))
        else:
            differing[field] = [seen[k] for k in sorted(seen)]
    ranks = [{"part": r["part"], "rank": r["rank"], "world_size": r["world_size"], "settings_digest": settings_digest(r["settings"]),
              "shards": r["shards"]} for r in records]
    return {"agreed": not differing, "values": values, "differing": differing, "ranks": ranks,
            "by_digest": {settings_digest(r["settings"]): r["settings"] for r in records}}


def dataset_settings(root: Path) -> dict[str, Any]:
    """The summary of a dataset folder's records (what the manifest stores under ``settings``)."""
    return summarize_settings(read_rank_settings(root))
