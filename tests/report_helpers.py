"""A small evaluation on real photos (scikit-image's ``data``), judged by real ImageNet weights, for the report tests.

The forgotten concept is "tabby cat" (ImageNet 281, which EfficientNet-Lite0 gives scikit-image's ``chelsea``).
The original model "draws" the cat for every forget prompt; ``erased`` draws coffee or a rocket instead for
prompts 0 and 1 and still the cat for prompt 2. Retain prompts (coffee, astronaut, rocket) are untouched.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from PIL import Image

from dataigm.prompts import PromptRecord, write_prompt_jsonl
from real_weights import skimage_photo

SEEDS = (7, 8)
FORGET = ["a photo of a tabby cat on a sofa", "a tabby cat in the garden", "a sleepy tabby cat"]
RETAIN = [("a cup of coffee", "coffee"), ("an astronaut in a suit", "astronaut"), ("a rocket on the launch pad", "rocket")]
SUBCATEGORIES = ["indoor", "outdoor", "indoor"]


def _variant(name: str, seed: int) -> Image.Image:
    """A photo shrunk to 160 px wide on even seeds, 200 px on odd ones (two seeds of a prompt: two images)."""
    im = skimage_photo(name)
    width = 200 if seed % 2 else 160
    return im.resize((width, round(im.height * width / im.width)), Image.BICUBIC)


def _save(folder: Path, index: int, seed: int, im: Image.Image) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    im.save(folder / f"{index}_{seed}.png")


def write_photo_eval(root: Path) -> Path:
    """Prompt files and the image folders of ``original`` and ``erased`` below ``root``; returns ``root``."""
    write_prompt_jsonl([PromptRecord(p, concept="cat", category="object", subcategory=SUBCATEGORIES[i], index=i,
                                     paired_negative=p.replace("tabby cat", "dog"))
                        for i, p in enumerate(FORGET)], root / "forget.jsonl")
    write_prompt_jsonl([PromptRecord(p, concept=label, category="object", label="other", index=i) for i, (p, label) in enumerate(RETAIN)],
                       root / "retain.jsonl")
    erased_with = {0: "coffee", 1: "rocket", 2: "chelsea"}
    for i in range(len(FORGET)):
        for s in SEEDS:
            _save(root / "original" / "forget", i, s, _variant("chelsea", s))
            _save(root / "erased" / "forget", i, s, _variant(erased_with[i], s))
    for i, (_, photo) in enumerate(RETAIN):
        for s in SEEDS:
            _save(root / "original" / "retain", i, s, _variant(photo, s))
    shutil.copytree(root / "original" / "retain", root / "erased" / "retain")
    return root


def eval_args(root: Path, efficientnet_dir: Path, out: Path) -> list[str]:
    """``dataigm eval`` arguments for the photo evaluation (judge only: no LPIPS/FID, the judge is the point)."""
    return ["eval", "--method", f"erased={root / 'erased'}", "--original", str(root / "original"),
            "--prompts", str(root / "forget.jsonl"), str(root / "retain.jsonl"),
            "--judge", f"imagenet:281@local-dir:{efficientnet_dir}", "--lpips-net", "none", "--fid-features", "none",
            "--bootstrap", "100", "--workers", "0", "--out", str(out)]
