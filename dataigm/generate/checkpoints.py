"""State dicts of unlearned components as the field ships them, mapped onto a diffusers/transformers module.

Full or partial dicts (ESD-x and UCE save only the parameters they trained), diffusers keys, CompVis/LDM UNet keys
(``model.diffusion_model.*``, converted with diffusers' own ``convert_ldm_unet_checkpoint``), and CLIP text encoders
saved with transformers < 5 (``text_model.`` prefix, ``position_ids`` buffers). Pickles are read with
``torch.load(weights_only=True)`` only.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from dataigm.core.errors import DataigmError

log = logging.getLogger(__name__)

LDM_UNET_PREFIX = "model.diffusion_model."
# Buffers older transformers saved with CLIP text encoders; the model recomputes them.
IGNORED_KEYS = ("embeddings.position_ids", "text_model.embeddings.position_ids")
# Prefixes unlearning repos leave on text-encoder dicts, tried in order: older transformers (<5) kept CLIP's text
# tower under ``text_model.`` (transformers 5 maps it with ``PrefixChange(prefix_to_remove="text_model")`` in its
# conversion_mapping.py), LDM checkpoints under ``cond_stage_model.transformer.``, DataParallel under ``module.``.
STRIP_PREFIXES = ("module.", "cond_stage_model.transformer.text_model.", "cond_stage_model.transformer.", "text_model.")


class ModelLoadError(DataigmError, RuntimeError):
    """A model or one of its components could not be loaded; the message names it."""


def load_state_dict_file(path: Path) -> dict[str, Any]:
    """Tensors of a ``.safetensors`` file or a ``.pt/.pth/.bin/.ckpt`` pickle read with ``weights_only=True``.

    Common wrappers (``state_dict``, ``model``, ``module``) are unwrapped; nothing but tensors is unpickled.
    """
    import torch

    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        sd: Any = load_file(str(path))
    else:
        try:
            sd = torch.load(str(path), map_location="cpu", weights_only=True)  # never unpickle arbitrary objects
        except Exception as e:
            raise ModelLoadError(f"{path}: not a plain tensor checkpoint ({type(e).__name__}: {str(e).splitlines()[0][:200]}); "
                                 "only weights_only=True pickles are read") from e
    for wrapper in ("state_dict", "model", "module"):
        if isinstance(sd, dict) and wrapper in sd and isinstance(sd[wrapper], dict):
            sd = sd[wrapper]
    if not isinstance(sd, dict) or not sd:
        raise ModelLoadError(f"{path}: holds no state dict of tensors")
    return {k: v for k, v in sd.items() if isinstance(v, torch.Tensor)}


def convert_ldm_unet(sd: dict[str, Any], unet_config: dict[str, Any]) -> dict[str, Any]:
    """CompVis/LDM UNet keys (``model.diffusion_model.*``), full or partial, to diffusers keys.

    Uses diffusers' own ``convert_ldm_unet_checkpoint``. It counts blocks from the keys present, so a partial dict
    (ESD-x: only ``attn2``) is padded with one placeholder key per block index up to the highest one, and the
    placeholders are dropped after the conversion.
    """
    import re

    from diffusers.loaders.single_file_utils import DIFFUSERS_TO_LDM_MAPPING, convert_ldm_unet_checkpoint

    ldm = {k: v for k, v in sd.items() if k.startswith(LDM_UNET_PREFIX)}
    pad = "__dataigm_pad__"
    padded = dict(ldm)
    for extra in ("class_embed_type", "addition_embed_type"):  # read unconditionally when the config has them (SDXL)
        for ldm_key in DIFFUSERS_TO_LDM_MAPPING["unet"][extra].values():
            padded.setdefault(LDM_UNET_PREFIX + ldm_key, None)
    for block in ("input_blocks", "middle_block", "output_blocks"):
        ids = [int(m.group(1)) for k in ldm if (m := re.match(rf"{re.escape(LDM_UNET_PREFIX)}{block}\.(\d+)\.", k))]
        for i in range(max(ids) + 1 if ids else 0):
            padded[f"{LDM_UNET_PREFIX}{block}.{i}.{pad}"] = None
    converted = convert_ldm_unet_checkpoint(padded, dict(unet_config))
    out = {k: v for k, v in converted.items() if pad not in k and v is not None}
    lost = len(ldm) - len(out)
    if lost:
        raise ModelLoadError(f"{lost} of {len(ldm)} LDM UNet keys have no diffusers counterpart")
    return out


def adapt_state_dict(module: Any, sd: dict[str, Any]) -> tuple[dict[str, Any], str]:
    """Map a state dict onto ``module``'s key layout; returns (mapped dict, format name).

    Formats: ``diffusers`` (the module's own keys), ``ldm`` (CompVis ``model.diffusion_model.*`` UNet keys,
    converted with diffusers' single-file utilities), ``<prefix>``-prefixed dicts (older transformers' ``text_model.``,
    LDM text encoders, DataParallel ``module.``). ``position_ids`` buffers are dropped.
    """
    own = set(module.state_dict())
    sd = {k: v for k, v in sd.items() if k not in IGNORED_KEYS}
    if set(sd) <= own:
        return sd, "diffusers"
    if any(k.startswith(LDM_UNET_PREFIX) for k in sd) and hasattr(module, "config") and "layers_per_block" in module.config:
        rest = [k for k in sd if not k.startswith(LDM_UNET_PREFIX)]
        if rest:
            raise ModelLoadError(f"LDM checkpoint holds more than the UNet ({len(rest)} other keys, e.g. {rest[:2]}); "
                                 "a whole original checkpoint loads as model=FILE instead")
        return convert_ldm_unet(sd, module.config), "ldm"
    best, best_fmt = sd, "diffusers"
    for prefix in STRIP_PREFIXES:
        stripped = {k.removeprefix(prefix): v for k, v in sd.items() if k.removeprefix(prefix) not in IGNORED_KEYS}
        if len(set(stripped) & own) > len(set(best) & own):
            best, best_fmt = stripped, f"{prefix}-prefixed"
    prefixes = {k.split(".", 1)[0] + "." for k in own}
    if len(prefixes) == 1:  # the model nests everything (older transformers' text_model.); add the prefix instead
        (prefix,) = prefixes
        added = {prefix + k: v for k, v in sd.items()}
        if len(set(added) & own) > len(set(best) & own):
            best, best_fmt = added, f"un{prefix}-prefixed"
    return best, best_fmt


def apply_state_dict(module: Any, sd: dict[str, Any], what: str) -> dict[str, Any]:
    """Load a full or partial state dict into ``module`` in place.

    A subset is accepted (ESD-x and UCE ship only the parameters they trained) when no key is unexpected and every
    shape matches; what was replaced is returned and logged. Anything else raises, naming the keys.
    """
    try:
        mapped, fmt = adapt_state_dict(module, sd)
    except ModelLoadError as e:
        raise ModelLoadError(f"{what}: {e}") from e
    own = module.state_dict()
    unexpected = sorted(set(mapped) - set(own))
    if unexpected:
        raise ModelLoadError(
            f"{what}: keys do not match {type(module).__name__} ({len(unexpected)} unexpected, e.g. {unexpected[:2]}; "
            f"read as {fmt}). Accepted: diffusers keys, LDM 'model.diffusion_model.' UNet keys, 'text_model.'-prefixed "
            "CLIP keys, full or partial; an original checkpoint of the whole model loads as model=FILE instead"
        )
    wrong = [f"{k} {tuple(v.shape)} != {tuple(own[k].shape)}" for k, v in mapped.items() if tuple(v.shape) != tuple(own[k].shape)]
    if wrong:
        raise ModelLoadError(f"{what}: {len(wrong)} tensors have the wrong shape for {type(module).__name__}, e.g. {wrong[:2]} "
                             "(a checkpoint of another model size or version?)")
    if not mapped:
        raise ModelLoadError(f"{what}: no tensors to load")
    module.load_state_dict(mapped, strict=False)
    log.info("%s: replaced %d of %d tensors (%s keys)", what, len(mapped), len(own), fmt)
    return {"format": fmt, "tensors_replaced": len(mapped), "tensors_total": len(own), "partial": len(mapped) < len(own)}
