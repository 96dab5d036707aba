"""Turning a recipe into an ordered list of shards of planned samples, deterministically.

Everything here is a pure function of the recipe (and the prompt files it names): every rank computes the
same plan, takes its own shards, and the union over ranks is exactly the single-process result.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from typing import Sequence

from dataigm.core.schema import SampleMeta, derive_seed, slugify, stable_int
from dataigm.core.shards import ShardSpec
from dataigm.prompts import PromptRecord
from dataigm.recipe import ModelSpec, Recipe, recipe_base_dir
from dataigm.taxonomy import get_concept

ROLE_ORDER = {"positive": 0, "negative": 1, "unrelated": 2}


@dataclass(frozen=True)
class PlannedShard:
    spec: ShardSpec
    model_index: int
    samples: tuple[SampleMeta, ...]


@dataclass
class Plan:
    shards: list[PlannedShard]
    models: list[ModelSpec]
    skipped_negatives: list[str]  # prompts whose concept word could not be found, so no negative was made

    @property
    def n_samples(self) -> int:
        return sum(len(s.samples) for s in self.shards)


def split_counts(n: int, fractions: dict[str, float]) -> dict[str, int]:
    """Exact counts per split summing to ``n`` (largest remainder; ties broken by split order)."""
    raw = {k: n * f for k, f in fractions.items()}
    counts = {k: int(v) for k, v in raw.items()}
    rest = n - sum(counts.values())
    for k in sorted(raw, key=lambda k: (-(raw[k] - counts[k]), list(fractions).index(k)))[:rest]:
        counts[k] += 1
    return counts


def assign_splits(pair_ids: Sequence[str], fractions: dict[str, float], seed: int) -> dict[str, str]:
    """Assign each pair (never a single image) to a split: shuffle by a stable hash, cut by exact counts."""
    order = sorted(pair_ids, key=lambda p: (stable_int("split", seed, p), p))
    counts = split_counts(len(order), fractions)
    out, i = {}, 0
    for split, n in counts.items():
        for p in order[i : i + n]:
            out[p] = split
        i += n
    return out


def _pairs_of_class(recipe: Recipe, cls_index: int, limit: int | None) -> list[tuple[str, PromptRecord, str | None]]:
    """(pair id, prompt record, paired negative text or None) for each prompt of a class."""
    cls = recipe.expanded_classes()[cls_index]
    records = cls.prompts.expand(recipe_base_dir(recipe))
    if limit is not None:
        records = records[:limit]
    concept = get_concept(recipe.taxonomy_name, cls.concept) if cls.concept else None
    out = []
    for i, rec in enumerate(records):
        negative = None
        if recipe.paired_negatives and cls.negatives and concept is not None:
            negative = rec.paired_negative
            if negative is None:
                try:
                    negative = concept.negative(rec.prompt)
                except ValueError:
                    negative = None
        out.append((f"{cls.name}-{i:05d}", rec, negative))
    return out


def plan_build(recipe: Recipe, models: Sequence[ModelSpec] | None = None, limit: int | None = None) -> Plan:
    """Plan every sample of ``recipe`` (optionally only the first ``limit`` prompts of each class)."""
    models = list(models or recipe.models)
    labels = recipe.label_names()
    generation = [recipe.model_generation(m) for m in models]  # the recipe's, under each model's own settings
    classes = recipe.expanded_classes()
    rows: dict[tuple[int, str], list[SampleMeta]] = defaultdict(list)
    skipped: list[str] = []
    for ci, cls in enumerate(classes):
        pairs = _pairs_of_class(recipe, ci, limit)
        splits = assign_splits([p for p, _, _ in pairs], recipe.splits, recipe.seed)
        for pair_id, rec, negative in pairs:
            if cls.negatives and recipe.paired_negatives and negative is None:
                skipped.append(rec.prompt)
            # pair_prompt: the generated negative, else the concept-free counterpart the prompt record names, if any
            members = [("positive" if cls.concept else "unrelated", cls.name, rec.prompt, negative or rec.paired_negative or "")]
            if negative is not None:
                members.append(("negative", cls.negatives, negative, rec.prompt))
            for mi, model in enumerate(models):
                gen = generation[mi]
                for ii in range(recipe.images_per_prompt):
                    seed = rec.seed + ii if rec.seed is not None else derive_seed(recipe.seed, pair_id, ii)
                    for role, label_name, prompt, pair_prompt in members:
                        key = slugify(f"{recipe.category}-{model.tag}-{pair_id}-{role[:3]}-{ii:03d}").replace("_", "-")
                        rows[(mi, splits[pair_id])].append(
                            SampleMeta(
                                key=key, category=recipe.category, split=splits[pair_id],
                                label=labels.index(label_name), label_name=label_name, label_names=labels,
                                source="generated", role=role, concept=cls.concept or "", taxonomy=recipe.taxonomy_name, subcategory=rec.subcategory,
                                pair_id=pair_id, prompt=prompt, pair_prompt=pair_prompt, negative_prompt=gen.negative_prompt,
                                prompt_source=rec.source, prompt_index=rec.index if rec.index >= 0 else int(pair_id.rsplit("-", 1)[1]),
                                seed=seed, image_index=ii, model=model.tag, scheduler=gen.scheduler or "",
                                steps=gen.steps, guidance=rec.guidance if rec.guidance is not None else gen.guidance,
                                width=gen.width, height=gen.height,
                            )
                        )
    shards: list[PlannedShard] = []
    next_index: dict[str, int] = defaultdict(int)
    for (mi, split), samples in sorted(rows.items(), key=lambda kv: (kv[0][0], list(recipe.splits).index(kv[0][1]))):
        # Mix classes within shards but keep each pair's images adjacent (they batch together).
        samples.sort(key=lambda m: (stable_int("order", recipe.seed, m.pair_id), m.pair_id, m.image_index, ROLE_ORDER[m.role]))
        for start in range(0, len(samples), recipe.shard_size):
            spec = ShardSpec(recipe.category, split, next_index[split])
            next_index[split] += 1
            shards.append(PlannedShard(spec, mi, tuple(samples[start : start + recipe.shard_size])))
    return Plan(shards, models, skipped)
