"""pickscore, aesthetic, imagereward: each judge against its reference's scoring code rebuilt here, on tiny models
built from config in the real architecture, saved in the real format and loaded from their folders.

Photos are real (scikit-image), cut to sizes other than the models' input, so resize and crop run. The references:
HUB ``source/quality/evaluation.py`` (``evaluate_pickscore``, ``evaluate_aesthetic``), the aesthetic predictor's
``simple_inference.py`` and ImageReward's ``ImageReward.py``, copied below as they are written."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn as nn
from PIL import Image

from dataigm.core.errors import DataigmError
from dataigm.judges.registry import create_judge
from real_weights import skimage_photo

PROMPTS = ["a cat on a sofa", "an astronaut in a suit", "a cup of coffee", "a rocket on its pad"]


@pytest.fixture(scope="module")
def photos() -> list:
    sizes = [(300, 200), (180, 260), (97, 97), (401, 333)]
    return [skimage_photo(n).resize(s, Image.BILINEAR) for n, s in zip(("chelsea", "astronaut", "coffee", "rocket"), sizes)]


@pytest.fixture(scope="module")
def tiny_clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from dataigm.generate.tiny import build_tiny_clip

    return build_tiny_clip(tmp_path_factory.mktemp("clip") / "clip")


def batch_of(judge_, images: list) -> torch.Tensor:
    return judge_.collate([judge_.preprocess(im) for im in images])


# --- PickScore -------------------------------------------------------------------------------------------------------
def hub_evaluate_pickscore(prompt, images, processor, model, device):  # HUB source/quality/evaluation.py, as written
    image_inputs = processor(images=images, padding=True, truncation=True, max_length=77, return_tensors="pt").to(device)
    text_inputs = processor(text=prompt, padding=True, truncation=True, max_length=77, return_tensors="pt").to(device)
    with torch.no_grad():
        image_embs = model.get_image_features(**image_inputs)
        image_embs = getattr(image_embs, "pooler_output", image_embs)  # transformers 5 returns an output object
        image_embs = image_embs / torch.norm(image_embs, dim=-1, keepdim=True)
        text_embs = model.get_text_features(**text_inputs)
        text_embs = getattr(text_embs, "pooler_output", text_embs)
        text_embs = text_embs / torch.norm(text_embs, dim=-1, keepdim=True)
        scores = model.logit_scale.exp() * (text_embs @ image_embs.T)[0]
    return scores.cpu().tolist()


def test_pickscore_equals_hubs_scoring(tiny_clip: Path, photos: list) -> None:
    from transformers import AutoModel, AutoProcessor

    with torch.no_grad():  # a logit scale far from 1, so a missing exp() or scale shows
        model = AutoModel.from_pretrained(tiny_clip)
        model.logit_scale.fill_(3.0)
        model.save_pretrained(tiny_clip)
    processor, model = AutoProcessor.from_pretrained(tiny_clip), AutoModel.from_pretrained(tiny_clip).eval()
    judge_ = create_judge(f"pickscore@{tiny_clip}")
    ours = judge_.score(batch_of(judge_, photos), PROMPTS)
    theirs = [hub_evaluate_pickscore(p, im, processor, model, "cpu")[0] for p, im in zip(PROMPTS, photos)]
    assert ours == pytest.approx(theirs, abs=1e-4)
    assert len(set(round(s, 3) for s in ours)) == len(ours)  # the prompts and images move the score
    verdicts = judge_.predict(batch_of(judge_, photos))
    assert [v.positive for v in verdicts] == [False] * 4  # no min_score: a score, not a decision
    d = judge_.describe()
    assert d["kind"] == "pickscore" and d["processor"] == str(tiny_clip) and "HUB" in d["reference"]


def test_pickscore_min_score_decides(tiny_clip: Path, photos: list) -> None:
    judge_ = create_judge(f"pickscore@{tiny_clip}", settings={"prompt": "a cat", "min_score": 0.0})
    scores = judge_.score(batch_of(judge_, photos), ["a cat"] * 4)
    cut = sorted(scores)[1]
    judge_.min_score = cut
    assert [v.positive for v in judge_.predict(batch_of(judge_, photos))] == [s >= cut for s in scores]
    assert judge_.summarize(judge_.predict(batch_of(judge_, photos)))["mean_score"] == pytest.approx(sum(scores) / 4)


# --- aesthetic -------------------------------------------------------------------------------------------------------
class AestheticMLP(nn.Module):  # simple_inference.py MLP (the LightningModule's layers)
    def __init__(self, input_size):
        super().__init__()
        self.input_size = input_size
        self.layers = nn.Sequential(
            nn.Linear(self.input_size, 1024), nn.Dropout(0.2), nn.Linear(1024, 128), nn.Dropout(0.2), nn.Linear(128, 64),
            nn.Dropout(0.1), nn.Linear(64, 16), nn.Linear(16, 1))

    def forward(self, x):
        return self.layers(x)


def normalized(a, axis=-1, order=2):  # simple_inference.py
    l2 = np.atleast_1d(np.linalg.norm(a, order, axis))
    l2[l2 == 0] = 1
    return a / np.expand_dims(l2, axis)


def openai_clip_preprocess(n_px):  # openai/CLIP clip/clip.py _transform, as written
    from torchvision.transforms import CenterCrop, Compose, InterpolationMode, Normalize, Resize, ToTensor

    return Compose([Resize(n_px, interpolation=InterpolationMode.BICUBIC), CenterCrop(n_px), lambda image: image.convert("RGB"),
                    ToTensor(), Normalize((0.48145466, 0.4578275, 0.40821073), (0.26862954, 0.26130258, 0.27577711))])


@pytest.fixture(scope="module")
def aesthetic_dir(tiny_clip: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    from dataigm.cli import main

    torch.manual_seed(1)
    mlp = AestheticMLP(16)
    with torch.no_grad():
        mlp.layers[-1].bias.fill_(5.0)  # scores near the real predictor's scale
    root = tmp_path_factory.mktemp("aesthetic")
    torch.save(mlp.state_dict(), root / "sac+logos+ava1-l14-linearMSE.pth")  # the published file: a plain state dict
    pth = root / "sac+logos+ava1-l14-linearMSE.pth"
    assert main(["convert-judge", "aesthetic", str(pth), "--out", str(root / "converted"), "--clip", str(tiny_clip)]) == 0
    return pth, root / "converted"


def test_aesthetic_equals_simple_inference(aesthetic_dir: tuple[Path, Path], tiny_clip: Path, photos: list) -> None:
    from transformers import CLIPModel

    pth, folder = aesthetic_dir
    model = AestheticMLP(16)
    model.load_state_dict(torch.load(pth, weights_only=True))
    model.eval()
    clip_model = CLIPModel.from_pretrained(tiny_clip).eval()
    preprocess = openai_clip_preprocess(32)
    theirs = []
    for pil_image in photos:
        image = preprocess(pil_image).unsqueeze(0)
        with torch.no_grad():
            image_features = clip_model.get_image_features(pixel_values=image)
            image_features = getattr(image_features, "pooler_output", image_features)
        im_emb_arr = normalized(image_features.cpu().detach().numpy())
        theirs.append(model(torch.from_numpy(im_emb_arr).type(torch.FloatTensor)).item())
    judge_ = create_judge(f"aesthetic@{folder}")
    ours = judge_.score(batch_of(judge_, photos))
    assert ours == pytest.approx(theirs, abs=1e-5)
    assert max(theirs) - min(theirs) > 1e-3  # the images move the score
    d = judge_.describe()
    assert d["kind"] == "aesthetic" and d["source"]["file"] == pth.name and d["clip_model"] == str(tiny_clip)


def test_aesthetic_preprocessing_is_openai_clips_not_transformers(aesthetic_dir: tuple[Path, Path], photos: list) -> None:
    judge_ = create_judge(f"aesthetic@{aesthetic_dir[1]}")
    for im in photos:
        assert torch.equal(judge_.preprocess(im), openai_clip_preprocess(32)(im))
    assert torch.equal(judge_.clip.preprocess(photos[0]), judge_.preprocess(photos[0]))  # the CLIP wrapper's: the same one


def test_aesthetic_refuses_a_file_that_is_not_its_mlp(tmp_path: Path) -> None:
    from dataigm.judges.aesthetic import convert_aesthetic

    torch.save({"weight": torch.zeros(2, 2)}, tmp_path / "x.pth")
    with pytest.raises(DataigmError, match="not the aesthetic predictor"):
        convert_aesthetic(tmp_path / "x.pth", tmp_path / "out")
    with pytest.raises(DataigmError, match="convert-judge aesthetic"):
        create_judge(f"aesthetic@{tmp_path}")

    class Evil:
        def __reduce__(self):
            return (print, ("ran",))

    torch.save({"layers.0.weight": Evil()}, tmp_path / "evil.pth")
    with pytest.raises(DataigmError, match="never runs pickled code"):
        convert_aesthetic(tmp_path / "evil.pth", tmp_path / "out")


# --- ImageReward -----------------------------------------------------------------------------------------------------
class RewardMLP(nn.Module):  # ImageReward.py MLP
    def __init__(self, input_size):
        super().__init__()
        self.input_size = input_size
        self.layers = nn.Sequential(
            nn.Linear(self.input_size, 1024), nn.Dropout(0.2), nn.Linear(1024, 128), nn.Dropout(0.2), nn.Linear(128, 64),
            nn.Dropout(0.1), nn.Linear(64, 16), nn.Linear(16, 1))
        for name, param in self.layers.named_parameters():
            if 'weight' in name:
                nn.init.normal_(param, mean=0.0, std=1.0 / (self.input_size + 1))
            if 'bias' in name:
                nn.init.constant_(param, val=0)

    def forward(self, input):
        return self.layers(input)


def tiny_blip(folder: Path):
    from transformers import BertTokenizer, BlipConfig, BlipForImageTextRetrieval

    folder.mkdir(parents=True, exist_ok=True)
    chars = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + [chr(c) for c in range(ord("a"), ord("z") + 1)] + list("0123456789.,'")
    (folder / "vocab.txt").write_text("\n".join(chars) + "\n")
    tokenizer = BertTokenizer(str(folder / "vocab.txt"))
    tokenizer.add_special_tokens({"bos_token": "[DEC]"})  # BLIP's init_tokenizer
    tokenizer.add_special_tokens({"additional_special_tokens": ["[ENC]"]})
    config = BlipConfig(
        text_config={"vocab_size": len(tokenizer), "hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 2,
                     "num_attention_heads": 4, "encoder_hidden_size": 24, "max_position_embeddings": 64},
        vision_config={"hidden_size": 24, "intermediate_size": 48, "num_hidden_layers": 2, "num_attention_heads": 4,
                       "image_size": 32, "patch_size": 8},
        projection_dim=16, image_text_hidden_size=16)
    torch.manual_seed(2)
    return BlipForImageTextRetrieval(config).eval(), tokenizer, config


@pytest.fixture(scope="module")
def imagereward_dir(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A checkpoint laid out as ImageReward.pt (``blip.*`` BLIP keys, ``mlp.layers.*``), converted the way a user does."""
    from dataigm.judges.imagereward import convert_imagereward

    root = tmp_path_factory.mktemp("imagereward")
    blip, tokenizer, config = tiny_blip(root / "tok")
    torch.manual_seed(3)
    mlp = RewardMLP(32)
    with torch.no_grad():
        for p in mlp.parameters():
            p.normal_(0, 0.3)
    state = {f"blip.{k}": v for k, v in original_blip_keys(blip.state_dict()).items()}
    state.update({f"mlp.{k}": v for k, v in mlp.state_dict().items()})
    torch.save(state, root / "ImageReward.pt")
    return root / "ImageReward.pt", convert_imagereward(root / "ImageReward.pt", config, tokenizer, root / "converted")


