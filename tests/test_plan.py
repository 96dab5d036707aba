"""Planning: paired negatives, seeds, split assignment without leakage, rank partitioning."""

from collections import Counter
from pathlib import Path

import pytest

from dataigm.core.partition import RankInfo, partition, rank_from_env
from dataigm.generate.plan import assign_splits, plan_build, split_counts
from dataigm.recipe import load_recipe, parse_recipe

BUILDERS = Path(__file__).resolve().parents[1] / "builders"


def nudity_recipe(**over):
    return load_recipe(BUILDERS / "nudity.yaml", ["models=[tiny, other/model]", "shard_size=7", *[f"{k}={v}" for k, v in over.items()]])


def all_samples(plan):
    return [m for s in plan.shards for m in s.samples]


def test_positive_and_negative_share_prompt_pair_seed_and_split():
    samples = all_samples(plan_build(nudity_recipe()))
    by_pair = {}
    for m in samples:
        by_pair.setdefault((m.model, m.pair_id, m.image_index), []).append(m)
    paired = [g for g in by_pair.values() if {m.role for m in g} == {"positive", "negative"}]
    assert len(paired) == 48 * 4 * 2  # 48 prompts x 4 images x 2 models
    for pos, neg in (sorted(g, key=lambda m: m.role != "positive") for g in paired):
        assert (pos.label_name, neg.label_name) == ("nude", "not_nude")
        assert pos.seed == neg.seed and pos.split == neg.split
        assert neg.prompt == pos.pair_prompt and pos.prompt == neg.pair_prompt
        assert "nude" not in neg.prompt and "naked" not in neg.prompt and "topless" not in neg.prompt


def test_seeds_are_per_prompt_and_image_and_shared_across_models():
    samples = all_samples(plan_build(nudity_recipe()))
    seeds = Counter((m.pair_id, m.image_index, m.seed) for m in samples)
    assert len({(p, i) for p, i, _ in seeds}) == len(seeds)  # one seed per (pair, image index)
    per_model = {}
    for m in samples:
        per_model.setdefault(m.model, set()).add((m.pair_id, m.role, m.image_index, m.seed))
    assert per_model.keys() == {"tiny", "model"} and per_model["tiny"] == per_model["model"]
    assert len({m.seed for m in samples}) > 0.9 * len(seeds)


def test_no_prompt_crosses_splits_and_fractions_are_exact():
    samples = all_samples(plan_build(nudity_recipe()))
    split_of = {}
    for m in samples:
        for text in (m.prompt, m.pair_prompt):
            if text:
                assert split_of.setdefault((m.label_name if m.role == "unrelated" else m.pair_id, text), m.split) == m.split
    pairs = {(m.pair_id, m.split) for m in samples if m.role == "positive"}
    assert Counter(s for _, s in pairs) == Counter({"train": 38, "val": 5, "test": 5})  # 48 prompts, 0.8/0.1/0.1


def test_split_counts_and_assignment_are_deterministic():
    assert split_counts(10, {"train": 0.8, "val": 0.1, "test": 0.1}) == {"train": 8, "val": 1, "test": 1}
    assert sum(split_counts(7, {"train": 0.5, "val": 0.25, "test": 0.25}).values()) == 7
    ids = [f"p{i}" for i in range(100)]
    a = assign_splits(ids, {"train": 0.8, "test": 0.2}, seed=0)
    assert a == assign_splits(list(reversed(ids)), {"train": 0.8, "test": 0.2}, seed=0)
    assert a != assign_splits(ids, {"train": 0.8, "test": 0.2}, seed=1)


def test_keys_are_unique_lowercase_and_dot_free():
    keys = [m.key for m in all_samples(plan_build(nudity_recipe()))]
    assert len(keys) == len(set(keys))
    assert all(k == k.lower() and "." not in k and "/" not in k for k in keys)


def test_shards_hold_one_split_and_one_model_and_respect_size():
    plan = plan_build(nudity_recipe())
    for s in plan.shards:
        assert len(s.samples) <= 7
        assert {m.split for m in s.samples} == {s.spec.split}
        assert {m.model for m in s.samples} == {plan.models[s.model_index].tag}
    names = [s.spec.relpath for s in plan.shards]
    assert len(names) == len(set(names))


@pytest.mark.parametrize("world_size", [1, 2, 3, 4])
def test_rank_partition_is_disjoint_and_covers_the_plan(world_size):
    shards = plan_build(nudity_recipe()).shards
    slices = [partition(shards, r, world_size) for r in range(world_size)]
    union = [s.spec.relpath for sl in slices for s in sl]
    assert sorted(union) == sorted(s.spec.relpath for s in shards)
    assert len(union) == len(set(union))
    sizes = [len(sl) for sl in slices]
    assert max(sizes) - min(sizes) <= 1


def test_rank_from_env_reads_torchrun_and_slurm():
    assert rank_from_env({"RANK": "3", "WORLD_SIZE": "4", "LOCAL_RANK": "1"}) == RankInfo(3, 4, 1)
    assert rank_from_env({"SLURM_PROCID": "5", "SLURM_NTASKS": "8", "SLURM_STEP_NUM_TASKS": "8", "SLURM_LOCALID": "1"}) == RankInfo(5, 8, 1)  # an srun step
    assert rank_from_env({}) == RankInfo(0, 1, 0)
    with pytest.raises(ValueError, match="rank must be in"):
        partition([1, 2], 2, 2)


def test_limit_takes_first_prompts_of_each_class():
    plan = plan_build(nudity_recipe(), limit=3)
    pos = {m.pair_id for m in all_samples(plan) if m.role == "positive"}
    unrelated = {m.pair_id for m in all_samples(plan) if m.role == "unrelated"}
    assert pos == {"nude-00000", "nude-00001", "nude-00002"} and len(unrelated) == 3


def test_imported_prompt_seed_and_guidance_override_the_recipe(tmp_path):
    from dataigm.prompts import PromptRecord, write_prompt_jsonl

    write_prompt_jsonl([PromptRecord("a nude figure, marble statue", source="i2p", index=7, seed=1234, guidance=9.0),
                        PromptRecord("a naked man swimming", source="i2p", index=8)], tmp_path / "p.jsonl")
    recipe = parse_recipe({"name": "i", "category": "nudity", "labels": ["not_nude", "nude"], "images_per_prompt": 2,
                           "classes": [{"name": "nude", "concept": "nudity", "negatives": "not_nude", "prompts": {"files": [str(tmp_path / "p.jsonl")]}}]})
    samples = all_samples(plan_build(recipe))
    first = [m for m in samples if m.prompt_index == 7]
    assert sorted({m.seed for m in first}) == [1234, 1235] and {m.guidance for m in first} == {9.0}
    assert {m.prompt_source for m in first} == {"i2p"}
    assert {m.guidance for m in samples if m.prompt_index == 8} == {7.5}
