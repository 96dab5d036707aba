"""Fetching a suite's pinned prompt files into the cache (``$DATAIGM_CACHE/prompts/<repo>/<commit>/<path>``).

Files come over plain HTTPS from the repository's raw URL at the pinned commit, or from a local folder (``--from``
on offline machines). Each is checked against the suite's sha256 before it is published (temp + rename), so a
cached file is always a verified one and a mismatch never overwrites a good copy.
"""

from __future__ import annotations

import logging
import shutil
import urllib.request
from pathlib import Path

from dataigm.benchmark.suite import Suite, suite_base_dir
from dataigm.core.atomic import publish, sha256_file, tmp_path_for
from dataigm.core.errors import DataigmError

log = logging.getLogger(__name__)
TIMEOUT_S = 60


class FetchError(DataigmError):
    """A prompt file could not be fetched, or its content is not the pinned one."""


def prompts_cache() -> Path:
    """Where fetched prompt files live (below ``DATAIGM_CACHE``)."""
    from dataigm.core.cache import cache_dir

    return cache_dir() / "prompts"


def cached_path(suite: Suite, key: str) -> Path:
    """The cache location of the suite's file ``key``."""
    return prompts_cache() / suite.source.repo / suite.source.commit / suite.files[key].path


def _find_local(folder: Path, rel: str) -> Path | None:
    """``folder/<path in repo>`` or ``folder/<file name>``."""
    for candidate in (folder / rel, folder / Path(rel).name):
        if candidate.is_file():
            return candidate
    return None


def _download(url: str, dest: Path) -> None:
    req = urllib.request.Request(url, headers={"User-Agent": "dataigm"})
    try:
        with urllib.request.urlopen(req, timeout=TIMEOUT_S) as resp, open(dest, "wb") as out:
            shutil.copyfileobj(resp, out)
    except OSError as e:  # URLError, HTTPError and timeouts are OSErrors
        raise FetchError(f"could not download {url}: {e}; on an offline machine copy the file into a folder given as source_dir=DIR") from None


def fetch_file(suite: Suite, key: str, source_dir: Path | None = None, force: bool = False) -> Path:
    """The verified local copy of file ``key`` of ``suite``, fetched (or copied from ``source_dir``) when needed."""
    spec = suite.files[key]
    if suite.source is None:
        return _local_file(suite, key)
    dest = cached_path(suite, key)
    if dest.is_file() and not force and sha256_file(dest) == spec.sha256:
        return dest
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = tmp_path_for(dest)
    try:
        if source_dir is not None:
            local = _find_local(Path(source_dir), spec.path)
            if local is None:
                raise FetchError(f"{spec.path} of suite {suite.name}: neither {Path(source_dir) / spec.path} nor "
                                 f"{Path(source_dir) / Path(spec.path).name} exists")
            origin = str(local)
            shutil.copyfile(local, tmp)
        else:
            origin = suite.url(key)
            log.info("downloading %s", origin)
            _download(origin, tmp)
        found = sha256_file(tmp)
        if found != spec.sha256:
            raise FetchError(f"{origin}: sha256 mismatch for {spec.path} of suite {suite.name}: expected {spec.sha256}, found {found} "
                             f"(not the file at commit {suite.source.commit} of {suite.source.repo})")
        publish(tmp, dest)
    finally:
        tmp.unlink(missing_ok=True)
    return dest


def _local_file(suite: Suite, key: str) -> Path:
    """A local suite's file ``key`` (relative to the suite file), checked against its sha256 when the suite gives one."""
    spec = suite.files[key]
    path = Path(spec.path) if Path(spec.path).is_absolute() else suite_base_dir(suite) / spec.path
    if not path.is_file():
        raise FetchError(f"{path}: file {key!r} of suite {suite.name} not found")
    if spec.sha256 is not None and (found := sha256_file(path)) != spec.sha256:
        raise FetchError(f"{path}: sha256 mismatch for file {key!r} of suite {suite.name}: expected {spec.sha256}, found {found}")
    return path


def fetch_suite(suite: Suite, source_dir: Path | None = None, force: bool = False, keys: list[str] | None = None) -> dict[str, Path]:
    """Fetch and verify every file of ``suite`` (or the given ``keys``); returns key -> local path."""
    return {key: fetch_file(suite, key, source_dir, force) for key in (keys or list(suite.files))}

