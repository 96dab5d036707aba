"""Pair bookkeeping with several images per prompt: a pair is (pair_id, image_index), not the prompt alone."""

from __future__ import annotations

from dataigm.curate.config import PairPolicy
from dataigm.curate.pairs import PairMember, apply_pair_policy


def members(dropped: set[str]) -> list[PairMember]:
    out = []
    for image_index in range(3):
        for role in ("positive", "negative"):
            key = f"p0-{role[:3]}-{image_index}"
            out.append(PairMember(key, "nudity", "train", role, "nude-00000", image_index, "tiny", key in dropped))
    return out


def test_each_image_index_is_its_own_pair() -> None:
    # three images of one prompt pair; only image 1's positive is dropped
    extra, status, stats = apply_pair_policy(members({"p0-pos-1"}), {"nudity": PairPolicy(on_positive_dropped="drop")})
    assert extra == {"p0-neg-1": "pair:positive_dropped"}
    assert stats["nudity"]["pairs"] == 3 and stats["nudity"]["complete"] == 2 and stats["nudity"]["unpaired"] == 0
    assert stats["nudity"]["negative_dropped_with_positive"] == 1
    assert status == {"p0-pos-0": "complete", "p0-neg-0": "complete", "p0-pos-1": "dropped", "p0-neg-1": "dropped",
                      "p0-pos-2": "complete", "p0-neg-2": "complete"}


def test_keep_policy_keeps_the_partner_of_the_same_image_only() -> None:
    extra, status, stats = apply_pair_policy(members({"p0-neg-2"}), {})
    assert extra == {}
    assert status["p0-pos-2"] == "partner_dropped" and status["p0-pos-0"] == "complete"
    assert stats["nudity"]["negative_dropped"] == 1 and stats["nudity"]["positive_kept_alone"] == 1


def test_a_member_without_its_partner_is_unpaired() -> None:
    lone = [m for m in members(set()) if m.key != "p0-neg-0"]
    _, status, stats = apply_pair_policy(lone, {})
    assert status["p0-pos-0"] == "unpaired" and stats["nudity"]["unpaired"] == 1 and stats["nudity"]["pairs"] == 2
