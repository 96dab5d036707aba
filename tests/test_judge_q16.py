"""q16: Q16's prompts, tuned and pickled the way Q16's code does on a tiny CLIP built from config, converted with
``dataigm convert-judge q16``, and judged; the decisions equal Q16's SimClassifier computed here from its code."""

from __future__ import annotations

import hashlib
import json
import pickle
from pathlib import Path

import numpy as np
import pytest
import torch

from dataigm.cli import main
from dataigm.core.errors import DataigmError
from dataigm.judges.q16 import convert_q16_prompts
from dataigm.judges.registry import check_judge_spec, create_judge
from q16_tiny import PHOTOS, SimClassifier, image_features, write_tiny_q16
from runs_code import RunsCode

@pytest.fixture(scope="module")
def q16(tmp_path_factory: pytest.TempPathFactory) -> dict:
    return write_tiny_q16(tmp_path_factory.mktemp("q16"))


def test_convert_then_judge_equals_q16s_classifier(q16: dict, capsys: pytest.CaptureFixture[str]) -> None:
    out = q16["root"] / "converted"
    assert main(["convert-judge", "q16", str(q16["prompts"]), "--out", str(out)]) == 0
    assert "Q16 prompts (16-dim, float16), CLIP openai/clip-vit-base-patch16" in capsys.readouterr().out
    cfg = json.loads((out / "config.json").read_text())
    assert cfg["clip_model"] == "openai/clip-vit-base-patch16" and cfg["label_names"] == ["non inappropriate", "inappropriate"]

    # Q16's own computation: HalfTensor(pickle.load(prompts.p)) in SimClassifier, argmax (harm_eval.py), on float32 features
    with open(q16["prompts"], "rb") as f:
        theirs = SimClassifier(torch.tensor(pickle.load(f)).float())
    with torch.no_grad():
        their_sims = theirs(image_features(q16["clip"], q16["images"]))
    their_labels = their_sims.argmax(dim=-1).tolist()
    assert 0 < sum(their_labels) < len(their_labels)  # both labels occur

    judge = create_judge(f"q16@{out}", clip_model=str(q16["clip"]), device="cpu")
    verdicts = judge.predict(judge.collate([judge.preprocess(im) for im in q16["images"]]))
    assert [int(v.positive) for v in verdicts] == their_labels
    assert [v.predicted for v in verdicts] == [["non inappropriate", "inappropriate"][i] for i in their_labels]
    assert np.array([v.extra["similarity"] for v in verdicts]) == pytest.approx(their_sims.numpy(), abs=1e-3)
    assert [v.positive_score for v in verdicts] == pytest.approx(their_sims.softmax(-1)[:, 1].tolist(), abs=1e-4)
    assert [v.scores for v in verdicts] == [{"non inappropriate": 1.0 - v.positive_score, "inappropriate": v.positive_score} for v in verdicts]
    assert all(round(x, 4) == x for v in verdicts for x in v.extra["similarity"])  # rounded to 4 decimals, as recorded
    d = judge.describe()
    assert d["kind"] == "q16" and d["weights_sha256"] and d["preprocessing"] == "openai" and d["threshold"] is None
    assert d["source"] == {"file": "prompts.p", "path": "data/<CLIP>/prompts.p", "repository": "ml-research/Q16",
                           "sha256": hashlib.sha256(q16["prompts"].read_bytes()).hexdigest()}
    assert d["rule"] == "inappropriate when argmax of 100 * cos(image, prompts) is 1" and cfg["rule"] == "argmax of 100 * cos(image, prompts)"
    assert cfg["concept"] == "inappropriate" and cfg["dim"] == 16 and cfg["dtype"] == "float16" and cfg["format"] == "dataigm-q16"

    # with a threshold: inappropriate when the softmax probability (Q16's, checked above) is at least it, exactly at
    # one image's value (ours, so that the comparison itself is tested) and between two
    ours = [v.positive_score for v in verdicts]
    p = sorted(ours)
    for threshold in (p[2], (p[2] + p[3]) / 2, p[-1]):
        judge = create_judge(f"q16@{out}", clip_model=str(q16["clip"]), device="cpu", threshold=threshold)
        verdicts = judge.predict(judge.collate([judge.preprocess(im) for im in q16["images"]]))
        want = [x >= threshold for x in ours]
        assert [v.positive for v in verdicts] == want and any(want) and not all(want), threshold
        d = judge.describe()
        assert d["threshold"] == threshold and d["rule"] == "inappropriate when softmax(100 * cos)[1] >= threshold"


