"""``imagereward``: ImageReward (THUDM/ImageReward, ``ImageReward-v1.0``): BLIP + an MLP head, a human-preference reward.

Reference: ``ImageReward/ImageReward.py`` (``ImageReward.score``, ``inference_rank``): the prompt tokenized with
BLIP's BERT tokenizer (``padding='max_length', truncation=True, max_length=35``; the ``[CLS]`` id kept, not replaced
by ``[ENC]``), the image through ``_transform(224)`` (PIL bicubic resize of the short side, centre crop, RGB,
``ToTensor``, OpenAI CLIP's mean/std), ``image_embeds = blip.visual_encoder(image)``, the text encoder with
cross-attention to all image tokens (mask of ones), the ``[CLS]`` feature ``last_hidden_state[:, 0, :]``, the MLP
(``Linear(768, 1024) Dropout Linear(1024, 128) Dropout Linear(128, 64) Dropout Linear(64, 16) Linear(16, 1)``, eval
mode) and ``(reward - 0.16717362830052426) / 1.0333394966054072``. HUB reports the mean per method.

dataigm runs BLIP through transformers' ``BlipForImageTextRetrieval`` (its ``vision_model`` is BLIP's ViT with the
final norm, its ``text_encoder`` BLIP's ``med`` BERT with cross-attention: the same computation as ``BLIP_Pretrain``'s
``visual_encoder`` and ``text_encoder``) and never unpickles: the published ``ImageReward.pt`` is a pickle, so the
judge reads a converted folder (:func:`convert_imagereward`: ``torch.load(weights_only=True)`` of the plain state
dict, BLIP's keys renamed to transformers' as transformers' own BLIP conversion script does, saved with
``save_pretrained``; the head in ``head.safetensors``; mean and std in ``imagereward.json``).
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any, Sequence

from dataigm.core.atomic import sha256_file, write_bytes_atomic, write_json_atomic
from dataigm.core.errors import DataigmError
from dataigm.judges.registry import JudgeKind, JudgeOptions, JudgeSpec, NoName, register_judge
from dataigm.judges.scoring import ScoreJudge, build_score_mlp, check_texts, load_plain_state_dict, openai_clip_transform
from dataigm.judges.types import require_files

IMAGEREWARD_FORMAT = "dataigm-imagereward"
IMAGEREWARD_MEAN, IMAGEREWARD_STD = 0.16717362830052426, 1.0333394966054072  # ImageReward.__init__
IMAGEREWARD_MAX_LENGTH = 35
IMAGEREWARD_FILE = "ImageReward.pt"
IMAGEREWARD_SOURCE = "THUDM/ImageReward on the Hugging Face Hub (ImageReward.pt, med_config.json)"
IMAGEREWARD_REFERENCE = "THUDM/ImageReward ImageReward/ImageReward.py (ImageReward.score, _transform, MLP)"
HEAD, META = "head.safetensors", "imagereward.json"


def blip_key(key: str) -> str:
    """An original BLIP (``BLIP_Pretrain``) state-dict key -> the key of transformers' ``BlipForImageTextRetrieval``
    (the renames of transformers' ``convert_blip_original_pytorch_to_hf.py``); text-encoder keys are the same."""
    key = key.removeprefix("blip.")
    if key.startswith("visual_encoder"):
        key = re.sub(r"^visual_encoder", "vision_model.encoder", key)
        key = key.replace("blocks", "layers").replace("attn", "self_attn").replace("norm1", "layer_norm1").replace("norm2", "layer_norm2")
        key = key.replace("encoder.norm", "post_layernorm").replace("encoder.patch_embed.proj", "embeddings.patch_embedding")
        key = key.replace("encoder.pos_embed", "embeddings.position_embedding").replace("encoder.cls_token", "embeddings.class_embedding")
        key = key.replace("self_attn.proj", "self_attn.projection")
    return key


def convert_imagereward(checkpoint: Path, blip_config: Any, tokenizer: Any, out: Path) -> Path:
    """Convert ``ImageReward.pt`` (a plain state dict, read with ``torch.load(weights_only=True)``) into ``out``: BLIP as a
    transformers folder (``blip_config`` a ``BlipConfig`` matching ``med_config.json`` and ViT-L; ``tokenizer``
    BLIP's BERT tokenizer with ``[DEC]`` and ``[ENC]`` added), the head in ``head.safetensors``, mean/std in
    ``imagereward.json``. Every BLIP tensor the retrieval model has must be in the checkpoint (strict)."""
    from safetensors.torch import save
    from transformers import BlipForImageTextRetrieval

    checkpoint, out = Path(checkpoint), Path(out)
    state = load_plain_state_dict(checkpoint, "ImageReward checkpoint")
    head = {k.removeprefix("mlp."): v for k, v in state.items() if k.startswith("mlp.")}
    blip = {blip_key(k): v for k, v in state.items() if k.startswith("blip.")}
    model = BlipForImageTextRetrieval(blip_config).eval()
    wanted = model.state_dict()
    if "vision_model.embeddings.class_embedding" in blip:  # BLIP keeps (1, 1, D) and (1, N, D); transformers the same shapes
        blip["vision_model.embeddings.class_embedding"] = blip["vision_model.embeddings.class_embedding"].reshape(wanted["vision_model.embeddings.class_embedding"].shape)
    missing = sorted(k for k in wanted if k not in blip and not k.startswith(("vision_proj", "text_proj", "itm_head")))
    if missing:
        raise DataigmError(f"{checkpoint}: not ImageReward's BLIP; missing {len(missing)} tensors, e.g. {', '.join(missing[:5])}")
    model.load_state_dict({k: blip.get(k, v) for k, v in wanted.items()})
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    write_bytes_atomic(out / HEAD, save({k: v.float().contiguous() for k, v in head.items()}))
    write_json_atomic(out / META, {"format": IMAGEREWARD_FORMAT, "mean": IMAGEREWARD_MEAN, "std": IMAGEREWARD_STD,
                                   "max_length": IMAGEREWARD_MAX_LENGTH, "image_size": int(blip_config.vision_config.image_size),
                                   "source": {"file": checkpoint.name, "sha256": sha256_file(checkpoint), "repository": IMAGEREWARD_SOURCE}})
    return out


IMAGEREWARD_TOKENIZER = "google-bert/bert-base-uncased"  # BLIP's init_tokenizer: BertTokenizer('bert-base-uncased') + [DEC], [ENC]


def imagereward_blip_config() -> Any:
    """ImageReward's BLIP as a ``BlipConfig``: ``BLIP_Pretrain(image_size=224, vit='large', med_config)``: ViT-L/16 (1024
    wide, 24 blocks, 16 heads, LayerNorm eps 1e-6 as BLIP's ``vit.py``) and ``med_config.json``'s BERT (768 wide, 12
    layers, vocabulary 30524 with [DEC] and [ENC], cross-attention to the 1024-wide image tokens)."""
    from transformers import BlipConfig

    return BlipConfig(
        text_config={"vocab_size": 30524, "hidden_size": 768, "intermediate_size": 3072, "num_hidden_layers": 12, "num_attention_heads": 12,
                     "encoder_hidden_size": 1024, "max_position_embeddings": 512, "layer_norm_eps": 1e-12, "hidden_act": "gelu"},
        vision_config={"hidden_size": 1024, "intermediate_size": 4096, "num_hidden_layers": 24, "num_attention_heads": 16,
                       "image_size": 224, "patch_size": 16, "layer_norm_eps": 1e-6, "hidden_act": "gelu"},
        projection_dim=256, image_text_hidden_size=256)


def imagereward_tokenizer(location: str = IMAGEREWARD_TOKENIZER) -> Any:
    """BLIP's ``init_tokenizer``: the BERT tokenizer with ``[DEC]`` as bos and ``[ENC]`` added (vocabulary 30524)."""
    from transformers import BertTokenizer

    tokenizer = BertTokenizer.from_pretrained(location)
    tokenizer.add_special_tokens({"bos_token": "[DEC]"})
    tokenizer.add_special_tokens({"additional_special_tokens": ["[ENC]"]})
    return tokenizer


class ImageRewardJudge(ScoreJudge):
    """ImageReward of each image with its prompt: ``(MLP(BLIP [CLS] feature) - mean) / std``."""

    name = "imagereward"

    def __init__(self, folder: str | Path, *, concept: str | None = None, settings: dict[str, Any] | None = None,
                 device: str | None = None) -> None:
        import torch
        from safetensors.torch import load_file
        from transformers import AutoTokenizer, BlipForImageTextRetrieval

        from dataigm.core.devices import pick_device

        self.folder = Path(str(folder).removeprefix("local-dir:")).expanduser()
        require_files(self.folder, ("config.json", "model.safetensors", HEAD, META),
                      "convert ImageReward.pt first (command: dataigm convert-judge imagereward)", error=DataigmError)
        self.meta = json.loads((self.folder / META).read_text())
        if self.meta.get("format") != IMAGEREWARD_FORMAT:
            raise DataigmError(f"{self.folder / META}: format {self.meta.get('format')!r} is not {IMAGEREWARD_FORMAT!r}")
        self._init_decision("imagereward", concept, dict(settings or {}), None)
        self.device = pick_device(device)
        self.blip = BlipForImageTextRetrieval.from_pretrained(self.folder, use_safetensors=True, dtype=torch.float32).eval().to(self.device)
        self.tokenizer = AutoTokenizer.from_pretrained(self.folder)
        head = load_file(str(self.folder / HEAD))
        self.mlp = build_score_mlp(int(head["layers.0.weight"].shape[1]))
        self.mlp.load_state_dict({k.removeprefix("layers."): v for k, v in head.items()})
        self.mlp.eval().to(self.device)
        self.preprocess = openai_clip_transform(int(self.meta.get("image_size", 224)))
        self.weights_sha256 = sha256_file(self.folder / "model.safetensors")

    def score(self, batch: Any, texts: Sequence[str]) -> list[float]:
        import torch

        check_texts(batch, texts)
        tok = self.tokenizer(list(texts), padding="max_length", truncation=True, max_length=int(self.meta["max_length"]),
                             return_tensors="pt").to(self.device)
        with torch.inference_mode():
            image_embeds = self.blip.vision_model(pixel_values=batch.to(self.device))[0]
            image_atts = torch.ones(image_embeds.shape[:-1], dtype=torch.long, device=self.device)
            out = self.blip.text_encoder(input_ids=tok.input_ids, attention_mask=tok.attention_mask, encoder_hidden_states=image_embeds,
                                         encoder_attention_mask=image_atts, return_dict=True)
            rewards = self.mlp(out.last_hidden_state[:, 0, :].float()).squeeze(-1)
        return ((rewards - self.meta["mean"]) / self.meta["std"]).float().cpu().tolist()

    def describe(self) -> dict[str, Any]:
        return ImageRewardKind.description(
            self, "transformers", spec=f"imagereward@{self.folder}", weights=str(self.folder / "model.safetensors"),
            weights_sha256=self.weights_sha256, source=self.meta.get("source"), mean=self.meta["mean"], std=self.meta["std"],
            text=self.text, min_score=self.min_score, rule=self.decision(), reference=IMAGEREWARD_REFERENCE)


@register_judge
class ImageRewardKind(JudgeKind):
    kind = "imagereward"
    syntax = "imagereward@DIR"
    decides = ("a score, not a decision: ImageReward = (MLP(BLIP text-image [CLS] feature) - mean) / std of each image with its "
               "prompt (the quality table's mean per method); positive only with settings min_score")
    reference = IMAGEREWARD_REFERENCE
    weights = (f"{IMAGEREWARD_SOURCE}: a pickle, converted to a transformers BLIP folder + head.safetensors "
               "(dataigm convert-judge imagereward: torch.load weights_only)")
    licence = "Apache-2.0 (ImageReward code and weights)"
    options = frozenset({"concept", "model"})
    settings = frozenset({"prompt", "min_score"})
    names = NoName("imagereward@DIR with DIR from dataigm convert-judge imagereward")

    @classmethod
    def from_spec(cls, spec: JudgeSpec, options: JudgeOptions) -> Any:
        folder = cls.weights_location(spec, options, needed="imagereward needs the converted ImageReward folder: imagereward@DIR")
        return ImageRewardJudge(folder, concept=options.concept, settings=options.settings, device=options.device)

    @classmethod
    def offline(cls) -> str:
        return f"needs {IMAGEREWARD_FILE} converted (convert-judge imagereward) and the BERT tokenizer: not shipped in any package"
