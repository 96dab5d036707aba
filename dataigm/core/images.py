"""The one image-input layer: which files are images, how a folder is walked, how bytes become RGB.

Ingest, curation, judging and fidelity all read images through these functions, so they agree on what an
image folder holds (hidden folders such as ``.ipynb_checkpoints/`` are skipped) and on the pixels of an image
(EXIF orientation applied, alpha flattened onto white, 16-bit and float greys rescaled). Torch-free.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any, Iterator

from dataigm.core.errors import DataigmError

# Every suffix Pillow reads that people store photographs or renders in.
IMAGE_SUFFIXES = frozenset(
    {".png", ".jpg", ".jpeg", ".jpe", ".jfif", ".webp", ".bmp", ".gif", ".tif", ".tiff", ".ppm", ".pgm", ".pbm", ".pnm", ".tga", ".jp2", ".j2k"}
)
BACKGROUND = (255, 255, 255)  # transparent pixels are flattened onto white


class ImageDecodeError(DataigmError):
    """A file could not be turned into an image; ``kind`` is a short reason ('empty file', 'truncated'...)."""

    def __init__(self, kind: str, detail: str) -> None:  # pragma: no mutate block, I/O, see docs/testing.md
        super().__init__(f"{kind}: {detail}")
        self.kind = kind
        self.detail = detail


def is_image_path(path: str | Path) -> bool:
    """Whether ``path`` has an image suffix (case-insensitive)."""
    return Path(path).suffix.lower() in IMAGE_SUFFIXES


def is_hidden(path: Path, root: Path) -> bool:
    """Whether any part of ``path`` below ``root`` starts with a dot (``.ipynb_checkpoints``, ``.git``, ``.DS_Store``)."""
    return any(part.startswith(".") for part in Path(path).relative_to(root).parts)


def walk_files(folder: str | Path) -> Iterator[Path]:
    """Every visible file below ``folder``, recursively, sorted by path; hidden files and folders are skipped."""
    folder = Path(folder)
    yield from sorted(p for p in folder.rglob("*") if p.is_file() and not is_hidden(p, folder))


def walk_images(folder: str | Path) -> Iterator[Path]:
    """Every visible image file below ``folder`` (see :data:`IMAGE_SUFFIXES`), recursively, sorted by path."""
    return (p for p in walk_files(folder) if is_image_path(p))


def to_rgb(img: Any) -> Any:  # pragma: no mutate block, I/O, see docs/testing.md
    """Convert any Pillow mode to 8-bit RGB: 16/32-bit and float greys are rescaled, alpha is flattened."""
    from PIL import Image

    mode = img.mode
    if mode == "RGB":
        return img
    if mode.startswith("I") or mode == "F":
        import numpy as np

        arr = np.asarray(img, dtype=np.float64)
        if not np.isfinite(arr).all():
            raise ImageDecodeError("nan", "the image has NaN or infinite pixels")
        if mode == "F" and arr.size and arr.max() <= 1.0:
            arr = arr * 255.0
        elif mode != "F" and arr.size and arr.max() > 255:
            arr = arr / 257.0  # 16-bit range 0..65535 -> 0..255
        return Image.fromarray(np.clip(np.rint(arr), 0, 255).astype(np.uint8), "L").convert("RGB")
    if mode in ("RGBA", "LA", "PA", "RGBa", "La") or (mode == "P" and "transparency" in img.info):
        rgba = img.convert("RGBA")
        flat = Image.new("RGB", rgba.size, BACKGROUND)
        flat.paste(rgba, mask=rgba.getchannel("A"))
        return flat
    return img.convert("RGB")  # L, 1, P, CMYK, YCbCr, LAB, HSV


def loaded_rgb(img: Any) -> Any:  # pragma: no mutate block, I/O, see docs/testing.md
    """A PIL image -> the RGB image every reader here sees: fully loaded, EXIF orientation applied, :func:`to_rgb`.

    :func:`open_rgb` runs it on every decoded file, so an image a caller already holds in memory (opened with
    Pillow, or made from an array) gives the same pixels as the same image read from its file.
    """
    from PIL import ImageOps

    img.load()
    return to_rgb(ImageOps.exif_transpose(img))


def open_rgb(data: bytes, name: str = "", max_size: int | None = None) -> tuple[Any, str, str, tuple[int, int]]:  # pragma: no mutate block, I/O, see docs/testing.md
    """Decode ``data`` -> (RGB PIL image, original format, original mode, original size).

    With ``max_size`` a JPEG is decoded at reduced scale (DCT-domain, never below ``max_size``); the caller
    resizes. Raises :class:`ImageDecodeError` for empty, non-image, truncated, NaN or otherwise undecodable data.
    """
    from PIL import Image, UnidentifiedImageError

    if not data:
        raise ImageDecodeError("empty file", _named(name, "0 bytes"))
    try:
        img = Image.open(io.BytesIO(data))
        fmt, mode, size = img.format or "", img.mode, img.size
        if max_size and fmt == "JPEG":
            img.draft(img.mode, (max_size, max_size))
        img = loaded_rgb(img)
    except ImageDecodeError as e:
        raise ImageDecodeError(e.kind, _named(name, e.detail)) from None
    except UnidentifiedImageError:
        raise ImageDecodeError("not an image", _named(name, "Pillow cannot identify the format")) from None
    except Image.DecompressionBombError as e:
        raise ImageDecodeError("too large", _named(name, str(e))) from None
    except (OSError, SyntaxError, ValueError, EOFError) as e:
        kind = "truncated" if "truncated" in str(e).lower() else "decode error"
        raise ImageDecodeError(kind, _named(name, str(e))) from None
    return img, fmt, mode, size


def _named(name: str, detail: str) -> str:
    return f"{name}: {detail}" if name else detail


def decode_rgb(data: bytes, name: str = "") -> Any:
    """Encoded image bytes -> a fully loaded RGB PIL image (see :func:`open_rgb`)."""
    return open_rgb(data, name)[0]
