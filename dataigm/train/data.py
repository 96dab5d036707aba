"""Detector data: WebDataset shard streams with timm transforms, in a ``LightningDataModule``.

Training reads the category's train shards as an endless stream per data loader worker:

* every consumer (rank x worker) gets disjoint shards (``split_by_node`` then ``split_by_worker`` order);
  when there are fewer shards than consumers, consumers share a shard and keep disjoint samples by key hash;
* samples are shuffled within a buffer, optionally class-balanced by rejection sampling, decoded and
  transformed with ``timm.data.create_transform``;
* an epoch is a fixed number of batches per rank (``WebLoader.with_epoch``), the same on every rank, so DDP
  ranks never wait for each other at the end of uneven shards.

Validation reads the val shards into a map-style dataset (image bytes only), so Lightning's distributed
sampler splits it evenly over ranks. A dataset without a val split gets one carved out of train
(:func:`carve_validation`): stratified by class, chosen by key hash, and excluded from the train stream.

The stream's order depends on the epoch it starts at, read when the loader is first iterated (after a resumed
run restored its epoch), so a resumed run continues with new orders instead of replaying epoch 0's.
"""

from __future__ import annotations

import functools
import io
import math
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Container, Iterator, Sequence

import lightning as L
import torch
import webdataset as wds
from PIL import Image

from dataigm.core.errors import InputError
from dataigm.core.schema import stable_int
from dataigm.train.models import build_transform
from dataigm.train.source import DROP, covered_samples


def assign_shards(urls: Sequence[str], rank: int, world_size: int, worker: int, num_workers: int) -> tuple[list[str], int, int]:
    """The shards one consumer reads and its sample slice ``(shards, slice_index, slice_count)``.

    With at least as many shards as consumers, consumers get disjoint shard sets (rank-major, as
    ``wds.split_by_node`` followed by ``wds.split_by_worker``) and keep every sample (slice 0 of 1).
    Otherwise consumer ``c`` reads shard ``c % n_shards`` and keeps the samples whose key hash falls in its
    slice among the consumers sharing that shard, so samples stay disjoint.
    """
    urls = list(urls)
    if not urls:
        raise InputError("no training shards to read")
    consumers = world_size * num_workers
    consumer = rank * num_workers + worker
    if len(urls) >= consumers:
        return list(urls[rank::world_size][worker::num_workers]), 0, 1
    shard = consumer % len(urls)
    sharing = [c for c in range(consumers) if c % len(urls) == shard]
    return [urls[shard]], sharing.index(consumer), len(sharing)


class ShardStream(torch.utils.data.IterableDataset):
    """Endless ``(image, label)`` stream of one consumer's shards, reshuffled each pass."""

    def __init__(
        self,
        urls: Sequence[str],
        label_map: Sequence[int],
        transform: Callable[[Image.Image], torch.Tensor],
        *,
        rank: int = 0,
        world_size: int = 1,
        shuffle_buffer: int = 1000,
        keep_prob: Sequence[float] | None = None,
        seed: int = 0,
        start_epoch: int = 0,
        exclude: frozenset[str] = frozenset(),
    ) -> None:  # pragma: no mutate block, plumbing, see docs/testing.md
        self.urls, self.label_map, self.transform = [str(u) for u in urls], list(label_map), transform
        self.rank, self.world_size = rank, world_size
        self.shuffle_buffer, self.keep_prob, self.seed = shuffle_buffer, keep_prob, seed
        self.start_epoch = start_epoch  # a resumed run does not replay the first epochs' sample order
        self.exclude = exclude  # keys carved out of train for validation

    def __iter__(self) -> Iterator[tuple[torch.Tensor, int]]:
        info = torch.utils.data.get_worker_info()
        worker, num_workers = (info.id, info.num_workers) if info else (0, 1)
        shards, slice_index, slice_count = assign_shards(self.urls, self.rank, self.world_size, worker, num_workers)
        rng = random.Random(stable_int("stream", self.seed, self.start_epoch, self.rank, worker))
        covered = [0]  # samples of this consumer the detector covers, seen so far

        def accept(sample: dict[str, Any]) -> bool:
            if slice_count > 1 and stable_int(sample["__key__"]) % slice_count != slice_index:
                return False
            if sample["__key__"] in self.exclude:
                return False
            label = self._label(sample)
            if label == DROP:
                return False
            covered[0] += 1
            return self.keep_prob is None or rng.random() < self.keep_prob[label]

        pipeline = wds.DataPipeline(
            functools.partial(self._endless_shards, shards, rng, covered),
            wds.tarfile_to_samples(),
            wds.select(accept),
            wds.shuffle(self.shuffle_buffer, initial=min(self.shuffle_buffer, 100), rng=rng) if self.shuffle_buffer > 1 else wds.map(lambda s: s),
            wds.map(self._decode),
        )
        yield from pipeline

    def _endless_shards(self, shards: list[str], rng: random.Random, covered: list[int]) -> Iterator[dict[str, str]]:
        while True:
            before = covered[0]
            order = list(shards)
            rng.shuffle(order)
            for url in order:
                yield {"url": url}
            if covered[0] == before:  # would spin forever without ever producing a batch
                raise InputError(f"training shards {order} hold no samples of the detector's classes for rank {self.rank}")

    def _label(self, sample: dict[str, Any]) -> int:
        return self.label_map[int(sample["cls"])]

    def _decode(self, sample: dict[str, Any]) -> tuple[torch.Tensor, int]:  # pragma: no mutate block, plumbing, see docs/testing.md
        with Image.open(io.BytesIO(sample["png"])) as img:
            return self.transform(img.convert("RGB")), self._label(sample)


