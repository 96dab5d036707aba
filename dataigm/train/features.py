"""Cached-feature training of a frozen backbone's head, inside the same Lightning flow as streaming training.

With a frozen backbone (``model.mode: frozen``, ``trainer.cache_features: true``), the backbone's pooled
features (timm's ``forward_head(pre_logits=True)``) are computed once per augmentation view, in memory, when
training starts:

* view 1 is the evaluation transform (unaugmented); views 2..N (``augment.views``) apply the recipe's training
  augmentation, each drawn once;
* each rank computes the features of its own share of the train samples (every ``world_size``-th one) and
  the features of the whole validation set;
* the head then trains on batches of cached features: an endless stream of shuffled passes (pass ``p`` reads
  view ``p mod N``) cut into the same fixed-length epochs as the streaming path, so the epoch plan, the step
  count, the schedule, checkpoints and resume are the same. A checkpoint still holds the whole model, so the run
  folder evaluates and exports like any other.

One pass of the backbone replaces ``epochs`` passes: the head of a paper-style judge trains in seconds.
"""

from __future__ import annotations

from typing import Any, Iterator, Sequence

import torch

from dataigm.core.errors import InputError
from dataigm.core.schema import stable_int
from dataigm.train.data import FixedEpochLoader, ImageBytesDataset, ShardDataModule, balance_keep_prob, load_split
from dataigm.train.models import build_transform, pooled_features


class FeatureStream:
    """Endless ``(features, labels)`` batches over cached features ``[views, n, dim]``, reshuffled every pass."""

    def __init__(
        self, features: torch.Tensor, labels: torch.Tensor, batch_size: int, *, seed: int = 0,
        keep_prob: Sequence[float] | None = None, start_epoch: int = 0,
    ) -> None:
        if features.ndim != 3 or features.shape[1] != len(labels):
            raise ValueError(f"features {tuple(features.shape)} do not match {len(labels)} labels as [views, n, dim]")
        if len(labels) == 0:
            raise InputError("no cached training features on this rank (fewer train samples than ranks?)")
        self.features, self.labels, self.batch_size = features, labels, batch_size
        self.seed, self.keep_prob, self.start_epoch = seed, keep_prob, start_epoch

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        gen = torch.Generator().manual_seed(stable_int("features", self.seed, self.start_epoch, bits=63))
        keep = torch.tensor(self.keep_prob, dtype=torch.float32) if self.keep_prob is not None else None
        pending_x: list[torch.Tensor] = []
        pending_y: list[torch.Tensor] = []
        have, n_pass = 0, self.start_epoch
        while True:
            order = torch.randperm(len(self.labels), generator=gen)
            if keep is not None:  # class balancing by rejection, as the streaming path
                order = order[torch.rand(len(order), generator=gen) < keep[self.labels[order]]]
            view = self.features[n_pass % len(self.features)]
            pending_x.append(view[order])
            pending_y.append(self.labels[order])
            have += len(order)
            n_pass += 1
            while have >= self.batch_size:
                x, y = torch.cat(pending_x), torch.cat(pending_y)
                yield x[: self.batch_size], y[: self.batch_size]
                pending_x, pending_y = [x[self.batch_size :]], [y[self.batch_size :]]
                have -= self.batch_size