def original_blip_keys(hf: dict) -> dict:
    """transformers' BLIP keys back to BLIP's own (``models/vit.py``): the inverse of transformers' conversion renames."""
    out = {}
    for k, v in hf.items():
        if not k.startswith("vision_model"):
            out[k] = v
            continue
        k = k.replace("vision_model.post_layernorm", "visual_encoder.norm").replace("vision_model.embeddings.patch_embedding", "visual_encoder.patch_embed.proj")
        k = k.replace("vision_model.embeddings.position_embedding", "visual_encoder.pos_embed").replace("vision_model.embeddings.class_embedding", "visual_encoder.cls_token")
        k = k.replace("vision_model.encoder.", "visual_encoder.").replace("layers", "blocks").replace("self_attn.projection", "attn.proj")
        k = k.replace("self_attn", "attn").replace("layer_norm1", "norm1").replace("layer_norm2", "norm2")
        out[k] = v
    return out


def imagereward_score(blip, tokenizer, mlp, prompt, pil_image, n_px):  # ImageReward.score, as written (image object instead of a path)
    text_input = tokenizer(prompt, padding='max_length', truncation=True, max_length=35, return_tensors="pt")
    image = openai_clip_preprocess(n_px)(pil_image).unsqueeze(0)
    image_embeds = blip.vision_model(image)[0]  # blip.visual_encoder(image)
    image_atts = torch.ones(image_embeds.size()[:-1], dtype=torch.long)
    text_output = blip.text_encoder(text_input.input_ids, attention_mask=text_input.attention_mask, encoder_hidden_states=image_embeds,
                                    encoder_attention_mask=image_atts, return_dict=True)
    txt_features = text_output.last_hidden_state[:, 0, :].float()
    rewards = mlp(txt_features)
    rewards = (rewards - 0.16717362830052426) / 1.0333394966054072
    return rewards.detach().cpu().numpy().item()


