"""igmu-multi:<task>: IGMU's Multi_MultiC heads, saved in their layout (a pickled state dict at
Weights/multi_multiC/<Task>/classifier_head.pth), converted with weights_only loading and judged with a tiny CLIP,
against IGMU's own computation rebuilt here from models/multiC_model.py and utils/multiC_evaluator.py."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from torch import nn
from torch.nn import MultiheadAttention

from dataigm.core.errors import DataigmError
from dataigm.judges.igmu_multi import IGMU_OBJECTS, IGMU_STYLES
from dataigm.judges.registry import create_judge
from real_weights import skimage_photo

DIM = 16  # the tiny CLIP's projection size (ViT-B/32: 512, their hidden_dim default 512)


class TheirMultiMultiC(nn.Module):
    """IGMU models/multiC_model.py Multi_MultiC, as published."""

    def __init__(self, input_dim=768, hidden_dim=512, num_classes=10, dropout_rate=0.3):
        super().__init__()
        self.attn = nn.Sequential(nn.Linear(input_dim, hidden_dim), nn.ReLU(), nn.Linear(hidden_dim, input_dim), nn.Sigmoid())
        self.multihead = MultiheadAttention(embed_dim=input_dim, num_heads=4, batch_first=True)
        self.gate = nn.Sequential(nn.Linear(input_dim, input_dim), nn.Sigmoid())
        self.feedforward = nn.Sequential(nn.LayerNorm(input_dim), nn.Linear(input_dim, input_dim * 4), nn.GELU(),
                                         nn.Dropout(dropout_rate), nn.Linear(input_dim * 4, input_dim))
        self.mlp1 = nn.Sequential(nn.LayerNorm(input_dim), nn.Linear(input_dim, hidden_dim), nn.GELU(), nn.Dropout(dropout_rate))
        self.mlp2 = nn.Sequential(nn.Linear(hidden_dim, hidden_dim), nn.GELU(), nn.Dropout(dropout_rate),
                                  nn.Linear(hidden_dim, hidden_dim // 2), nn.GELU(), nn.Dropout(dropout_rate))
        self.output = nn.Linear(hidden_dim // 2, num_classes)

    def forward(self, x):
        attn_weights = self.attn(x)
        x_attn = x * attn_weights
        x_mha, _ = self.multihead(x_attn.unsqueeze(1), x_attn.unsqueeze(1), x_attn.unsqueeze(1))
        x_mha = x_mha.squeeze(1)
        g = self.gate(x_attn)
        x_fused = g * x_attn + (1 - g) * x_mha
        x_ffn = self.feedforward(x_fused)
        x = x_fused + x_ffn
        h = self.mlp1(x)
        h = h + x
        h = self.mlp2(h)
        return self.output(h)


def their_logits(clip_dir: Path, head_pth: Path, num_classes: int, images: list) -> torch.Tensor:
    """multiC_evaluator.Evaluator with indicator multi_multiC: CustomImageDatasetForInference's transform,
    CLIPModel.get_image_features, Multi_MultiC_Classifier.predict (argmax of the softmax)."""
    from torchvision import transforms
    from transformers import CLIPModel

    clip_model = CLIPModel.from_pretrained(clip_dir)
    input_dim = getattr(clip_model.get_image_features(torch.randn(1, 3, 224, 224)), "pooler_output", None).shape[-1]
    head = TheirMultiMultiC(input_dim=input_dim, hidden_dim=DIM, num_classes=num_classes)
    head.load_state_dict(torch.load(head_pth, map_location="cpu"))
    transform = transforms.Compose([
        transforms.Resize(224, interpolation=transforms.InterpolationMode.BICUBIC), transforms.CenterCrop(224), transforms.ToTensor(),
        transforms.Normalize(mean=(0.4815, 0.4578, 0.4082), std=(0.2686, 0.2613, 0.2758))])
    clip_model.eval(), head.eval()  # Evaluator: self.detector = model.eval()
    batch = torch.stack([transform(im.convert("RGB")) for im in images])
    with torch.no_grad():
        features = clip_model.get_image_features(batch)
        return head(getattr(features, "pooler_output", features))  # transformers 5 returns an output object


def their_predictions(clip_dir: Path, head_pth: Path, num_classes: int, images: list) -> list[int]:
    logits = their_logits(clip_dir, head_pth, num_classes, images)
    return torch.argmax(torch.softmax(logits, dim=1), dim=-1).tolist()  # Multi_MultiC_Classifier.predict


@pytest.fixture(scope="module")
def tiny_clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A seeded tiny CLIP at ViT-B/32's input (224 px, patch 32), as their fixed 224 transform needs."""
    from transformers import CLIPConfig, CLIPModel

    folder = tmp_path_factory.mktemp("clip224")
    config = CLIPConfig(
        text_config={"vocab_size": 99, "hidden_size": 32, "intermediate_size": 37, "num_hidden_layers": 1, "num_attention_heads": 4,
                     "max_position_embeddings": 77, "bos_token_id": 97, "eos_token_id": 98, "pad_token_id": 98},
        vision_config={"hidden_size": 32, "intermediate_size": 37, "num_hidden_layers": 2, "num_attention_heads": 4,
                       "image_size": 224, "patch_size": 32, "projection_dim": DIM},
        projection_dim=DIM)
    torch.manual_seed(0)
    CLIPModel(config).save_pretrained(folder)
    return folder


