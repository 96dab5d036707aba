"""Where the shipped data folders are: ``builders/`` (recipes), ``detectors/`` (detector recipes), ``cards/``
(card templates). They live at the top of the source tree; a wheel install puts them under
``<prefix>/share/dataigm/``; ``DATAIGM_RESOURCES`` points elsewhere.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

FOLDERS = ("builders", "detectors", "cards")


def resource_dir(name: str) -> Path:
    """The folder ``name`` (one of :data:`FOLDERS`), from the environment, the source tree or the install."""
    if name not in FOLDERS:
        raise KeyError(f"unknown resource folder {name!r}; valid: {', '.join(FOLDERS)}")
    candidates = [Path(os.environ["DATAIGM_RESOURCES"]) / name] if os.environ.get("DATAIGM_RESOURCES") else []
    candidates += [Path(__file__).resolve().parents[1] / name, Path(sys.prefix) / "share" / "dataigm" / name]
    for c in candidates:
        if c.is_dir():
            return c
    raise FileNotFoundError(f"dataigm's {name}/ folder not found (looked in {', '.join(map(str, candidates))}); set DATAIGM_RESOURCES")
