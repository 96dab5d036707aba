"""Whether this machine should act offline: ``HF_HUB_OFFLINE`` (or ``TRANSFORMERS_OFFLINE``) set, or the Hub not
reachable within a couple of seconds. Loaders ask before a Hub lookup whose retries would take a minute to fail.

Example::

    >>> from dataigm.core.network import offline
    >>> offline()  # doctest: +SKIP
    True
"""

from __future__ import annotations

import functools
import os
import socket
from urllib.parse import urlparse

TRUE = {"1", "true", "yes", "on"}
PROBE_TIMEOUT_S = 2.0


def offline_by_env() -> bool:
    """``HF_HUB_OFFLINE`` or ``TRANSFORMERS_OFFLINE`` is set to a true value."""
    return any(os.environ.get(name, "").strip().lower() in TRUE for name in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"))


@functools.lru_cache(maxsize=1)
def hub_reachable(timeout: float = PROBE_TIMEOUT_S) -> bool:
    """Whether a TCP connection to the Hub's host (``HF_ENDPOINT``, default huggingface.co:443) opens within
    ``timeout`` seconds; asked once per process."""
    url = urlparse(os.environ.get("HF_ENDPOINT") or "https://huggingface.co")
    try:
        with socket.create_connection((url.hostname or "huggingface.co", url.port or 443), timeout=timeout):
            return True
    except OSError:
        return False


def offline() -> bool:
    """True when the environment says offline, or the Hub cannot be reached (a model not in the local cache then
    cannot load, and trying would only spend the Hub client's retries)."""
    return offline_by_env() or not hub_reachable()
