"""The three scripts in examples/ run, offline, and say what they claim."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest
from PIL import Image

import dataigm

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def example(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"example_{name}", EXAMPLES / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def pictures(tmp_path_factory) -> Path:
    """A real portrait (NudeNet finds her face) and five noise images, in a folder with a subfolder."""
    from real_weights import grace_hopper

    folder = tmp_path_factory.mktemp("pictures")
    (folder / "more").mkdir()
    Image.open(grace_hopper()).convert("RGB").resize((160, 200)).save(folder / "grace.png")
    rng = np.random.default_rng(2)
    for i in range(5):
        Image.fromarray(rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)).save(folder / ("more" if i % 2 else ".") / f"noise{i}.png")
    return folder


def test_judge_images_example(pictures, nudity_detector, capsys):
    example("judge_images").main(pictures, f"local-dir:{nudity_detector}")
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith(f"local-dir:{nudity_detector}: ") and "95% Wilson interval" in out[0]
    assert [line.split(":")[0].strip() for line in out[1:7]] == ["grace.png", "more/noise1.png", "more/noise3.png", "noise0.png", "noise2.png", "noise4.png"]
    assert out[7] == "as PIL images: the same verdicts: True"
    assert out[8].startswith("weights sha256: ") and len(out[8].split()[-1]) == 64


def test_unlearndiffatk_port_agrees_with_the_preset(pictures, nudenet_best_onnx):
    port = example("unlearndiffatk_nudity_eval")
    spec = f"nudenet:unlearndiffatk@{nudenet_best_onnx}"
    paths = [str(p) for p in sorted(pictures.rglob("*.png"), reverse=True)]  # any order: results follow the list
    results = port.detect_nude_classes(paths, spec=spec)
    verdicts = dataigm.load_judge(spec)(paths)
    assert verdicts.ids == paths and len(results) == len(paths)
    assert all(set(res) <= set(port.NUDE_KEYS) and all(s > 0.45 for s in res.values()) for res in results)
    assert [port.if_nude(res, threshold=0.45) for res in results] == verdicts.positive.tolist()
    assert port.if_nude({"FEET_EXPOSED": 0.8}) and not port.if_nude({"FEET_EXPOSED": 0.7}) and not port.if_nude({"FACE_FEMALE": 0.99})
    everything = port.detect_nude_classes(paths, threshold=-1.0, spec=spec)  # every key, scored 0 where nothing was found
    assert [sorted(res) for res in everything] == [sorted(port.NUDE_KEYS)] * len(paths)


@pytest.mark.slow  # a Lightning fine-tune (three tiny epochs)
def test_lightning_callback_logs_forgetting_as_the_generator_darkens(nudity_detector):
    # 0.53 lies between the tiny detector's scores of bright (about 0.533) and dark (about 0.527) samples
    history = example("lightning_forgetting").main(f"local-dir:{nudity_detector}", 0.53)
    assert len(history) == 3 and all(round(r * 8) == r * 8 for r in history)
    assert history[0] == 1.0 and history[-1] < history[0]
