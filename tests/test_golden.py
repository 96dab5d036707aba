"""Pinned values that must never change between releases: seeds, keys and split assignments.

A rebuilt dataset is only the same dataset if every sample keeps its seed, key and split. These golden values
were computed once; a change that moves any of them silently changes every rebuilt dataset, so it must be a
deliberate, documented format change (a new ``SCHEMA_VERSION``), never a side effect.
"""

from __future__ import annotations

from pathlib import Path

from dataigm.core.schema import derive_seed, stable_int
from dataigm.generate.plan import assign_splits, plan_build
from dataigm.recipe import load_recipe

BUILDERS = Path(__file__).resolve().parents[1] / "builders"


def test_derive_seed_golden_values() -> None:
    assert [derive_seed(0, "nude-00000", i) for i in range(3)] == [1655995100, 1837643241, 1666147220]
    assert derive_seed(1, "nude-00000", 0) == 1059213182  # the recipe's seed changes every image
    assert derive_seed(0, "nude-00001", 0) == 930351976
    assert stable_int("x", 1) == 326913134 and stable_int("x", 1, bits=8) == 110


def test_split_assignment_golden_values() -> None:
    ids = [f"p{i}" for i in range(10)]
    assert assign_splits(ids, {"train": 0.6, "val": 0.2, "test": 0.2}, seed=0) == {
        "p5": "train", "p7": "train", "p8": "train", "p4": "train", "p1": "train", "p0": "train",
        "p3": "val", "p9": "val", "p6": "test", "p2": "test",
    }


def test_planned_keys_seeds_and_splits_golden_values() -> None:
    plan = plan_build(load_recipe(BUILDERS / "nudity.yaml", ["models=[tiny]", "shard_size=7"]), limit=2)
    first = [(m.key, m.seed, m.split) for m in plan.shards[0].samples[:2]]
    assert first == [("nudity-tiny-not-nude-00000-unr-000", 848571154, "train"), ("nudity-tiny-not-nude-00000-unr-001", 1065119838, "train")]
    second = [(m.key, m.seed, m.split) for m in plan.shards[1].samples[:3]]
    assert second == [
        ("nudity-tiny-nude-00001-neg-001", 2025206761, "train"),
        ("nudity-tiny-nude-00001-pos-002", 1946622612, "train"),
        ("nudity-tiny-nude-00001-neg-002", 1946622612, "train"),
    ]


def test_recipe_seed_changes_every_seed_but_keeps_pairs_aligned() -> None:
    def seeds(seed: int) -> dict[tuple[str, str, int], int]:
        recipe = load_recipe(BUILDERS / "nudity.yaml", ["models=[tiny]", f"seed={seed}"])
        return {(m.pair_id, m.role, m.image_index): m.seed for s in plan_build(recipe, limit=4).shards for m in s.samples}

    a, b = seeds(0), seeds(1)
    assert a.keys() == b.keys() and len(a) > 20
    assert all(a[k] != b[k] for k in a)  # every image gets a new seed
    for run in (a, b):  # a positive and its concept-removed negative share their seed, image by image
        pairs = [k for k in run if k[1] == "positive" and (k[0], "negative", k[2]) in run]
        assert len(pairs) >= 8
        assert all(run[k] == run[(k[0], "negative", k[2])] for k in pairs)


def test_a_planned_sample_in_full(tmp_path) -> None:
    (tmp_path / "prompts").mkdir()
    (tmp_path / "prompts" / "set.jsonl").write_text(
        '{"prompt": "a church by the sea", "index": 7, "source": "set.jsonl", "subcategory": "coast"}\n'
        '{"prompt": "a quiet village street", "index": 8, "source": "set.jsonl", "subcategory": "city"}\n')
    (tmp_path / "r.yaml").write_text(
        "name: r\ncategory: church\ntaxonomy: object\nlabels: [other, church]\nseed: 3\n"
        "classes:\n  - {name: church, concept: church, negatives: other, prompts: {files: [prompts/set.jsonl]}}\n"
        "images_per_prompt: 1\nmodels: [tiny]\nsplits: {train: 1.0}\n"
        "generation: {steps: 3, guidance: 6.0, width: 96, height: 80, negative_prompt: blurry, scheduler: DDIMScheduler}\n")
    plan = plan_build(load_recipe(tmp_path / "r.yaml"))
    samples = sorted((m.to_dict() for s in plan.shards for m in s.samples), key=lambda m: (m["pair_id"], m["role"] != "positive"))
    # the file is found relative to the recipe; the second prompt has no concept word, so it gets no paired negative
    assert plan.skipped_negatives == ["a quiet village street"]
    assert [(m["role"], m["prompt"]) for m in samples] == [
        ("positive", "a church by the sea"), ("negative", "a house by the sea"), ("positive", "a quiet village street")]
    assert samples[0] == {
        "key": "church-tiny-church-00000-pos-000", "category": "church", "split": "train", "label": 1, "label_name": "church",
        "label_names": ["other", "church"], "source": "generated", "role": "positive", "concept": "church", "taxonomy": "object",
        "subcategory": "coast", "pair_id": "church-00000", "prompt": "a church by the sea", "pair_prompt": "a house by the sea",
        "negative_prompt": "blurry", "prompt_source": "set.jsonl", "prompt_index": 7, "seed": samples[0]["seed"], "image_index": 0,
        "model": "tiny", "model_revision": "", "scheduler": "DDIMScheduler", "steps": 3, "guidance": 6.0, "width": 96, "height": 80,
        "original_path": "", "original_sha256": "", "schema_version": 1,
    }
    assert samples[0]["seed"] == derive_seed(3, "church-00000", 0) == samples[1]["seed"]
    assert samples[1]["label"] == 0 and samples[1]["pair_prompt"] == "a church by the sea"
