"""The references' CLIP image preprocessing, rebuilt here from their code (independent of dataigm's).

* :func:`openai_transform`: openai/CLIP ``clip/clip.py`` ``_transform(n_px)``, the ``preprocess`` that
  ``clip.load`` returns (Q16, MACE's and SPM's CLIP accuracy), with torchvision as that file uses it.
* :func:`transformers4_clip_pixels`: transformers 4's ``CLIPImageProcessor`` (``image_processing_clip.py``
  ``preprocess``: ``convert_rgb``, ``resize`` with ``get_resize_output_image_size(default_to_square=False)``
  through PIL, ``center_crop`` of ``image_transforms.py``, ``rescale``, ``normalize``), the only path of the
  transformers releases that IGMU's ``benchmark.py``, torchmetrics' ``clip_score`` (CSDR) and diffusers' safety
  checker ran.
* :func:`real_photos`: real photos at sizes other than 224 (odd, portrait, landscape, both crop parities).
"""

from __future__ import annotations

import numpy as np
import torch
from PIL import Image

OPENAI_MEAN = (0.48145466, 0.4578275, 0.40821073)
OPENAI_STD = (0.26862954, 0.26130258, 0.27577711)


def openai_transform(n_px: int):  # noqa: ANN201 (a torchvision Compose)
    """openai/CLIP clip/clip.py ``_transform``, as written there."""
    from torchvision.transforms import CenterCrop, Compose, InterpolationMode, Normalize, Resize, ToTensor

    def _convert_image_to_rgb(image: Image.Image) -> Image.Image:
        return image.convert("RGB")

    return Compose([
        Resize(n_px, interpolation=InterpolationMode.BICUBIC),
        CenterCrop(n_px),
        _convert_image_to_rgb,
        ToTensor(),
        Normalize(OPENAI_MEAN, OPENAI_STD),
    ])


def openai_pixels(images: list[Image.Image], n_px: int) -> torch.Tensor:
    t = openai_transform(n_px)
    return torch.stack([t(im) for im in images])


def transformers4_clip_pixels(images: list[Image.Image], size: int, crop: int, mean=OPENAI_MEAN, std=OPENAI_STD) -> torch.Tensor:
    """transformers 4's CLIPImageProcessor.preprocess (resample BICUBIC, do_convert_rgb, rescale 1/255)."""
    out = []
    for im in images:
        im = im.convert("RGB")
        w, h = im.size
        short, long = (w, h) if w <= h else (h, w)
        new_short, new_long = size, int(size * long / short)  # get_resize_output_image_size
        new_h, new_w = (new_long, new_short) if w <= h else (new_short, new_long)
        arr = np.array(im.resize((new_w, new_h), resample=Image.Resampling.BICUBIC, reducing_gap=None))
        top, left = (new_h - crop) // 2, (new_w - crop) // 2  # image_transforms.center_crop
        arr = arr[top : top + crop, left : left + crop]
        arr = (arr.astype(np.float64) * (1 / 255)).astype(np.float32)  # rescale
        arr = (arr - np.array(mean, dtype=np.float32)) / np.array(std, dtype=np.float32)  # normalize
        out.append(torch.from_numpy(arr.transpose(2, 0, 1).copy()))
    return torch.stack(out)


def real_photos() -> list[Image.Image]:
    """Real photos at sizes other than 224: Grace Hopper (512x600) and crops/resizes of it, the astronaut, coffee
    and a cat; long sides whose resized length minus the crop is odd and even."""
    from skimage import data

    from real_weights import grace_hopper

    g = Image.open(grace_hopper()).convert("RGB")
    return [g, g.resize((301, 389)), g.crop((0, 100, g.width, 450)), Image.fromarray(data.astronaut()),
            Image.fromarray(data.coffee()), Image.fromarray(data.chelsea()), g.resize((640, 427)), g.resize((225, 999))]
