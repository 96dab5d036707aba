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

One pass of the backbone replaces ``epochs`` passes: the head of a paper-style judge trains in seconds. With
``optim.solver: lbfgs`` (the default for this mode) the head is not trained by steps at all but solved to the optimum
of its convex problem, its L2 strength chosen on validation or by cross-validation (:func:`fit_linear_head`).
"""

from __future__ import annotations

from contextlib import contextmanager
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


# L2 strengths of the sweep: one per decade, 1e-6..1e6 (CLIP sweeps 96 log-spaced values and refines them)
L2_GRID: tuple[float, ...] = tuple(10.0**k for k in range(-6, 7))


def logistic_regression_head(
    train_x: torch.Tensor, train_y: torch.Tensor, num_classes: int, l2: float, class_weights: Sequence[float] | None = None,
    max_iter: int = 1000, init: tuple[torch.Tensor, torch.Tensor] | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Multinomial logistic regression ``(weight [K, D], bias [K])`` fitted by full-batch L-BFGS, minimising the
    (class-weighted) mean cross-entropy plus ``l2 / 2 * ||weight||^2`` (the bias is not penalised, as scikit-learn's).

    Runs in float64 on the features' device until the gradient or the change of the loss vanishes; ``init`` starts
    from another solution (a warm start along an L2 sweep: the problem is convex, so only the time changes). With
    fewer samples than feature dimensions the solve runs in the row space of ``train_x`` (its SVD basis): the
    penalised optimum lies in that space, since any part of ``weight`` orthogonal to every sample adds to the penalty
    and to no logit, so the solution is the same and small data solves in a fraction of the time.
    """
    x, y = train_x.double(), train_y.long().to(train_x.device)
    basis = row_space(x)
    if basis is not None:
        x = x @ basis.T
    if init is None:
        weight = torch.zeros(num_classes, x.shape[1], dtype=torch.float64, device=x.device)
        bias = torch.zeros(num_classes, dtype=torch.float64, device=x.device)
    else:
        weight, bias = (t.detach().to(x.device, torch.float64).clone() for t in init)
        if basis is not None:
            weight = weight @ basis.T
    weight.requires_grad_(True)
    bias.requires_grad_(True)
    cw = torch.tensor(class_weights, dtype=torch.float64, device=x.device) if class_weights else None
    if num_classes * (x.shape[1] + 1) <= NEWTON_MAX_VARIABLES:
        weight, bias = _newton(x, y, l2, cw, weight.detach(), bias.detach())
    else:
        opt = torch.optim.LBFGS([weight, bias], lr=1, max_iter=max_iter, tolerance_grad=1e-9, tolerance_change=1e-12,
                                history_size=20, line_search_fn="strong_wolfe")

        def closure() -> torch.Tensor:
            opt.zero_grad()
            loss = torch.nn.functional.cross_entropy(x @ weight.T + bias, y, weight=cw) + 0.5 * l2 * weight.pow(2).sum()
            loss.backward()
            return loss

        opt.step(closure)
    weight = weight.detach() @ basis if basis is not None else weight.detach()
    return weight.float(), bias.detach().float()


def row_space(x: torch.Tensor) -> torch.Tensor | None:
    """An orthonormal basis ``[rank, dim]`` of the rows of ``x`` when there are fewer rows than dimensions, else None."""
    if x.shape[0] >= x.shape[1]:
        return None
    return torch.linalg.svd(x.double(), full_matrices=False)[2]


# Up to this many unknowns (classes x (rank + 1)) the head is solved by Newton's method with an exact Hessian: a
# few dozen steps to machine precision where L-BFGS crawls through its iteration limit on nearly separable data.
NEWTON_MAX_VARIABLES = 1200


