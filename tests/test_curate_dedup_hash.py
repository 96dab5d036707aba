"""Perceptual-hash near-duplicates at scale: every search plan (multi-index hashing with and without flips, blockwise
brute force) against comparing all pairs, and the whole greedy decision against the rule spelled out, on clustered
hashes (exact copies, near copies and chains of copies, as real datasets have) at distances 0, 4, 5 and 8."""

from __future__ import annotations

import random

import numpy as np
import pytest

from dataigm.core.schema import SPLITS
from dataigm.curate.dedup import MAX_TABLE_BITS, HashedSample, HashSearchPlan, find_duplicates, near_pairs, plan_search, popcount


def clustered_hashes(n: int, max_distance: int, seed: int) -> list[int]:
    """Groups of copies (0 to max_distance + 2 flipped bits from a seed hash, so some fall just outside), chains
    (each link within max_distance of the previous one, so what is kept depends on the order) and unrelated hashes."""
    rng = random.Random(seed)

    def flip(h: int, k: int) -> int:
        return h ^ sum(1 << b for b in rng.sample(range(64), k))

    out: list[int] = []
    while len(out) < n:
        kind = rng.random()
        h = rng.getrandbits(64)
        out.append(h)
        if kind < 0.4:  # a group: copies of one image
            out += [flip(h, rng.randint(0, max_distance + 2)) for _ in range(rng.randint(1, 12))]
        elif kind < 0.6:  # a chain: each a near copy of the one before
            for _ in range(rng.randint(1, 8)):
                h = flip(h, rng.randint(max(0, max_distance - 2), max_distance))
                out.append(h)
    return out[:n]


def samples_of(hashes: list[int], seed: int) -> list[HashedSample]:
    """Samples with random unique keys and splits, in a shuffled input order."""
    rng = random.Random(seed)
    keys = rng.sample(range(10 * len(hashes)), len(hashes))
    samples = [HashedSample(f"k{k:07d}", rng.choice(["train", "train", "val", "test"]), h) for k, h in zip(keys, hashes)]
    rng.shuffle(samples)
    return samples


def brute_force(samples: list[HashedSample], max_distance: int) -> list[tuple[str, str, int, bool]]:
    """The rule spelled out: visit by (split, key), compare with every kept sample, nearest wins, ties the earliest."""
    ordered = sorted(samples, key=lambda s: (SPLITS.index(s.split), s.key))
    kept: list[HashedSample] = []
    kept_h = np.zeros(len(samples), dtype=np.uint64)
    out = []
    for s in ordered:
        dist = popcount(kept_h[: len(kept)] ^ np.uint64(s.phash))
        if len(kept) and dist.min() <= max_distance:
            rep = kept[int(dist.argmin())]  # argmin: the first, i.e. earliest, of equal minima
            out.append((s.key, rep.key, int(dist.min()), rep.split != s.split))
            continue
        kept_h[len(kept)] = s.phash
        kept.append(s)
    return out


def all_pairs(h: np.ndarray, max_distance: int) -> set[tuple[int, int, int]]:
    dist = popcount(h[:, None] ^ h[None, :])
    i, j = np.nonzero(np.triu(dist <= max_distance, k=1))
    return set(zip(i.tolist(), j.tolist(), dist[i, j].tolist()))


