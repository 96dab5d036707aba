"""Crash-safe file writes: nothing half-written is ever visible under its final name."""

from __future__ import annotations

import glob
import hashlib
import json
import os
import re
import secrets
import shutil
import socket
from pathlib import Path
from typing import Any, Iterable, Literal


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


def make_tmp_dir(final_dir: Path) -> Path:
    """A new empty temp folder beside ``final_dir``, named as :func:`tmp_path_for` names temp files (host, PID and
    a random token), so two processes assembling the same folder never share one and :func:`remove_stale_tmp` finds
    what a killed one left."""
    final_dir = Path(final_dir)
    final_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = tmp_path_for(final_dir)
    tmp.mkdir()
    return tmp


def publish_dir(tmp_dir: Path, final_dir: Path, *, existing: Literal["refuse", "replace", "keep"] = "refuse") -> bool:
    """fsync every file below the fully written ``tmp_dir`` and rename it to ``final_dir`` in one step.

    When ``final_dir`` exists: ``refuse`` raises FileExistsError (``tmp_dir`` is left to the caller); ``replace``
    moves the old one aside, renames ``tmp_dir`` into place, then deletes the old one (put back if the rename
    fails); ``keep`` deletes ``tmp_dir`` and keeps the existing folder (another process published it first).
    Returns whether ``tmp_dir`` was published.
    """
    tmp_dir, final_dir = Path(tmp_dir), Path(final_dir)
    for p in sorted(tmp_dir.rglob("*")):
        if p.is_file() and not p.is_symlink():
            with open(p, "rb") as f:
                os.fsync(f.fileno())
    if not (final_dir.exists() or final_dir.is_symlink()):
        try:
            os.rename(tmp_dir, final_dir)
            return True
        except OSError:
            if not final_dir.exists():  # not a race with another publisher
                raise
    if existing == "keep":
        _remove_path(tmp_dir)
        return False
    if existing == "refuse":
        raise FileExistsError(f"{final_dir} exists; not replacing it with {tmp_dir.name}")
    aside = tmp_path_for(final_dir)
    os.rename(final_dir, aside)
    try:
        os.rename(tmp_dir, final_dir)
    except BaseException:
        os.rename(aside, final_dir)
        raise
    _remove_path(aside)
    return True


def _remove_path(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)


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
    """Delete the temp files and temp folders (:func:`make_tmp_dir`) left by killed writers below ``folder``;
    returns how many. Only safe while no other process writes there."""
    n = 0
    if Path(folder).exists():
        for p in sorted(Path(folder).rglob(".*.tmp-*")):  # a temp folder sorts before what it holds
            if p.exists() or p.is_symlink():
                _remove_path(p)
                n += 1
    return n


def remove_tmp_of(path: Path) -> int:
    """Delete the temp files (or folders) that writers of ``path`` left beside it, from any host or process; returns
    how many. Only for paths no other process is writing now (a rank's own work units)."""
    path = Path(path)
    n = 0
    for p in path.parent.glob(f".{glob.escape(path.name)}.tmp-*"):
        _remove_path(p)
        n += 1
    return n


def sha256_file(path: Path, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


class NotWritableError(OSError):
    """An output path this process cannot write (a file where a folder must be, a read-only place)."""


def ensure_writable(path: str | Path) -> Path:
    """Check, before any work, that ``path`` (an output file or folder, existing or not) can be written: its nearest
    existing ancestor is a folder where a file can be created (tried with a probe file, removed at once; so a read-only
    file system fails even for root). Creates nothing. Raises :class:`NotWritableError` naming the path and why.

    >>> ensure_writable("eval-report")
    PosixPath('eval-report')
    """
    import tempfile

    path = Path(path).expanduser()
    if path.exists() and not path.is_dir():  # an existing output file: overwritten in place (temp file + rename beside it)
        folder = path.parent
    else:
        folder = path
        while not folder.exists():
            if folder.is_symlink():  # a dangling link
                raise NotWritableError(f"{path} cannot be written: {folder} is a broken link")
            folder = folder.parent
        if not folder.is_dir():
            raise NotWritableError(f"{path} cannot be written: {folder} is a file, not a folder")
    try:
        with tempfile.NamedTemporaryFile(dir=folder, prefix=".dataigm-probe-"):
            pass
    except OSError as e:
        raise NotWritableError(f"{path} cannot be written: {folder}: {e.strerror or e}") from None
    return path