class CachedFeatureDataModule(ShardDataModule):
    """:class:`ShardDataModule` whose batches are the frozen backbone's features instead of images.

    The backbone is the fitted ``LightningModule``'s ``model`` (already on its device when the loaders are built).
    """

    def __init__(self, *args: Any, views: int = 1, progress: bool = False, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.views, self.progress = views, progress
        self._train: tuple[torch.Tensor, torch.Tensor] | None = None
        self._val: tuple[torch.Tensor, torch.Tensor] | None = None

    @torch.no_grad()
    def extract(self, images: Sequence[bytes], transform: Any, desc: str) -> torch.Tensor:
        """Pooled features ``[n, dim]`` of the backbone for ``images`` under ``transform`` (eval mode, float32)."""
        from tqdm import tqdm

        module = self.trainer.lightning_module
        was_training = module.training
        module.eval()
        dataset = ImageBytesDataset(list(images), [0] * len(images), transform)
        loader = torch.utils.data.DataLoader(dataset, batch_size=self.eval_batch_size, num_workers=min(self.num_workers, 2))
        # Under the trainer's precision, as its own steps run: autocast for *-mixed, the weights' dtype for *-true
        # (bf16-true/16-true weights would refuse float32 images).
        precision = self.trainer.precision_plugin
        dtype = next(module.model.parameters()).dtype
        out = []
        try:
            for x, _ in tqdm(loader, desc=desc, unit="batch", disable=not self.progress):
                with precision.forward_context():
                    out.append(pooled_features(module.model, x.to(module.device, dtype=dtype)).float().cpu())
        finally:
            module.train(was_training)
        return torch.cat(out) if out else torch.zeros(0, module.model.num_features)

    def cached_train(self) -> tuple[torch.Tensor, torch.Tensor]:
        """``([views, n, dim] features, [n] labels)`` of this rank's share of the train samples, computed once."""
        if self._train is None:
            mine_keys = self.rank_share()
            images, labels, metas = load_split(list(self.train_shards), self.label_map, keys=mine_keys, exclude=self.val_keys)
            order = sorted(range(len(images)), key=lambda i: metas[i]["key"])
            mine = [images[i] for i in order]
            transforms = [build_transform(self.data_config, training=False)]
            transforms += [build_transform(self.data_config, training=True, augment=self.augment)] * (self.views - 1)
            views = [self.extract(mine, t, f"features view {v + 1}/{self.views}") for v, t in enumerate(transforms)]
            self._train = (torch.stack(views), torch.tensor([labels[i] for i in order], dtype=torch.long))
        return self._train

    def rank_share(self) -> frozenset[str]:
        """The keys of this rank's train samples (every ``world``-th in key order): a first pass reads only keys, so
        a rank holds its own share of the images in memory, never the whole split."""
        from dataigm.train.source import covered_samples

        rank, world = self._world()
        keys = sorted(m["key"] for _, _, m in covered_samples(list(self.train_shards), self.label_map) if m["key"] not in self.val_keys)
        return frozenset(keys[rank::world])

    def setup(self, stage: str | None = None) -> None:
        pass  # features need the model on its device: computed when the loaders are built

    def cached_val(self) -> tuple[torch.Tensor, torch.Tensor] | None:
        """``([n, dim] features, [n] labels)`` of the whole validation set, computed once (None without one)."""
        if not self.has_val:
            return None
        if self._val is None:
            images, labels, _ = self._val_samples()
            self._val = (self.extract(images, build_transform(self.data_config, training=False), "features val"),
                         torch.tensor(labels, dtype=torch.long))
        return self._val

    def train_dataloader(self) -> Any:
        features, labels = self.cached_train()
        stream = FeatureStream(features, labels, self.batch_size, seed=self.seed,
                               keep_prob=balance_keep_prob(self.class_counts) if self.balance == "sample" else None)

        def start() -> None:  # at iteration time: a resumed run has restored its epoch by now
            stream.start_epoch = self._current_epoch()

        return FixedEpochLoader(stream, self.epoch_plan().batches_per_rank, before_start=start)

    def val_dataloader(self) -> Any:
        val = self.cached_val()
        if val is None:
            return []
        return torch.utils.data.DataLoader(torch.utils.data.TensorDataset(*val), batch_size=self.eval_batch_size)




def logistic_regression_head(
    train_x: torch.Tensor, train_y: torch.Tensor, num_classes: int, l2: float, class_weights: Sequence[float] | None = None,
    max_iter: int = 1000,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Multinomial logistic regression ``(weight [K, D], bias [K])`` fitted by full-batch L-BFGS, minimising the
    (class-weighted) mean cross-entropy plus ``l2 / 2 * ||weight||^2`` (the bias is not penalised, as scikit-learn's).
    """
    x, y = train_x.double(), train_y.long()
    weight = torch.zeros(num_classes, x.shape[1], dtype=torch.float64, requires_grad=True)
    bias = torch.zeros(num_classes, dtype=torch.float64, requires_grad=True)
    cw = torch.tensor(class_weights, dtype=torch.float64) if class_weights else None
    opt = torch.optim.LBFGS([weight, bias], lr=1, max_iter=max_iter, tolerance_grad=1e-9, tolerance_change=1e-12,
                            history_size=20, line_search_fn="strong_wolfe")

    def closure() -> torch.Tensor:
        opt.zero_grad()
        loss = torch.nn.functional.cross_entropy(x @ weight.T + bias, y, weight=cw) + 0.5 * l2 * weight.pow(2).sum()
        loss.backward()
        return loss

    opt.step(closure)
    return weight.detach().float(), bias.detach().float()


def _balanced_accuracy(logits: torch.Tensor, y: torch.Tensor) -> float:
    pred = logits.argmax(1)
    recalls = [float((pred[y == c] == c).float().mean()) for c in y.unique()]
    return sum(recalls) / len(recalls)


def select_logistic_head(
    train: tuple[torch.Tensor, torch.Tensor], val: tuple[torch.Tensor, torch.Tensor] | None, num_classes: int,
    class_weights: Sequence[float] | None = None, l2_grid: Sequence[float] | None = None, refit: bool = True,
) -> tuple[torch.Tensor, torch.Tensor, dict[str, Any]]:
    """The CLIP paper's linear-probe protocol: L-BFGS logistic regression with its L2 strength chosen on validation.

    CLIP sweeps the strength over 1e-6..1e6 (96 log-spaced values, refined by a parametric binary search) with
    scikit-learn's L-BFGS ``LogisticRegression``; here a coarse log-spaced grid (one value per decade) is fitted in
    torch and the value with the best validation balanced accuracy wins (ties: lower validation loss). Without
    validation data the strength is scikit-learn's default ``C = 1`` (``l2 = 1 / n`` for a mean loss). With
    ``refit`` (default), the head is then refitted on train + validation at the chosen strength, as the CLIP
    protocol does once its hyper-parameters are chosen.
    """
    x, y = train
    if val is None or len(val[1]) == 0:
        l2 = 1.0 / len(y)
        w, b = logistic_regression_head(x, y, num_classes, l2, class_weights)
        return w, b, {"l2": l2, "rule": "sklearn_default_C1"}
    grid = list(l2_grid or [10.0**k for k in range(-6, 7)])
    best: tuple[float, float] | None = None
    sweep = []
    chosen = (torch.zeros(0), torch.zeros(0), 0.0)
    for l2 in grid:
        w, b = logistic_regression_head(x, y, num_classes, l2, class_weights)
        logits = val[0].float() @ w.T + b
        score = (_balanced_accuracy(logits, val[1]), -float(torch.nn.functional.cross_entropy(logits, val[1])))
        sweep.append({"l2": l2, "val_balanced_accuracy": score[0], "val_loss": -score[1]})
        if best is None or score > best:
            best, chosen = score, (w, b, l2)
    info = {"l2": chosen[2], "rule": "best_val_balanced_accuracy", "sweep": sweep, "refit": None}
    if not refit:
        return chosen[0], chosen[1], info
    xs, ys = torch.cat([x, val[0].to(x.dtype)]), torch.cat([y, val[1].to(y.dtype)])
    w, b = logistic_regression_head(xs, ys, num_classes, chosen[2], class_weights)
    return w, b, {**info, "refit": {"on": "train+val", "n_samples": len(ys)}}


__all__ = ["CachedFeatureDataModule", "FeatureStream", "logistic_regression_head", "select_logistic_head"]
