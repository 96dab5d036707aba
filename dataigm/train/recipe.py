"""Detector recipes: one YAML file per detector (see ``detectors/*.yaml``), validated with pydantic up front.

A recipe says which data to learn from (a dataset folder or Hub dataset repo, one category, optionally a
positive class for a binary judge), which timm architecture and starting weights, how much of it to train
(``frozen`` backbone + head as in the paper, ``last_n`` blocks, or ``finetune``), the ``timm.data``
augmentation, class balancing, loss, optimizer, schedule and trainer settings, and how the binary decision
threshold is chosen on validation data. ``key.sub=value`` overrides are applied before validation, so a bad
override is reported like a bad recipe field.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal, get_args

from pydantic import Field, model_validator

from dataigm.core.atomic import json_sha256
from dataigm.core.errors import InputError
from dataigm.core.settings import StrictModel, apply_overrides, read_yaml_mapping, validate
from dataigm.recipe import RecipeError

TrainMode = Literal["frozen", "last_n", "finetune"]
BalanceMode = Literal["none", "loss", "sample"]
ThresholdRule = Literal["max_balanced_accuracy", "target_fpr"]
HeadInit = Literal["trunc_normal", "zero", "timm"]
HeadNorm = Literal["none", "batchnorm"]
Precision = Literal["32-true", "bf16-mixed", "16-mixed", "bf16-true", "16-true", "64-true", "32", "16", "bf16", "64"]
TRAIN_MODES: tuple[str, ...] = get_args(TrainMode)
BALANCE_MODES: tuple[str, ...] = get_args(BalanceMode)
THRESHOLD_RULES: tuple[str, ...] = get_args(ThresholdRule)


class DataSpec(StrictModel):
    """Where the shards come from and which labels the detector predicts."""

    path: str = ""  # dataset folder or Hub dataset repo id; ``--data`` overrides
    revision: str | None = None  # Hub revision (branch, tag or commit)
    category: str
    positive: str | None = None  # binary judge: this class vs the rest (e.g. church, nude, van_gogh)
    classes: list[str] | None = None  # multi-class subset/order; default: the dataset's label names
    other_class: str | None = None  # dataset labels outside ``classes`` become this class (else they are dropped)
    train_split: str = "train"
    val_split: str = "val"
    test_split: str = "test"
    # no val split: this stratified fraction of train becomes validation (threshold, best checkpoint); 0 disables
    val_fraction: float = Field(0.2, ge=0.0, lt=1.0)

    @model_validator(mode="after")
    def _check(self) -> "DataSpec":
        if self.positive and self.classes:
            raise InputError("give either 'positive' (binary judge) or 'classes' (multi-class), not both")
        return self


class DetectorModelSettings(StrictModel):
    """The timm model: architecture, starting weights and which part of it is trained."""

    arch: str
    pretrained: bool | str = False  # True: timm's default weights; str: Hub id or local checkpoint file/folder
    img_size: int = Field(224, ge=16)
    mode: TrainMode = "frozen"
    last_n: int = Field(0, ge=0)  # trainable backbone groups (blocks/stages) before the head, for mode last_n
    drop_rate: float = Field(0.0, ge=0.0, lt=1.0)
    # the new classifier: truncated normal (std 0.01) or zero weights and zero bias, as the MAE/DINO/CLIP linear
    # probes do; "timm" keeps the architecture's own initialisation (large logits on a 2-class head)
    head_init: HeadInit = "trunc_normal"
    head_norm: HeadNorm = "none"  # "batchnorm": non-affine BatchNorm1d on the features before the head (MAE linear probe)
    kwargs: dict[str, Any] = {}  # extra ``timm.create_model`` arguments (e.g. img_size for a ViT at another size)

    @model_validator(mode="after")
    def _check(self) -> "DetectorModelSettings":
        if self.mode == "last_n" and self.last_n < 1:
            raise InputError("mode 'last_n' needs last_n >= 1")
        return self


class AugmentSpec(StrictModel):
    """Training augmentation, passed to ``timm.data.create_transform(is_training=True, ...)``."""

    scale: tuple[float, float] = (0.08, 1.0)
    ratio: tuple[float, float] = (3 / 4, 4 / 3)
    hflip: float = Field(0.5, ge=0.0, le=1.0)
    vflip: float = Field(0.0, ge=0.0, le=1.0)
    color_jitter: float = Field(0.0, ge=0.0)
    auto_augment: str | None = None  # e.g. "rand-m9-mstd0.5"
    re_prob: float = Field(0.0, ge=0.0, le=1.0)  # random erasing
    enabled: bool = True  # streaming training: false uses the evaluation transform (no augmentation)
    views: int = Field(1, ge=1)  # cached features: view 1 is the evaluation transform, views 2..N augmented ones


class OptimSpec(StrictModel):
    """Loss, optimizer and learning-rate schedule."""

    name: str = "adamw"  # any name ``timm.optim.create_optimizer_v2`` knows
    lr: float = Field(1e-3, gt=0)
    weight_decay: float = Field(0.05, ge=0)
    label_smoothing: float = Field(0.0, ge=0.0, lt=1.0)
    scheduler: Literal["cosine", "constant"] = "cosine"
    warmup_epochs: float = Field(0.0, ge=0.0)


class TrainerSpec(StrictModel):
    """Lightning trainer and data loader settings."""

    epochs: int = Field(10, ge=1)
    batch_size: int = Field(64, ge=1)
    steps_per_epoch: int | None = Field(None, ge=1)  # default: one pass over the train split per epoch
    min_steps: int = Field(0, ge=0)  # at least this many optimisation steps in all (small data: more steps per epoch)
    cache_features: bool = True  # frozen mode: run the backbone once per augmentation view, train the head on the features
    num_workers: int = Field(4, ge=0)
    shuffle_buffer: int = Field(1000, ge=0)
    precision: Precision = "32-true"  # Lightning's: 32-true, bf16-mixed, 16-mixed (GPU), bf16-true, 16-true, 64-true
    accelerator: str = "auto"
    devices: int | str = 1
    num_nodes: int = Field(1, ge=1)
    strategy: str = "auto"  # "auto" becomes "ddp" when more than one device or node is used
    seed: int = 0
    eval_batch_size: int = Field(128, ge=1)


class ThresholdSpec(StrictModel):
    """How the binary decision threshold is chosen on validation data."""

    rule: ThresholdRule = "max_balanced_accuracy"
    target_fpr: float = Field(0.05, ge=0.0, le=1.0)
    # fewer validation images than this in either class: keep the calibrated 0.5 (a threshold chosen on a handful of
    # images overfits them: on ~6 carved Van Gogh photos one picked 0.844, held-out accuracy 0.67 vs 0.80 at 0.5)
    min_val_per_class: int = Field(50, ge=1)


class DetectorRecipe(StrictModel):
    """A detector recipe; see ``detectors/*.yaml``."""

    name: str
    description: str = ""
    concept: str = ""  # the taxonomy concept this judge detects (binary judges)
    data: DataSpec
    model: DetectorModelSettings
    augment: AugmentSpec = AugmentSpec()
    balance: BalanceMode = "loss"
    optim: OptimSpec = OptimSpec()
    trainer: TrainerSpec = TrainerSpec()
    threshold: ThresholdSpec = ThresholdSpec()

    @model_validator(mode="after")
    def _precision_fits_the_optimizer(self) -> "DetectorRecipe":
        if self.optim.name == "logistic" and self.trainer.precision in ("16-mixed", "16"):
            raise ValueError(f"trainer.precision {self.trainer.precision!r} with optim.name 'logistic': the L-BFGS probe takes "
                             "no gradient step, which 16-mixed's gradient scaler refuses; use 32-true or bf16-mixed")
        return self

    def sha256(self) -> str:
        """Digest of the validated recipe (after overrides), recorded in run.json."""
        return json_sha256(self.model_dump(mode="json"))


def parse_detector_recipe(data: Any, source: str = "<recipe>", overrides: list[str] | None = None) -> DetectorRecipe:
    """Validate a recipe dict (after overrides); raises :class:`RecipeError` naming source, field and value."""
    if isinstance(data, dict):
        data = apply_overrides(data, overrides or [], source, RecipeError)
    return validate(DetectorRecipe, data, source, "detector recipe", RecipeError)


def load_detector_recipe(path: str | Path, overrides: list[str] | None = None) -> DetectorRecipe:
    """Load a detector recipe YAML, apply ``key=value`` overrides and validate it."""
    return parse_detector_recipe(read_yaml_mapping(Path(path), "detector recipe", RecipeError), str(path), overrides)
