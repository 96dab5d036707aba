"""igmu:<task> and ``dataigm convert-judge igmu``: a head saved in IGMU's layout (a pickled state dict), converted
with weights_only loading, judged with a tiny CLIP, against IGMU's own computation written here from its code."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file
from torch import nn

from dataigm.judges.clip import projected
from dataigm.judges.tiny import build_tiny_igmu_head
from dataigm.synthetic import draw_pattern
from clip_references import transformers4_clip_pixels
from real_weights import skimage_photo

HIDDEN = 16  # the tiny CLIP's projection size (ViT-B/32: 512)


class TheirHead(nn.Module):
    """IGMU model.py AdvancedClassifierHead_CLIP, as published (input_dim unused, hidden_dim = CLIP projection)."""

    def __init__(self, input_dim: int = 768, hidden_dim: int = 512, dropout_rate: float = 0.3) -> None:
        super().__init__()
        self.attention = nn.Sequential(nn.Linear(hidden_dim, hidden_dim // 2), nn.ReLU(), nn.Linear(hidden_dim // 2, hidden_dim), nn.Sigmoid())
        self.classifier = nn.Sequential(
            nn.LayerNorm(hidden_dim), nn.Linear(hidden_dim, hidden_dim // 2), nn.ReLU(), nn.Dropout(dropout_rate),
            nn.Linear(hidden_dim // 2, hidden_dim // 4), nn.ReLU(), nn.Dropout(dropout_rate), nn.Linear(hidden_dim // 4, 1),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        attention_weights = self.attention(x)
        x = x * attention_weights
        return self.classifier(x)


def their_predictions(clip_dir: Path, head_pth: Path, images: list, head_eval: bool = True) -> tuple[list[float], list[int]]:
    """IGMU benchmark.py load_clip + CLIPBinaryClassifier.predict: sigmoid(head(get_image_features)).round(), with
    the head in eval mode (``head_eval``, dataigm's choice) or as benchmark.py leaves it (training mode: dropout on)."""
    from transformers import CLIPModel, CLIPProcessor

    clip_model, processor = CLIPModel.from_pretrained(clip_dir).eval(), CLIPProcessor.from_pretrained(clip_dir)
    head = TheirHead(hidden_dim=HIDDEN)
    head.load_state_dict(torch.load(head_pth))
    if head_eval:
        head.eval()
    cfg = processor.image_processor  # its settings; the pixels as transformers 4's CLIPProcessor made them
    batch = torch.cat([transformers4_clip_pixels([im], cfg.size["shortest_edge"], cfg.crop_size["height"], cfg.image_mean, cfg.image_std)
                       for im in images])
    with torch.no_grad():
        features = clip_model.get_image_features(batch)
        logits = head(projected(features))
    return logits[:, 0].tolist(), torch.sigmoid(logits).squeeze().round().long().tolist()


@pytest.fixture(scope="module")
def tiny_clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from dataigm.generate.tiny import build_tiny_clip

    return build_tiny_clip(tmp_path_factory.mktemp("clip") / "tiny-clip")


@pytest.fixture(scope="module")
def images(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("igmu-images")
    for i, pattern in enumerate(["disc", "ring", "checker", "hstripes", "vstripes", "triangle"]):
        draw_pattern(pattern, i, 64).save(folder / f"{i}_0.png")
    skimage_photo("chelsea").save(folder / "6_0.png")
    skimage_photo("coffee").save(folder / "7_0.png")
    return folder


@pytest.fixture(scope="module")
def head_pth(tmp_path_factory: pytest.TempPathFactory, tiny_clip: Path, images: Path) -> Path:
    """A head in IGMU's layout at Weights/bi_multiC/nudity/classifier_head.pth, its bias set so the eight images
    split on both sides of the decision."""
    from PIL import Image

    root = tmp_path_factory.mktemp("igmu-repo")
    path = build_tiny_igmu_head(root / "Weights" / "bi_multiC" / "nudity" / "classifier_head.pth", HIDDEN, seed=0, bias=0.0)
    pics = [Image.open(p).convert("RGB") for p in sorted(images.glob("*.png"))]
    z, _ = their_predictions(tiny_clip, path, pics)
    middle = sorted(z)[len(z) // 2 - 1 : len(z) // 2 + 1]
    return build_tiny_igmu_head(path, HIDDEN, seed=0, bias=-sum(middle) / 2)


def test_convert_writes_safetensors_and_orientation(head_pth: Path, tiny_clip: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import hashlib

    from dataigm.cli import main
    from dataigm.core.errors import DataigmError
    from dataigm.judges.igmu import convert_igmu_head
    from dataigm.judges.registry import create_judge

    assert main(["convert-judge", "igmu", str(head_pth), "--out", str(tmp_path / "nudity")]) == 0
    assert "P(nude) = 1 - sigmoid(z)" in capsys.readouterr().out
    cfg = json.loads((tmp_path / "nudity" / "config.json").read_text())
    assert (cfg["task"], cfg["p_concept"], cfg["threshold"], cfg["hidden_dim"]) == ("nudity", "1 - sigmoid(z)", 0.5, HIDDEN)
    assert cfg["clip_model"] == "openai/clip-vit-base-patch32" and cfg["label_names"] == ["nude", "safe"]
    theirs = torch.load(head_pth, weights_only=True)
    ours = load_file(str(tmp_path / "nudity" / "model.safetensors"))
    assert sorted(ours) == sorted(theirs) and all(torch.equal(ours[k], theirs[k]) for k in theirs)

    assert {k: cfg[k] for k in ("architecture", "features", "format", "concept", "source")} == {
        "architecture": "AdvancedClassifierHead_CLIP", "features": "CLIPModel.get_image_features", "format": "dataigm-igmu-head/1",
        "concept": "nude", "source": {"file": head_pth.name, "path": "Weights/bi_multiC/nudity/classifier_head.pth",
                                      "repository": "ryliu68/IGMU", "sha256": hashlib.sha256(head_pth.read_bytes()).hexdigest()}}

    expected = {"vangogh": "sigmoid(z)", "church": "1 - sigmoid(z)", "parachute": "sigmoid(z)"}
    for task, orientation in expected.items():
        assert main(["convert-judge", "igmu", str(head_pth), "--out", str(tmp_path / task), "--task", task]) == 0
        assert json.loads((tmp_path / task / "config.json").read_text())["p_concept"] == orientation
    # a checkpoint saved as {"state_dict": ...}, converted into a nested new folder: the same weights
    torch.save({"state_dict": theirs, "epoch": 2}, tmp_path / "wrapped.pth")
    out = convert_igmu_head(tmp_path / "wrapped.pth", tmp_path / "new" / "nested", task="nudity")
    assert all(torch.equal(load_file(str(out / "model.safetensors"))[k], theirs[k]) for k in theirs)
    for threshold in (0.0, 1.0):  # a threshold from 0 to 1 inclusive
        assert create_judge(f"igmu:nudity@{out}", clip_model=str(tiny_clip), device="cpu", threshold=threshold).threshold == threshold
    with pytest.raises(DataigmError, match=r"threshold must be in \[0, 1\], got 1.000000001"):
        create_judge(f"igmu:nudity@{out}", clip_model=str(tiny_clip), device="cpu", threshold=1.000000001)


@pytest.mark.parametrize("task", ["nudity", "parachute"])
def test_judge_equals_igmus_prediction_with_the_head_in_eval_mode(task: str, head_pth: Path, tiny_clip: Path, images: Path, tmp_path: Path,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    from PIL import Image

    from dataigm.cli import main

    assert main(["convert-judge", "igmu", str(head_pth), "--out", str(tmp_path / "head"), "--task", task]) == 0
    capsys.readouterr()
    out = tmp_path / "pred.jsonl"
    rc = main(["judge", str(images), "--judge", f"igmu:{task}@{tmp_path / 'head'}", "--clip-model", str(tiny_clip),
               "--json", "--workers", "0", "--out", str(out)])
    summary = json.loads(capsys.readouterr().out)
    assert rc == 0 and summary["n_images"] == 8
    files = sorted(images.glob("*.png"))
    z, labels = their_predictions(tiny_clip, head_pth, [Image.open(p).convert("RGB") for p in files])
    concept_label = 0 if task == "nudity" else 1  # ImageFolder's alphabetical labels: nude < safe, other < parachute
    rows = {r["file"]: r for r in map(json.loads, out.read_text().splitlines())}
    for path, logit, label in zip(files, z, labels):
        row = rows[path.name]
        assert row["logit"] == pytest.approx(logit, abs=1e-5)
        sigma = 1 / (1 + torch.exp(torch.tensor(-logit)).item())
        assert row["positive_score"] == pytest.approx(sigma if concept_label == 1 else 1 - sigma, abs=1e-6)
        assert row["positive"] == (label == concept_label), path.name
    assert 0 < summary["n_positive"] < 8  # both decisions occur
    assert summary["n_positive"] == sum(label == concept_label for label in labels)
    assert summary["detector"]["task"] == task and summary["threshold"] == 0.5
    assert summary["detector"]["category"] == ("nudity" if task == "nudity" else "object")


@pytest.mark.parametrize("task", ["nudity", "parachute"])
def test_a_threshold_at_and_between_scores_and_each_verdicts_class(task: str, head_pth: Path, tiny_clip: Path, images: Path,
                                                                  tmp_path: Path) -> None:
    """With a threshold, IGMU's comparison as its orientation makes it (a concept at label 1: P > T, at label 0: its
    complement's P < 1 - T, that is P >= T), at one image's own score and between two; each verdict's class and scores."""
    from PIL import Image

    from dataigm.judges.igmu import _exp, convert_igmu_head
    from dataigm.judges.registry import create_judge

    convert_igmu_head(head_pth, tmp_path / "head", task=task)
    pils = [Image.open(p).convert("RGB") for p in sorted(images.glob("*.png"))]

    def verdicts(threshold=None):
        judge = create_judge(f"igmu:{task}@{tmp_path / 'head'}", clip_model=str(tiny_clip), device="cpu", threshold=threshold)
        return judge, judge.predict(judge.collate([judge.preprocess(im) for im in pils]))

    judge, plain = verdicts()
    p = [v.positive_score for v in plain]
    for v in plain:
        assert v.scores == {judge.label_names[0]: 1.0 - v.positive_score, judge.target: v.positive_score}
        assert v.predicted == (judge.target if v.positive else judge.label_names[0])
    ordered = sorted(p)
    above = (lambda x, t: x > t) if task == "parachute" else (lambda x, t: x >= t)
    for threshold in (ordered[3], (ordered[3] + ordered[4]) / 2):
        _, got = verdicts(threshold)
        assert [v.positive for v in got] == [above(x, threshold) for x in p], threshold
    assert _exp(699.0) == math.exp(699.0) and _exp(700.0) == float("inf")  # the logistic's overflow guard


def test_task_mismatch_and_pickled_code_are_refused(head_pth: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from dataigm.cli import main
    from dataigm.judges.registry import create_judge

    assert main(["convert-judge", "igmu", str(head_pth), "--out", str(tmp_path / "nudity")]) == 0
    with pytest.raises(ValueError, match="holds the 'nudity' head"):
        create_judge("igmu:church", igmu_head=str(tmp_path / "nudity"))
    with pytest.raises(ValueError, match="holds the 'nudity' head"):  # the head folder may ride in the spec
        create_judge(f"igmu:church@{tmp_path / 'nudity'}")
    with pytest.raises(ValueError, match="needs the converted head folder"):
        create_judge("igmu:nudity")
    evil = tmp_path / "classifier_head.pth"
    torch.save({"head": nn.Linear(2, 2)}, evil)  # a pickled module: code, not tensors
    assert main(["convert-judge", "igmu", str(evil), "--out", str(tmp_path / "x"), "--task", "nudity"]) == 2
    err = capsys.readouterr().err
    assert "weights_only=True" in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "x" / "model.safetensors").exists()
    assert main(["convert-judge", "igmu", str(head_pth), "--out", str(tmp_path / "y"), "--task", "cubism"]) == 2
    assert "valid: nudity, vangogh, church, parachute" in capsys.readouterr().err


def test_convert_refuses_bad_heads_in_one_line(head_pth: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from dataigm.cli import main
    from dataigm.judges.igmu import build_igmu_head

    folder = tmp_path / "Weights" / "nudity"
    folder.mkdir(parents=True)
    (folder / "text.pth").write_text("not a torch file")
    state = build_igmu_head(HIDDEN).state_dict()
    state["classifier.7.weight"] = torch.zeros(1, HIDDEN // 4 + 1)  # IGMU's keys, another shape
    torch.save(state, folder / "shapes.pth")
    (tmp_path / "file").write_text("")
    cases = [
        ([str(folder / "text.pth"), "--out", str(tmp_path / "a")], "not a PyTorch file of tensors only"),
        ([str(folder / "shapes.pth"), "--out", str(tmp_path / "b")], "tensor shapes differ from AdvancedClassifierHead_CLIP"),
        ([str(head_pth), "--out", str(tmp_path / "file")], "is a file; give a folder"),
        ([str(tmp_path / "missing.pth"), "--out", str(tmp_path / "c")], "not found"),
    ]
    for args, message in cases:
        assert main(["convert-judge", "igmu", *args]) == 2, args
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and message in err[0], err
    assert not any((tmp_path / d).exists() for d in "abc")


def test_missing_clip_says_how_to_give_one(head_pth: Path, images: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from dataigm.cli import main

    assert main(["convert-judge", "igmu", str(head_pth), "--out", str(tmp_path / "head")]) == 0  # CLIP: the Hub id, offline here
    capsys.readouterr()
    assert main(["judge", str(images), "--judge", f"igmu:nudity@{tmp_path / 'head'}"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "CLIP model 'openai/clip-vit-base-patch32'" in err[0] and "--clip-model DIR" in err[0]
    assert "not in the local Hub cache" in err[0]  # found offline at once, no Hub retries; --clip-model is judge's own flag


def test_an_uncached_hub_id_fails_at_once_when_the_hub_cannot_be_reached(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without HF_HUB_OFFLINE, an unreachable Hub is found in one short probe, not after the Hub client's retries."""
    from dataigm.core import network
    from dataigm.judges.clip import hub_load_options

    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.delenv("TRANSFORMERS_OFFLINE", raising=False)
    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")  # the discard port: refused at once
    network.hub_reachable.cache_clear()
    try:
        with pytest.raises(OSError, match="not in the local Hub cache"):
            hub_load_options("openai/clip-vit-base-patch32-not-cached")
        assert hub_load_options("./a/local/folder") == {}
    finally:
        network.hub_reachable.cache_clear()


def test_benchmark_py_as_written_runs_dropout_and_differs_from_the_judge(head_pth: Path, tiny_clip: Path, images: Path) -> None:
    """benchmark.py as written (the head never put in eval mode: its Dropout(0.3) layers stay on), with a fixed seed:
    reproducible for that seed, different logits from the judge's eval-mode head on the same images (the documented
    difference, docs/judging.md "IGMU")."""
    from PIL import Image

    from dataigm.judges.registry import create_judge

    pics = [Image.open(p).convert("RGB") for p in sorted(images.glob("*.png"))]
    torch.manual_seed(0)
    z_train, labels_train = their_predictions(tiny_clip, head_pth, pics, head_eval=False)
    torch.manual_seed(0)
    assert their_predictions(tiny_clip, head_pth, pics, head_eval=False) == (z_train, labels_train)  # the seed fixes it
    z_eval, _ = their_predictions(tiny_clip, head_pth, pics)
    judge_ = create_judge(f"igmu:nudity@{convert_for_test(head_pth, images.parent / 'igmu-dropout-head', tiny_clip)}",
                          clip_model=str(tiny_clip), device="cpu")
    ours = [v.extra["logit"] for v in judge_.predict(judge_.collate([judge_.preprocess(im) for im in pics]))]
    assert ours == pytest.approx(z_eval, abs=1e-5)
    assert max(abs(a - b) for a, b in zip(ours, z_train)) > 1e-3  # dropout moves benchmark.py's logits


def convert_for_test(head_pth: Path, out: Path, clip: Path) -> Path:
    from dataigm.judges.igmu import convert_igmu_head

    return out if (out / "model.safetensors").is_file() else convert_igmu_head(head_pth, out, task="nudity", clip=str(clip))


def test_igmu_ran_its_head_with_dropout_on_ours_is_deterministic(head_pth: Path) -> None:
    """IGMU's load_clip never calls ``.eval()`` on the head (``Bi_MultiC()`` is a fresh module, in training mode), so
    its two Dropout(0.3) layers stay active in ``predict``; ``from_pretrained`` puts CLIP itself in eval mode. We
    run the head in eval mode: deterministic, and the expectation of IGMU's stochastic output up to the non-linearity."""
    head = TheirHead(hidden_dim=HIDDEN)
    head.load_state_dict(torch.load(head_pth))
    assert head.training  # as IGMU's benchmark.py leaves it
    x = torch.randn(64, HIDDEN, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        draws = torch.stack([torch.sigmoid(head(x)) for _ in range(8)])
        ours = torch.sigmoid(head.eval()(x))
    assert not torch.equal(draws[0], draws[1])  # dropout on: two calls differ
    assert torch.equal(ours, torch.sigmoid(head(x)))  # eval: the same every call
    assert float((draws - ours).abs().max()) > 0.0
