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
    assert balance_keep_prob([4, 1]) == pytest.approx([0.25, 1.0])  # a class of one sample is the rarest


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


def _pixels(img) -> bytes:  # module level: picklable for DataLoader workers
    return img.tobytes()


def test_two_real_workers_per_rank_cover_every_sample_once_per_pass(tmp_path: Path) -> None:
    """2 ranks x 2 real DataLoader worker processes over 4 equal shards: each pass yields every sample once."""
    import torch

    from dataigm.core.shards import iter_samples, list_shards
    from dataigm.synthetic import write_synthetic_dataset

    write_synthetic_dataset(tmp_path, "object", ["church", "parachute", "other"], {"train": 8}, shard_size=6)
    shards = list_shards(tmp_path, "object", "train")
    assert len(shards) == 4
    from PIL import Image
    import io

    pixels = {}
    for s in iter_samples(shards):
        with Image.open(io.BytesIO(s.image)) as img:
            pixels[img.convert("RGB").tobytes()] = s.key
    assert len(pixels) == 24
    passes: list[list[str]] = [[], []]
    for rank in range(2):
        stream = ShardStream(shards, [0, 1, 2], _pixels, rank=rank, world_size=2, shuffle_buffer=0)
        loader = torch.utils.data.DataLoader(stream, batch_size=None, num_workers=2)
        it = iter(loader)
        for p in range(2):  # this rank holds 12 samples; workers alternate, each over its own shard
            passes[p] += [pixels[next(it)[0]] for _ in range(12)]
        del it
    for seen in passes:
        assert sorted(seen) == sorted(pixels.values())


def test_resumed_stream_order_comes_from_the_epoch_at_iteration_time(shapes_dataset: Path) -> None:
    """The loader is built before a resumed run restores its epoch (as Lightning does); iterating reads the epoch."""
    from types import SimpleNamespace

    from dataigm.core.shards import list_shards
    from dataigm.train.data import ShardDataModule

    config = {"input_size": [3, 16, 16], "mean": [0.5] * 3, "std": [0.5] * 3, "interpolation": "bilinear", "crop_pct": 1.0}

    def first_labels(epoch_at_build: int, epoch_at_iter: int) -> list[int]:
        dm = ShardDataModule(list_shards(shapes_dataset, "object", "train"), [], [0, 1, 2], [40, 40, 40], config,
                             batch_size=40, num_workers=0, shuffle_buffer=50, seed=3)
        trainer = SimpleNamespace(global_rank=0, world_size=1, current_epoch=epoch_at_build)
        dm.trainer = trainer
        loader = dm.train_dataloader()
        trainer.current_epoch = epoch_at_iter  # checkpoint restored after the loader was built
        return next(iter(loader))[1].tolist()

    resumed = first_labels(0, 2)
    assert resumed == first_labels(2, 2)
    assert resumed != first_labels(0, 0)


def test_carve_validation_is_stratified_and_stable() -> None:
    from dataigm.train.data import carve_validation

    keys = [f"k{i:03d}" for i in range(50)]
    labels = [0] * 40 + [1] * 9 + [2]
    val = carve_validation(keys, labels, 0.2, seed=0)
    assert sum(k < "k040" for k in val) == 8 and sum("k040" <= k < "k049" for k in val) == 2  # round(0.2 * 9) = 2
    assert "k049" not in val  # a class of one stays in train
    assert val == carve_validation(list(reversed(keys)), list(reversed(labels)), 0.2, seed=0)
    assert val != carve_validation(keys, labels, 0.2, seed=1)
    assert carve_validation(keys, labels, 0.0) == []


