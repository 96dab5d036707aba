"""Single-file checkpoints: which pipeline a file is, read from its keys with diffusers' own model-type inference."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from dataigm.generate.checkpoints import ModelLoadError

# diffusers' single-file model type (``infer_diffusers_model_type``) -> the text-to-image pipeline that runs it.
MODEL_TYPE_PIPELINES = {
    "v1": "StableDiffusionPipeline",
    "v2": "StableDiffusionPipeline",
    "xl_base": "StableDiffusionXLPipeline",
    "playground-v2-5": "StableDiffusionXLPipeline",
    "sd3": "StableDiffusion3Pipeline",
    "sd35_medium": "StableDiffusion3Pipeline",
    "sd35_large": "StableDiffusion3Pipeline",
    "flux-dev": "FluxPipeline",
    "flux-schnell": "FluxPipeline",
}
# Pipelines whose releases ship transformer-only files (no VAE, no text encoders): the file is their denoiser.
TRANSFORMER_CLASSES = {"StableDiffusion3Pipeline": "SD3Transformer2DModel", "FluxPipeline": "FluxTransformer2DModel"}
VAE_KEY_PREFIXES = ("first_stage_model.", "vae.")


class _ShapeOnly:
    """A tensor stand-in with only a shape: enough for diffusers' model-type inference without reading weights."""

    def __init__(self, shape: Any) -> None:
        self.shape = tuple(shape)


def checkpoint_keys_and_shapes(path: Path) -> dict[str, Any]:
    """Keys of a single-file checkpoint with shape-only values (safetensors headers; memory-mapped pickles)."""
    import torch

    if path.suffix == ".safetensors":
        from safetensors import safe_open

        with safe_open(str(path), framework="pt") as f:
            return {k: _ShapeOnly(f.get_slice(k).get_shape()) for k in f.keys()}
    sd = torch.load(str(path), map_location="cpu", weights_only=True, mmap=True)
    while isinstance(sd, dict) and isinstance(sd.get("state_dict"), dict):
        sd = sd["state_dict"]
    return {k: _ShapeOnly(v.shape) for k, v in sd.items() if isinstance(v, torch.Tensor)}


def infer_single_file(path: Path) -> dict[str, Any]:
    """Which pipeline a single-file checkpoint is, by diffusers' own ``infer_diffusers_model_type``.

    Returns ``model_type``, ``pipeline_class`` and ``transformer_only`` (a BFL/SAI-style file with no VAE: its
    ``<Model>.from_single_file`` loads the denoiser and ``model_config`` gives the other components).
    """
    from diffusers.loaders.single_file_utils import infer_diffusers_model_type

    try:
        keys = checkpoint_keys_and_shapes(path)
    except Exception as e:
        raise ModelLoadError(f"{path}: cannot read the checkpoint ({type(e).__name__}: {e})") from e
    model_type = infer_diffusers_model_type(keys)
    cls = MODEL_TYPE_PIPELINES.get(model_type)
    if cls is None:
        raise ModelLoadError(f"{path}: diffusers reads it as {model_type!r}, not a text-to-image model dataigm runs; "
                             f"supported: {', '.join(sorted(MODEL_TYPE_PIPELINES))} (or give pipeline_class=)")
    has_vae = any(k.startswith(VAE_KEY_PREFIXES) for k in keys)
    return {"model_type": model_type, "pipeline_class": cls, "transformer_only": cls in TRANSFORMER_CLASSES and not has_vae}
