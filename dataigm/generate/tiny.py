"""The embedded tiny models: a Stable-Diffusion-architecture pipeline (and a CLIP model for the curation and
judging hooks) built from config with fixed random weights and their own character-level tokenizer, saved to
a local folder and then loaded through the same ``from_pretrained`` path a real model takes. Their outputs are
noise-like by design.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Literal

from dataigm.core.atomic import make_tmp_dir, publish_dir
from dataigm.core.cache import cache_dir

TINY_ID = "tiny"
TINY_VERSION = 1
# The settings the tiny model runs at wherever it is named (a real model's 512 px and 30-50 steps take it ~30 s an
# image on CPU for nothing: its images are noise at any size): 64 px (its VAE's 8x8 latents), 2 steps.
TINY_GENERATION = {"steps": 2, "width": 64, "height": 64}


def write_char_tokenizer(folder: Path) -> int:
    """A CLIP BPE tokenizer with no merges: byte-level characters only. Returns the vocabulary size."""
    # GPT-2/CLIP byte-to-unicode table: printable bytes map to themselves, the rest to code points >= 256.
    printable = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1), *range(ord("®"), ord("ÿ") + 1)]
    extra = iter(range(256, 512))
    chars = [chr(b) if b in printable else chr(next(extra)) for b in range(256)]
    vocab = chars + [c + "</w>" for c in chars] + ["<|startoftext|>", "<|endoftext|>"]
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "vocab.json").write_text(json.dumps({t: i for i, t in enumerate(vocab)}))
    (folder / "merges.txt").write_text("#version: 0.2\n")
    return len(vocab)


def build_tiny_pipeline(folder: Path, seed: int = 0, existing: Literal["replace", "keep"] = "replace") -> Path:
    """Build the tiny pipeline from config with seeded random weights and save it as a diffusers folder, assembled
    in a temp folder and renamed into place (``existing``: replace a folder already there, or keep it)."""
    folder = Path(folder)
    tmp = make_tmp_dir(folder)
    try:
        _save_tiny_pipeline(tmp, seed)
        publish_dir(tmp, folder, existing=existing)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return folder


def _save_tiny_pipeline(tmp: Path, seed: int) -> None:
    import torch
    from diffusers import AutoencoderKL, DDIMScheduler, StableDiffusionPipeline, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTokenizer

    vocab_size = write_char_tokenizer(tmp / "tokenizer")
    tokenizer = CLIPTokenizer(str(tmp / "tokenizer" / "vocab.json"), str(tmp / "tokenizer" / "merges.txt"), model_max_length=77)

    torch.manual_seed(seed)
    unet = UNet2DConditionModel(
        sample_size=8, in_channels=4, out_channels=4, block_out_channels=(32, 64), layers_per_block=1,
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"), up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
        cross_attention_dim=32, attention_head_dim=8, norm_num_groups=32)
    torch.manual_seed(seed + 1)
    vae = AutoencoderKL(
        in_channels=3, out_channels=3, down_block_types=("DownEncoderBlock2D",) * 4, up_block_types=("UpDecoderBlock2D",) * 4,
        block_out_channels=(16, 16, 32, 32), layers_per_block=1, latent_channels=4, norm_num_groups=16, sample_size=64)
    torch.manual_seed(seed + 2)
    text_encoder = CLIPTextModel(CLIPTextConfig(
        vocab_size=vocab_size, hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4,
        max_position_embeddings=77, bos_token_id=vocab_size - 2, eos_token_id=vocab_size - 1, pad_token_id=vocab_size - 1))
    scheduler = DDIMScheduler(beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear", clip_sample=False, set_alpha_to_one=False, steps_offset=1)
    pipe = StableDiffusionPipeline(
        unet=unet,
        vae=vae,
        text_encoder=text_encoder,
        tokenizer=tokenizer,
        scheduler=scheduler,
        safety_checker=None,
        feature_extractor=None,
        requires_safety_checker=False,
    )
    pipe.save_pretrained(tmp, safe_serialization=True)


def ensure_tiny_pipeline(folder: Path | None = None) -> Path:
    """The tiny pipeline's folder, built on first use (atomically, so concurrent ranks are safe)."""
    folder = Path(folder) if folder else cache_dir() / f"tiny-sd-v{TINY_VERSION}"
    if not (folder / "model_index.json").exists():
        try:
            build_tiny_pipeline(folder, existing="keep")  # a concurrent rank's identical build may be there first
        except OSError:
            if not (folder / "model_index.json").exists():  # another rank may have won the rename
                raise
    return folder


def build_tiny_clip(folder: Path, seed: int = 0) -> Path:
    """A CLIP model (and processor) built from config with seeded random weights, saved as a transformers folder.

    Stands in for ``openai/clip-vit-*`` wherever a CLIP path is accepted (curation's clip filter, CSDR).
    """
    import torch
    from transformers import CLIPConfig, CLIPImageProcessor, CLIPModel, CLIPProcessor, CLIPTokenizer

    folder = Path(folder)
    vocab_size = write_char_tokenizer(folder / "tokenizer_files")
    tokenizer = CLIPTokenizer(str(folder / "tokenizer_files" / "vocab.json"), str(folder / "tokenizer_files" / "merges.txt"), model_max_length=77)
    config = CLIPConfig(
        text_config={"vocab_size": vocab_size, "hidden_size": 32, "intermediate_size": 37, "num_hidden_layers": 2,
                     "num_attention_heads": 4, "max_position_embeddings": 77, "projection_dim": 16,
                     "bos_token_id": vocab_size - 2, "eos_token_id": vocab_size - 1, "pad_token_id": vocab_size - 1},
        vision_config={"hidden_size": 32, "intermediate_size": 37, "num_hidden_layers": 2, "num_attention_heads": 4,
                       "image_size": 32, "patch_size": 8, "projection_dim": 16},
        projection_dim=16,
    )
    torch.manual_seed(seed)
    CLIPModel(config).save_pretrained(folder)
    image_processor = CLIPImageProcessor(size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32})
    CLIPProcessor(image_processor=image_processor, tokenizer=tokenizer).save_pretrained(folder)
    return folder