def test_carve_takes_at_least_one_and_never_a_whole_class() -> None:
    """Per class: none from a class of one, at least one from a class of two or more, never all; golden keys."""
    from dataigm.train.data import carve_validation

    keys = [f"k{i:02d}" for i in range(12)]
    labels = [0, 0, 1, 1, 1, 2, 2, 2, 2, 2, 2, 3]  # classes of 2, 3, 6 and 1
    # 0.2 of 2, 3 and 6 rounds to 0, 1 and 1: one each (at least one), none from the class of one
    assert carve_validation(keys, labels, 0.2) == ["k01", "k02", "k09"]
    # 0.99 of 2, 3 and 6 rounds to the whole class: one less each (never all)
    assert carve_validation(keys, labels, 0.99) == ["k01", "k02", "k04", "k05", "k06", "k07", "k08", "k09"]
    assert carve_validation(keys[:4], [0, 0, 1, 1], 0.2) == ["k01", "k02"]  # stratified: one per class, not 1 of 4
    assert carve_validation(keys[:4], [5, 5, 5, 5], 0.2) == ["k02"]


def test_min_steps_raises_small_epochs() -> None:
    assert plan_epoch([10, 10], batch_size=128, world_size=1, balance="loss").batches_per_rank == 1
    assert plan_epoch([10, 10], batch_size=128, world_size=1, balance="loss", min_steps=50, epochs=10).batches_per_rank == 5
    assert plan_epoch([400, 400], batch_size=8, world_size=1, balance="loss", min_steps=50, epochs=10).batches_per_rank == 100


def test_feature_stream_rotates_views_and_fills_batches() -> None:
    import torch

    from dataigm.train.features import FeatureStream

    features = torch.stack([torch.zeros(5, 2), torch.ones(5, 2)])  # view 1 all 0, view 2 all 1
    stream = iter(FeatureStream(features, torch.arange(5), batch_size=5, seed=0))
    (x0, y0), (x1, y1) = next(stream), next(stream)
    assert sorted(y0.tolist()) == sorted(y1.tolist()) == [0, 1, 2, 3, 4]  # one pass per batch
    assert x0.sum() == 0 and x1.sum() == 10
    x, y = next(iter(FeatureStream(features, torch.arange(5), batch_size=7, seed=0)))
    assert len(y) == 7 and len(set(y.tolist())) == 5  # batches run across passes, as the image stream


def test_plan_epoch_counts_present_classes_and_spreads_min_steps_over_epochs() -> None:
    # balance "sample": every present class arrives as often as the rarest present one; empty classes are absent
    assert plan_epoch([30, 0, 10], batch_size=8, world_size=1, balance="sample").samples == 20
    assert plan_epoch([1, 10], batch_size=8, world_size=1, balance="sample").samples == 2
    assert plan_epoch([30, 0, 10], batch_size=8, world_size=1, balance="loss").samples == 40
    assert plan_epoch([30, 10], batch_size=8, world_size=1, balance="loss", min_steps=50).batches_per_rank == 50  # one epoch
    with pytest.raises(ValueError, match="no training samples"):
        plan_epoch([0, 0], batch_size=8, world_size=1, balance="loss")


def test_data_module_takes_world_size_and_epoch_from_its_trainer(shapes_dataset: Path) -> None:
    """No trainer: one process, epoch 0. A (real, not launched) 2-process DDP trainer: world size 2."""
    from types import SimpleNamespace

    import lightning as L

    from dataigm.core.shards import list_shards
    from dataigm.train.data import ShardDataModule

    config = {"input_size": [3, 16, 16], "mean": [0.5] * 3, "std": [0.5] * 3, "interpolation": "bilinear", "crop_pct": 1.0}

    def module(**kw: object) -> ShardDataModule:
        return ShardDataModule(list_shards(shapes_dataset, "object", "train"), [], [0, 1, 2], [30, 10, 0], config,
                               batch_size=8, num_workers=0, shuffle_buffer=50, seed=3, **kw)

    dm = module()
    assert dm.epoch_plan().batches_per_rank == 5  # ceil(40 / 8) in one process
    dm.trainer = L.Trainer(accelerator="cpu", devices=2, strategy="ddp", logger=False, enable_progress_bar=False,
                           enable_checkpointing=False)
    assert dm.epoch_plan().batches_per_rank == 3  # ceil(40 / (8 * 2))
    assert dm.epoch_plan(world_size=1).batches_per_rank == 5  # an explicit world size wins
    assert module(balance="sample").epoch_plan().samples == 20
    assert module(min_steps=100, epochs=10).epoch_plan().batches_per_rank == 10

    def first_labels(trainer: object | None) -> list[int]:
        dm = module()
        if trainer is not None:
            dm.trainer = trainer
        return next(iter(dm.train_dataloader()))[1].tolist()

    at = {epoch: first_labels(SimpleNamespace(global_rank=0, world_size=1, current_epoch=epoch)) for epoch in (0, 1)}
    assert first_labels(None) == at[0] != at[1]  # without a trainer the stream starts at epoch 0