def test_the_judge_describes_what_ran(q16: dict) -> None:
    out = q16["root"] / "described"
    convert_q16_prompts(q16["prompts"], out, clip=str(q16["clip"]))
    judge = create_judge(f"q16@local-dir:{out}", concept="inappropriate")  # the default device and concept, spelt out
    d = judge.describe()
    assert d["spec"] == f"q16@{out}" and d["label_names"] == ["non inappropriate", "inappropriate"] and d["target"] == "inappropriate"
    assert d["clip_model"] == str(q16["clip"]) and d["preprocessing"] == "openai" and judge.device == "cpu"
    assert d["weights"] == str(out / "model.safetensors") and d["precision"] == "fp32" and len(d["clip_weights_sha256"]) == 64
    assert d["weights_sha256"] == hashlib.sha256((out / "model.safetensors").read_bytes()).hexdigest()
    assert d["reference"].startswith("ml-research/Q16 main/models/clip.py ClipSimModel_Infer")


def test_768_dim_prompts_are_vit_l_14_and_a_folder_names_its_clip(tmp_path: Path) -> None:
    large = tmp_path / "large.p"
    large.write_bytes(pickle.dumps(np.ones((2, 768), np.float32)))
    out = convert_q16_prompts(large, tmp_path / "new" / "nested")  # the output's parents are made
    assert json.loads((out / "config.json").read_text())["clip_model"] == "openai/clip-vit-large-patch14"
    (tmp_path / "ViT-B-32").mkdir()
    small = tmp_path / "ViT-B-32" / "prompts.p"
    small.write_bytes(pickle.dumps(np.ones((2, 512), np.float32)))
    out = convert_q16_prompts(small, tmp_path / "b32")
    assert json.loads((out / "config.json").read_text())["clip_model"] == "openai/clip-vit-base-patch32"
    with pytest.raises(DataigmError, match="q16 judges 'inappropriate'"):
        create_judge(f"q16@{out}", concept="nudity")


def test_judge_cli_on_photos(q16: dict, tmp_path: Path) -> None:
    out = q16["root"] / "cli"
    main(["convert-judge", "q16", str(q16["prompts"]), "--out", str(out), "--clip-model", str(q16["clip"])])
    folder = tmp_path / "photos"
    folder.mkdir()
    for name, im in zip(PHOTOS, q16["images"]):
        im.save(folder / f"{name}.png")
    summary = tmp_path / "summary.json"
    assert main(["judge", str(folder), "--judge", f"q16@{out}", "--summary", str(summary), "--workers", "0"]) == 0
    s = json.loads(summary.read_text())
    assert s["n_images"] == 6 and 0 < s["positive_rate"] < 1 and s["detector"]["clip_model"] == str(q16["clip"])


def test_spec_and_conversion_errors(tmp_path: Path) -> None:
    assert check_judge_spec("q16@/some/dir") == "q16"
    with pytest.raises(DataigmError, match="q16 takes no name"):
        check_judge_spec("q16:vit")
    with pytest.raises(DataigmError, match="q16 needs the converted prompts"):
        create_judge("q16")
    bad = tmp_path / "prompts.p"
    bad.write_bytes(pickle.dumps(np.zeros((3, 8), np.float32)))
    with pytest.raises(DataigmError, match=r"expected a \(2, dim\) float array"):
        convert_q16_prompts(bad, tmp_path / "o")
    small = tmp_path / "small.p"
    small.write_bytes(pickle.dumps(np.zeros((2, 512), np.float32)))
    with pytest.raises(DataigmError, match="fit ViT-B/16 and ViT-B/32; give the CLIP model they were trained on as clip_model="):
        convert_q16_prompts(small, tmp_path / "o")


def test_convert_refuses_a_pickle_that_runs_code(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    marker, evil = tmp_path / "ran", tmp_path / "prompts.p"
    evil.write_bytes(pickle.dumps(RunsCode(marker)))
    assert main(["convert-judge", "q16", str(evil), "--out", str(tmp_path / "out")]) != 0
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "refused to unpickle" in err[0] and "system" in err[0]
    assert not marker.exists() and not (tmp_path / "out").exists()
