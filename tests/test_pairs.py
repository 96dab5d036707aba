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


def test_every_branch_counted_per_category_and_policy() -> None:
    def pair(cat: str, n: int, drop_pos: bool, drop_neg: bool) -> list[PairMember]:
        return [PairMember(f"{cat}-{n}-{role[:3]}", cat, "train", role, f"{cat}-{n}", 0, "tiny", dropped)
                for role, dropped in (("negative", drop_neg), ("positive", drop_pos))]  # negative first: order must not matter

    members = []
    for cat in ("a", "b"):  # a drops the partner of a dropped member, b keeps it
        for n, (drop_pos, drop_neg) in enumerate([(False, False)] * 2 + [(True, True)] * 2 + [(True, False)] * 2 + [(False, True)] * 2):
            members += pair(cat, n, drop_pos, drop_neg)
        members.append(PairMember(f"{cat}-lone", cat, "train", "positive", f"{cat}-lone", 0, "tiny", False))
        members.append(PairMember(f"{cat}-lone2", cat, "train", "negative", f"{cat}-lone2", 0, "tiny", False))
    # no pair id, or a role outside pairs: not pair members at all
    members.append(PairMember("x-pos", "a", "train", "positive", "", 0, "tiny", False))
    members.append(PairMember("x-neg", "a", "train", "negative", "", 0, "tiny", False))
    members.append(PairMember("x-unr", "a", "train", "unrelated", "a-0", 0, "tiny", False))
    policies = {"a": PairPolicy(on_positive_dropped="drop", on_negative_dropped="drop"), "b": PairPolicy()}
    extra, status, stats = apply_pair_policy(members, policies)
    assert extra == {"a-4-neg": "pair:positive_dropped", "a-5-neg": "pair:positive_dropped",
                     "a-6-pos": "pair:negative_dropped", "a-7-pos": "pair:negative_dropped"}
    assert stats["a"] == {"pairs": 8, "complete": 2, "positive_dropped": 2, "negative_kept_alone": 0, "negative_dropped_with_positive": 2,
                          "negative_dropped": 2, "positive_kept_alone": 0, "positive_dropped_with_negative": 2, "both_dropped": 2, "unpaired": 2}
    assert stats["b"] == {"pairs": 8, "complete": 2, "positive_dropped": 2, "negative_kept_alone": 2, "negative_dropped_with_positive": 0,
                          "negative_dropped": 2, "positive_kept_alone": 2, "positive_dropped_with_negative": 0, "both_dropped": 2, "unpaired": 2}
    assert {k for k in status if k.startswith("x-")} == set()
    assert [status[f"b-{n}-pos"] for n in (0, 2, 4, 6)] == ["complete", "dropped", "dropped", "partner_dropped"]
    assert [status[f"b-{n}-neg"] for n in (0, 2, 4, 6)] == ["complete", "dropped", "partner_dropped", "dropped"]
    assert [status[f"a-{n}-neg"] for n in (4, 6)] == ["dropped", "dropped"] and status["a-lone"] == "unpaired"


def test_each_role_has_its_own_policy_whatever_the_members_order() -> None:
    # negatives listed first; a positive dropped takes its negative with it, a negative dropped leaves its positive
    members = [PairMember(f"{n}-{role[:3]}", "c", "train", role, f"c-{n}", 0, "tiny", dropped)
               for n, (drop_pos, drop_neg) in enumerate([(True, False), (False, True)])
               for role, dropped in (("negative", drop_neg), ("positive", drop_pos))]
    extra, status, stats = apply_pair_policy(members, {"c": PairPolicy(on_positive_dropped="drop", on_negative_dropped="keep")})
    assert extra == {"0-neg": "pair:positive_dropped"}
    assert status == {"0-pos": "dropped", "0-neg": "dropped", "1-pos": "partner_dropped", "1-neg": "dropped"}
    assert stats["c"]["negative_dropped_with_positive"] == 1 and stats["c"]["positive_kept_alone"] == 1
    assert stats["c"]["positive_dropped"] == 1 and stats["c"]["negative_dropped"] == 1