def test_imagereward_equals_its_score(imagereward_dir: tuple[Path, Path], photos: list) -> None:
    from transformers import AutoTokenizer, BlipForImageTextRetrieval

    pt, folder = imagereward_dir
    state = torch.load(pt, weights_only=True)
    blip, tokenizer, _ = tiny_blip(pt.parent / "ref")
    hf_state = {k: v for k, v in blip.state_dict().items()}
    blip.load_state_dict({**hf_state, **{k: state["blip." + orig] for k, orig in zip(hf_state, original_blip_keys(hf_state))}})
    mlp = RewardMLP(32)
    mlp.load_state_dict({k.removeprefix("mlp."): v for k, v in state.items() if k.startswith("mlp.")})
    mlp.eval()
    with torch.no_grad():
        theirs = [imagereward_score(blip, tokenizer, mlp, p, im, 32) for p, im in zip(PROMPTS, photos)]
    judge_ = create_judge(f"imagereward@{folder}")
    for im in photos:  # _transform(224) at the tiny model's 32 px: the rewards of a random BLIP barely move with the pixels
        assert torch.equal(judge_.preprocess(im), openai_clip_preprocess(32)(im))
    ours = judge_.score(batch_of(judge_, photos), PROMPTS)
    assert ours == pytest.approx(theirs, abs=1e-4)
    assert max(theirs) - min(theirs) > 1e-3
    loaded = BlipForImageTextRetrieval.from_pretrained(folder)
    assert AutoTokenizer.from_pretrained(folder)("a cat").input_ids[0] == tokenizer.cls_token_id  # [CLS] kept, not [ENC]
    assert loaded.config.vision_config.image_size == 32
    d = judge_.describe()
    assert d["mean"] == 0.16717362830052426 and d["source"]["file"] == "ImageReward.pt"


