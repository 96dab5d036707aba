"""Up-front checks of model sources (``--model``, ``--unet``, ``--text-encoder``, ``--component``, ``config``), before any
work starts or any file is written: a source must be an existing path or could be a Hub id. Loading stays in
:mod:`dataigm.generate.pipeline`; this module imports no framework.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path

from dataigm.core.errors import DataigmError
from dataigm.recipe import ModelSpec

WEIGHT_FILE_SUFFIXES = (".safetensors", ".ckpt", ".pt", ".pth", ".bin")
# huggingface_hub's repo id rule (ORG/NAME of letters, digits, - _ . with no - or . at either end), plus :SUBFOLDER.
_NAME = r"[A-Za-z0-9_](?:[\w.-]{0,94}[A-Za-z0-9_])?"
_HUB_ID = re.compile(rf"^{_NAME}/{_NAME}(:[\w./-]+)?$")


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
        raise ModelSourceError(f"{what} {source!r}: folder {head} has no sub-folder {sub!r}")
    plausible_hub = (_HUB_ID.match(source) and "--" not in source and ".." not in source
                     and not source.lower().endswith(WEIGHT_FILE_SUFFIXES))
    if not plausible_hub:
        raise ModelSourceError(f"{what} {source!r}: no such file or folder, and not a Hub id (ORG/NAME[:SUBFOLDER])")
    from huggingface_hub import constants, snapshot_download

    if constants.HF_HUB_OFFLINE:  # offline, a Hub id must already be in the cache
        repo = source.split(":", 1)[0]
        try:
            snapshot_download(repo, local_files_only=True)
        except Exception:
            raise ModelSourceError(f"{what} {source!r}: not in the Hub cache, and HF_HUB_OFFLINE is set") from None


def check_models(models: Sequence[ModelSpec], tiny_id: str = "tiny") -> None:
    """Check every source of every model of a plan: its id, its ``config`` and each replaced component."""
    for spec in models:
        if spec.id != tiny_id:
            check_source(spec.id, "model")
        if spec.config:
            check_source(spec.config, "config")
        for name, src in sorted(spec.components.items()):
            check_source(src, f"component {name}" if name not in ("unet", "text_encoder") else f"--{name.replace('_', '-')}")
        for lora in spec.loras:
            if not Path(lora.path).is_file():
                raise ModelSourceError(f"--lora {lora.path!r}: no such file")
