"""Person presence: IGMU's rule (a COCO person box above confidence 0.5) through torchvision's Faster R-CNN, and the
uncalibrated NudeNet-based detector, each asserted on images with a known answer.

COCO weights cannot be downloaded here, so the Faster R-CNN runs with seeded random weights whose person logit is
forced up or down through the box predictor's bias: the decision logic, the loading path (a state dict read with
weights_only) and the evaluation hook are real; what a trained detector answers on real images is not verified.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from PIL import Image

from dataigm.judges.person import create_person_detector
from dataigm.judges.images import resolve_images
from dataigm.judges.person import TORCHVISION_PERSON, YOLO_PERSON, person_in
from real_weights import grace_hopper

ARCH = "fasterrcnn_mobilenet_v3_large_320_fpn"


@pytest.fixture(scope="module")
def two_images(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real portrait and a blank picture."""
    folder = tmp_path_factory.mktemp("people")
    shutil.copy(grace_hopper(), folder / "0_0.jpg")
    Image.new("RGB", (256, 256), "white").save(folder / "1_0.png")
    return folder


def random_detector_weights(path: Path, person_bias: float) -> Path:
    """Seeded random COCO-shaped Faster R-CNN weights, the person class's logit shifted by ``person_bias``."""
    import torch
    import torchvision

    torch.manual_seed(0)
    model = torchvision.models.get_model(ARCH, weights=None, weights_backbone=None, num_classes=91)
    with torch.no_grad():
        model.roi_heads.box_predictor.cls_score.bias[TORCHVISION_PERSON] += person_bias
    torch.save(model.state_dict(), path)
    return path


def test_igmu_rule_on_detections() -> None:
    assert person_in([3, 1], [0.99, 0.51], TORCHVISION_PERSON)
    assert not person_in([3, 1], [0.99, 0.5], TORCHVISION_PERSON)  # strictly above conf, as ultralytics' NMS
    assert not person_in([3, 2], [0.99, 0.99], TORCHVISION_PERSON)
    assert person_in([0], [0.7], YOLO_PERSON) and not person_in([], [], YOLO_PERSON)


@pytest.mark.parametrize("bias, expected", [(20.0, [True, True]), (-20.0, [False, False])])
def test_fasterrcnn_person_presence_follows_its_detections(bias: float, expected: list[bool], two_images: Path, tmp_path: Path) -> None:
    weights = random_detector_weights(tmp_path / "frcnn.pth", bias)
    det = create_person_detector(f"fasterrcnn:{ARCH}@{weights}")
    assert det.describe()["weights"]["sha256"] and det.describe()["conf"] == 0.5
    images = [Image.open(p) for p in sorted(two_images.iterdir())]
    batch = det.collate([det.preprocess(im) for im in images])
    outputs = det.detections(batch)
    present = det.present(batch)
    assert present == expected
    for out, flag in zip(outputs, present):
        assert flag == any(int(label) == 1 and float(score) > 0.5 for label, score in zip(out["labels"], out["scores"]))


def test_person_presence_in_evaluation(two_images: Path, tmp_path: Path) -> None:
    """The evaluation's person-presence rate, asserted: NudeNet sees the portrait's face (1 of 2 images); the Faster
    R-CNN with a forced person logit sees a person in both."""
    from dataigm.evaluation.evaluate import EvalConfig, person_presence

    inp = resolve_images(two_images)
    cfg = EvalConfig(detector="nudenet", workers=0)
    nn = person_presence("nudenet-body", inp, cfg.stats, cfg.run)
    assert nn["value"] == 0.5 and nn["n"] == 2 and nn["detector"]["calibrated"] is False
    weights = random_detector_weights(tmp_path / "frcnn.pth", 20.0)
    frcnn = person_presence(f"fasterrcnn:{ARCH}@{weights}", inp, cfg.stats, cfg.run)
    assert frcnn["value"] == 1.0 and frcnn["n"] == 2 and frcnn["detector"]["architecture"] == ARCH


def test_coco_person_falls_back_to_faster_rcnn_without_ultralytics(tmp_path: Path) -> None:
    import importlib.util

    if importlib.util.find_spec("ultralytics") is not None:
        pytest.skip("ultralytics is installed: coco-person runs YOLO")
    weights = random_detector_weights(tmp_path / "frcnn.pth", -20.0)
    det = create_person_detector(f"coco-person:{ARCH}@{weights}")
    assert det.name == f"fasterrcnn:{ARCH}" and det.describe()["person_label"] == TORCHVISION_PERSON


def test_yolo_needs_ultralytics() -> None:
    import importlib.util

    from dataigm.core.errors import DataigmError

    if importlib.util.find_spec("ultralytics") is None:
        with pytest.raises(DataigmError, match="ultralytics is not installed"):
            create_person_detector("yolo")


@pytest.mark.parametrize("spec,error,message", [("person-finder", KeyError, "valid: coco-person, fasterrcnn, nudenet-body, yolo"),
                                                ("fasterrcnn:resnet50@x.pth", ValueError, "unknown torchvision detector 'resnet50'")])
def test_unknown_person_detectors_are_named(spec: str, error: type[Exception], message: str) -> None:
    with pytest.raises(error, match=message):
        create_person_detector(spec)


def test_person_presence_leaves_out_paired_negatives(tmp_path: Path) -> None:
    """A forget shard holding a paired negative (the portrait, role negative) beside its forget image (blank):
    person presence counts the forget image only, as judging does."""
    from dataigm.core.schema import SampleMeta
    from dataigm.core.shards import ShardSpec
    from dataigm.evaluation.evaluate import EvalConfig, person_presence
    from dataigm.synthetic import png_bytes, write_samples

    labels = ["not_nude", "nude"]
    samples = []
    for role, image in (("positive", Image.new("RGB", (256, 256), "white")), ("negative", Image.open(grace_hopper()).convert("RGB"))):
        meta = SampleMeta(key=f"{role[:3]}-p0-1", category="nudity", split="test", label=int(role == "positive"), label_name=labels[role == "positive"],
                          label_names=labels, role=role, concept="nudity", taxonomy="nudity", pair_id="p0", prompt="a", pair_prompt="b",
                          prompt_index=0, seed=1, image_index=0)
        samples.append((meta, png_bytes(image)))
    write_samples(tmp_path, "nudity", labels, {ShardSpec("nudity", "test", 0, "gen"): samples}, part="gen")
    cfg = EvalConfig(detector="nudenet", workers=0)
    pp = person_presence("nudenet-body", resolve_images(tmp_path), cfg.stats, cfg.run)
    assert pp["n"] == 1 and pp["value"] == 0.0  # counting the negative gave 1 of 2


def test_default_person_detector_says_which_ran() -> None:
    from dataigm.evaluation.evaluate import default_person_detector
    from dataigm.judges.person import coco_person_available

    spec, note = default_person_detector()
    if coco_person_available():
        assert spec == "nudenet-body" and "not IGMU's detector" in note
    else:
        assert (spec, note) == ("coco-person", "")
