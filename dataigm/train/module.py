"""The thin ``LightningModule`` of a detector: ``timm.create_model`` inside, a cross-entropy step, and the
training mode (frozen backbone + head as in the paper, the last N blocks, or full fine-tuning).

The new classifier is re-initialised for the task (truncated normal, std 0.01, zero bias by default) and can get
a non-affine BatchNorm before it, the linear-probe protocol of MAE's ``main_linprobe.py``. With cached features
(frozen mode), batches hold the backbone's pooled features instead of images and only the head runs; with
``solver="lbfgs"`` the head is instead solved once, at the first step, by a full-batch convex solve on all the cached
features (:func:`dataigm.train.features.fit_linear_head`), and written into the same timm classifier.
"""

from __future__ import annotations

import math
from typing import Any, Sequence

import lightning as L
import torch
from torch import nn

from dataigm.core.errors import InputError
from dataigm.train.models import attach_head_norm, classifier_logits, create_detector_model, init_head
from dataigm.train.recipe import TRAIN_MODES

LBFGS = "lbfgs"  # the head's convex solve on cached features (optim.solver)


def set_trainable(model: nn.Module, mode: str, last_n: int = 0) -> int:
    """Freeze what the mode does not train; returns the number of trainable parameters.

    ``frozen``: only the classifier; ``last_n``: the classifier plus the last ``last_n`` parameter groups of
    timm's coarse ``group_matcher`` (ViT blocks, ResNet stages); ``finetune``: everything.
    """
    from timm.models import group_parameters

    if mode not in TRAIN_MODES:
        raise InputError(f"unknown training mode {mode!r}; valid: {', '.join(TRAIN_MODES)}")
    trainable: set[str] = {n for n, _ in model.named_parameters()} if mode == "finetune" else set()
    head = model.get_classifier()
    head_ids = {id(p) for p in head.parameters()}
    trainable |= {n for n, p in model.named_parameters() if id(p) in head_ids}
    if mode == "last_n":
        groups = list(group_parameters(model, model.group_matcher(coarse=True)).values())
        for names in groups[-(last_n + 1) :]:  # the last group holds the head (and final norm)
            trainable |= set(names)
    for name, param in model.named_parameters():
        param.requires_grad_(name in trainable)
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


