"""Prompt records: the normalised form every prompt set takes (recipe templates or imported files).

Imported prompt sets are JSONL files with one :class:`PromptRecord` per line (``dataigm prompts import``
writes them); recipes list them under ``prompts.files``.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable

from dataigm.core.errors import InputError


@dataclass
class PromptRecord:
    """One prompt with what is known about it; optional fields are None when unknown."""

    prompt: str
    concept: str = ""
    category: str = ""
    subcategory: str = ""
    label: str = ""  # label name, when the source says
    paired_negative: str | None = None  # the concept-free counterpart, when the source gives one
    source: str = "recipe"  # recipe | igmu | i2p | csv | txt | ...
    index: int = -1  # position in the original file
    seed: int | None = None  # the benchmark's own seed, to regenerate as it did (I2P sd_seed)
    guidance: float | None = None  # the benchmark's own guidance scale
    extra: dict[str, Any] = dataclasses.field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def read_prompt_jsonl(path: Path) -> list[PromptRecord]:
    """Read a normalised prompt JSONL; errors name the file and line."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"prompt file {path} not found")
    names = {f.name for f in dataclasses.fields(PromptRecord)}
    records = []
    for lineno, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            data = json.loads(line)
        except json.JSONDecodeError as e:
            raise InputError(f"{path}:{lineno}: not valid JSON ({e.msg})") from None
        if not isinstance(data, dict) or not isinstance(data.get("prompt"), str) or not data["prompt"].strip():
            raise InputError(f"{path}:{lineno}: each line must be an object with a non-empty 'prompt' string")
        unknown = set(data) - names
        if unknown:
            raise InputError(f"{path}:{lineno}: unknown field(s) {sorted(unknown)}; allowed: {sorted(names)}")
        records.append(PromptRecord(**data))
    if not records:
        raise InputError(f"{path}: no prompts")
    return records


def write_prompt_jsonl(records: Iterable[PromptRecord], path: Path) -> int:
    """Write records as JSONL (atomically); returns how many."""
    from dataigm.core.atomic import write_jsonl_atomic

    return write_jsonl_atomic(Path(path), [r.to_dict() for r in records])
