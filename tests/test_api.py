"""The public Python API: ``import dataigm`` stays light; ``load_judge`` judges every input form alike, equal to the
command, with the extras' frameworks unimportable; ``Verdicts`` holds what it says."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import dataigm
from dataigm.core.errors import InputError
from dataigm.evaluation.agreement import wilson_interval

TESTS = Path(__file__).parent
FRAMEWORKS = ("torch", "numpy", "PIL", "timm", "transformers", "onnxruntime", "pydantic", "yaml", "diffusers", "lightning", "fiftyone")


def test_import_dataigm_loads_no_framework():
    code = f"import sys, dataigm; print([m for m in sys.modules if m.split('.')[0] in {FRAMEWORKS!r}])"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
    assert set(dataigm.__all__) >= {"list_judges", "load_judge", "Judge", "Verdicts", "evaluate", "audit"}
    with pytest.raises(AttributeError, match="no attribute 'load_judges'"):
        dataigm.load_judges  # noqa: B018


def test_public_names_are_the_library_functions_and_have_examples():
    from dataigm.evaluation.audit import audit
    from dataigm.evaluation.evaluate import evaluate
    from dataigm.judges.load import Judge, list_judges, load_judge

    assert (dataigm.evaluate, dataigm.audit, dataigm.Judge, dataigm.list_judges, dataigm.load_judge) == (evaluate, audit, Judge, list_judges, load_judge)
    for fn in (dataigm.list_judges, dataigm.load_judge, dataigm.Judge.__call__, dataigm.Verdicts.interval, dataigm.evaluate, dataigm.audit):
        assert ">>>" in fn.__doc__, fn.__qualname__


def test_list_judges_is_the_catalogue_the_command_prints(capsys):
    from dataigm.cli import main

    assert main(["list-judges", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["judges"] == dataigm.list_judges()
    [opennsfw] = dataigm.list_judges("opennsfw")
    assert opennsfw["offline"] == "yes" and opennsfw["syntax"].startswith("opennsfw")
    assert {"kind", "syntax", "decides", "reference", "weights", "licence", "offline", "options", "settings"} <= set(opennsfw)
    assert opennsfw["settings"] == ["jpeg_reencode"]


def test_a_keyword_no_judge_of_the_kind_reads_is_refused_by_name(photos):
    """A misspelt option or another kind's setting would otherwise be ignored without a word and change nothing."""
    from dataigm.judges.registry import JudgeSpecError

    with pytest.raises(JudgeSpecError, match=r"^judge opennsfw takes no setting 'thresold' \(did you mean 'threshold'\?\); its settings: jpeg_reencode$"):
        dataigm.load_judge("opennsfw", thresold=0.3)
    with pytest.raises(JudgeSpecError, match=r"^judge opennsfw takes no setting 'input_size'; its settings: jpeg_reencode$"):
        dataigm.load_judge("opennsfw", input_size="train")  # imagenet's setting
    with pytest.raises(JudgeSpecError, match=r"takes no setting 'jpeg_reencode'; its settings: none$"):
        dataigm.load_judge("nudenet:esd", jpeg_reencode=False)
    # the kind's own setting is taken and changes the scores: the JPEG round trip of OpenNSFW's reference is skipped
    default, raw = dataigm.load_judge("opennsfw", device="cpu")(photos), dataigm.load_judge("opennsfw", device="cpu", jpeg_reencode=False)(photos)
    assert default.ids == raw.ids and not np.allclose(default.scores, raw.scores, rtol=0, atol=1e-6)


@pytest.fixture(scope="module")
def noise(tmp_path_factory) -> tuple[Path, list[np.ndarray]]:
    """Nine 64 px noise images as 0.png ... 8.png (nine: batches of 7 leave a partial one) and as arrays."""
    rng = np.random.default_rng(0)
    arrays = [rng.integers(0, 256, (64, 64, 3), dtype=np.uint8) for _ in range(9)]
    folder = tmp_path_factory.mktemp("noise")
    for i, a in enumerate(arrays):
        Image.fromarray(a).save(folder / f"{i}.png")
    return folder, arrays


