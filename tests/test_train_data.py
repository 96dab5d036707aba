"""The training data stream: disjoint shards per rank and worker, fixed-length epochs, class balancing, recipes."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from dataigm.train.data import ShardStream, assign_shards, balance_keep_prob, plan_epoch
from dataigm.train.recipe import RecipeError, load_detector_recipe

DETECTORS = Path(__file__).resolve().parents[1] / "detectors"


@pytest.mark.parametrize("n_shards,world,workers", [(8, 2, 2), (5, 2, 2), (3, 2, 2), (1, 2, 3), (2, 4, 1)])
def test_assign_shards_is_disjoint_and_complete(n_shards: int, world: int, workers: int) -> None:
    urls = [f"s{i}.tar" for i in range(n_shards)]
    seen: dict[tuple[str, int, int], int] = {}
    for rank in range(world):
        for worker in range(workers):
            shards, index, count = assign_shards(urls, rank, world, worker, workers)
            assert shards, "every consumer reads something"
            for s in shards:
                assert (s, index, count) not in seen
                seen[(s, index, count)] = rank
    covered = {s for s, _, _ in seen}
    assert covered == set(urls)
    for s in urls:  # the slices of a shared shard are 0..count-1, each exactly once
        slices = sorted(i for (u, i, c) in seen if u == s)
        counts = {c for (u, i, c) in seen if u == s}
        assert len(counts) == 1 and slices == list(range(counts.pop()))


def test_stream_slices_cover_every_sample_once(shapes_dataset: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Two ranks x two workers over one shared shard: the consumers' samples are disjoint and complete."""
    from dataigm.core.shards import iter_tar, list_shards

    shard = list_shards(shapes_dataset, "object", "val")[:1]
    keys = {s.key for s in iter_tar(shard[0])}
    seen: list[str] = []

    class Worker:  # what torch.utils.data.get_worker_info() returns inside a worker
        def __init__(self, id: int) -> None:
            self.id, self.num_workers = id, 2

    for rank in range(2):
        for worker in range(2):
            monkeypatch.setattr("torch.utils.data.get_worker_info", lambda w=worker: Worker(w))
            stream = ShardStream(shard, [0, 1, 2], lambda img: img.size, rank=rank, world_size=2, shuffle_buffer=0)
            stream._decode = lambda s: s["__key__"]  # keys instead of tensors
            it = iter(stream)
            mine = {next(it) for _ in range(200)}  # endless: several passes over the slice
            seen += sorted(mine)
    assert sorted(seen) == sorted(keys)


def test_epoch_plan_and_balancing() -> None:
    assert plan_epoch([30, 10], batch_size=8, world_size=2, balance="loss").batches_per_rank == 3  # ceil(40 / 16)
    assert plan_epoch([30, 10], batch_size=8, world_size=1, balance="sample").samples == 20
    assert plan_epoch([30, 10], batch_size=8, world_size=1, balance="loss", steps_per_epoch=7).batches_per_rank == 7
    assert balance_keep_prob([30, 10, 0]) == pytest.approx([1 / 3, 1.0, 0.0])


def test_loader_runs_fixed_epochs_and_continues_the_stream(shapes_dataset: Path) -> None:
    from dataigm.core.shards import list_shards
    from dataigm.train.data import ShardDataModule

    dm = ShardDataModule(
        list_shards(shapes_dataset, "object", "train"), [], [0, 1, 2], [40, 40, 40],
        {"input_size": [3, 32, 32], "mean": [0.5] * 3, "std": [0.5] * 3, "interpolation": "bilinear", "crop_pct": 1.0},
        batch_size=16, num_workers=0, shuffle_buffer=50, steps_per_epoch=5,
    )
    loader = dm.train_dataloader()
    first = [y for _, y in loader]
    second = [y for _, y in loader]
    assert len(first) == len(second) == 5 and len(loader) == 5
    assert all(x.shape == (16,) for x in first)
    assert any(not a.equal(b) for a, b in zip(first, second))  # the stream continues, it does not restart


@pytest.mark.parametrize("path", sorted(DETECTORS.glob("*.yaml")), ids=lambda p: p.stem)
def test_shipped_recipes_are_valid(path: Path) -> None:
    import timm

    from dataigm.recipe import load_recipe

    recipe = load_detector_recipe(path)
    assert recipe.name == path.stem and timm.is_model(recipe.model.arch)
    if path.stem == "tiny":
        return
    # every shipped judge trains on a category a shipped builder recipe produces, with classes it labels
    builders = {r.category: r.label_names() for r in map(load_recipe, (DETECTORS.parent / "builders").glob("*.yaml"))}
    assert recipe.data.category in builders
    labels = builders[recipe.data.category]
    assert set([recipe.data.positive] if recipe.data.positive else recipe.data.classes or []) <= set(labels)


def test_recipe_errors_name_file_field_and_value(tmp_path: Path) -> None:
    with pytest.raises(RecipeError, match=r"(?s)tiny.yaml.*'model.mode'.*'halfway'"):
        load_detector_recipe(DETECTORS / "tiny.yaml", ["model.mode=halfway"])
    with pytest.raises(RecipeError, match="not of the form"):
        load_detector_recipe(DETECTORS / "tiny.yaml", ["epochs"])
    bad = tmp_path / "bad.yaml"
    shutil.copy(DETECTORS / "tiny.yaml", bad)
    bad.write_text(bad.read_text() + "\nunknown_field: 1\n")
    with pytest.raises(RecipeError, match="unknown_field"):
        load_detector_recipe(bad)
