"""timm glue shared by training, evaluation and export: model creation, data config and transforms.

No Lightning import here, so evaluating or exporting a detector never loads the training framework.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

import torch
from PIL import Image
from torch import nn


def create_detector_model(
    arch: str, num_classes: int, pretrained: bool | str = False, drop_rate: float = 0.0, **kwargs: Any
) -> nn.Module:
    """``timm.create_model`` with starting weights from timm's default tag (True), a Hub id or a local file.

    A Hub id (``org/name``) or a local checkpoint path replaces where the weights come from while the
    architecture stays ``arch``; the classifier is re-initialised for ``num_classes``.
    """
    import timm

    if not arch.startswith(("hf-hub:", "local-dir:")) and not timm.is_model(arch):
        raise ValueError(f"unknown timm architecture {arch!r}; see timm.list_models() for valid names")
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
