"""Judging with DataLoader workers under ``spawn`` and ``forkserver`` (Python 3.14's Linux default): workers get a
small picklable transform, never the judge with its model and module references."""

from __future__ import annotations

import pickle
import shutil
from pathlib import Path

import pytest
from PIL import Image

from dataigm.judges.nudenet import NudeNetJudge
from dataigm.judges.registry import create_judge
from dataigm.judges.person import create_person_detector
from dataigm.judges.judge import judge
from dataigm.synthetic import write_synthetic_folder
from real_weights import grace_hopper


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Eight drawn pictures and Grace Hopper's portrait (NudeNet finds her face)."""
    root = tmp_path_factory.mktemp("imgs")
    write_synthetic_folder(root, ["disc", "stripes"], 4)
    shutil.copy(grace_hopper(), root / "grace_hopper.jpg")
    return root


def test_every_judge_hands_workers_a_picklable_transform(nudity_detector: Path, efficientnet_lite0_dir: Path) -> None:
    image = Image.new("RGB", (80, 60), "gray")
    judges = [create_judge(f"local-dir:{nudity_detector}"), NudeNetJudge(), create_judge("imagenet:church", imagenet_model=f"local-dir:{efficientnet_lite0_dir}"),
              create_person_detector("nudenet-body")]
    for j in judges:
        clone = pickle.loads(pickle.dumps(j.preprocess))
        a, b = j.preprocess(image), clone(image)
        assert type(a) is type(b)
        assert len(pickle.dumps(j.preprocess)) < 100_000  # a transform, not a model


@pytest.fixture(scope="module")
def tiny_judge(nudity_detector: Path) -> object:
    return create_judge(f"local-dir:{nudity_detector}")


@pytest.fixture(scope="module")
def no_workers(tiny_judge: object, folder: Path) -> object:
    """The reference: the folder judged in the main process, two images per batch."""
    return judge(folder, tiny_judge, batch_size=2, workers=0, progress=False)


@pytest.mark.parametrize("start_method", ["fork", "spawn", "forkserver"])
def test_two_workers_under_start_method_equal_no_workers(start_method: str, tiny_judge: object, no_workers: object, folder: Path) -> None:
    single = no_workers
    multi = judge(folder, tiny_judge, batch_size=3, workers=2, progress=False, start_method=start_method)  # other batch boundaries too
    assert multi.summary["n_images"] == single.summary["n_images"] == 9 and not multi.failed
    assert [p.file for p in multi.predictions] == [p.file for p in single.predictions]
    for a, b in zip(multi.predictions, single.predictions):
        assert a.extra["logits"] == pytest.approx(b.extra["logits"], abs=1e-5)


def test_nudenet_under_spawn_keeps_its_detections(folder: Path) -> None:
    judge_ = NudeNetJudge(classes=["FACE_FEMALE"], threshold=0.3)
    single = judge(folder, judge_, batch_size=4, workers=0, progress=False)
    multi = judge(folder, judge_, batch_size=4, workers=2, progress=False, start_method="spawn")
    assert multi.summary["n_positive"] == single.summary["n_positive"] == 1
    assert [(p.file, [d["class"] for d in p.extra["detections"]]) for p in multi.predictions] == \
           [(p.file, [d["class"] for d in p.extra["detections"]]) for p in single.predictions]
    assert multi.summary["per_body_part"] == {"FACE_FEMALE": 1}
