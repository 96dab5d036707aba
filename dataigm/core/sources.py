"""One grammar for where a model, detector, dataset or judge's weights come from.

Every spec the command line takes for a location goes through :func:`parse_source`:

* ``local-dir:PATH`` or an existing path: ``Source("local", PATH)`` (``file`` for a weights file);
* ``hf-hub:org/name``, ``org/name``, ``org/name@revision`` and ``org/name:subfolder`` (also ``org/name@rev:sub``):
  ``Source("hub", "org/name", revision, subfolder)``;
* anything else is refused in one line that lists the accepted forms.

The Hub-id rule (:data:`HUB_ID_RE`) and the weight suffixes (:data:`WEIGHT_SUFFIXES`) live here and nowhere else.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from dataigm.core.errors import DataigmError

HUB_ID_RE = re.compile(r"^[A-Za-z0-9][\w.\-]*/[\w.\-]+$")
REVISION_RE = re.compile(r"^[\w.\-/]+$")
# Files a single set of weights may come in; only safetensors and ONNX are read without a pickle.
SAFE_WEIGHT_SUFFIXES = (".safetensors", ".onnx")
PICKLE_WEIGHT_SUFFIXES = (".bin", ".pt", ".pth", ".ckpt", ".pkl")
WEIGHT_SUFFIXES = SAFE_WEIGHT_SUFFIXES + PICKLE_WEIGHT_SUFFIXES

SourceKind = Literal["local", "file", "hub"]


class SourceError(DataigmError):
    """A location spec that is neither a path nor a Hub id."""


@dataclass(frozen=True)
class Source:
    """A parsed location: a local folder or file, or a Hub repo at a revision (and subfolder)."""

    kind: SourceKind
    location: str
    revision: str | None = None
    subfolder: str | None = None

    @property
    def is_hub(self) -> bool:
        return self.kind == "hub"

    @property
    def path(self) -> Path:
        """The local path (only for ``local`` and ``file`` sources)."""
        if self.is_hub:
            raise ValueError(f"{self.location} is a Hub repo, not a local path")
        return Path(self.location)

    def __str__(self) -> str:
        if not self.is_hub:
            return self.location
        return self.location + (f"@{self.revision}" if self.revision else "") + (f":{self.subfolder}" if self.subfolder else "")


def is_hub_id(text: str) -> bool:
    """Whether ``text`` has the form ``org/name`` (no revision, no subfolder)."""
    return bool(HUB_ID_RE.match(text))


def parse_source(spec: str, *, what: str = "source", allow_subfolder: bool = True) -> Source:
    """Parse a location spec (see the module docstring); ``what`` names it in errors (``detector``, ``--unet``)."""
    if not spec or not spec.strip():
        raise SourceError(f"empty {what}: use a folder, local-dir:PATH, a file, or a Hub id org/name[@revision]")
    if spec.startswith("local-dir:"):
        path = Path(spec.removeprefix("local-dir:")).expanduser()
        return Source("file" if path.is_file() else "local", str(path))
    path = Path(spec).expanduser()
    if path.exists():
        return Source("file" if path.is_file() else "local", str(path))
    text = spec.removeprefix("hf-hub:")
    repo, subfolder = text, None
    if allow_subfolder and ":" in text:
        repo, subfolder = text.split(":", 1)
    revision = None
    if "@" in repo:
        repo, revision = repo.split("@", 1)
        if not revision or not REVISION_RE.match(revision):
            raise SourceError(f"{what} {spec!r}: revision {revision!r} is not a branch, tag or commit")
    if not HUB_ID_RE.match(repo) or (subfolder is not None and not subfolder.strip("/")):
        looks_local = spec.startswith((".", "/", "~")) or spec.endswith(WEIGHT_SUFFIXES) or path.suffix != ""
        hint = " (no such file or folder)" if looks_local else ""
        raise SourceError(
            f"{what} {spec!r} is neither an existing path{hint} nor a Hub id; use a folder, local-dir:PATH, a file, "
            "hf-hub:org/name or org/name[@revision]" + ("[:subfolder]" if allow_subfolder else "")
        )
    return Source("hub", repo, revision, subfolder.strip("/") if subfolder else None)
