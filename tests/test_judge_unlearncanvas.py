"""unlearncanvas: UnlearnCanvas' style/object classifiers and UA/IRA/CRA, rebuilt from accuracy.py on a tiny ViT
saved in their checkpoint layout ({"model_state_dict": ...} of timm vit_large_patch16_224 with a new head)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from dataigm.core.errors import DataigmError
from dataigm.evaluation.metrics import CanvasImage, unlearncanvas_accuracy
from dataigm.judges.registry import create_judge
from dataigm.judges.unlearncanvas import OBJECTS_20, STYLES_51, STYLES_61, UnlearnCanvasTransform, convert_unlearncanvas
from runs_code import RunsCode

THEMES = ["Abstractionism", "Van_Gogh", "Winter"]  # a slice of theme_available, so the test stays small
CLASSES = ["Bears", "Cats"]
SEEDS = [188, 288]


def _tiny_their_model(num_classes: int, seed: int):
    """accuracy.py's model: timm vit_large_patch16_224 with head = nn.Linear(width, num_classes) (tiny width here)."""
    import timm
    import torch

    torch.manual_seed(seed)
    model = timm.create_model("vit_large_patch16_224", pretrained=False, depth=1, embed_dim=64, mlp_ratio=2.0)
    model.head = torch.nn.Linear(64, num_classes)
    return model.eval()


def _nearest_centroid_head(model, answers: Path, labels: list[str], field: int) -> None:
    """Set the head to a nearest-centroid classifier over the answer set's classes (field 0: style, 1: object),
    so that the tiny model gets most images right and some wrong: a non-trivial UA, IRA and CRA."""
    import torch
    from PIL import Image

    from dataigm.judges.unlearncanvas import UnlearnCanvasTransform

    groups: dict[str, list] = {}
    for f in sorted(answers.glob("*.jpg")):
        theme = f.stem.rsplit("_seed", 1)[0].rsplit("_", 1)[0]
        key = theme if field == 0 else f.stem.rsplit("_seed", 1)[0].rsplit("_", 1)[1]
        groups.setdefault(key, []).append(UnlearnCanvasTransform()(Image.open(f)))
    with torch.no_grad():
        feats = {k: model.forward_head(model.forward_features(torch.stack(v)), pre_logits=True).mean(0) for k, v in groups.items()}
        mean = torch.stack(list(feats.values())).mean(0)
        model.head.weight.zero_()
        model.head.bias.fill_(-1e4)
        for key, f in feats.items():
            model.head.weight[labels.index(key)] = (f - mean) * 20.0
            model.head.bias[labels.index(key)] = 0.0


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory: pytest.TempPathFactory, answer_set: Path) -> dict[str, object]:
    import torch

    root = tmp_path_factory.mktemp("uc")
    out = {}
    for task, labels, seed in (("style", STYLES_51, 0), ("object", OBJECTS_20, 1)):
        model = _tiny_their_model(len(labels), seed)
        _nearest_centroid_head(model, answer_set, labels, 0 if task == "style" else 1)
        ckpt = root / f"{task}.pth"
        torch.save({"model_state_dict": model.state_dict(), "epoch": 3}, ckpt)  # their layout
        out[task] = (model, ckpt, convert_unlearncanvas(ckpt, root / f"{task}-dir"))
    return out


