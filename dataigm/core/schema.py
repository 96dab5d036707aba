"""The one sample schema every shard uses, generated or real.

A sample in a tar is ``<key>.png`` (image bytes), ``<key>.json`` (:class:`SampleMeta`) and ``<key>.cls``
(the integer label). Every sample carries every field, with typed empty values ("" / -1) where a field does
not apply, because stock loaders (``datasets``' WebDataset builder) infer one schema from the first samples.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import re
from dataclasses import dataclass
from typing import Any

SCHEMA_VERSION = 1
IMAGE_FIELD = "png"
SPLITS = ("train", "val", "test")
SOURCES = ("generated", "real")  # the defaults; imports may name others (see import-images --source-from-name)
ROLES = ("positive", "negative", "unrelated", "real")

_KEY_RE = re.compile(r"^[a-z0-9_\-]+$")
_SOURCE_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]*$")  # imported images name their own source (LAION, REAL, SD-GEN)


def slugify(text: str) -> str:
    """Lowercase ``text`` and keep only [a-z0-9_]: "Vincent van Gogh" -> "vincent_van_gogh"."""
    slug = re.sub(r"[^a-z0-9]+", "_", text.lower()).strip("_")
    if not slug:
        raise ValueError(f"cannot make a name from {text!r}")
    return slug


def check_key(key: str) -> str:
    """Keys are lowercase, dot-free and path-free, so every tar reader splits them the same way."""
    if not _KEY_RE.match(key):
        raise ValueError(f"invalid sample key {key!r}: use lowercase letters, digits, '_' and '-' only")
    return key


def stable_int(*parts: object, bits: int = 31) -> int:
    """A platform-independent integer hash (Python's ``hash`` is salted per process)."""
    digest = hashlib.sha256(":".join(str(p) for p in parts).encode()).digest()
    return int.from_bytes(digest[:8], "big") % (1 << bits)


def derive_seed(base_seed: int, pair_id: str, image_index: int) -> int:
    """One seed per (prompt pair, image index): a positive and its paired negative share it."""
    return stable_int("seed", base_seed, pair_id, image_index)


@dataclass
class SampleMeta:
    """Provenance and label of one image; serialised as the sample's ``json``."""

    key: str
    category: str  # the dataset category (folder / Hub config), e.g. nudity, church, style
    split: str
    label: int
    label_name: str
    label_names: list[str]
    source: str = "generated"  # generated | real
    role: str = "positive"  # positive | negative | unrelated | real
    concept: str = ""
    taxonomy: str = ""  # the taxonomy category of the concept (nudity | style | object); "" when unknown
    subcategory: str = ""
    pair_id: str = ""
    prompt: str = ""
    pair_prompt: str = ""  # the counterpart of a pair: the concept-removed prompt for a positive and vice versa
    negative_prompt: str = ""  # the diffusers ``negative_prompt`` passed to the pipeline
    prompt_source: str = ""  # "recipe" or where an imported prompt came from
    prompt_index: int = -1
    seed: int = -1
    image_index: int = -1
    model: str = ""
    model_revision: str = ""
    scheduler: str = ""
    steps: int = -1
    guidance: float = -1.0
    width: int = -1
    height: int = -1
    batch_size: int = -1  # images in the pipeline call that made this one (batched kernels change the pixels)
    generator_device: str = ""  # where its noise was drawn ("cpu": the same latents on any hardware)
    original_path: str = ""  # real images: path relative to the imported folder
    original_sha256: str = ""
    schema_version: int = SCHEMA_VERSION

    def __post_init__(self) -> None:
        check_key(self.key)
        if self.split not in SPLITS:
            raise ValueError(f"split {self.split!r} not in {SPLITS}")
        if self.source not in SOURCES and not _SOURCE_RE.match(self.source):
            raise ValueError(f"source {self.source!r}: expected {' or '.join(SOURCES)}, or a name of letters, digits, '-', '_', '.'")
        if not 0 <= self.label < len(self.label_names):
            raise ValueError(f"label {self.label} out of range for {self.label_names}")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def to_json_bytes(self) -> bytes:
        return json.dumps(self.to_dict(), sort_keys=True, ensure_ascii=False).encode()  # pragma: no mutate, None is false too

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "SampleMeta":
        """Read the schema fields back; later stages may add keys of their own (e.g. ``curation``)."""
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in names})


def encode_sample(meta: SampleMeta, image_bytes: bytes) -> dict[str, Any]:
    """The webdataset dict for one sample: the same three fields for every sample."""
    return {
        "__key__": meta.key,
        IMAGE_FIELD: image_bytes,
        "json": meta.to_json_bytes(),
        "cls": str(meta.label).encode(),
    }
