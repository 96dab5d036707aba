"""The image sizes a loaded pipeline really renders, checked after loading and before the first batch.

The recipe accepts multiples of 8, which SD 1.x/2.x and SDXL take. Transformer pipelines need more, and diffusers
reacts differently: Flux packs 2x2 latent patches and floors the size to a multiple of ``vae_scale_factor * 2``
with only a warning (a 72 px build writes 64 px images), SD3 and PixArt need ``vae_scale_factor * patch_size``
(SD3 raises at the first call, PixArt's patch embedding silently crops). So the factor is read from the pipeline.
"""

from __future__ import annotations

from typing import Any

from dataigm.core.errors import DataigmError


class UnsupportedSize(DataigmError, ValueError):
    """The recipe's width/height is not a size this pipeline renders as asked."""


def size_multiple(pipe: Any) -> tuple[int, str]:
    """The multiple width and height must be, and why (``vae_scale_factor 8 x packing 2``)."""
    vae_factor = int(getattr(pipe, "vae_scale_factor", 8) or 8)
    if hasattr(pipe, "_pack_latents"):  # Flux-style 2x2 packing of the latents
        return vae_factor * 2, f"vae_scale_factor {vae_factor} x 2 (packed latents)"
    config = getattr(getattr(pipe, "transformer", None), "config", None)
    patch = int(getattr(config, "patch_size", 1) or 1)
    if patch > 1:
        return vae_factor * patch, f"vae_scale_factor {vae_factor} x patch_size {patch}"
    return vae_factor, f"vae_scale_factor {vae_factor}"


def nearest_sizes(value: int, multiple: int) -> list[int]:
    """The valid sizes on either side of ``value`` (one when it is valid)."""
    low = max(multiple, value // multiple * multiple)
    return [low] if low == value else sorted({low, low + multiple if low < value else low})


def check_size(pipe: Any, width: int, height: int) -> None:
    """Raise :class:`UnsupportedSize` in one line, with the nearest valid sizes, unless ``pipe`` renders width x height."""
    multiple, why = size_multiple(pipe)
    if width % multiple == 0 and height % multiple == 0:
        return
    options = [f"{w}x{h}" for w in nearest_sizes(width, multiple) for h in nearest_sizes(height, multiple)]
    raise UnsupportedSize(f"{type(pipe).__name__} renders sizes in multiples of {multiple} px ({why}); "
                          f"generation width x height {width}x{height} is not one: nearest valid {', '.join(options)}")