class FixedEpochLoader:
    """Cuts an endless batch loader into epochs of exactly ``batches`` batches.

    The underlying iterator (and its worker processes) lives across epochs, so each epoch continues the
    stream where the last one stopped instead of restarting every worker's shard order. ``before_start`` runs
    just before that iterator is created (the data module sets the stream's start epoch there).
    """

    def __init__(self, loader: Any, batches: int, before_start: Callable[[], None] | None = None) -> None:  # pragma: no mutate block, plumbing, see docs/testing.md
        self.loader, self.batches, self.before_start = loader, batches, before_start
        self._iterator: Iterator[Any] | None = None

    def __len__(self) -> int:  # pragma: no mutate block, plumbing, see docs/testing.md
        return self.batches

    def __iter__(self) -> Iterator[Any]:  # pragma: no mutate block, plumbing, see docs/testing.md
        if self._iterator is None:
            if self.before_start is not None:
                self.before_start()
            self._iterator = iter(self.loader)
        for _ in range(self.batches):
            yield next(self._iterator)


class ImageBytesDataset(torch.utils.data.Dataset):
    """Map-style ``(image, label)`` dataset over image bytes held in memory (validation, test)."""

    def __init__(self, images: list[bytes], labels: list[int], transform: Callable[[Image.Image], torch.Tensor]) -> None:  # pragma: no mutate block, plumbing, see docs/testing.md
        self.images, self.labels, self.transform = images, labels, transform

    def __len__(self) -> int:  # pragma: no mutate block, plumbing, see docs/testing.md
        return len(self.images)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:  # pragma: no mutate block, plumbing, see docs/testing.md
        with Image.open(io.BytesIO(self.images[i])) as img:
            return self.transform(img.convert("RGB")), self.labels[i]


def load_split(
    paths: Sequence[Path], label_map: Sequence[int], keys: Container[str] | None = None, exclude: Container[str] = ()
) -> tuple[list[bytes], list[int], list[dict[str, Any]]]:  # pragma: no mutate block, plumbing, see docs/testing.md
    """Image bytes, detector labels and metadata of the samples the detector covers (only ``keys`` if given,
    never ``exclude``)."""
    rows = [r for r in covered_samples(paths, label_map) if (keys is None or r[2]["key"] in keys) and r[2]["key"] not in exclude]
    return [r[0] for r in rows], [r[1] for r in rows], [r[2] for r in rows]


def carve_validation(keys: Sequence[str], labels: Sequence[int], fraction: float, seed: int = 0) -> list[str]:
    """A stratified validation subset of train: in every class with at least 2 samples, ``round(fraction * n)``
    samples (at least 1, never all), chosen by a seeded hash of the key, so the choice is the same on every rank
    and in every rerun. Returns the chosen keys, sorted."""
    by_class: dict[int, list[str]] = {}
    for key, label in zip(keys, labels):
        by_class.setdefault(int(label), []).append(key)
    chosen: list[str] = []
    for members in by_class.values():
        if fraction <= 0 or len(members) < 2:
            continue
        n = min(len(members) - 1, max(1, round(fraction * len(members))))
        chosen += sorted(members, key=lambda k: stable_int("val-carve", seed, k))[:n]
    return sorted(chosen)


def balance_keep_prob(class_counts: Sequence[int]) -> list[float]:
    """Acceptance probability per class so every class arrives as often as the rarest present one."""
    present = [c for c in class_counts if c > 0]
    if not present:
        raise InputError("no training samples in any detector class")
    rarest = min(present)
    return [rarest / c if c else 0.0 for c in class_counts]


@dataclass
class EpochPlan:
    """How many samples an epoch stands for and how many batches each rank runs."""

    samples: int
    batches_per_rank: int


def plan_epoch(
    class_counts: Sequence[int], batch_size: int, world_size: int, balance: str, steps_per_epoch: int | None = None,
    min_steps: int = 0, epochs: int = 1,  # pragma: no mutate, min_steps 1 or epochs 2 change nothing alone
) -> EpochPlan:
    """One pass over the (balanced) train split per epoch, split evenly over ranks, unless fixed by the recipe;
    with ``min_steps``, at least ``ceil(min_steps / epochs)`` batches per epoch (small data still trains)."""
    present = [c for c in class_counts if c > 0]
    if not present:
        raise InputError("no training samples in any detector class")
    samples = len(present) * min(present) if balance == "sample" else sum(present)
    batches = steps_per_epoch or max(1, math.ceil(samples / (batch_size * world_size)))
    return EpochPlan(samples, max(batches, math.ceil(min_steps / max(1, epochs))))