class DetectorModule(L.LightningModule):
    """Image classifier for one detector; the timm model is ``self.model``."""

    def __init__(
        self,
        arch: str,
        num_classes: int,
        pretrained: bool | str = False,
        mode: str = "frozen",
        last_n: int = 0,
        drop_rate: float = 0.0,
        model_kwargs: dict[str, Any] | None = None,
        optimizer: str = "adamw",
        lr: float = 1e-3,
        weight_decay: float = 0.05,
        label_smoothing: float = 0.0,
        scheduler: str = "cosine",
        warmup_epochs: float = 0.0,
        class_weights: Sequence[float] | None = None,
        head_init: str = "trunc_normal",
        head_norm: str = "none",
        cached_features: bool = False,
        solver: str = "sgd",
        cv_folds: int = 5,
        min_val_per_class: int = 50,
        seed: int = 0,
    ) -> None:
        super().__init__()
        self.save_hyperparameters()
        self.model = create_detector_model(arch, num_classes, pretrained, drop_rate, **(model_kwargs or {}))
        init_head(self.model, head_init)
        if head_norm == "batchnorm":
            attach_head_norm(self.model)
        elif head_norm != "none":
            raise InputError(f"unknown model.head_norm {head_norm!r}; valid: none, batchnorm")
        self.n_trainable = set_trainable(self.model, mode, last_n)
        if solver == LBFGS:
            if not cached_features or mode != "frozen":
                raise InputError("optim.solver 'lbfgs' fits the head on cached features: needs model.mode=frozen and trainer.cache_features=true")
            if head_norm != "none":
                raise InputError("optim.solver 'lbfgs' fits a plain linear head: needs model.head_norm=none")
            self.automatic_optimization = False  # one L-BFGS solve on the cached features instead of gradient steps
        elif solver != "sgd":
            raise InputError(f"unknown optim.solver {solver!r}; valid: lbfgs, sgd")
        self.head_fit: dict[str, Any] = {}
        # the loss keeps the weights as its own buffer, so they follow the module to its device
        weight = torch.tensor(class_weights, dtype=torch.float32) if class_weights else None
        self.criterion = nn.CrossEntropyLoss(weight=weight, label_smoothing=label_smoothing)
        from torchmetrics.classification import MulticlassAccuracy

        self.val_accuracy = MulticlassAccuracy(num_classes, average="micro")
        self.val_balanced_accuracy = MulticlassAccuracy(num_classes, average="macro")  # mean recall

    def train(self, mode: bool = True) -> "DetectorModule":
        """``nn.Module.train``, except that frozen parts stay in eval mode.

        Every submodule whose parameters are all frozen (the backbone in ``frozen`` mode, the stages before the
        last N in ``last_n`` mode) keeps its normalisation statistics and runs without dropout.
        """
        super().train(mode)
        if mode:
            self._freeze_modes()
        return self

    def _freeze_modes(self) -> None:
        for m in self.model.modules():
            params = list(m.parameters())
            if params and not any(p.requires_grad for p in params):
                m.train(False)

    def on_train_batch_start(self, batch: Any, batch_idx: int) -> None:
        # Lightning restores each submodule's own mode around its loops without calling ``train`` above
        self._freeze_modes()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits of the timm model."""
        return self.model(x)

    def _logits(self, x: torch.Tensor) -> torch.Tensor:
        """Logits of images, or of cached pooled features (then only the head runs)."""
        if self.hparams.cached_features:
            return classifier_logits(self.model, x, self.hparams.drop_rate, self.training)
        return self.model(x)

    def training_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> torch.Tensor:
        x, y = batch
        if self.hparams.solver == LBFGS:
            if not self.head_fit:
                self._solve_head()
            with torch.no_grad():
                loss = self.criterion(self._logits(x), y)
            self.optimizers().step()  # lr 0: only keeps Lightning's step count (checkpoints, logs) moving
            self.log("train/loss", loss, prog_bar=True, batch_size=len(y))
            return loss
        loss = self.criterion(self._logits(x), y)
        self.log("train/loss", loss, prog_bar=True, batch_size=len(y))
        return loss

    def validation_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> None:
        x, y = batch
        logits = self._logits(x)
        self.val_accuracy(logits, y)
        self.val_balanced_accuracy(logits, y)
        self.log("val/loss", nn.functional.cross_entropy(logits, y), sync_dist=True, batch_size=len(y))
        self.log("val/accuracy", self.val_accuracy, prog_bar=True, batch_size=len(y))
        self.log("val/balanced_accuracy", self.val_balanced_accuracy, batch_size=len(y))

    def _solve_head(self) -> None:
        """The head at the optimum of its convex problem, on every rank's cached train features (gathered: each rank
        solves the same problem), with its L2 strength chosen on validation or by cross-validation."""
        from dataigm.train.features import fit_linear_head

        hp = self.hparams
        datamodule = self.trainer.datamodule
        features, labels = datamodule.cached_train()  # [views, n, dim]: this rank's share
        if self.trainer.world_size > 1:
            features, labels = self._gather_rows(features, 1), self._gather_rows(labels, 0)
        val = datamodule.cached_val()
        weight, bias, self.head_fit = fit_linear_head(
            (features.to(self.device), labels.to(self.device)), tuple(t.to(self.device) for t in val) if val else None,
            hp.num_classes, hp.class_weights, min_val_per_class=hp.min_val_per_class, folds=hp.cv_folds, seed=hp.seed)
        head = self.model.get_classifier()
        with torch.no_grad():
            head.weight.copy_(weight)
            head.bias.copy_(bias)

    def _gather_rows(self, tensor: torch.Tensor, dim: int) -> torch.Tensor:
        """Every rank's ``tensor`` concatenated along ``dim`` (ranks may hold one row more than others)."""
        sizes = self.all_gather(torch.tensor(tensor.shape[dim], device=self.device)).flatten().tolist()
        pad = [0, 0] * (tensor.ndim - 1 - dim) + [0, max(sizes) - tensor.shape[dim]]
        gathered = self.all_gather(nn.functional.pad(tensor.to(self.device), pad))  # [world, ...]
        return torch.cat([g.narrow(dim, 0, int(n)) for g, n in zip(gathered, sizes)], dim=dim).cpu()

    def configure_optimizers(self) -> Any:
        from timm.optim import create_optimizer_v2

        hp = self.hparams
        if hp.solver == LBFGS:
            return torch.optim.SGD(self.model.get_classifier().parameters(), lr=0.0)
        optimizer = create_optimizer_v2(self.model, opt=hp.optimizer, lr=hp.lr, weight_decay=hp.weight_decay)
        if hp.scheduler == "constant" and not hp.warmup_epochs:
            return optimizer
        total = max(1, int(self.trainer.estimated_stepping_batches))
        warmup = int(hp.warmup_epochs * total / max(1, self.trainer.max_epochs or 1))
        cosine = hp.scheduler == "cosine"

        def factor(step: int) -> float:
            if step < warmup:
                return (step + 1) / warmup
            if not cosine:
                return 1.0
            progress = (step - warmup) / max(1, total - warmup)
            return 0.5 * (1 + math.cos(math.pi * min(progress, 1.0)))

        schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, factor)
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": schedule, "interval": "step"}}
