"""Where the shipped data folders are: ``builders/`` (recipes, concepts, suites, generation presets), ``detectors/``
(detector recipes), ``cards/`` (card templates).

They live at the top of the source tree; a wheel maps them into the package as ``dataigm/_data/<folder>``
(pyproject.toml's ``package-dir``), where :mod:`importlib.resources` finds them in any install (a venv, a user
or a target folder); ``DATAIGM_RESOURCES`` points elsewhere.

    >>> sorted(p.name for p in resource_dir("builders").glob("*.yaml"))[:2]     # doctest: +SKIP
    ['church.yaml', 'nudity.yaml']
"""

from __future__ import annotations

import os
from importlib.resources import files
from pathlib import Path

FOLDERS = ("builders", "detectors", "cards")


def resource_dir(name: str) -> Path:
    """The folder ``name`` (one of :data:`FOLDERS`): from ``DATAIGM_RESOURCES``, the installed package, or the source tree."""
    if name not in FOLDERS:
        raise KeyError(f"unknown resource folder {name!r}; valid: {', '.join(FOLDERS)}")
    candidates = [Path(os.environ["DATAIGM_RESOURCES"]) / name] if os.environ.get("DATAIGM_RESOURCES") else []
    candidates += [Path(str(files("dataigm").joinpath("_data", name))), Path(__file__).resolve().parents[1] / name]
    for c in candidates:
        if c.is_dir():
            return c
    raise FileNotFoundError(f"dataigm's {name}/ folder not found (looked in {', '.join(map(str, candidates))}); set DATAIGM_RESOURCES")
