"""Real photos for judge audits: eight variants of scikit-image's cat photo (crops, flips, grey, rotation, a tiny
copy) and a few variants of other scikit-image photos. The ImageNet judges of real EfficientNet-Lite0 weights
disagree on the cat variants (tabby, Egyptian cat, tiger cat...), so audits of them give non-trivial numbers."""

from __future__ import annotations

from pathlib import Path

from PIL import ImageOps
from real_weights import skimage_photo

OTHERS = ("coffee", "astronaut", "rocket", "camera", "horse")
CAT_VARIANTS = ("full", "flip", "gray", "left", "right", "center", "small", "rot")


def variants(img):
    """The eight variants of one photo, by name."""
    w, h = img.size
    return {"full": img, "flip": ImageOps.mirror(img), "gray": ImageOps.grayscale(img).convert("RGB"), "left": img.crop((0, 0, w * 2 // 3, h)),
            "right": img.crop((w // 3, 0, w, h)), "center": img.crop((w // 4, h // 4, 3 * w // 4, 3 * h // 4)),
            "small": img.resize((48, 48 * h // w)), "rot": img.rotate(90, expand=True)}


def small(img):
    """A quarter-size copy (at least 64 px a side): small CPU tests."""
    return img.resize((max(64, img.width // 4), max(64, img.height // 4)))


def cat_images() -> list:
    """The eight cat variants, in :data:`CAT_VARIANTS` order."""
    v = variants(skimage_photo("chelsea"))
    return [small(v[name]) for name in CAT_VARIANTS]


def other_images(per_photo: int = 3) -> list:
    """``per_photo`` variants of each photo of :data:`OTHERS` (no cat in any)."""
    return [small(im) for name in OTHERS for im in list(variants(skimage_photo(name)).values())[:per_photo]]


def write_labelled_photos(root: Path) -> Path:
    """``root/cat/chelsea_<variant>.png`` and ``root/other/<photo>_<variant>.png``."""
    for folder in ("cat", "other"):
        (root / folder).mkdir(parents=True, exist_ok=True)
    for name, im in zip(CAT_VARIANTS, cat_images()):
        im.save(root / "cat" / f"chelsea_{name}.png")
    for name in OTHERS:
        for variant, im in list(variants(skimage_photo(name)).items())[:3]:
            small(im).save(root / "other" / f"{name}_{variant}.png")
    return root


def write_eval_tree(root: Path) -> Path:
    """original/{forget: 8 cats, pair: 8 other photos, retain: 8 other photos}; method ``m`` forgets half the
    cats (its forget images 0-3 are other photos) and keeps the retain images. Files are named <index>_<seed>."""
    cats, others = cat_images(), other_images(per_photo=4)
    for i in range(8):
        for folder, im in (("original/forget", cats[i]), ("original/pair", others[i]), ("original/retain", others[8 + i]),
                           ("m/forget", others[i] if i < 4 else cats[i]), ("m/retain", others[8 + i])):
            (root / folder).mkdir(parents=True, exist_ok=True)
            im.save(root / folder / f"{i}_{i}.png")
    return root
