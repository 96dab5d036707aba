"""timm glue shared by training, evaluation, export and curation: model creation, data config, transforms, and
the two halves of a classifier's forward (:func:`pooled_features`, :func:`classifier_logits`).

No Lightning import here, so evaluating or exporting a detector, or curating with one, never loads the training
framework.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

import torch
from PIL import Image
from torch import nn

from dataigm.core.errors import InputError


def create_detector_model(
    arch: str, num_classes: int, pretrained: bool | str = False, drop_rate: float = 0.0, **kwargs: Any
) -> nn.Module:
    """``timm.create_model`` with starting weights from timm's default tag (True), a Hub id or a local file.

    A Hub id (``org/name``) or a local checkpoint path replaces where the weights come from while the
    architecture stays ``arch``; the classifier is re-initialised for ``num_classes``.
    """
    import timm

    if not arch.startswith(("hf-hub:", "local-dir:")) and not timm.is_model(arch):
        raise InputError(f"unknown timm architecture {arch!r}; see timm.list_models() for valid names")
    overlay: dict[str, Any] = {}
    if isinstance(pretrained, str):
        local = Path(pretrained).expanduser()
        if local.exists():
            overlay = {"file": str(local / "model.safetensors") if local.is_dir() else str(local)}
        else:
            overlay = {"hf_hub_id": pretrained.removeprefix("hf-hub:")}
    return timm.create_model(
        arch, pretrained=bool(pretrained), num_classes=num_classes, drop_rate=drop_rate,
        **({"pretrained_cfg_overlay": overlay} if overlay else {}), **kwargs,
    )


# ``timm.data.create_transform`` training arguments the recipe's augment section maps to.
AUGMENT_ARGS = ("scale", "ratio", "hflip", "vflip", "color_jitter", "auto_augment", "re_prob")


def data_config_for(model: torch.nn.Module, img_size: int) -> dict[str, Any]:
    """timm's data config (mean, std, interpolation, crop) of ``model`` at ``img_size``."""
    from timm.data import resolve_data_config

    cfg = resolve_data_config({"input_size": (3, img_size, img_size)}, model=model)
    return {k: (list(v) if isinstance(v, tuple) else v) for k, v in cfg.items()}


def build_transform(data_config: dict[str, Any], training: bool, augment: dict[str, Any] | None = None) -> Callable[[Image.Image], torch.Tensor]:
    """``timm.data.create_transform`` for training (with the recipe's augmentation) or evaluation."""
    from timm.data import create_transform

    cfg = {k: tuple(v) if isinstance(v, list) else v for k, v in data_config.items()}
    if not training:
        return create_transform(**cfg, is_training=False)
    aug = {k: tuple(v) if isinstance(v, list) else v for k, v in (augment or {}).items() if k in AUGMENT_ARGS}
    return create_transform(
        input_size=cfg["input_size"], is_training=True, interpolation=cfg.get("interpolation", "bilinear"), mean=cfg["mean"], std=cfg["std"], **aug
    )


def _classifier_path(model: nn.Module) -> str:
    """Dotted attribute path of the module ``model.get_classifier()`` returns (e.g. ``classifier``, ``head``, ``head.fc``)."""
    head = model.get_classifier()
    for name, module in model.named_modules():
        if module is head and name:
            return name
    raise ValueError(f"{type(model).__name__}: its classifier is not a submodule")


def _linear(head: nn.Module) -> nn.Linear:
    linear = head[-1] if isinstance(head, nn.Sequential) else head
    if not isinstance(linear, nn.Linear):
        raise InputError(f"the classifier is a {type(linear).__name__}, not a Linear layer: use model.head_init=timm and model.head_norm=none")
    return linear


def init_head(model: nn.Module, how: str) -> None:
    """Re-initialise the linear classifier for the task.

    ``trunc_normal``: weights ~ truncated normal with std 0.01 and zero bias, as MAE's linear probe
    (``main_linprobe.py``, following MoCo v3) and DINO's ``eval_linear.py`` (normal, std 0.01); ``zero``: all
    zeros (the starting point of CLIP's logistic regression); ``timm``: keep the architecture's initialisation.
    """
    if how == "timm":
        return
    from timm.layers import trunc_normal_

    linear = _linear(model.get_classifier())
    with torch.no_grad():
        if how == "trunc_normal":
            trunc_normal_(linear.weight, std=0.01)
        elif how == "zero":
            linear.weight.zero_()
        else:
            raise InputError(f"unknown model.head_init {how!r}; valid: trunc_normal, zero, timm")
        if linear.bias is not None:
            linear.bias.zero_()


def attach_head_norm(model: nn.Module) -> nn.Module:
    """Put a non-affine ``BatchNorm1d`` before the linear classifier (MAE's ``main_linprobe.py``); returns ``model``."""
    path = _classifier_path(model)
    linear = _linear(model.get_submodule(path))
    parent, _, name = path.rpartition(".")
    host = model.get_submodule(parent) if parent else model
    setattr(host, name, nn.Sequential(nn.BatchNorm1d(linear.in_features, affine=False, eps=1e-6), linear))
    return model


def fold_head_norm(model: nn.Module) -> nn.Module:
    """Fold an attached head norm (its running statistics) into the linear layer: a plain timm model again."""
    path = _classifier_path(model)
    head = model.get_submodule(path)
    if not isinstance(head, nn.Sequential):
        return model
    norm, linear = head[0], _linear(head)
    scale = 1.0 / torch.sqrt(norm.running_var + norm.eps)
    folded = nn.Linear(linear.in_features, linear.out_features)
    with torch.no_grad():
        folded.weight.copy_(linear.weight * scale)
        folded.bias.copy_((linear.bias if linear.bias is not None else 0) - (linear.weight * scale) @ norm.running_mean)
    parent, _, name = path.rpartition(".")
    setattr(model.get_submodule(parent) if parent else model, name, folded)
    return model


def pooled_features(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """The backbone's pooled features, the input of the classifier (timm's ``forward_head(pre_logits=True)``)."""
    return model.forward_head(model.forward_features(x), pre_logits=True)


def classifier_logits(model: nn.Module, features: torch.Tensor, drop_rate: float = 0.0, training: bool = False) -> torch.Tensor:
    """Logits from :func:`pooled_features`' output: the rest of timm's ``forward_head`` (dropout, then the classifier),
    so ``classifier_logits(model, pooled_features(model, x))`` is ``model(x)`` in eval mode."""
    features = nn.functional.dropout(features, p=drop_rate, training=training)
    return model.get_classifier()(features)
