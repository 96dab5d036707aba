"""What curation decides, shared by the engine, the filters, the report and the contact sheets: the actions a
flag can carry and the verdict on one sample. Imports nothing else of dataigm, so none of them import each other
for it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal, get_args

Action = Literal["keep", "review", "drop"]
ACTIONS: tuple[str, ...] = get_args(Action)
ACTION_RANK = {a: i for i, a in enumerate(ACTIONS)}  # the strongest action of all flags wins


@dataclass
class Decision:
    """The verdict on one sample and why."""

    key: str
    category: str
    split: str
    label_name: str
    verdict: str  # keep | review | drop
    reasons: list[str]
    fields: dict[str, Any]
    shard: str
    relabel_to: str = ""
    review_tag: str = ""
    pair_status: str = ""