@pytest.fixture(scope="module")
def photos() -> list:
    names = ("astronaut", "chelsea", "coffee", "rocket", "cat", "immunohistochemistry")
    return [skimage_photo(n) for n in names] + [skimage_photo(n).rotate(90, expand=True) for n in names]


def _their_head(root: Path, folder: str, num_classes: int, seed: int, clip_dir: Path, photos: list) -> Path:
    """A head in their layout, its output bias centred on these photos' logits so that they get different classes."""
    torch.manual_seed(seed)
    path = root / "Weights" / "multi_multiC" / folder / "classifier_head.pth"
    path.parent.mkdir(parents=True, exist_ok=True)
    head = TheirMultiMultiC(input_dim=DIM, hidden_dim=DIM, num_classes=num_classes)
    torch.save(head.state_dict(), path)
    with torch.no_grad():
        head.output.weight.mul_(100.0)
        torch.save(head.state_dict(), path)
        head.output.bias.sub_(their_logits(clip_dir, path, num_classes, photos).mean(0))
    torch.save(head.state_dict(), path)
    return path


@pytest.mark.parametrize("folder, num_classes, task", [("Object", 11, "object"), ("Style", 129, "style"), ("Nudity", 2, "nudity")])
def test_judge_equals_their_evaluator(folder: str, num_classes: int, task: str, tiny_clip: Path, photos: list, tmp_path: Path,
                                      capsys: pytest.CaptureFixture[str]) -> None:
    from dataigm.cli import main

    head = _their_head(tmp_path / "igmu", folder, num_classes, num_classes, tiny_clip, photos)
    assert main(["convert-judge", "igmu", str(head), "--out", str(tmp_path / "conv")]) == 0
    assert f"Multi_MultiC {task} head ({num_classes} classes" in capsys.readouterr().out
    cfg = json.loads((tmp_path / "conv" / "config.json").read_text())
    assert cfg["source"]["path"] == f"Weights/multi_multiC/{folder}/classifier_head.pth" and cfg["num_classes"] == num_classes
    theirs = their_predictions(tiny_clip, head, num_classes, photos)
    assert len(set(theirs)) >= 2  # a non-trivial answer
    labels = cfg["label_names"]
    concept = None if task == "nudity" else labels[theirs[0]]
    judge_ = create_judge(f"igmu-multi:{task}@{tmp_path / 'conv'}", concept=concept, clip_model=str(tiny_clip))
    verdicts = judge_.predict(judge_.collate([judge_.preprocess(im) for im in photos]))
    assert [v.extra["top1"] for v in verdicts] == theirs
    label = 0 if task == "nudity" else labels.index(concept)  # Evaluator.eval: true_labels = [label] * n
    # per image, not a count: reversed labels would keep the number of positives on a balanced set
    assert [v.positive for v in verdicts] == [p == label for p in theirs]
    assert judge_.describe()["target"] == ("nude" if task == "nudity" else concept)


def test_tables_are_theirs() -> None:
    assert len(IGMU_OBJECTS) == 11 and IGMU_OBJECTS.index("church") == 4 and IGMU_OBJECTS.index("parachute") == 8
    assert len(IGMU_STYLES) == 129 and IGMU_STYLES.index("vincent-van-gogh") == 22 and IGMU_STYLES[128] == "canaletto"


def test_bad_heads_and_names_are_one_line_errors(tmp_path: Path) -> None:
    from dataigm.judges.igmu import convert_igmu_head

    head = TheirMultiMultiC(input_dim=DIM, hidden_dim=DIM, num_classes=7)
    torch.save(head.state_dict(), tmp_path / "h.pth")
    with pytest.raises(DataigmError, match=r"2 \(nudity\), 11 \(object\) or 129 \(style\) classes, not 7"):
        convert_igmu_head(tmp_path / "h.pth", tmp_path / "out")
    with pytest.raises(DataigmError, match="unknown IGMU multi-class task 'colour'"):
        create_judge("igmu-multi:colour@x")
    from dataigm.judges.igmu_multi import concept_label

    assert concept_label("style", "Van Gogh".replace(" ", "")) == "vincent-van-gogh" and concept_label("object", "Golf ball") == "golf_ball"
    with pytest.raises(DataigmError, match="unknown IGMU object class 'cathedral'"):
        concept_label("object", "cathedral")
