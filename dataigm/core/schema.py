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
from dataclasses import dataclass, field
from typing import Any

from dataigm.core.errors import InputError

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
        raise InputError(f"cannot make a name from {text!r}")
    return slug


def check_key(key: str) -> str:
    """Keys are lowercase, dot-free and path-free, so every tar reader splits them the same way."""
    if not _KEY_RE.match(key):
        raise InputError(f"invalid sample key {key!r}: use lowercase letters, digits, '_' and '-' only")
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
    """Provenance and label of one image; serialised as the sample's ``json``. Each field's ``doc`` metadata is
    what the dataset card says about it (:func:`field_docs`)."""

    key: str = field(metadata={"doc": "sample key, unique in the dataset (lowercase, no dots)"})
    category: str = field(metadata={"doc": "the config this sample belongs to"})
    split: str = field(metadata={"doc": "split folder: train / val / test (the `datasets` splits train / validation / test)"})
    label: int = field(metadata={"doc": "class index (same as `cls`)"})
    label_name: str = field(metadata={"doc": "class name of `label`"})
    label_names: list[str] = field(metadata={"doc": "all class names of the category, in index order"})
    source: str = field(default="generated", metadata={"doc": "`generated` or `real`"})
    role: str = field(default="positive", metadata={"doc": "`positive` (concept prompt), `negative` (paired concept-free prompt), `unrelated` or `real`"})
    concept: str = field(default="", metadata={"doc": "taxonomy concept the prompt is about"})
    taxonomy: str = field(default="", metadata={"doc": "taxonomy category of the concept (nudity, style, object); empty when unknown"})
    subcategory: str = field(default="", metadata={"doc": "finer grouping of the prompt (e.g. an I2P category)"})
    pair_id: str = field(default="", metadata={"doc": "shared by a positive and its paired negative (same seed)"})
    prompt: str = field(default="", metadata={"doc": "the prompt the image was generated from"})
    pair_prompt: str = field(default="", metadata={"doc": "the counterpart prompt of the pair"})
    negative_prompt: str = field(default="", metadata={"doc": "the diffusers `negative_prompt` used"})
    prompt_source: str = field(default="", metadata={"doc": "`recipe` or where an imported prompt came from"})
    prompt_index: int = field(default=-1, metadata={"doc": "index of the prompt in its source"})
    seed: int = field(default=-1, metadata={"doc": "generator seed of this image"})
    image_index: int = field(default=-1, metadata={"doc": "index of the image among those of its prompt"})
    model: str = field(default="", metadata={"doc": "short tag of the generator"})
    model_revision: str = field(default="", metadata={"doc": "Hub revision of the generator"})
    scheduler: str = field(default="", metadata={"doc": "diffusers scheduler class"})
    steps: int = field(default=-1, metadata={"doc": "denoising steps"})
    guidance: float = field(default=-1.0, metadata={"doc": "classifier-free guidance scale"})
    width: int = field(default=-1, metadata={"doc": "image width in pixels"})
    height: int = field(default=-1, metadata={"doc": "image height in pixels"})
    batch_size: int = field(default=-1, metadata={"doc": "images in the pipeline call that made this one (-1: not generated); batched kernels change the pixels"})
    generator_device: str = field(default="", metadata={"doc": "device the initial noise was drawn on (`cpu` for generated images: the same latents on any hardware)"})
    original_path: str = field(default="", metadata={"doc": "real images: path relative to the imported folder"})
    original_sha256: str = field(default="", metadata={"doc": "real images: sha256 of the original file"})
    schema_version: int = field(default=SCHEMA_VERSION, metadata={"doc": "version of this schema"})

    def __post_init__(self) -> None:
        check_key(self.key)
        if self.split not in SPLITS:
            raise InputError(f"split {self.split!r} not in {SPLITS}")
        if self.source not in SOURCES and not _SOURCE_RE.match(self.source):
            raise InputError(f"source {self.source!r}: expected {' or '.join(SOURCES)}, or a name of letters, digits, '-', '_', '.'")
        if not 0 <= self.label < len(self.label_names):
            raise InputError(f"label {self.label} out of range for {self.label_names}")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def to_json_bytes(self) -> bytes:
        return json.dumps(self.to_dict(), sort_keys=True, ensure_ascii=False).encode()  # pragma: no mutate, None is false too

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "SampleMeta":
        """Read the schema fields back; later stages may add keys of their own (e.g. ``curation``)."""
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in names})


def field_docs() -> dict[str, str]:
    """Field name -> its one-line description, in schema order (the dataset card's field table). Every field has
    one: a field added without its ``doc`` fails here, in the schema tests, not on a card."""
    return {f.name: f.metadata["doc"] for f in dataclasses.fields(SampleMeta)}


def encode_sample(meta: SampleMeta, image_bytes: bytes) -> dict[str, Any]:
    """The webdataset dict for one sample: the same three fields for every sample."""
    return {
        "__key__": meta.key,
        IMAGE_FIELD: image_bytes,
        "json": meta.to_json_bytes(),
        "cls": str(meta.label).encode(),
    }
