"""Crash-safe file writes: nothing half-written is ever visible under its final name."""

from __future__ import annotations

import hashlib
import json
import os
import re
import secrets
import socket
from pathlib import Path
from typing import Any, Iterable


def tmp_path_for(path: Path) -> Path:
    """A temp name beside ``path``, hidden from ``*.tar``/``*.json`` globs, unique per host, process and call.

    The PID alone is not enough: containerised ranks on different nodes often share PIDs (each container's
    launcher is PID 1's child with the same number) while writing into one shared folder.
    """
    # One dash only, after "tmp": callers glob ".<name>.tmp-*" for the temp files of a name.
    host = re.sub(r"[^A-Za-z0-9]+", "_", socket.gethostname())[:40] or "host"
    return path.with_name(f".{path.name}.tmp-{host}_{os.getpid()}_{secrets.token_hex(4)}")


def publish(tmp: Path, final: Path) -> None:
    """fsync ``tmp`` and atomically rename it to ``final``."""
    with open(tmp, "rb") as f:
        os.fsync(f.fileno())
    os.replace(tmp, final)


def write_bytes_atomic(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = tmp_path_for(path)
    tmp.write_bytes(data)
    publish(tmp, path)


def write_json_atomic(path: Path, obj: Any) -> None:
    write_bytes_atomic(path, (json.dumps(obj, indent=2, sort_keys=True, ensure_ascii=False) + "\n").encode())


def write_jsonl_atomic(path: Path, rows: Iterable[Any], *, sort_keys: bool = True) -> int:
    """Write ``rows`` as JSON lines (sorted keys unless a row's order means something), atomically; returns how many.

    No rows make an empty file; every row ends with a newline.
    """
    lines = [json.dumps(r, sort_keys=sort_keys, ensure_ascii=False) + "\n" for r in rows]
    write_bytes_atomic(Path(path), "".join(lines).encode())
    return len(lines)


def json_sha256(obj: Any) -> str:
    """The canonical digest of a JSON-able value: sha256 of ``json.dumps(obj, sort_keys=True)`` (ASCII-escaped)."""
    return hashlib.sha256(json.dumps(obj, sort_keys=True).encode()).hexdigest()


def remove_stale_tmp(folder: Path) -> int:
    """Delete temp files left by killed writers below ``folder``; returns how many."""
    n = 0
    if folder.exists():
        for p in folder.rglob(".*.tmp-*"):
            p.unlink(missing_ok=True)
            n += 1
    return n


def sha256_file(path: Path, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()