def _newton(x: torch.Tensor, y: torch.Tensor, l2: float, cw: torch.Tensor | None, weight: torch.Tensor, bias: torch.Tensor,
            max_iter: int = 200) -> tuple[torch.Tensor, torch.Tensor]:
    """Damped Newton's method (Armijo backtracking) on the same objective as :func:`logistic_regression_head`."""
    n, r = x.shape
    k = weight.shape[0]
    xt = torch.cat([x, torch.ones(n, 1, dtype=x.dtype, device=x.device)], 1)  # the bias as a last, unpenalised column
    s = (cw[y] if cw is not None else torch.ones(n, dtype=x.dtype, device=x.device))
    s = s / s.sum()  # cross_entropy's weighted mean: sum(w_i l_i) / sum(w_i)
    onehot = torch.nn.functional.one_hot(y, k).to(x.dtype)
    penalised = torch.ones(k, r + 1, dtype=x.dtype, device=x.device)
    penalised[:, r] = 0
    theta = torch.cat([weight, bias[:, None]], 1)

    def loss(t: torch.Tensor) -> torch.Tensor:
        return -(s * torch.log_softmax(xt @ t.T, 1)[torch.arange(n), y]).sum() + 0.5 * l2 * (t * penalised).pow(2).sum()

    eye = torch.eye(k * (r + 1), dtype=x.dtype, device=x.device)
    for _ in range(max_iter):
        p = torch.softmax(xt @ theta.T, 1)
        grad = ((s[:, None] * (p - onehot)).T @ xt + l2 * theta * penalised).flatten()
        curv = s[:, None, None] * (torch.diag_embed(p) - p[:, :, None] * p[:, None, :])  # [n, k, k]
        hess = torch.einsum("iab,ij,il->ajbl", curv, xt, xt).reshape(k * (r + 1), -1) + l2 * torch.diag(penalised.flatten())
        # softmax is unchanged by adding one number to every bias: a tiny ridge makes that flat direction solvable
        step = torch.linalg.solve(hess + 1e-12 * eye, grad)
        decrement = float(grad @ step)  # twice the predicted distance to the optimum's loss
        if decrement < 1e-13:
            break  # within float64 rounding of the optimum
        f0, t = float(loss(theta)), 1.0
        while float(loss(theta - t * step.view_as(theta))) > f0 - 0.25 * t * decrement:
            t /= 2
            if t < 1e-8:  # no decrease left that rounding lets a step show
                return theta[:, :r].contiguous(), theta[:, r].contiguous()
        theta = theta - t * step.view_as(theta)
    return theta[:, :r].contiguous(), theta[:, r].contiguous()


def _balanced_accuracy(logits: torch.Tensor, y: torch.Tensor) -> float:
    pred = logits.argmax(1)
    recalls = [float((pred[y == c] == c).float().mean()) for c in y.unique()]
    return sum(recalls) / len(recalls)


def _scores(logits: torch.Tensor, y: torch.Tensor) -> tuple[float, float]:
    """(balanced accuracy, mean cross-entropy) of held-out logits: the sweep keeps the highest accuracy, then the lowest loss."""
    y = y.to(logits.device)
    return _balanced_accuracy(logits, y), float(torch.nn.functional.cross_entropy(logits.double(), y))


def stratified_folds(labels: torch.Tensor, k: int, seed: int = 0) -> torch.Tensor:
    """The fold (``0..k-1``) of each sample: every class dealt round the folds in a seeded random order, continuing
    where the previous class stopped, so fold sizes differ by at most one and each class is spread evenly."""
    gen = torch.Generator().manual_seed(stable_int("folds", seed, bits=63))
    fold = torch.empty(len(labels), dtype=torch.long)
    offset = 0
    for c in labels.unique().tolist():
        idx = (labels == c).nonzero().flatten()
        idx = idx[torch.randperm(len(idx), generator=gen)]
        fold[idx] = (torch.arange(len(idx)) + offset) % k
        offset += len(idx)
    return fold


def _sweep(x: torch.Tensor, y: torch.Tensor, held_x: torch.Tensor, held_y: torch.Tensor, num_classes: int,
           class_weights: Sequence[float] | None, grid: Sequence[float]) -> dict[float, tuple[float, float]]:
    """Held-out (balanced accuracy, loss) of the head fitted at each L2 strength, strongest first (warm-started); in the
    row space of ``x`` when it is smaller, computed once for the sweep (the logits of held-out rows are unchanged)."""
    x, held_x = x.double(), held_x.double()
    basis = row_space(x)
    if basis is not None:
        x, held_x = x @ basis.T, held_x @ basis.T
    out: dict[float, tuple[float, float]] = {}
    init = None
    for l2 in sorted(grid, reverse=True):
        init = logistic_regression_head(x, y, num_classes, l2, class_weights, init=init)
        out[l2] = _scores(held_x @ init[0].double().T + init[1].double(), held_y)
    return out


