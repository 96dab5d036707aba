"""Tiny pipelines of every family dataigm builds with (SD 1.x, SDXL, SD3, Flux, PixArt), built from config with
seeded random weights and saved as diffusers folders in their real layouts (the components, text encoders and
``model_index.json`` a released model has), then loaded through ``from_pretrained`` like a real model.

Their VAEs have the real downscale factor (8: four blocks) and the transformers their real patch sizes (SD3 and
PixArt 2, Flux packs 2x2), so size rules, latent shapes and noise sizes are those of the released models. The
configs follow diffusers' own ``get_dummy_components`` in its pipeline tests, with widths matched to each other.
The T5 slots use the character-level CLIP tokenizer of :mod:`dataigm.generate.tiny` (nothing can be downloaded).
Used by the tests and by ``tools/gpu_check.py``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

FAMILIES = ("sd", "sdxl", "sd3", "flux", "pixart")


def _tokenizer(folder: Path, max_length: int = 77) -> tuple[Any, int]:
    from transformers import CLIPTokenizer

    from dataigm.generate.tiny import write_char_tokenizer

    vocab = write_char_tokenizer(folder)
    return CLIPTokenizer(str(folder / "vocab.json"), str(folder / "merges.txt"), model_max_length=max_length), vocab


def _vae(latent_channels: int = 4, seed: int = 1, **kwargs: Any) -> Any:
    """An AutoencoderKL with four blocks: ``vae_scale_factor`` 8, as in every released model of these families."""
    import torch
    from diffusers import AutoencoderKL

    torch.manual_seed(seed)
    return AutoencoderKL(in_channels=3, out_channels=3, down_block_types=("DownEncoderBlock2D",) * 4,
                         up_block_types=("UpDecoderBlock2D",) * 4, block_out_channels=(8, 8, 8, 8), layers_per_block=1,
                         latent_channels=latent_channels, norm_num_groups=8, sample_size=64, **kwargs)


def _clip(vocab: int, hidden: int, layers: int = 2, projection: bool = False, seed: int = 2) -> Any:
    import torch
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTextModelWithProjection

    config = CLIPTextConfig(vocab_size=vocab, hidden_size=hidden, intermediate_size=37, num_hidden_layers=layers,
                            num_attention_heads=4, max_position_embeddings=77, projection_dim=hidden,
                            bos_token_id=vocab - 2, eos_token_id=vocab - 1, pad_token_id=vocab - 1)
    torch.manual_seed(seed)
    return (CLIPTextModelWithProjection if projection else CLIPTextModel)(config)


def _t5(vocab: int, d_model: int = 32, seed: int = 3) -> Any:
    import torch
    from transformers import T5Config, T5EncoderModel

    torch.manual_seed(seed)
    return T5EncoderModel(T5Config(vocab_size=vocab, d_model=d_model, d_kv=8, d_ff=37, num_layers=2, num_heads=4,
                                   relative_attention_num_buckets=8, pad_token_id=vocab - 1, eos_token_id=vocab - 1,
                                   decoder_start_token_id=0))


def _sd(folder: Path) -> Any:
    from dataigm.generate.tiny import build_tiny_pipeline

    build_tiny_pipeline(folder)
    return None


def sdxl_unet(layers_per_block: int = 1, transformer_layers_per_block: tuple[int, int] = (1, 1)) -> Any:
    """The tiny SDXL UNet, seeded: ``text_time`` conditioning on the two text encoders (widths 32 and 64)."""
    import torch
    from diffusers import UNet2DConditionModel

    torch.manual_seed(0)
    return UNet2DConditionModel(
        sample_size=8, in_channels=4, out_channels=4, block_out_channels=(32, 64), layers_per_block=layers_per_block,
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"), up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
        attention_head_dim=(2, 4), use_linear_projection=True, transformer_layers_per_block=transformer_layers_per_block,
        cross_attention_dim=96, addition_embed_type="text_time", addition_time_embed_dim=8, projection_class_embeddings_input_dim=112)


def _sdxl(folder: Path, layers_per_block: int = 1, transformer_layers_per_block: tuple[int, int] = (1, 1),
          text_encoder_2_layers: int = 2) -> Any:
    from diffusers import EulerDiscreteScheduler, StableDiffusionXLPipeline

    tok, vocab = _tokenizer(folder / "_tok")
    unet = sdxl_unet(layers_per_block, transformer_layers_per_block)
    sched = EulerDiscreteScheduler(beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear", steps_offset=1)
    text_encoder_2 = _clip(vocab, 64, layers=text_encoder_2_layers, projection=True, seed=3)
    return StableDiffusionXLPipeline(vae=_vae(), text_encoder=_clip(vocab, 32), text_encoder_2=text_encoder_2,
                                     tokenizer=tok, tokenizer_2=tok, unet=unet, scheduler=sched, add_watermarker=False)


def _sd3(folder: Path) -> Any:
    import torch
    from diffusers import FlowMatchEulerDiscreteScheduler, SD3Transformer2DModel, StableDiffusion3Pipeline

    tok, vocab = _tokenizer(folder / "_tok")
    torch.manual_seed(0)
    transformer = SD3Transformer2DModel(sample_size=32, patch_size=2, in_channels=4, num_layers=1, attention_head_dim=8,
                                        num_attention_heads=4, caption_projection_dim=32, joint_attention_dim=32,
                                        pooled_projection_dim=64, out_channels=4)
    return StableDiffusion3Pipeline(
        transformer=transformer, vae=_vae(shift_factor=0.0609, scaling_factor=1.5035, use_quant_conv=False, use_post_quant_conv=False),
        text_encoder=_clip(vocab, 32, projection=True), text_encoder_2=_clip(vocab, 32, projection=True, seed=4),
        text_encoder_3=_t5(vocab), tokenizer=tok, tokenizer_2=tok, tokenizer_3=tok, scheduler=FlowMatchEulerDiscreteScheduler())


def _flux(folder: Path) -> Any:
    import torch
    from diffusers import FlowMatchEulerDiscreteScheduler, FluxPipeline, FluxTransformer2DModel

    tok, vocab = _tokenizer(folder / "_tok")
    tok_t5, _ = _tokenizer(folder / "_tok_t5", max_length=512)
    torch.manual_seed(0)
    transformer = FluxTransformer2DModel(patch_size=1, in_channels=16, num_layers=1, num_single_layers=1, attention_head_dim=16,
                                         num_attention_heads=2, joint_attention_dim=32, pooled_projection_dim=32, axes_dims_rope=[4, 4, 8])
    return FluxPipeline(transformer=transformer, vae=_vae(shift_factor=0.0609, scaling_factor=1.5035, use_quant_conv=False,
                                                          use_post_quant_conv=False),
                        text_encoder=_clip(vocab, 32), text_encoder_2=_t5(vocab), tokenizer=tok, tokenizer_2=tok_t5,
                        scheduler=FlowMatchEulerDiscreteScheduler())


def _pixart(folder: Path) -> Any:
    import torch
    from diffusers import DDIMScheduler, PixArtAlphaPipeline, PixArtTransformer2DModel

    tok, vocab = _tokenizer(folder / "_tok", max_length=120)
    torch.manual_seed(0)
    transformer = PixArtTransformer2DModel(sample_size=8, num_layers=2, patch_size=2, attention_head_dim=8, num_attention_heads=3,
                                           caption_channels=32, in_channels=4, cross_attention_dim=24, out_channels=8,
                                           attention_bias=True, activation_fn="gelu-approximate", num_embeds_ada_norm=1000,
                                           norm_type="ada_norm_single", norm_elementwise_affine=False, norm_eps=1e-6)
    return PixArtAlphaPipeline(transformer=transformer, vae=_vae(), text_encoder=_t5(vocab), tokenizer=tok, scheduler=DDIMScheduler())


BUILDERS: dict[str, Callable[..., Any]] = {"sd": _sd, "sdxl": _sdxl, "sd3": _sd3, "flux": _flux, "pixart": _pixart}


def build_tiny_family(family: str, folder: Path, variant: str | None = None, **settings: Any) -> Path:
    """Save the tiny pipeline of ``family`` (one of :data:`FAMILIES`) as a diffusers folder (``variant``: its weights
    as ``*.<variant>.safetensors`` only, as a cached fp16 download holds them). ``settings`` go to the family's
    builder over its defaults (SDXL: ``layers_per_block``, ``transformer_layers_per_block``, ``text_encoder_2_layers``)."""
    import shutil

    if family not in BUILDERS:
        raise KeyError(f"unknown family {family!r}; valid: {', '.join(FAMILIES)}")
    folder = Path(folder)
    pipe = BUILDERS[family](folder, **settings)
    if pipe is not None:
        pipe.save_pretrained(folder, safe_serialization=True, variant=variant)
    elif variant:  # the SD builder saves itself; resave under the variant name
        from diffusers import StableDiffusionPipeline

        loaded = StableDiffusionPipeline.from_pretrained(folder)
        shutil.rmtree(folder)
        loaded.save_pretrained(folder, safe_serialization=True, variant=variant)
    for tmp in folder.glob("_tok*"):
        shutil.rmtree(tmp)
    return folder