def test_verdicts_of_the_tiny_detector(nudity_detector, noise):
    folder, arrays = noise
    scores = dataigm.load_judge(f"local-dir:{nudity_detector}", device="cpu")(folder).scores
    threshold = float(np.sort(scores)[4])  # between the scores: some images positive, some not
    judge = dataigm.load_judge(f"local-dir:{nudity_detector}", device="cpu", threshold=threshold)
    v = judge(folder)
    assert v.ids == [f"{i}.png" for i in range(9)]
    assert v.positive.dtype == bool and v.scores.dtype == float
    assert v.positive.tolist() == (v.scores >= threshold).tolist() and 0 < v.n_positive < 9
    assert v.positive_rate == v.n_positive / 9
    assert v.interval() == wilson_interval(v.n_positive, 9, 0.95)
    assert v.interval(0.5)[1] - v.interval(0.5)[0] < v.interval(0.95)[1] - v.interval(0.95)[0]
    with pytest.raises(InputError, match="confidence must be in"):
        v.interval(95)
    assert v.classes == ["not_nude", "nude"] and v.class_scores.shape == (9, 2)
    np.testing.assert_allclose(v.class_scores[:, 1], v.scores)
    described = v.describe()
    assert described["weights_sha256"] == hashlib.sha256((nudity_detector / "model.safetensors").read_bytes()).hexdigest()
    assert described["precision"] == "fp32" and described["threshold"] == threshold and described["n_positive"] == v.n_positive
    assert "Resize" in described["preprocessing"] and "Normalize" in described["preprocessing"]  # the timm transform
    records = v.to_records()
    assert [r["file"] for r in records] == v.ids and [r["positive"] for r in records] == v.positive.tolist()
    # in memory: one numpy HxWx3 image, an NxHxWx3 batch, a CHW tensor
    import torch

    assert judge(arrays[3]).scores.tolist() == [v.scores[3]]
    assert judge(np.stack(arrays)).positive.tolist() == v.positive.tolist()
    assert judge(torch.from_numpy(arrays[5]).permute(2, 0, 1)).positive.tolist() == [v.positive[5]]
    pandas = pytest.importorskip("pandas")
    frame = v.to_pandas()
    assert isinstance(frame, pandas.DataFrame) and list(frame.index) == v.ids and list(frame.columns)[-2:] == ["score_not_nude", "score_nude"]


def test_images_in_memory_are_what_the_decoder_gives():
    from dataigm.core.images import decode_rgb
    from dataigm.judges.images import as_image_input

    rgba = Image.new("RGBA", (8, 8), (255, 0, 0, 0))  # fully transparent: flattened onto white, as a decoded file
    grey = np.full((8, 8), 7, np.uint8)
    import io

    buf = io.BytesIO()
    rgba.save(buf, format="PNG")
    inp = as_image_input([rgba, grey])
    assert [ref.id for ref, _ in inp.images] == ["0", "1"]
    assert np.array_equal(np.asarray(inp.images[0][1]), np.asarray(decode_rgb(buf.getvalue())))
    assert np.asarray(inp.images[1][1]).tolist() == np.full((8, 8, 3), 7).tolist()
    assert len(as_image_input([Image.new("RGB", (4, 4))] * 11).images[10][0].id) == 2  # "00" .. "10" sort in order


def test_bad_image_inputs_are_one_line_errors(tmp_path):
    import torch

    from dataigm.judges.images import as_image_input

    with pytest.raises(InputError, match="dtype float32; give uint8"):
        as_image_input(torch.zeros(3, 8, 8))
    with pytest.raises(InputError, match=r"shape \(2, 8, 8\)"):
        as_image_input(torch.zeros(2, 8, 8, dtype=torch.uint8))
    with pytest.raises(InputError, match="not both"):
        as_image_input([str(tmp_path), Image.new("RGB", (4, 4))])
    with pytest.raises(InputError, match="cannot judge a dict"):
        as_image_input({"a": 1})
    with pytest.raises(InputError, match="no images given"):
        as_image_input([])


def test_model_option_is_the_old_spelling_of_the_location(nudity_detector, noise):
    folder, _ = noise
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        old = dataigm.load_judge("dataigm", model=f"local-dir:{nudity_detector}", device="cpu")
    assert [str(w.message) for w in caught if w.category is FutureWarning] == [
        f"load_judge(model=...) is deprecated; put the weights in the spec: 'dataigm@local-dir:{nudity_detector}'"]
    assert old(folder).scores.tolist() == dataigm.load_judge(f"local-dir:{nudity_detector}", device="cpu")(folder).scores.tolist()


@pytest.fixture(scope="module")
def photos(tmp_path_factory) -> Path:
    """Nine real photos and noise, 0.png ... 8.png: a face NudeNet finds, a cat the ImageNet judge finds."""
    from real_weights import grace_hopper, skimage_photo

    rng = np.random.default_rng(1)
    from PIL import ImageOps

    photos = [Image.open(grace_hopper()).convert("RGB"), *(skimage_photo(name) for name in ("chelsea", "coffee", "astronaut"))]
    pictures = [ImageOps.fit(p, (224, 224)) for p in photos]  # one size: an NCHW tensor
    pictures += [Image.fromarray(rng.integers(0, 256, (224, 224, 3), dtype=np.uint8)) for _ in range(5)]
    folder = tmp_path_factory.mktemp("photos")
    for i, p in enumerate(pictures):
        p.save(folder / f"{i}.png")
    return folder