def test_imagereward_refuses_a_checkpoint_that_is_not_blip(imagereward_dir: tuple[Path, Path], tmp_path: Path) -> None:
    from dataigm.judges.imagereward import convert_imagereward

    _, tokenizer, config = tiny_blip(tmp_path / "tok")
    torch.save({"blip.visual_encoder.cls_token": torch.zeros(1, 1, 24), "mlp.layers.0.weight": torch.zeros(1024, 32)}, tmp_path / "x.pt")
    with pytest.raises(DataigmError, match="not ImageReward's BLIP"):
        convert_imagereward(tmp_path / "x.pt", config, tokenizer, tmp_path / "out")


def test_imagereward_config_has_imagerewards_shapes() -> None:
    """The BLIP that convert-judge imagereward builds: ViT-L/16 at 224 and med_config's BERT (vocabulary 30524, cross-attention
    to 1024-wide image tokens), checked on the meta device (no memory)."""
    from transformers import BlipForImageTextRetrieval

    from dataigm.judges.imagereward import imagereward_blip_config

    with torch.device("meta"):
        shapes = {k: tuple(v.shape) for k, v in BlipForImageTextRetrieval(imagereward_blip_config()).state_dict().items()}
    assert shapes["vision_model.embeddings.patch_embedding.weight"] == (1024, 3, 16, 16)
    assert shapes["vision_model.embeddings.position_embedding"] == (1, 197, 1024)
    assert shapes["text_encoder.embeddings.word_embeddings.weight"] == (30524, 768)
    assert shapes["text_encoder.encoder.layer.11.crossattention.self.key.weight"] == (768, 1024)
    assert "vision_model.encoder.layers.23.mlp.fc1.weight" in shapes and "vision_model.encoder.layers.24.mlp.fc1.weight" not in shapes
