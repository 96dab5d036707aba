"""A tiny exported detector with seeded random weights, following the export contract (timm Hub layout +
a ``dataigm`` section), for tests, benchmarks and the demo when no trained detector is at hand.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Sequence


def build_tiny_detector(
    folder: Path, label_names: Sequence[str] = ("not_nude", "nude"), *, arch: str = "test_resnet", positive_label: int = 1,
    threshold: float = 0.5, category: str = "nudity", img_size: int = 64, seed: int = 0,
) -> Path:
    """Save a randomly initialised timm ``arch`` as ``config.json`` + ``model.safetensors`` in ``folder``."""
    import timm
    import torch
    from timm.models import save_for_hf

    from dataigm.core.detector_export import DetectorExport

    folder = Path(folder)
    torch.manual_seed(seed)
    model = timm.create_model(arch, pretrained=False, num_classes=len(label_names)).eval()
    data_config = {"input_size": (3, img_size, img_size), "crop_pct": 1.0, "interpolation": "bilinear"}
    save_for_hf(model, str(folder), model_config={"label_names": list(label_names)}, safe_serialization=True, data_config=data_config)
    cfg_path = folder / "config.json"
    cfg = json.loads(cfg_path.read_text())
    cfg["dataigm"] = DetectorExport(threshold=threshold, positive_label=positive_label, category=category).model_dump(mode="json")
    cfg_path.write_text(json.dumps(cfg, indent=2))
    return folder


def build_tiny_igmu_head(path: Path, hidden_dim: int = 16, seed: int = 0, bias: float | None = None) -> Path:
    """Save a seeded random head in IGMU's layout (``torch.save(head.state_dict(), 'classifier_head.pth')``, a
    pickle) at ``path``; ``hidden_dim`` must match the CLIP projection size (512 for ViT-B/32, 16 for the tiny CLIP).
    ``bias`` sets the last layer's bias, to place the decision boundary."""
    import torch

    from dataigm.judges.igmu import build_igmu_head

    torch.manual_seed(seed)
    head = build_igmu_head(hidden_dim)
    if bias is not None:
        with torch.no_grad():
            head.classifier[-1].bias.fill_(bias)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(head.state_dict(), path)
    return path
