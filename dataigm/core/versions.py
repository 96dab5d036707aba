"""Installed package versions, read once per process (stdlib only: any stage may record them cheaply)."""

from __future__ import annotations

from functools import lru_cache
from importlib import metadata


@lru_cache(maxsize=None)
def installed_version(name: str) -> str:
    """The installed version of a distribution, "" when it is not installed; read once per process (parsing a
    package's metadata costs about 10 ms, and a build records versions several times)."""
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return ""
