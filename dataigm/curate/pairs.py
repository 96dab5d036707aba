"""Pair bookkeeping: a positive and its concept-removed negative share ``pair_id``, ``image_index`` and model.

After the filters have spoken, the pair policy decides what happens to the partner of a dropped member, and
the statistics say how many pairs survived whole.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Iterable

from dataigm.curate.config import PairPolicy


@dataclass
class PairMember:
    """What the pair policy needs of one sample: its pair identity, its role and whether the filters dropped it."""

    key: str
    category: str
    split: str
    role: str
    pair_id: str
    image_index: int
    model: str
    dropped: bool


def pair_groups(members: Iterable[PairMember]) -> dict[tuple[str, str, str, str, int], list[PairMember]]:
    """Group positives and negatives: (category, split, model, pair_id, image_index) -> members (a pair has two)."""
    groups: dict[tuple[str, str, str, str, int], list[PairMember]] = {}
    for m in members:
        if m.pair_id and m.role in ("positive", "negative"):
            groups.setdefault((m.category, m.split, m.model, m.pair_id, m.image_index), []).append(m)
    return groups


def apply_pair_policy(members: Iterable[PairMember], policies: dict[str, PairPolicy]) -> tuple[dict[str, str], dict[str, str], dict[str, dict[str, int]]]:
    """Returns (keys dropped because of their partner -> reason, pair status per key, statistics per category).

    Status: ``complete`` (both kept), ``partner_dropped``, ``dropped`` (this member was dropped), ``unpaired``
    (the partner is missing from the dataset). The policy only looks at each member's own verdict, so the
    result does not depend on the order pairs are visited.
    """
    extra_drops: dict[str, str] = {}
    status: dict[str, str] = {}
    stats: dict[str, Counter[str]] = {}
    for (category, *_), group in sorted(pair_groups(members).items()):
        c = stats.setdefault(category, Counter())
        roles = sorted(m.role for m in group)
        if roles != ["negative", "positive"]:  # a lone member, or a pair id reused: not a pair
            c["unpaired"] += len(group)
            for m in group:
                status[m.key] = "unpaired"
            continue
        c["pairs"] += 1
        pos, neg = sorted(group, key=lambda m: m.role != "positive")
        policy = policies.get(category, PairPolicy())
        if pos.dropped and neg.dropped:
            c["both_dropped"] += 1
        elif pos.dropped or neg.dropped:  # one member dropped: the policy for its role decides its partner's fate
            lost, kept = (pos, neg) if pos.dropped else (neg, pos)
            c[f"{lost.role}_dropped"] += 1
            if (policy.on_positive_dropped if pos.dropped else policy.on_negative_dropped) == "drop":
                extra_drops[kept.key] = f"pair:{lost.role}_dropped"
                c[f"{kept.role}_dropped_with_{lost.role}"] += 1
            else:
                c[f"{kept.role}_kept_alone"] += 1
        else:
            c["complete"] += 1
        for m, other in ((pos, neg), (neg, pos)):
            gone = m.dropped or m.key in extra_drops
            other_gone = other.dropped or other.key in extra_drops
            status[m.key] = "dropped" if gone else ("partner_dropped" if other_gone else "complete")
    keys = ("pairs", "complete", "positive_dropped", "negative_kept_alone", "negative_dropped_with_positive",
            "negative_dropped", "positive_kept_alone", "positive_dropped_with_negative", "both_dropped", "unpaired")
    return extra_drops, status, {cat: {k: int(c.get(k, 0)) for k in keys} for cat, c in sorted(stats.items())}
