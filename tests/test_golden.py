"""Pinned values that must never change between releases: seeds, keys and split assignments.

A rebuilt dataset is only the same dataset if every sample keeps its seed, key and split. These golden values
were computed once; a change that moves any of them silently changes every rebuilt dataset, so it must be a
deliberate, documented format change (a new ``SCHEMA_VERSION``), never a side effect.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from dataigm.core.schema import derive_seed, stable_int
from dataigm.generate.plan import assign_splits, plan_build
from dataigm.recipe import load_recipe
from dataigm.synthetic import write_synthetic_folder

BUILDERS = Path(__file__).resolve().parents[1] / "builders"


def write_recipe(folder: Path, recipe: str, prompts: str = "") -> Path:
    """``folder/r.yaml`` holding ``recipe``, with ``prompts`` (JSONL) as ``folder/prompts/set.jsonl`` beside it."""
    (folder / "prompts").mkdir(parents=True, exist_ok=True)
    if prompts:
        (folder / "prompts" / "set.jsonl").write_text(prompts)
    (folder / "r.yaml").write_text(recipe)
    return folder / "r.yaml"


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
    recipe = write_recipe(
        tmp_path,
        "name: r\ncategory: church\ntaxonomy: object\nlabels: [other, church]\nseed: 3\n"
        "classes:\n  - {name: church, concept: church, negatives: other, prompts: {files: [prompts/set.jsonl]}}\n"
        "images_per_prompt: 1\nmodels: [tiny]\nsplits: {train: 1.0}\n"
        "generation: {steps: 3, guidance: 6.0, width: 96, height: 80, negative_prompt: blurry, scheduler: DDIMScheduler}\n",
        '{"prompt": "a church by the sea", "index": 7, "source": "set.jsonl", "subcategory": "coast"}\n'
        '{"prompt": "a quiet village street", "index": 8, "source": "set.jsonl", "subcategory": "city"}\n')
    plan = plan_build(load_recipe(recipe))
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
        "batch_size": -1, "generator_device": "", "original_path": "", "original_sha256": "", "schema_version": 1,
    }
    assert samples[0]["seed"] == derive_seed(3, "church-00000", 0) == samples[1]["seed"]
    assert samples[1]["label"] == 0 and samples[1]["pair_prompt"] == "a church by the sea"


def test_planned_shards_and_fields_golden_values(tmp_path) -> None:
    """A recipe with a prompt file (its own indexes, one named counterpart), inline prompts and two models."""
    recipe = write_recipe(
        tmp_path,
        "name: r\ncategory: church\ntaxonomy: object\nlabels: [other, church]\nseed: 3\nclasses:\n"
        "  - {name: church, concept: church, negatives: other, prompts: {files: [prompts/set.jsonl]}}\n"
        "  - {name: other, prompts: {prompts: [a quiet village street, a red bicycle, a bowl of fruit]}}\n"
        "images_per_prompt: 1\nmodels: [tiny, other/model]\nsplits: {train: 0.5, test: 0.5}\nshard_size: 2\n"
        "generation: {steps: 3, width: 64, height: 64}\n",
        '{"prompt": "a church by the sea", "index": 5, "paired_negative": "an empty beach"}\n'
        '{"prompt": "a church at dawn", "index": 0}\n')

    def plan(*over: str):
        return plan_build(load_recipe(recipe, list(over)))

    def fields(p) -> list[tuple]:
        return sorted((m.pair_id, m.role, m.split, m.prompt_index, m.prompt, m.pair_prompt, m.concept, m.scheduler)
                      for s in p.shards for m in s.samples if m.model == "tiny")

    base = plan()
    # shards are numbered per split across models, each split's shards in recipe order of models
    assert [(s.spec.relpath, s.model_index, len(s.samples)) for s in base.shards] == [
        ("church/train/church-train-000000.tar", 0, 2), ("church/train/church-train-000001.tar", 0, 2),
        ("church/test/church-test-000000.tar", 0, 2), ("church/test/church-test-000001.tar", 0, 1),
        ("church/train/church-train-000002.tar", 1, 2), ("church/train/church-train-000003.tar", 1, 2),
        ("church/test/church-test-000002.tar", 1, 2), ("church/test/church-test-000003.tar", 1, 1)]
    # a file's prompt keeps its own index (0 included); inline prompts are numbered by position; the counterpart a
    # record names is its negative; an unrelated class has no concept; no scheduler is recorded as ""
    assert fields(base) == [
        ("church-00000", "negative", "train", 5, "an empty beach", "a church by the sea", "church", ""),
        ("church-00000", "positive", "train", 5, "a church by the sea", "an empty beach", "church", ""),
        ("church-00001", "negative", "test", 0, "a house at dawn", "a church at dawn", "church", ""),
        ("church-00001", "positive", "test", 0, "a church at dawn", "a house at dawn", "church", ""),
        ("other-00000", "unrelated", "train", 0, "a quiet village street", "", "", ""),
        ("other-00001", "unrelated", "train", 1, "a red bicycle", "", "", ""),
        ("other-00002", "unrelated", "test", 2, "a bowl of fruit", "", "", "")]
    # the recipe's seed also moves split assignment (pairs stay whole)
    assert [(f[0], f[2]) for f in fields(plan("seed=4")) if f[1] == "unrelated"] == [
        ("other-00000", "test"), ("other-00001", "train"), ("other-00002", "train")]
    # a class name with hyphens: the prompt index is the number after the last one
    hyphens = write_recipe(
        tmp_path / "h",
        "name: h\ncategory: church\ntaxonomy: object\nlabels: [red-things, church]\nseed: 3\nmodels: [tiny]\n"
        "classes:\n  - {name: red-things, prompts: {prompts: [a red bicycle, a red door]}}\n"
        "images_per_prompt: 1\nsplits: {train: 1.0}\ngeneration: {steps: 3, width: 64, height: 64}\n")
    assert sorted((m.pair_id, m.prompt_index) for s in plan_build(load_recipe(hyphens)).shards for m in s.samples) == [
        ("red-things-00000", 0), ("red-things-00001", 1)]
    # without paired negatives, no negative is generated, though a named counterpart stays the pair prompt
    assert [(f[0], f[1], f[5]) for f in fields(plan("paired_negatives=false")) if f[6]] == [
        ("church-00000", "positive", "an empty beach"), ("church-00001", "positive", "")]


def test_imported_files_split_assignment_golden_values(tmp_path) -> None:
    """Per class (in name order), files ordered by a hash of their path, cut by exact counts in split order."""
    from dataigm.ingest.images import ImageFile, assign_splits, import_images

    files = [ImageFile(f"{c}/{i}.png", c) for c in ("b", "a") for i in range(5)]
    out = assign_splits(files, {"train": 0.6, "val": 0.2, "test": 0.2})
    assert {s: [f.relpath for f in v] for s, v in out.items()} == {
        "train": ["a/2.png", "a/4.png", "a/0.png", "b/3.png", "b/1.png", "b/0.png"],
        "val": ["a/3.png", "b/4.png"], "test": ["a/1.png", "b/2.png"]}
    # fractions: each in [0, 1], summing to 1 within 1e-6; 0 for a split is allowed
    (tmp_path / "x").mkdir()
    for bad in ({"train": 1.5, "test": -0.5}, {"train": 0.5, "test": 0.4}, {"train": 0.5, "test": 0.5 + 2e-6}, {"train": 2.0}):
        with pytest.raises(ValueError, match="split fractions must be >= 0 and sum to 1"):
            import_images(tmp_path / "x", tmp_path / "out", "object", splits=bad, progress=False)
    assert not (tmp_path / "out").exists()
    assert assign_splits(files[:5], {"train": 1.0, "test": 0.0})["test"] == []
    write_synthetic_folder(tmp_path / "y", ["a"], 2)
    report = import_images(tmp_path / "y", tmp_path / "ok", "object", splits={"train": 1.0, "test": 0.0}, progress=False)
    assert report.manifest["totals"]["samples"] == 2 and set(report.manifest["counts"]["object"]["splits"]) == {"train"}
