"""vqascore: t2v_metrics' LLaVA-1.5 VQAScore rebuilt here from ``llava_model.py`` (format_question, format_answer,
expand2square, the label mask and exp(-mean cross-entropy)) on the tiny LLaVA of test_judge_vlm, against the judge."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import torch
from PIL import Image

from dataigm.judges.registry import create_judge
from real_weights import skimage_photo
from test_judge_vlm import tiny_llava  # noqa: F401  (the fixture)

SYSTEM_MSG = ("A chat between a curious user and an artificial intelligence assistant. "
              "The assistant gives helpful, detailed, and polite answers to the user's questions.")
IGNORE_INDEX = -100


def expand2square(pil_img, background_color):  # t2v_metrics mm_utils.py (LLaVA's)
    width, height = pil_img.size
    if width == height:
        return pil_img
    elif width > height:
        result = Image.new(pil_img.mode, (width, width), background_color)
        result.paste(pil_img, (0, (width - height) // 2))
        return result
    else:
        result = Image.new(pil_img.mode, (height, height), background_color)
        result.paste(pil_img, ((height - width) // 2, 0))
        return result


def t2v_llava_forward(model, processor, images, texts):
    """LLaVAModel.forward, with transformers' processor expanding <image> where LLaVA's code splices the features in."""
    questions = ['Does this figure show "{}"? Please answer yes or no.'.format(text) for text in texts]
    answers = ["Yes" for _ in texts]
    questions = [SYSTEM_MSG + " USER: " + "<image>" + "\n" + q + " ASSISTANT: " for q in questions]
    answers = [a + "</s>" for a in answers]
    images = [expand2square(im, tuple(int(x * 255) for x in processor.image_processor.image_mean)) for im in images]
    probs = []
    for qs, ans, image in zip(questions, answers, images):
        inputs = processor(text=[qs + ans], images=[image], return_tensors="pt")
        input_ids = inputs["input_ids"][0]
        labels = copy.deepcopy(input_ids)
        tokenized_len = len(processor(text=[qs], images=[image], return_tensors="pt")["input_ids"][0])
        if qs[-1] == " ":
            tokenized_len -= 1  # because white space
        labels[:tokenized_len] = IGNORE_INDEX
        with torch.no_grad():
            logits = model(**inputs).logits[0]
        shift_logits = logits[:-1, :].contiguous()
        shift_labels = labels[1:].contiguous()
        loss_fct = torch.nn.CrossEntropyLoss(reduction='mean')
        probs.append((-loss_fct(shift_logits, shift_labels)).exp().item())
    return probs


def test_vqascore_equals_t2v_metrics_llava_scoring(tiny_llava: Path) -> None:  # noqa: F811
    from transformers import AutoModelForImageTextToText, AutoProcessor

    photos = [skimage_photo(n).resize(s) for n, s in (("chelsea", (60, 40)), ("astronaut", (30, 52)), ("coffee", (40, 40)))]
    texts = ["a cat", "an astronaut", "a cup of coffee"]
    model, processor = AutoModelForImageTextToText.from_pretrained(tiny_llava).eval(), AutoProcessor.from_pretrained(tiny_llava)
    theirs = t2v_llava_forward(model, processor, photos, texts)
    judge_ = create_judge(f"vqascore@{tiny_llava}")
    assert judge_.preprocess(photos[0]).size == (60, 60) and judge_.preprocess(photos[0]).getpixel((0, 0)) == tuple(
        int(x * 255) for x in processor.image_processor.image_mean)
    ours = judge_.score(judge_.collate([judge_.preprocess(im) for im in photos]), texts)
    assert ours == pytest.approx(theirs, rel=1e-4)
    assert max(theirs) - min(theirs) > 1e-6 and all(0 < p < 1 for p in theirs)
    judge_.min_score = sorted(ours)[1]
    verdicts = judge_.predict(judge_.collate([judge_.preprocess(im) for im in photos]))  # against the fixed text (none: "")
    assert all(v.extra["score"] == v.positive_score for v in verdicts)
    d = judge_.describe()
    assert d["model"] == str(tiny_llava) and "t2v_metrics" in d["reference"] and d["answer"] == "Yes"
