"""detect:OBJECT: a tiny OWLv2 built from config (the default architecture), saved with save_pretrained and loaded by
the pipeline from its folder; verdicts against OWLv2's own post-processing rebuilt here (the model card's recipe)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from PIL import Image

from dataigm.core.errors import DataigmError
from dataigm.judges.registry import check_judge_spec, create_judge
from real_weights import skimage_photo


@pytest.fixture(scope="module")
def tiny_owlv2(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from transformers import CLIPTokenizer, Owlv2Config, Owlv2ForObjectDetection, Owlv2ImageProcessor, Owlv2Processor

    from dataigm.generate.tiny import write_char_tokenizer

    folder = tmp_path_factory.mktemp("owlv2")
    vocab = write_char_tokenizer(folder / "tok")
    tokenizer = CLIPTokenizer(str(folder / "tok" / "vocab.json"), str(folder / "tok" / "merges.txt"), model_max_length=16)
    config = Owlv2Config(
        text_config={"vocab_size": vocab, "hidden_size": 32, "intermediate_size": 37, "num_hidden_layers": 1, "num_attention_heads": 4,
                     "max_position_embeddings": 16, "bos_token_id": vocab - 2, "eos_token_id": vocab - 1, "pad_token_id": vocab - 1},
        vision_config={"hidden_size": 32, "intermediate_size": 37, "num_hidden_layers": 1, "num_attention_heads": 4, "image_size": 32,
                       "patch_size": 8},
        projection_dim=32)
    torch.manual_seed(0)
    Owlv2ForObjectDetection(config).save_pretrained(folder)
    Owlv2Processor(image_processor=Owlv2ImageProcessor(size={"height": 32, "width": 32}), tokenizer=tokenizer).save_pretrained(folder)
    return folder


@pytest.fixture(scope="module")
def photos() -> list:
    return [skimage_photo(n).resize(s, Image.BILINEAR) for n, s in (("chelsea", (120, 80)), ("astronaut", (64, 96)), ("coffee", (70, 70)))]


def owlv2_boxes(folder: Path, image, text: str, threshold: float) -> list[float]:
    """The model card's recipe: processor(text, image), model(**inputs), post_process_object_detection with the image size."""
    from transformers import Owlv2ForObjectDetection, Owlv2Processor

    processor, model = Owlv2Processor.from_pretrained(folder), Owlv2ForObjectDetection.from_pretrained(folder).eval()
    inputs = processor(text=[[text]], images=image, return_tensors="pt")
    with torch.no_grad():
        outputs = model(**inputs)
    results = processor.image_processor.post_process_object_detection(
        outputs=outputs, threshold=threshold, target_sizes=torch.tensor([[image.height, image.width]]))
    return sorted(results[0]["scores"].tolist(), reverse=True)


def test_detect_equals_owlv2_post_processing(tiny_owlv2: Path, photos: list) -> None:
    judge_ = create_judge(f"detect:cat@{tiny_owlv2}")
    theirs_all = [owlv2_boxes(tiny_owlv2, im, "cat", 0.0) for im in photos]
    # a threshold between the images' best scores, so one verdict differs from the others
    best = sorted(max(s) for s in theirs_all)
    judge_.threshold = (best[0] + best[1]) / 2
    verdicts = judge_.predict(judge_.collate([judge_.preprocess(im) for im in photos]))
    for v, theirs in zip(verdicts, theirs_all):
        kept = [s for s in theirs if s > judge_.threshold]
        assert [b["score"] for b in v.extra["boxes"]] == pytest.approx(kept, abs=1e-5)
        assert v.positive == bool(kept) and v.positive_score == pytest.approx(kept[0] if kept else 0.0, abs=1e-5)
    assert [v.positive for v in verdicts].count(True) == 2
    d = judge_.describe()
    assert d["architecture"] == "Owlv2ForObjectDetection" and d["query"] == "cat" and "any box" in d["rule"]


def test_detect_query_template_and_default_threshold(tiny_owlv2: Path, photos: list) -> None:
    judge_ = create_judge(f"detect:cat@{tiny_owlv2}", settings={"query": "a photo of a {object}"})
    assert judge_.query == "a photo of a cat" and judge_.threshold == 0.1
    v = judge_.predict([photos[0]])[0]
    assert [b["score"] for b in v.extra["boxes"]] == pytest.approx([s for s in owlv2_boxes(tiny_owlv2, photos[0], "a photo of a cat", 0.0) if s > 0.1], abs=1e-5)


def test_detect_specs() -> None:
    assert check_judge_spec("detect:church") == "detect"
    with pytest.raises(DataigmError, match="detect:OBJECT"):
        check_judge_spec("detect")
    with pytest.raises(DataigmError, match="looks for 'church'"):
        create_judge("detect:church@/nowhere", concept="dog")