def fit_linear_head(
    train: tuple[torch.Tensor, torch.Tensor], val: tuple[torch.Tensor, torch.Tensor] | None, num_classes: int,
    class_weights: Sequence[float] | None = None, *, min_val_per_class: int = 50, folds: int = 5, seed: int = 0,
    l2_grid: Sequence[float] = L2_GRID,
) -> tuple[torch.Tensor, torch.Tensor, dict[str, Any]]:
    """The linear head of a frozen backbone at the optimum of its own convex problem: multinomial logistic regression
    by full-batch L-BFGS on the cached features (every view a sample), the L2 strength chosen by held-out balanced
    accuracy (ties: lower held-out loss) over ``l2_grid``.

    ``train`` is ``([views, n, dim] features, [n] labels)``. The strength is chosen on ``val`` when it is worth the
    name (at least ``min_val_per_class`` images of every trained class), else by stratified ``folds``-fold
    cross-validation on train (the views of one image stay in one fold; held-out folds are scored on view 1, the
    evaluation transform), else (fewer than 2 images in a class) it is scikit-learn's default ``C = 1``
    (``l2 = 1 / n``). The head is then fitted on all of train; validation images are never trained on, so they
    still choose the threshold and give a held-out report. This is the protocol of CLIP's linear probe
    (``LogisticRegression`` with its strength chosen on validation) and of scikit-learn's ``LogisticRegressionCV``.

    Returns ``(weight [K, D], bias [K], info)``; ``info`` (``run.json``'s ``head_fit``) holds the solver, the chosen
    ``l2``, the ``rule`` that chose it and the ``sweep``.
    """
    with _few_threads(train[0]):
        return _fit_linear_head(train, val, num_classes, class_weights, min_val_per_class, folds, seed, l2_grid)


@contextmanager
def _few_threads(features: torch.Tensor) -> Iterator[None]:
    """One CPU thread for a small solve: its operations last microseconds, and on a busy machine the threads of a
    pool spend more CPU time waiting for each other than computing (measured on 2 shared cores: many times the CPU
    time of one thread)."""
    small = features.device.type == "cpu" and features.numel() < SMALL_SOLVE
    threads = torch.get_num_threads()
    if small:
        torch.set_num_threads(1)
    try:
        yield
    finally:
        if small:
            torch.set_num_threads(threads)


SMALL_SOLVE = 1 << 22  # feature values: 4M is 3,000 images of a 1,280-d backbone


def _fit_linear_head(train: tuple[torch.Tensor, torch.Tensor], val: tuple[torch.Tensor, torch.Tensor] | None, num_classes: int,
                     class_weights: Sequence[float] | None, min_val_per_class: int, folds: int, seed: int,
                     l2_grid: Sequence[float]) -> tuple[torch.Tensor, torch.Tensor, dict[str, Any]]:
    features, labels = train
    views, n, dim = features.shape
    x, y = features.reshape(-1, dim), labels.repeat(views)
    present = labels.unique().tolist()
    val_counts = {int(c): int((val[1] == c).sum()) for c in present} if val is not None else {}
    info: dict[str, Any] = {"solver": "lbfgs", "n_train": int(n), "views": int(views), "val_per_class": val_counts,
                            "min_val_per_class": min_val_per_class}
    if val_counts and min(val_counts.values()) >= min_val_per_class:
        sweep = _sweep(x, y, val[0], val[1], num_classes, class_weights, l2_grid)
        info.update(rule="validation")
    else:
        k = min(folds, min(int((labels == c).sum()) for c in present))
        sweep = {}
        if k >= 2:
            fold = stratified_folds(labels, k, seed)
            for f in range(k):
                fit, held = fold != f, fold == f
                scores = _sweep(features[:, fit].reshape(-1, dim), labels[fit].repeat(views), features[0, held], labels[held],
                                num_classes, class_weights, l2_grid)
                for l2, (acc, loss) in scores.items():
                    a, b = sweep.get(l2, (0.0, 0.0))
                    sweep[l2] = (a + acc / k, b + loss / k)
            info.update(rule="cross_validation", folds=k)
        else:
            info.update(rule="sklearn_default_C1")
    if sweep:
        l2 = max(sorted(sweep, reverse=True), key=lambda v: (sweep[v][0], -sweep[v][1]))  # equal scores: the stronger L2
    else:
        l2 = 1.0 / len(y)
    weight, bias = logistic_regression_head(x, y, num_classes, l2, class_weights)
    info.update(l2=l2, sweep=[{"l2": v, "balanced_accuracy": sweep[v][0], "loss": sweep[v][1]} for v in sorted(sweep)])
    return weight, bias, info


__all__ = ["CachedFeatureDataModule", "FeatureStream", "L2_GRID", "fit_linear_head", "logistic_regression_head", "stratified_folds"]