class ShardDataModule(L.LightningDataModule):
    """Train stream and validation set of one category of a dataigm dataset, for one detector."""

    def __init__(
        self,
        train_shards: Sequence[str],
        val_shards: Sequence[str],
        label_map: Sequence[int],
        class_counts: Sequence[int],
        data_config: dict[str, Any],
        augment: dict[str, Any] | None = None,
        *,
        batch_size: int = 64,
        eval_batch_size: int = 128,
        num_workers: int = 4,
        shuffle_buffer: int = 1000,
        balance: str = "loss",
        steps_per_epoch: int | None = None,
        seed: int = 0,
        val_keys: Sequence[str] = (),
        min_steps: int = 0,
        epochs: int = 1,
    ) -> None:  # pragma: no mutate block, plumbing, see docs/testing.md
        super().__init__()
        self.train_shards, self.val_shards = [str(p) for p in train_shards], [str(p) for p in val_shards]
        self.label_map, self.class_counts = list(label_map), list(class_counts)
        self.data_config, self.augment = data_config, dict(augment or {})
        self.batch_size, self.eval_batch_size, self.num_workers = batch_size, eval_batch_size, num_workers
        self.shuffle_buffer, self.balance, self.steps_per_epoch, self.seed = shuffle_buffer, balance, steps_per_epoch, seed
        self.val_keys = frozenset(val_keys)  # carved out of train: the validation set, never trained on
        self.min_steps, self.epochs = min_steps, epochs
        self.val_set: ImageBytesDataset | None = None

    def _world(self) -> tuple[int, int]:
        trainer = getattr(self, "trainer", None)
        return (trainer.global_rank, trainer.world_size) if trainer is not None else (0, 1)

    def epoch_plan(self, world_size: int | None = None) -> EpochPlan:
        world = world_size if world_size is not None else self._world()[1]
        return plan_epoch(self.class_counts, self.batch_size, world, self.balance, self.steps_per_epoch, self.min_steps, self.epochs)

    @property
    def has_val(self) -> bool:  # pragma: no mutate block, plumbing, see docs/testing.md
        """Validation data exists: a val split or a carved subset of train."""
        return bool(self.val_shards or self.val_keys)

    def _val_samples(self) -> tuple[list[bytes], list[int], list[dict[str, Any]]]:  # pragma: no mutate block, plumbing, see docs/testing.md
        if self.val_shards:
            return load_split([Path(p) for p in self.val_shards], self.label_map)
        return load_split([Path(p) for p in self.train_shards], self.label_map, keys=self.val_keys)

    def setup(self, stage: str | None = None) -> None:  # pragma: no mutate block, plumbing, see docs/testing.md
        if self.has_val and self.val_set is None:
            images, labels, _ = self._val_samples()
            self.val_set = ImageBytesDataset(images, labels, build_transform(self.data_config, training=False))

    def _current_epoch(self) -> int:
        trainer = getattr(self, "trainer", None)
        return int(trainer.current_epoch) if trainer is not None else 0

    def train_transform(self) -> Callable[[Image.Image], torch.Tensor]:  # pragma: no mutate block, plumbing, see docs/testing.md
        """The recipe's training augmentation, or the evaluation transform when ``augment.enabled`` is false."""
        if not self.augment.get("enabled", True):
            return build_transform(self.data_config, training=False)
        return build_transform(self.data_config, training=True, augment=self.augment)

    def train_dataloader(self) -> Any:  # pragma: no mutate block, plumbing, see docs/testing.md
        rank, world = self._world()
        stream = ShardStream(
            self.train_shards, self.label_map, self.train_transform(),
            rank=rank, world_size=world, shuffle_buffer=self.shuffle_buffer,
            keep_prob=balance_keep_prob(self.class_counts) if self.balance == "sample" else None, seed=self.seed,
            exclude=self.val_keys,
        )

        def start() -> None:  # at iteration time: a resumed run has restored its epoch by now
            stream.start_epoch = self._current_epoch()

        loader = wds.WebLoader(
            wds.DataPipeline(stream, wds.batched(self.batch_size, collation_fn=torch.utils.data.default_collate, partial=False)),
            batch_size=None, num_workers=self.num_workers,
        )
        return FixedEpochLoader(loader, self.epoch_plan(world).batches_per_rank, before_start=start)

    def val_dataloader(self) -> Any:  # pragma: no mutate block, plumbing, see docs/testing.md
        if not self.val_set:
            return []
        return torch.utils.data.DataLoader(self.val_set, batch_size=self.eval_batch_size, num_workers=min(self.num_workers, 2))
