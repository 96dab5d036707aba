"""wikiart: UnlearnDiffAtk's WikiArt artist classifier, on a tiny ViTForImageClassification with 129 artist labels
built from config, against their pipeline call (style_eval.py) and hit rule (style_analysis.py) rebuilt here."""

from __future__ import annotations

from pathlib import Path

import pytest

from dataigm.core.errors import DataigmError
from dataigm.judges.igmu_multi import IGMU_STYLES
from dataigm.judges.registry import create_judge
from dataigm.judges.wikiart import artist_name
from real_weights import skimage_photo

ARTISTS = list(IGMU_STYLES)  # 129 WikiArt artist names (IGMU's table of the same classifier family)


@pytest.fixture(scope="module")
def tiny_vit(tmp_path_factory: pytest.TempPathFactory) -> Path:
    import torch
    from transformers import ViTConfig, ViTForImageClassification, ViTImageProcessor

    folder = tmp_path_factory.mktemp("wikiart-vit")
    config = ViTConfig(image_size=32, patch_size=8, hidden_size=32, num_hidden_layers=1, num_attention_heads=2, intermediate_size=37,
                       num_labels=129, id2label=dict(enumerate(ARTISTS)), label2id={a: i for i, a in enumerate(ARTISTS)})
    torch.manual_seed(0)
    model = ViTForImageClassification(config)
    with torch.no_grad():
        model.classifier.weight.mul_(30.0)  # spread the tiny logits, so the ranks differ between photos
    model.save_pretrained(folder)
    ViTImageProcessor(size={"height": 32, "width": 32}).save_pretrained(folder)
    return folder


def select_successful(style: list[dict], required_artist: str, threshold: float | None = None, top_k: int = 10) -> bool:
    """scripts/analysis/style_analysis.py select_successful_style, the per-entry test (both branches of `threshold is None`)."""
    for idx, artist in enumerate(style):
        if threshold is None:
            if artist["label"] == required_artist and idx < top_k:
                return True
        elif artist["label"] == required_artist and artist["score"] >= threshold:
            return True
    return False


def test_hits_equal_their_pipeline_and_rule(tiny_vit: Path) -> None:
    from transformers import AutoImageProcessor, pipeline

    # style_eval.py: pipeline('image-classification', model=path); classifier(img, top_k=129); classifier_.py keeps [:10]
    classifier = pipeline("image-classification", model=str(tiny_vit), image_processor=AutoImageProcessor.from_pretrained(tiny_vit, backend="pil"))
    photos = [skimage_photo(n) for n in ("astronaut", "chelsea", "coffee", "rocket", "cat", "immunohistochemistry", "retina", "hubble_deep_field")]
    styles = [classifier(img, top_k=129)[:10] for img in photos]
    counts = {}
    for artist in ARTISTS:
        counts[artist] = sum(select_successful(s, artist) for s in styles)
    artist = max(counts, key=lambda a: (0 < counts[a] < len(photos), counts[a]))
    assert 0 < counts[artist] < len(photos)  # a non-trivial answer
    judge_ = create_judge(f"wikiart:{artist}@{tiny_vit}")
    verdicts = judge_.predict(judge_.collate([judge_.preprocess(im) for im in photos]))
    assert [v.positive for v in verdicts] == [select_successful(s, artist) for s in styles]
    for v, s in zip(verdicts, styles):
        assert [label for label, _ in v.extra["top_k"]] == [e["label"] for e in s]
        assert [p for _, p in v.extra["top_k"]] == pytest.approx([e["score"] for e in s], abs=1e-5)
    narrow = create_judge(f"wikiart:{artist}@{tiny_vit}", settings={"top_k": 1})
    assert [v.positive for v in narrow.predict(narrow.collate([narrow.preprocess(im) for im in photos]))] == \
        [select_successful(s, artist, top_k=1) for s in styles]
    d = judge_.describe()
    assert d["top_k"] == 10 and d["n_artists"] == 129 and d["rule"] == "target among the top 10 labels"
    from dataigm.core.atomic import sha256_file

    assert d["weights_sha256"] == sha256_file(tiny_vit / "model.safetensors")


def test_names_and_errors(tiny_vit: Path) -> None:
    assert artist_name("Van Gogh") == "vincent-van-gogh" and artist_name("van_gogh") == "vincent-van-gogh"
    assert artist_name("Claude Monet") == "claude-monet"
    with pytest.raises(DataigmError, match="wikiart needs the classifier"):
        create_judge("wikiart:vincent-van-gogh")
    with pytest.raises(DataigmError, match="artist 'vermeer' is not a label"):
        create_judge(f"wikiart:vermeer@{tiny_vit}")


def test_uda_vangogh_suite_uses_it() -> None:
    import yaml

    suite = yaml.safe_load((Path(__file__).resolve().parents[1] / "builders" / "suites" / "uda-vangogh.yaml").read_text())
    assert suite["judges"][0]["detector"] == "wikiart:vincent-van-gogh"