def test_stream_order_golden_values(shapes_dataset: Path) -> None:
    """The order a consumer reads its samples in is a pure function of seed, epoch, rank and worker, pinned here."""
    from dataigm.core.shards import iter_tar, list_shards

    shards = list_shards(shapes_dataset, "object", "train")  # 3 shards of 40
    label_of = {s.key: s.meta["label_name"] for shard in shards for s in iter_tar(shard)}

    def keys(n: int = 12, urls: list = shards, **kw: object) -> list[str]:
        stream = ShardStream(urls, [0, 1, 2], lambda img: None, **{"shuffle_buffer": 200, "seed": 3, **kw})
        stream._decode = lambda s: s["__key__"]  # keys instead of tensors
        it = iter(stream)
        return [next(it).removeprefix("object-synthetic-train-") for _ in range(n)]

    assert keys() == ["parachute-00004", "other-00020", "other-00001", "other-00039", "other-00032", "church-00018",
                      "other-00022", "other-00011", "church-00032", "church-00031", "church-00039", "other-00012"]
    assert keys(3, seed=4) == ["church-00010", "other-00031", "parachute-00003"]
    assert keys(3, start_epoch=1) == ["parachute-00035", "other-00023", "parachute-00014"]
    assert keys(6, shuffle_buffer=2) == ["parachute-00033", "parachute-00022", "church-00026", "parachute-00015", "other-00014",
                                         "church-00001"]
    # two ranks on one shard: each reads its half of the keys, together every key once per pass
    one = shards[:1]
    halves = [set(keys(200, urls=one, rank=r, world_size=2)) for r in (0, 1)]
    assert not halves[0] & halves[1] and len(halves[0] | halves[1]) == 40 and min(map(len, halves)) > 10
    assert len(set(keys(200, urls=one))) == 40  # in the main process (no worker info): the whole shard
    # carved-out keys, classes the detector drops (-1) and classes it keeps with probability 0 never arrive
    carved = frozenset(f"object-synthetic-train-{k}" for k in keys(5))
    assert not set(keys(300, exclude=carved)) & {k.removeprefix("object-synthetic-train-") for k in carved}

    def labels(label_map: list[int], **kw: object) -> set[str]:
        stream = ShardStream(shards, label_map, lambda img: None, shuffle_buffer=0, **kw)
        stream._decode = lambda s: s["__key__"]
        it = iter(stream)
        return {label_of[next(it)] for _ in range(200)}

    assert labels([0, -1, 1]) == {"church", "other"} and labels([0, 1, 2], keep_prob=[1.0, 0.0, 1.0]) == {"church", "other"}
    with pytest.raises(ValueError, match="hold no samples of the detector's classes"):
        labels([-1, -1, -1])


def test_cached_features_read_only_this_ranks_share(shapes_dataset) -> None:
    """Under DDP each rank keeps every world-th train sample in key order, carved validation excluded."""
    from types import SimpleNamespace

    from dataigm.core.shards import iter_samples, list_shards
    from dataigm.train.features import CachedFeatureDataModule

    shards = [p for p in list_shards(shapes_dataset) if "/train/" in p.as_posix()]
    keys = sorted(s.key for s in iter_samples(shards))
    val = keys[:4]
    shares = []
    for rank in range(3):
        dm = CachedFeatureDataModule(shards, [], [0, 1, 2], [40, 40, 40], {}, val_keys=val)
        dm.trainer = SimpleNamespace(global_rank=rank, world_size=3)
        shares.append(dm.rank_share())
    assert len(keys) == 120 and [len(s) for s in shares] == [39, 39, 38]
    assert set().union(*shares) == set(keys[4:]) and not shares[0] & shares[1]
    assert shares[1] == frozenset(keys[4:][1::3])
