"""Where dataigm keeps what it can rebuild: the tiny model, fetched prompt files, file hashes, benchmark images."""

from __future__ import annotations

import os
from pathlib import Path


def cache_dir() -> Path:
    """dataigm's cache folder: ``$DATAIGM_CACHE``, else ``$XDG_CACHE_HOME/dataigm``, else ``~/.cache/dataigm``."""
    base = os.environ.get("DATAIGM_CACHE") or os.path.join(os.environ.get("XDG_CACHE_HOME", os.path.expanduser("~/.cache")), "dataigm")
    return Path(base)