def every_plan(max_distance: int) -> list[HashSearchPlan]:
    plans = [HashSearchPlan(max_distance, 0, max_distance)]
    for bands in range(1, max(max_distance + 2, 4) + 2):  # more bands than max_distance + 1 are exact too
        plan = HashSearchPlan(max_distance, bands, max_distance // bands)
        if max(plan.widths) <= MAX_TABLE_BITS and plan.radius <= 2:
            plans.append(plan)
    return plans


@pytest.mark.parametrize("max_distance", [1, 4, 5, 8])
def test_every_plan_finds_exactly_the_pairs_within_distance(max_distance):
    h = np.unique(np.array(clustered_hashes(1500, max_distance, seed=max_distance), dtype=np.uint64))
    expected = all_pairs(h, max_distance)
    assert len(expected) > 300 and {d for _, _, d in expected} == set(range(1, max_distance + 1))
    plans = every_plan(max_distance)
    assert any(p.radius >= 1 for p in plans) or max_distance < 2
    for plan in plans:
        assert plan.bands == 0 or (sum(plan.widths) == 64 and max(plan.widths) - min(plan.widths) <= 1)
        i, j, dist = near_pairs(h, max_distance, plan)
        found = list(zip(i.tolist(), j.tolist(), dist.tolist()))
        assert len(found) == len(set(found)), f"{plan.describe()}: a pair reported twice"
        assert set(found) == expected, plan.describe()


def test_searches_in_small_blocks_find_the_same_pairs(monkeypatch):
    """Brute force compares blocks of rows against the rest; small blocks (as millions of hashes get) change nothing."""
    from dataigm.curate import dedup

    h = np.unique(np.array(clustered_hashes(1500, 4, seed=4), dtype=np.uint64))
    expected = all_pairs(h, 4)
    monkeypatch.setattr(dedup, "_CANDIDATE_BLOCK", 1500 * 7)  # blocks of 7 rows
    i, j, dist = near_pairs(h, 4, HashSearchPlan(4, 0, 4))
    found = list(zip(i.tolist(), j.tolist(), dist.tolist()))
    assert len(found) == len(set(found)) and set(found) == expected and len(expected) > 300
    # multi-index hashing in blocks of 97 queries and 50 candidate pairs (millions of hashes get blocks too)
    monkeypatch.setattr(dedup, "_QUERY_BLOCK", 97)
    monkeypatch.setattr(dedup, "_CANDIDATE_BLOCK", 50)
    for plan in (HashSearchPlan(4, 3, 1), HashSearchPlan(4, 5, 0)):
        i, j, dist = near_pairs(h, 4, plan)
        found = list(zip(i.tolist(), j.tolist(), dist.tolist()))
        assert len(found) == len(set(found)) and set(found) == expected, plan.describe()


@pytest.mark.parametrize("max_distance", [0, 4, 5, 8])
def test_find_duplicates_equals_brute_force_on_clustered_hashes(max_distance):
    samples = samples_of(clustered_hashes(3000, max_distance, seed=10 + max_distance), seed=max_distance)
    expected = brute_force(samples, max_distance)
    found = find_duplicates(samples, max_distance)
    # the same duplicates, representatives, distances and leaks, in the same (global) order
    assert [(d.key, d.dup_of, d.distance, d.leak) for d in found.values()] == expected
    dup_keys = {k for k, *_ in expected}
    assert 0.2 * len(samples) < len(expected) < 0.8 * len(samples)
    assert {d for *_, d, _ in expected} == set(range(max_distance + 1)), "every distance up to the limit occurs"
    assert any(leak for *_, leak in expected) and not all(leak for *_, leak in expected)
    # a chain link whose predecessor was dropped is compared with kept samples only
    assert all(rep not in dup_keys for _, rep, _, _ in expected)
    for seed in range(2):  # the input order does not matter
        shuffled = samples[:]
        random.Random(seed).shuffle(shuffled)
        assert find_duplicates(shuffled, max_distance) == found


def test_representative_is_the_nearest_then_the_earliest_kept():
    base = 0x0123_4567_89AB_CDEF
    samples = [
        HashedSample("b", "train", base ^ 0b11),
        HashedSample("a0", "train", base ^ (0b1111 << 8)),  # 6 bits from b: both kept
        HashedSample("a", "val", base ^ 0b1100),  # 4 bits from b, 6 from a0
        HashedSample("t", "test", base),  # 2 bits from b, 4 from a0
        HashedSample("u", "test", base ^ 0b11),  # an exact copy of b
        HashedSample("v", "test", base ^ 0b1 ^ (0b11 << 8)),  # 3 bits from both: the earlier, a0, wins the tie
    ]
    found = find_duplicates(samples, 4)
    assert [(d.key, d.dup_of, d.distance, d.leak) for d in found.values()] == [
        ("a", "b", 4, True), ("t", "b", 2, True), ("u", "b", 0, True), ("v", "a0", 3, True)]
    assert [(d.key, d.dup_of) for d in find_duplicates(samples, 1).values()] == [("u", "b")]


def test_the_plan_fits_the_size_and_distance():
    assert plan_search(100, 4).bands == 0  # few hashes: comparing all pairs is cheapest
    big = plan_search(1_000_000, 4)
    assert (big.bands, big.radius) == (3, 1) and big.widths == [22, 21, 21]
    assert plan_search(1_000_000, 8).radius >= 1
    assert plan_search(1_000_000, 1).bands == 3  # 2 bands of 32 bits would need tables too large: 3 of 21-22 bits
    for n in (10, 10**4, 10**6):
        for d in range(0, 33, 4):
            plan = plan_search(n, d)
            assert plan.bands == 0 or (sum(plan.widths) == 64 and max(plan.widths) <= MAX_TABLE_BITS and plan.radius == d // plan.bands)
    with pytest.raises(ValueError, match="max_distance"):
        plan_search(10, -1)
    with pytest.raises(ValueError, match="does not find all pairs within 4 bits"):
        near_pairs(np.arange(10, dtype=np.uint64), 4, HashSearchPlan(4, 3, 0))  # 3 bands need 1-bit flips at distance 4


def test_the_cost_model_crosses_over_from_brute_force_at_these_sizes():
    """Pinned: which plan the cost model picks is a speed choice, and a change to it is made on purpose."""
    assert plan_search(364, 4) == HashSearchPlan(4, 0, 4) and plan_search(365, 4) == HashSearchPlan(4, 8, 0)
    assert plan_search(591, 8) == HashSearchPlan(8, 0, 8) and plan_search(592, 8) == HashSearchPlan(8, 9, 0)
    assert plan_search(84_622, 12).bands == 0 and plan_search(84_623, 12) == HashSearchPlan(12, 4, 3)
    assert plan_search(1_000_000, 8) == HashSearchPlan(8, 3, 2) and plan_search(1_000_000, 16).bands == 0
    assert plan_search(3_577_890, 16) == HashSearchPlan(16, 3, 5)


def test_near_pairs_takes_plain_ints_up_to_64_bits_and_empty_input():
    i, j, dist = near_pairs([2**64 - 1, 0, 2**64 - 2], 1)  # a list of Python ints, the largest above 2**63
    assert (i.tolist(), j.tolist(), dist.tolist()) == ([0], [2], [1])
    for a in near_pairs(np.zeros(0, dtype=np.uint64), 4):
        assert a.dtype == np.int64 and a.shape == (0,)


def test_popcount_without_numpy_2_counts_the_same_bits():
    from dataigm.curate.dedup import popcount_by_bytes

    x = np.random.default_rng(0).integers(0, 2**63, size=(7, 5), dtype=np.uint64) * np.uint64(2) + np.uint64(1)
    x[0, 0], x[0, 1] = np.uint64(0), np.uint64(2**64 - 1)
    counts = popcount_by_bytes(x)
    assert counts.shape == (7, 5) and counts.dtype == np.uint8
    assert counts.tolist() == [[bin(int(v)).count("1") for v in row] for row in x] and counts[0, :2].tolist() == [0, 64]
    assert counts.tolist() == popcount(x).tolist()


def test_hamming_and_the_global_visiting_order():
    from dataigm.curate.dedup import global_order, hamming, order_key

    assert hamming(0b1011, 0b0001) == 2 and hamming(0, (1 << 64) - 1) == 64 and hamming(5, 5) == 0
    samples = [HashedSample("b", "test", 0), HashedSample("z", "val", 0), HashedSample("a", "holdout", 0),
               HashedSample("c", "train", 0), HashedSample("a", "train", 0), HashedSample("a", "test", 0)]
    # train < val < test, a split outside these last, then by key
    assert [(s.split, s.key) for s in global_order(samples)] == [
        ("train", "a"), ("train", "c"), ("val", "z"), ("test", "a"), ("test", "b"), ("holdout", "a")]
    assert order_key("holdout", "a") == (len(SPLITS), "a") and order_key("train", "k") == (0, "k")


def test_the_plan_describes_itself_as_the_report_shows_it():
    assert HashSearchPlan(4, 0, 4).describe() == "brute force within 4 bits"
    assert HashSearchPlan(4, 3, 1).describe() == "multi-index hashing within 4 bits: 3 bands of 21-22 bits, each probed within 1 bit(s)"
    assert HashSearchPlan(8, 8, 1).describe() == "multi-index hashing within 8 bits: 8 bands of 8 bits, each probed within 1 bit(s)"
    assert HashSearchPlan(4, 0, 4).widths == [] and HashSearchPlan(4, 3, 1).widths == [22, 21, 21]


def test_the_search_description_names_the_plan_for_the_size():
    from dataigm.curate.dedup import describe_hash_search

    assert describe_hash_search(10**6, 0) == "equal hashes only"
    assert describe_hash_search(100, 4) == "brute force within 4 bits"
    assert describe_hash_search(10**6, 4) == plan_search(10**6, 4).describe() == (
        "multi-index hashing within 4 bits: 3 bands of 21-22 bits, each probed within 1 bit(s)")
    assert describe_hash_search(1, 1) == "brute force within 1 bits"


def test_hash_out_of_range_is_named():
    with pytest.raises(ValueError, match="sample 'x': phash"):
        find_duplicates([HashedSample("x", "train", 1 << 64)], 4)
    valid = [HashedSample("zero", "train", 0), HashedSample("big", "train", (1 << 64) - 1)]  # the bounds are valid
    with pytest.raises(ValueError, match=r"^sample 'neg': phash -1 is not a 64-bit unsigned integer$"):
        find_duplicates([*valid, HashedSample("neg", "train", -1)], 4)


def test_a_copy_of_the_first_kept_sample_duplicates_it_even_with_a_near_neighbour():
    # "a" is the first sample (position 0) and kept; "b" is its exact copy; "c" is 1 bit away from both
    samples = [HashedSample("a", "train", 0b0), HashedSample("b", "train", 0b0), HashedSample("c", "train", 0b1)]
    found = {k: (d.dup_of, d.distance) for k, d in find_duplicates(samples, 2).items()}
    assert found == {"b": ("a", 0), "c": ("a", 1)}
    assert {k: (d.dup_of, d.distance) for k, d in find_duplicates(samples, 1).items()} == found  # 1 bit is within 1
    assert {k: (d.dup_of, d.distance) for k, d in find_duplicates(samples, 0).items()} == {"b": ("a", 0)}  # copies only
    # the smallest hash (first in the neighbour table) finds its kept neighbour too
    assert {k: (d.dup_of, d.distance) for k, d in find_duplicates([HashedSample("a", "train", 0b11), HashedSample("b", "train", 0b01)], 1).items()} == {
        "b": ("a", 1)}
    assert find_duplicates([], 4) == {}
