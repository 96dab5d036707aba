"""Up-front checks of model sources (``--model``, ``--unet``, ``--text-encoder``, ``--component``, ``config``), before any
work starts or any file is written: a source must be an existing path or could be a Hub id. Loading stays in
:mod:`dataigm.generate.pipeline`; this module imports no framework.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from dataigm.core.errors import DataigmError
from dataigm.core.sources import CHECKPOINT_SUFFIXES, SourceError, parse_source
from dataigm.recipe import ModelSpec


class ModelSourceError(DataigmError, ValueError):
    """A model source that is neither an existing path nor a Hub id."""


def check_source(source: str, what: str) -> None:
    """Raise :class:`ModelSourceError` unless ``source`` exists locally (``DIR[:SUBFOLDER]``) or reads as ``ORG/NAME[:SUBFOLDER]``."""
    if Path(source).exists():
        return
    head, sep, sub = source.rpartition(":")
    if sep and head and Path(head).exists():
        if (Path(head) / sub).exists():
            return
        raise ModelSourceError(f"{what}={source!r}: folder {head} has no sub-folder {sub!r}")
    repo = _hub_repo(source, what)
    if repo is None:
        raise ModelSourceError(f"{what}={source!r}: no such file or folder, and not a Hub id (ORG/NAME[:SUBFOLDER])")
    from huggingface_hub import constants, snapshot_download

    if constants.HF_HUB_OFFLINE:  # offline, a Hub id must already be in the cache
        try:
            snapshot_download(repo, local_files_only=True)
        except Exception:
            raise ModelSourceError(f"{what}={source!r}: not in the Hub cache, and HF_HUB_OFFLINE is set") from None


def _hub_repo(source: str, what: str) -> str | None:
    """The Hub repo ``source`` names through :func:`~dataigm.core.sources.parse_source` (``ORG/NAME[:SUBFOLDER]``; a
    revision goes in ``revision``/``--revision``), or None when it cannot be one."""
    try:
        parsed = parse_source(source, what=what)
    except SourceError:
        return None
    looks_like_a_file = source.lower().endswith(CHECKPOINT_SUFFIXES) or "--" in source or ".." in source
    return parsed.location if parsed.is_hub and not parsed.revision and not looks_like_a_file else None


def check_models(models: Sequence[ModelSpec], tiny_id: str = "tiny") -> None:
    """Check every source of every model of a plan: its id, its ``config`` and each replaced component."""
    for spec in models:
        if spec.id != tiny_id:
            check_source(spec.id, "model")
        if spec.config:
            check_source(spec.config, "config")
        for name, src in sorted(spec.components.items()):
            check_source(src, f"component {name}" if name not in ("unet", "text_encoder") else name)
        for lora in spec.loras:
            if not Path(lora.path).is_file():
                raise ModelSourceError(f"lora={lora.path!r}: no such file")
