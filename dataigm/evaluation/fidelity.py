"""Image fidelity against the original model: LPIPS over correctly paired images, FID and KID through torchmetrics.

Feature networks keep their real loading paths: LPIPS uses torchmetrics' own (torchvision backbone weights +
the LPIPS linear layers shipped in torchmetrics); FID/KID use torchmetrics' Inception (``inception``, needs the
``torch-fidelity`` package) or any timm model as the feature extractor (``local-dir:PATH``, ``hf-hub:org/name``
or a timm model name), loaded with ``timm.create_model(..., pretrained=True, num_classes=0)``.
"""

from __future__ import annotations

from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator, Sequence

import numpy as np
import torch
from torch import nn

from dataigm.core.errors import InputError
from dataigm.core.images import decode_rgb
from dataigm.core.shards import ShardIndex
from dataigm.judges.images import ImageRef

LPIPS_NETS = ("alex", "vgg", "squeeze")


class ImageReader:
    """Reads the bytes of files and of shard samples (random access through :class:`ShardIndex`).

    Close it (or use it as a context manager) to release the open shards.
    """

    def __init__(self, max_open: int = 4) -> None:
        self.shards = ShardIndex(max_open)

    def __enter__(self) -> "ImageReader":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def read(self, ref: ImageRef) -> bytes:
        """The encoded bytes of a file, or of a shard sample's image member."""
        return self.shards.image_bytes(ref.path, ref.key) if ref.key else Path(ref.path).read_bytes()

    def image(self, ref: ImageRef, size: int | None = None) -> Any:
        """The RGB PIL image of ``ref``, optionally resized to ``size`` x ``size`` (bicubic)."""
        from PIL import Image

        img = decode_rgb(self.read(ref), ref.id)
        return img.resize((size, size), Image.BICUBIC) if size else img

    def close(self) -> None:
        """Close every open shard."""
        self.shards.close()


@contextmanager
def open_reader(reader: ImageReader | None) -> Iterator[ImageReader]:
    """``reader`` as given (its owner closes it), or a new reader closed on exit."""
    if reader is not None:
        yield reader
        return
    with ImageReader() as own:
        yield own


def to_uint8_tensor(images: Sequence[Any]) -> torch.Tensor:
    """PIL images of one size -> uint8 tensor [N, 3, H, W]."""
    return torch.from_numpy(np.stack([np.asarray(im, dtype=np.uint8) for im in images])).permute(0, 3, 1, 2).contiguous()


def _chunks(items: Sequence[Any], n: int) -> Iterator[Sequence[Any]]:
    for i in range(0, len(items), n):
        yield items[i : i + n]


# --- LPIPS -------------------------------------------------------------------------------------------------------
def create_lpips(net: str = "alex", device: str = "cpu") -> Any:
    """torchmetrics LPIPS with per-pair scores (torchvision ``net`` backbone; downloads its weights once)."""
    from torchmetrics.image.lpip import LearnedPerceptualImagePatchSimilarity

    if net not in LPIPS_NETS:
        raise InputError(f"LPIPS net {net!r} not in {LPIPS_NETS}")
    return LearnedPerceptualImagePatchSimilarity(net_type=net, reduction="none", normalize=True).to(device).eval()


def lpips_pairs(
    pairs: Sequence[tuple[ImageRef, ImageRef]], *, net: str = "alex", size: int | None = None, batch_size: int = 16,
    device: str = "cpu", reader: ImageReader | None = None, metric: Any = None,
) -> list[float]:
    """LPIPS of each (original, unlearned) pair, in the order given (pairs come sorted from :func:`pair_images`).

    Both images of a pair must have the same size unless ``size`` resizes both; a mismatch names the files.
    """
    metric = metric or create_lpips(net, device)
    scores: list[float] = []
    with open_reader(reader) as reader:
        for chunk in _chunks(pairs, batch_size):
            a, b = [], []
            for ref_o, ref_u in chunk:
                img_o, img_u = reader.image(ref_o, size), reader.image(ref_u, size)
                if img_o.size != img_u.size:
                    raise InputError(f"LPIPS needs equal sizes: {ref_o.id} is {img_o.size}, {ref_u.id} is {img_u.size}; pass size= to resize both")
                a.append(img_o)
                b.append(img_u)
            if len({im.size for im in a}) > 1:  # mixed sizes across pairs: score those pairs one by one
                for x, y in zip(a, b):
                    scores.append(_lpips_batch(metric, [x], [y], device)[0])
            else:
                scores.extend(_lpips_batch(metric, a, b, device))
    return scores