def same(a: dict, b: dict) -> None:
    """Same verdicts: ids (folder names vs input order), classes and decisions exactly; scores to float rounding
    (a batch of 1 and a batch of 7 run different CPU kernels: 1e-7 apart)."""
    assert [Path(i).stem for i in a["ids"]] == [str(int(Path(i).stem)) for i in b["ids"]]
    assert (a["positive"], a["predicted"], a["classes"], a["n_failed"]) == (b["positive"], b["predicted"], b["classes"], b["n_failed"])
    np.testing.assert_allclose(a["scores"], b["scores"], rtol=0, atol=1e-5)
    if a["class_scores"] is not None:
        np.testing.assert_allclose(a["class_scores"], b["class_scores"], rtol=0, atol=1e-5)


@pytest.fixture(scope="module")
def tiny_igmu(tmp_path_factory) -> tuple[Path, Path]:
    """A tiny CLIP (built from config, saved as transformers saves one) and an IGMU nudity head in IGMU's layout,
    converted by ``dataigm convert-judge igmu``: the CLIP-based kinds' path, offline."""
    from dataigm.cli import main
    from dataigm.generate.tiny import build_tiny_clip
    from dataigm.judges.tiny import build_tiny_igmu_head

    root = tmp_path_factory.mktemp("igmu")
    clip = build_tiny_clip(root / "tiny-clip")
    head = build_tiny_igmu_head(root / "Weights" / "bi_multiC" / "nudity" / "classifier_head.pth", 16, seed=0, bias=0.0)
    assert main(["convert-judge", "igmu", str(head), "--out", str(root / "head")]) == 0
    return clip, root / "head"


@pytest.fixture(scope="module")
def tiny_q16(tmp_path_factory) -> tuple[Path, Path]:
    """A tiny Q16 (tiny CLIP, prompts tuned and pickled as Q16 does), converted by ``dataigm convert-judge q16``."""
    from q16_tiny import write_tiny_q16

    from dataigm.cli import main

    q16 = write_tiny_q16(tmp_path_factory.mktemp("q16"))
    assert main(["convert-judge", "q16", str(q16["prompts"]), "--out", str(q16["root"] / "converted")]) == 0
    return q16["clip"], q16["root"] / "converted"


@pytest.mark.slow  # every offline judge, six input forms each and the command, in a subprocess
def test_every_offline_judge_gives_the_same_verdicts_for_every_form_without_the_extras(
    photos, nudity_detector, efficientnet_lite0_dir, nudenet_best_onnx, tiny_igmu, tiny_q16, tmp_path,
):
    # NudeNet: one preset per pre-processing pipeline (the 3.4 wheel's, RECE's letterbox, UnlearnDiffAtk's stretch);
    # the CLIP-based kinds (IGMU's head, Q16's prompts, CLIP zero-shot) on tiny CLIPs built from config
    judges = [(f"local-dir:{nudity_detector}", {}), ("nudenet", {}), (f"nudenet:rece@{nudenet_best_onnx}", {}),
              (f"nudenet:unlearndiffatk@{nudenet_best_onnx}", {}), ("opennsfw", {}), (f"imagenet:281@local-dir:{efficientnet_lite0_dir}", {}),
              (f"igmu:nudity@{tiny_igmu[1]}", {"clip_model": str(tiny_igmu[0])}),
              (f"q16@{tiny_q16[1]}", {"clip_model": str(tiny_q16[0])}),
              ("clip:spm", {"concept": "church", "clip_model": str(tiny_igmu[0])})]
    specs = [spec for spec, _ in judges]
    out, listed = tmp_path / "out.json", tmp_path / "judges.json"
    listed.write_text(json.dumps(judges))
    run = subprocess.run([sys.executable, str(TESTS / "blocked_extras.py"), str(TESTS / "judge_every_form.py"), str(photos), str(out), str(listed)],
                         capture_output=True, text=True)
    assert run.returncode == 0, run.stderr[-3000:]
    report = json.loads(out.read_text())
    assert report["imported"] == []
    for spec in specs:
        result = report["results"][spec]
        forms = result["forms"]
        paths = forms.pop("paths")
        assert [Path(i).name for i in paths["ids"]] == forms["folder"]["ids"][::-1]
        assert paths["positive"] == forms["folder"]["positive"][::-1]
        for name, form in forms.items():
            same(forms["folder"], form)
        assert result["cli_code"] == 0
        cli = result["cli"]
        assert [r["file"] for r in cli] == forms["folder"]["ids"]
        assert [r["positive"] for r in cli] == forms["folder"]["positive"]
        assert [r["positive_score"] for r in cli] == forms["folder"]["scores"]  # same loop, same batches: exactly
    assert report["results"][f"imagenet:281@local-dir:{efficientnet_lite0_dir}"]["forms"]["pil"]["positive"][:3] == [False, True, False]
    grace = report["results"]["nudenet"]["forms"]["nchw"]
    assert grace["class_scores"][0][grace["classes"].index("FACE_FEMALE")] > 0.3  # a real detection, in every form