@pytest.fixture(scope="module")
def answer_set(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """f"{theme}_{object}_seed{seed}.jpg" files, as accuracy.py reads them (real photo crops, per theme a tint)."""
    from PIL import Image, ImageOps

    from real_weights import skimage_photo

    folder = tmp_path_factory.mktemp("answers")
    photos = {"Bears": skimage_photo("astronaut"), "Cats": skimage_photo("chelsea")}
    for t, theme in enumerate(THEMES):
        for obj in CLASSES:
            for s, seed in enumerate(SEEDS):
                im = photos[obj].rotate(15 * s)
                im = Image.blend(im, ImageOps.solarize(im), 0.3 * t)
                im.resize((96, 96)).save(folder / f"{theme}_{obj}_seed{seed}.jpg")
    return folder


def test_label_tables_are_theirs() -> None:
    assert len(STYLES_51) == 51 and len(STYLES_61) == 61 and len(OBJECTS_20) == 20
    assert STYLES_51.index("Van_Gogh") == 45 and STYLES_51.index("Seed_Images") == 38 and OBJECTS_20[11] == "Human"


def test_converted_folder_is_timm_local_dir(checkpoints: dict[str, object]) -> None:
    import timm

    _, ckpt, folder = checkpoints["style"]
    cfg = json.loads((folder / "config.json").read_text())
    assert cfg["num_classes"] == 51 and cfg["label_names"] == STYLES_51 and cfg["architecture"] == "vit_large_patch16_224"
    assert timm.create_model(f"local-dir:{folder}", pretrained=True).head.out_features == 51
    assert not list(folder.glob("*.pth")) and not list(folder.glob("*.bin"))


@pytest.mark.parametrize("task,n,labels", [("style", 51, STYLES_51), ("style", 61, STYLES_61), ("object", 20, OBJECTS_20)])
def test_conversion_keeps_every_weight_and_records_its_source(tmp_path: Path, task: str, n: int, labels: list[str]) -> None:
    """Their checkpoint converted into a nested new folder: every tensor as saved, timm's config with their labels
    and the ViT's depth and width, and unlearncanvas.json naming the checkpoint, its sha256 and the reference."""
    import hashlib

    import torch
    from safetensors.torch import load_file

    model = _tiny_their_model(n, seed=n)
    ckpt = tmp_path / f"{task}-{n}.pth"
    torch.save({"model_state_dict": model.state_dict(), "epoch": 1}, ckpt)
    out = convert_unlearncanvas(ckpt, tmp_path / "new" / "dir")
    saved = load_file(out / "model.safetensors")
    assert saved.keys() == model.state_dict().keys()
    assert all(torch.equal(saved[k], v) for k, v in model.state_dict().items())
    cfg = json.loads((out / "config.json").read_text())
    assert cfg["label_names"] == labels and cfg["num_classes"] == n
    assert {k: cfg["model_args"][k] for k in ("depth", "embed_dim", "mlp_ratio")} == {"depth": 1, "embed_dim": 64, "mlp_ratio": 2.0}
    assert json.loads((out / "unlearncanvas.json").read_text()) == {
        "format": "dataigm-unlearncanvas/1", "task": task, "architecture": "vit_large_patch16_224.augreg_in21k", "label_names": labels,
        "preprocessing": "Resize((224, 224)), ToTensor(), Normalize([0.5], [0.5])",
        "source": {"file": ckpt.name, "sha256": hashlib.sha256(ckpt.read_bytes()).hexdigest(), "repository": "OPTML-Group/UnlearnCanvas",
                   "reference": "machine_unlearning/evaluation/quantitative/accuracy.py"}}
    assert convert_unlearncanvas(ckpt, out) == out  # converting again into the same folder


def test_predictions_and_ua_ira_cra_match_accuracy_py(checkpoints: dict[str, object], answer_set: Path) -> None:
    """accuracy.py's two loops (--task style, --task class), rebuilt here on the slice of styles/classes, give the
    same per-image labels, log-probabilities and acc tables as the judge + unlearncanvas_accuracy (96 px images,
    resized to 224 as accuracy.py does). A random head whose argmax moves with the preprocessing is checked in
    tests/test_judge_planted_changes.py, with changes planted in the transform."""
    import torch
    from PIL import Image
    from torchvision import transforms

    image_transform = transforms.Compose([transforms.Resize((224, 224)), transforms.ToTensor(), transforms.Normalize([0.5], [0.5])])
    theirs, logits = {}, {}
    for task, labels in (("style", STYLES_51), ("object", OBJECTS_20)):
        model = checkpoints[task][0]
        own = THEMES if task == "style" else CLASSES
        acc = {c: 0.0 for c in own}
        for theme in THEMES:
            for seed in SEEDS:
                for obj in CLASSES:
                    target_image = image_transform(Image.open(answer_set / f"{theme}_{obj}_seed{seed}.jpg")).unsqueeze(0)
                    with torch.no_grad():
                        res = model(target_image)
                    label = labels.index(theme if task == "style" else obj)
                    key = theme if task == "style" else obj
                    n = len(CLASSES) * len(SEEDS) if task == "style" else len(THEMES) * len(SEEDS)
                    acc[key] += float((torch.argmax(res) == label).sum()) * 1.0 / n
                    theirs[(task, theme, obj, seed)] = labels[int(torch.argmax(res))]
                    logits[(task, theme, obj, seed)] = res[0]
        theirs[task] = acc
    files = sorted(answer_set.glob("*.jpg"))
    preds = {}
    for task, labels in (("style", STYLES_51), ("object", OBJECTS_20)):
        judge_ = create_judge(f"unlearncanvas:{task}@{checkpoints[task][2]}", concept="Van_Gogh" if task == "style" else "Cats")
        verdicts = judge_.predict(judge_.collate([judge_.preprocess(Image.open(f)) for f in files]))
        preds[task] = [v.predicted for v in verdicts]
        for f, v in zip(files, verdicts):  # the logits, not only the argmax: log P = their logits' log_softmax
            theme, rest = f.stem.rsplit("_seed", 1)[0].rsplit("_", 1)[0], f.stem.rsplit("_seed", 1)
            row = logits[(task, theme, rest[0].rsplit("_", 1)[1], int(rest[1]))]
            ours = torch.tensor([v.scores[c] for c in labels]).double().log()
            fitted = row.log_softmax(-1) > -50  # the head's live classes (the others sit at bias -1e4)
            assert torch.allclose(ours[fitted], row.log_softmax(-1).double()[fitted], atol=1e-4), f.name
    images = []
    for f, ps, po in zip(files, preds["style"], preds["object"]):
        theme, rest = f.stem.rsplit("_seed", 1)[0].rsplit("_", 1)[0], f.stem.rsplit("_seed", 1)
        obj, seed = rest[0].rsplit("_", 1)[1], int(rest[1])
        assert (ps, po) == (theirs[("style", theme, obj, seed)], theirs[("object", theme, obj, seed)])
        images.append(CanvasImage(theme, obj, ps, po))
    got = unlearncanvas_accuracy(images, "Van_Gogh", "style", n_resamples=50)
    ua = 1.0 - theirs["style"]["Van_Gogh"]
    ira = sum(theirs["style"][t] for t in THEMES if t != "Van_Gogh") / (len(THEMES) - 1)
    cra = sum(theirs["object"].values()) / len(CLASSES)
    assert got["unlearning_accuracy"]["value"] == pytest.approx(ua) and got["ira"]["value"] == pytest.approx(ira)
    assert got["cra"]["value"] == pytest.approx(cra)
    assert 0.0 < ua < 1.0 and 0.0 < cra < 1.0 and ira > 0.0  # a non-trivial answer (0.25, 0.83, 0.88 here)
    assert got["unlearning_accuracy"]["n"] == len(CLASSES) * len(SEEDS) and got["cra"]["n"] == len(files)


def test_verdicts_per_image_with_a_concept_a_threshold_or_neither(checkpoints: dict[str, object], answer_set: Path) -> None:
    """Positive when the top-1 class is the concept (their UA's test), or, with a threshold, when P(concept) is at
    least it (at one image's value and between two); without a concept, never, and the score is the top-1's."""
    import torch
    from PIL import Image

    _, _, folder = checkpoints["style"]
    files = sorted(answer_set.glob("*.jpg"))
    model = checkpoints["style"][0]
    batch = torch.stack([UnlearnCanvasTransform()(Image.open(f)) for f in files])
    with torch.no_grad():
        probs = model(batch).softmax(-1)  # their model on their transform: the answer, computed here
    target = STYLES_51.index("Van_Gogh")
    top = probs.argmax(-1).tolist()
    assert 0 < sum(t == target for t in top) < len(files)  # some images are called Van Gogh, some not

    def verdicts(**kw):
        judge_ = create_judge(f"unlearncanvas:style@local-dir:{folder}", device="cpu", **kw)
        return judge_.predict(judge_.collate([judge_.preprocess(Image.open(f)) for f in files]))

    for spelling in ("Van_Gogh", "van gogh", "van-gogh"):
        got = verdicts(concept=spelling)
        assert [v.positive for v in got] == [t == target for t in top], spelling
    assert [v.extra["top1"] for v in got] == top and [v.predicted for v in got] == [STYLES_51[t] for t in top]
    assert [v.positive_score for v in got] == pytest.approx(probs[:, target].tolist(), abs=1e-5)
    ours = sorted(v.positive_score for v in got)
    for threshold in (ours[3], (ours[3] + ours[4]) / 2):
        flagged = [v.positive for v in verdicts(concept="Van_Gogh", threshold=threshold)]
        assert flagged == [v.positive_score >= threshold for v in got] and any(flagged) and not all(flagged), threshold
    plain = verdicts()
    assert not any(v.positive for v in plain)
    assert [v.positive_score for v in plain] == pytest.approx(probs.max(-1).values.tolist(), abs=1e-5)


def test_known_answers() -> None:
    ims = [CanvasImage("Van_Gogh", "Cats", "Van_Gogh", "Cats"), CanvasImage("Van_Gogh", "Bears", "Monet", "Cats"),
           CanvasImage("Monet", "Cats", "Monet", "Cats"), CanvasImage("Monet", "Bears", "Van_Gogh", "Bears"),
           CanvasImage("Winter", "Cats", "Winter", "Dogs")]
    got = unlearncanvas_accuracy(ims, "Van_Gogh", "style", n_resamples=20)
    assert got["unlearning_accuracy"]["value"] == 0.5  # one of two Van Gogh images no longer called Van Gogh
    assert got["ira"]["value"] == pytest.approx((0.5 + 1.0) / 2)  # Monet 1/2, Winter 1/1
    assert got["cra"]["value"] == pytest.approx((2 / 3 + 1 / 2) / 2)  # Cats 2/3, Bears 1/2, every image counted
    obj = unlearncanvas_accuracy(ims, "Cats", "object", n_resamples=20)
    assert obj["unlearning_accuracy"]["value"] == pytest.approx(1 / 3) and obj["cra"]["value"] == pytest.approx((1 / 2 + 1 / 2 + 1) / 3)
    with pytest.raises(ValueError, match="no image of the unlearned style 'Ukiyoe'"):
        unlearncanvas_accuracy(ims, "Ukiyoe")


def test_a_checkpoint_is_read_without_running_its_code_bare_or_wrapped(tmp_path: Path) -> None:
    import torch

    marker = tmp_path / "ran"
    torch.save({"model_state_dict": {"head.weight": torch.zeros(20, 4)}, "hook": RunsCode(marker)}, tmp_path / "evil.pth")
    with pytest.raises(DataigmError, match=r"torch.load\(weights_only=True\) refused it .*never runs pickled code"):
        convert_unlearncanvas(tmp_path / "evil.pth", tmp_path / "o")
    assert not marker.exists()
    model = _tiny_their_model(20, seed=3)
    torch.save(model.state_dict(), tmp_path / "bare.pth")  # a bare state dict, without their model_state_dict wrapper
    out = convert_unlearncanvas(tmp_path / "bare.pth", tmp_path / "bare")
    assert json.loads((out / "unlearncanvas.json").read_text())["task"] == "object"
    torch.save([torch.zeros(2)], tmp_path / "list.pth")
    with pytest.raises(DataigmError, match="not an UnlearnCanvas classifier checkpoint"):
        convert_unlearncanvas(tmp_path / "list.pth", tmp_path / "l")
    with pytest.raises(FileNotFoundError, match="not found"):
        convert_unlearncanvas(tmp_path / "missing.pth", tmp_path / "m")


def test_cli_converts_and_refuses_what_is_not_theirs(checkpoints: dict[str, object], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import torch

    from dataigm.cli import main

    _, ckpt, _ = checkpoints["object"]
    assert main(["convert-judge", "unlearncanvas", str(ckpt), "--out", str(tmp_path / "o")]) == 0
    assert json.loads((tmp_path / "o" / "unlearncanvas.json").read_text())["task"] == "object"
    torch.save({"model_state_dict": {"head.weight": torch.zeros(7, 4)}}, tmp_path / "bad.pth")
    assert main(["convert-judge", "unlearncanvas", str(tmp_path / "bad.pth"), "--out", str(tmp_path / "b")]) == 2
    assert "51 or 61 style classes or 20 object classes, not 7" in capsys.readouterr().err
    with pytest.raises(DataigmError, match="unknown UnlearnCanvas task 'colour'"):
        create_judge("unlearncanvas:colour@x")
    with pytest.raises(DataigmError, match="unknown UnlearnCanvas class 'Vermeer'"):
        create_judge(f"unlearncanvas:style@{checkpoints['style'][2]}", concept="Vermeer")