def _lpips_batch(metric: Any, a: Sequence[Any], b: Sequence[Any], device: str) -> list[float]:
    x = to_uint8_tensor(a).float().div(255).to(device)
    y = to_uint8_tensor(b).float().div(255).to(device)
    with torch.inference_mode():
        out = metric.net(x, y, normalize=True)
    return out.reshape(-1).float().cpu().tolist()


# --- FID / KID feature networks --------------------------------------------------------------------------------
class TimmFeatures(nn.Module):
    """A timm model as a FID/KID feature extractor: uint8 [N, 3, H, W] -> pooled features [N, D]."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        from timm.data import resolve_data_config

        self.model = model.eval()
        cfg = resolve_data_config(model=model)
        self.size = tuple(cfg["input_size"][1:])
        self.register_buffer("mean", torch.tensor(cfg["mean"]).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor(cfg["std"]).view(1, 3, 1, 1))
        self.num_features = int(model.num_features)

    def forward(self, imgs: torch.Tensor) -> torch.Tensor:
        x = imgs.float() / 255.0 if imgs.dtype == torch.uint8 else imgs.float()
        x = nn.functional.interpolate(x, size=self.size, mode="bilinear", align_corners=False, antialias=True)
        return self.model((x - self.mean) / self.std).float()


def create_feature_network(spec: str = "inception") -> int | nn.Module:
    """The ``feature`` argument for torchmetrics FID/KID.

    ``inception``: torchmetrics' 2048-d Inception-v3 (torch-fidelity; :func:`fid_kid` passes its ``weights_path``
    for a local copy of the weights). ``local-dir:PATH`` / ``hf-hub:org/name`` / a timm name: that timm model's
    pooled features.
    """
    if spec == "inception":
        from torchmetrics.utilities.imports import _TORCH_FIDELITY_AVAILABLE

        if not _TORCH_FIDELITY_AVAILABLE:
            raise InputError("FID/KID with 'inception' needs the torch-fidelity package (pip install torch-fidelity), or pass a timm feature network (local-dir:PATH)")
        return 2048
    import timm

    return TimmFeatures(timm.create_model(spec, pretrained=True, num_classes=0))


def fid_kid(
    real: Sequence[ImageRef], fake: Sequence[ImageRef], *, feature: str = "inception", weights_path: str | None = None,
    size: int = 299, batch_size: int = 32, device: str = "cpu", kid_subsets: int = 100, kid_subset_size: int = 1000,
    reader: ImageReader | None = None,
) -> dict[str, Any]:
    """FID and KID (mean, std) of ``fake`` (unlearned) against ``real`` (original model), images resized to ``size``.

    KID draws subsets of ``kid_subset_size`` images per side; with fewer images on a side it is left out and
    ``kid_note`` says why (subsets of every image have no spread: the std would read 0).
    """
    from torchmetrics.image.fid import FrechetInceptionDistance
    from torchmetrics.image.kid import KernelInceptionDistance

    if len(real) < 2 or len(fake) < 2:
        raise InputError(f"FID/KID need at least 2 images per side, got {len(real)} original and {len(fake)} unlearned")
    net = create_feature_network(feature)
    extra = {"feature_extractor_weights_path": weights_path} if (weights_path and net == 2048) else {}
    fid = FrechetInceptionDistance(feature=net, normalize=False, **extra).to(device)
    fewest = min(len(real), len(fake))
    # KID shares FID's feature network: one copy in memory, and it has the local weights (KID takes no weights path)
    kid = (KernelInceptionDistance(feature=fid.inception, subsets=kid_subsets, subset_size=kid_subset_size, normalize=False).to(device)
           if fewest >= kid_subset_size else None)
    with torch.inference_mode(), open_reader(reader) as reader:
        for refs, is_real in ((real, True), (fake, False)):
            for chunk in _chunks(refs, batch_size):
                x = to_uint8_tensor([reader.image(r, size) for r in chunk]).to(device)
                fid.update(x, real=is_real)
                if kid is not None:
                    kid.update(x, real=is_real)
        out: dict[str, Any] = {"fid": float(fid.compute()), "n_real": len(real), "n_fake": len(fake), "feature": feature,
                               "kid_subset_size": kid_subset_size}
        if kid is None:
            out["kid_note"] = f"KID left out: {fewest} images on a side, fewer than its subset size kid_subset_size={kid_subset_size}"
            return out
        kid_mean, kid_std = kid.compute()
        return {**out, "kid_mean": float(kid_mean), "kid_std": float(kid_std)}
