"""Curation filters on crafted inputs: blank/black, corrupt PNG, perceptual-hash duplicates, NudeNet wiring and
thresholds on its own detections, a dataigm-style exported timm detector, a tiny CLIP built from config."""

from __future__ import annotations

import io
import json
import random
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from dataigm.curate.config import CurationConfigError, load_curation_config, parse_curation_config
from dataigm.curate.dedup import HashedSample, find_duplicates, hamming
from dataigm.curate.engine import decode
from dataigm.curate.filters import EXPLICIT_NUDITY_CLASSES, FILTERS, Decoded, all_fields, create_filter, phash
from dataigm.generate.tiny import build_tiny_clip
from dataigm.judges.nudenet import NUDENET_PRESETS
from dataigm.synthetic import PATTERNS, draw_pattern, png_bytes

BUILDERS = Path(__file__).resolve().parents[1] / "builders"


def sample(image: Image.Image, label_name: str = "other", key: str = "k", **meta) -> Decoded:
    return Decoded(key, {"label_name": label_name, "role": "positive", **meta}, image)


# --- the registry and the fixed schema ----------------------------------------------------------------------
@pytest.mark.parametrize("name", FILTERS.names())
def test_every_filter_declares_typed_json_defaults(name):
    cls = FILTERS.get(name)
    assert cls.name == name and cls.FIELDS, f"{name} records no score"
    for field, default in cls.FIELDS.items():
        assert type(default) in (str, int, float, bool), (name, field)
        assert json.loads(json.dumps(default)) == default
    assert len(all_fields()) == sum(len(FILTERS.get(n).FIELDS) for n in FILTERS.names()), "two filters share a field name"


def test_unknown_filter_lists_valid_ones():
    with pytest.raises(KeyError, match="valid: blank, clip, detector, embedding, nudenet, phash"):
        create_filter("nope")


# --- blank / black / unreadable -----------------------------------------------------------------------------
def test_blank_filter_flags_black_and_uniform_but_not_drawings():
    f = create_filter("blank", {"action": "drop"})
    black = Image.new("RGB", (64, 64), (0, 0, 0))
    grey = Image.new("RGB", (64, 64), (128, 128, 128))
    drawn = draw_pattern("disc", 1)
    out = f.score([sample(black), sample(grey), sample(drawn)])
    assert out[0].flags == [("black", "drop")] and out[0].fields == {"blank_mean": 0.0, "blank_std": 0.0}
    assert out[1].flags == [("blank", "drop")] and out[1].fields["blank_mean"] == pytest.approx(128.0, abs=0.5)
    assert out[2].flags == [] and out[2].fields["blank_std"] > 10


def test_blank_threshold_is_configurable():
    faint = Image.fromarray(np.random.default_rng(0).integers(0, 6, (64, 64, 3), dtype=np.uint8))
    assert create_filter("blank").score([sample(faint)])[0].flags == [("black", "drop")]
    assert create_filter("blank", {"min_std": 0.5, "action": "review"}).score([sample(faint)])[0].flags == []


def test_corrupt_png_is_unreadable_and_good_png_decodes():
    good = png_bytes(draw_pattern("ring", 3))
    image, error = decode(good)
    assert image is not None and image.size == (64, 64) and error == ""
    image, error = decode(good[: len(good) // 2])
    assert image is None and error.startswith("unreadable:")
    assert decode(b"not an image at all")[1].startswith("unreadable:")


def test_nan_float_image_is_flagged():
    arr = np.zeros((8, 8), dtype=np.float32)
    arr[2, 2] = np.nan
    buf = io.BytesIO()
    Image.fromarray(arr, mode="F").save(buf, format="TIFF")
    assert decode(buf.getvalue()) == (None, "nan")


# --- perceptual hash and duplicates -------------------------------------------------------------------------
def test_phash_exact_near_and_different():
    base = draw_pattern("checker", 7)
    exact = Image.open(io.BytesIO(png_bytes(base)))
    near = Image.blend(base, Image.effect_noise((64, 64), 20).convert("RGB"), 0.05)  # faint noise
    near = near.resize((60, 60)).resize((64, 64))  # and a resampling round trip
    other = draw_pattern("hstripes", 8)
    assert hamming(phash(base), phash(exact)) == 0
    assert png_bytes(near) != png_bytes(base) and hamming(phash(base), phash(near)) <= 4
    assert hamming(phash(base), phash(other)) > 12
    assert create_filter("phash").score([sample(base)])[0].fields == {"phash": f"{phash(base):016x}"}


def test_find_duplicates_keeps_train_copy_reports_leak_and_ignores_input_order():
    h = [phash(draw_pattern(p, i)) for i, p in enumerate(("disc", "hstripes", "checker"))]
    samples = [
        HashedSample("a-train", "train", h[0]),
        HashedSample("b-train", "train", h[0]),  # exact duplicate within train: the later key goes
        HashedSample("c-test", "test", h[0] ^ 0b101),  # near duplicate (2 bits) in test: a leak
        HashedSample("d-val", "val", h[1]),
        HashedSample("e-test", "test", h[2]),
    ]
    dups = find_duplicates(samples, max_distance=4)
    assert set(dups) == {"b-train", "c-test"}
    assert (dups["b-train"].dup_of, dups["b-train"].distance, dups["b-train"].leak) == ("a-train", 0, False)
    assert (dups["c-test"].dup_of, dups["c-test"].distance, dups["c-test"].leak) == ("a-train", 2, True)
    for seed in range(5):
        shuffled = samples[:]
        random.Random(seed).shuffle(shuffled)
        assert find_duplicates(shuffled, 4) == dups
    assert set(find_duplicates(samples, max_distance=0)) == {"b-train"}


def test_band_search_finds_every_pair_within_distance():
    rng = random.Random(0)
    base = [rng.getrandbits(64) for _ in range(40)]
    samples = [HashedSample(f"k{i:03d}", "train", h) for i, h in enumerate(base)]
    samples += [HashedSample(f"z{i:03d}", "test", h ^ (1 << rng.randrange(64)) ^ (1 << rng.randrange(64))) for i, h in enumerate(base)]
    dups = find_duplicates(samples, max_distance=3)
    assert all(dups[f"z{i:03d}"].dup_of == f"k{i:03d}" and dups[f"z{i:03d}"].leak for i in range(40))
    assert len(dups) == 40


# --- devices under a multi-rank launch -------------------------------------------------------------------------
def test_auto_device_is_this_ranks_gpu(monkeypatch):
    """No GPU here: torch's CUDA is faked (two GPUs listed in CUDA_VISIBLE_DEVICES) to check that ``auto`` follows
    LOCAL_RANK instead of always GPU 0, and that the chosen GPU becomes torch's current device."""
    import torch

    from dataigm.curate import filters

    assert filters._device("auto") == filters._device("cpu") == "cpu"
    monkeypatch.setenv("WORLD_SIZE", "4")
    monkeypatch.setenv("RANK", "3")
    monkeypatch.setenv("LOCAL_RANK", "3")
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "0,1")
    assert filters._device("auto") == "cpu"  # torch has no CUDA here
    current: list[object] = []
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    monkeypatch.setattr(torch.cuda, "set_device", current.append)
    assert filters._device("auto") == "cuda:1" and filters._device("cuda") == "cuda:1" and filters._device("cuda:0") == "cuda:0"
    assert current == [torch.device("cuda:1"), torch.device("cuda:1"), torch.device("cuda:0")]


def test_cuda_asked_and_a_cpu_only_session_is_an_error():
    """onnxruntime only logs its fall-back to the CPU; asking for CUDA and getting a CPU session must fail."""
    import onnxruntime

    from dataigm.core.devices import DeviceError, check_onnx_providers, onnx_cuda_providers
    from dataigm.judges.nudenet_models import resolve_model

    session = onnxruntime.InferenceSession(str(resolve_model("320n", fetch=False)), providers=["CPUExecutionProvider"])
    check_onnx_providers("cpu", session.get_providers())
    check_onnx_providers(None, session.get_providers())
    with pytest.raises(DeviceError, match=r"device 'cuda:2' asked for, but the session runs on CPUExecutionProvider"):
        check_onnx_providers("cuda:2", session.get_providers())
    assert onnx_cuda_providers("cuda:2") == [("CUDAExecutionProvider", {"device_id": 2}), "CPUExecutionProvider"]
    assert onnx_cuda_providers("cuda")[0] == ("CUDAExecutionProvider", {"device_id": 0})


def test_nudenet_on_a_non_zero_rank_without_cuda_runs_on_cpu(monkeypatch):
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("RANK", "1")
    monkeypatch.setenv("LOCAL_RANK", "1")
    f = create_filter("nudenet")
    assert f.judge.providers == ["CPUExecutionProvider"]
    assert f.score([sample(draw_pattern("disc", 0), "not_nude")])[0].flags == []


def test_nudenet_filter_asked_for_cuda_without_the_provider_refuses():
    from dataigm.core.errors import DataigmError

    # the judge's session refuses first: a CUDA request onnxruntime cannot serve never falls back to the CPU
    with pytest.raises(DataigmError, match="device 'cuda:0': this onnxruntime has no CUDAExecutionProvider"):
        create_filter("nudenet", {"device": "cuda:0"})


# --- NudeNet --------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def nudenet_filter():
    return create_filter("nudenet")


@pytest.fixture(scope="module")
def portrait() -> Image.Image:
    """A clothed portrait shipped with matplotlib: NudeNet reports a face on it, nothing else."""
    import matplotlib.cbook

    return Image.open(matplotlib.cbook.get_sample_data("grace_hopper.jpg", asfileobj=False)).convert("RGB")


def test_nudenet_sees_nothing_on_drawings_and_noise(nudenet_filter):
    images = [draw_pattern(p, i) for i, p in enumerate(PATTERNS)]
    images += [Image.fromarray(np.random.default_rng(i).integers(0, 256, (64, 64, 3), dtype=np.uint8)) for i in range(3)]
    negatives = nudenet_filter.score([sample(im, "not_nude") for im in images])
    assert all(s.fields == {"nudenet_score": 0.0, "nudenet_class": ""} and s.flags == [] for s in negatives)
    positives = nudenet_filter.score([sample(im, "nude") for im in images[:3]])
    assert [s.flags for s in positives] == [[("positive_miss", "drop")]] * 3  # the shipped default: not a positive


def test_nudenet_batch_matches_single_detection(nudenet_filter, portrait):
    from nudenet import NudeDetector

    single = NudeDetector().detect(np.ascontiguousarray(np.asarray(portrait)[:, :, ::-1]))  # NudeNet's own API
    verdicts = nudenet_filter.verdicts([draw_pattern("disc", 0), portrait, draw_pattern("ring", 1)])
    batched = [v.extra["detections"] for v in verdicts]
    assert batched[0] == [] and batched[2] == []
    assert [d["class"] for d in batched[1]] == [d["class"] for d in single] == ["FACE_FEMALE"]
    assert batched[1][0]["score"] == pytest.approx(single[0]["score"], abs=1e-4)


def test_nudenet_classes_and_threshold_on_its_own_detection(nudenet_filter, portrait):
    verdict = nudenet_filter.verdicts([portrait])[0]
    detections = verdict.extra["detections"]
    face = detections[0]["score"]
    assert [d["class"] for d in detections] == ["FACE_FEMALE"] and 0.3 < face < 0.95
    # the default (exposed-nudity) classes ignore the face
    assert nudenet_filter.judge.classes == EXPLICIT_NUDITY_CLASSES
    assert verdict.scores["FEMALE_BREAST_EXPOSED"] == 0.0 and verdict.scores["FACE_FEMALE"] == face
    default = nudenet_filter.decide(verdict, "not_nude")
    assert default.fields == {"nudenet_score": 0.0, "nudenet_class": ""} and default.flags == []
    # a class list with the face: the threshold decides
    below = create_filter("nudenet", {"classes": ["FACE_FEMALE"], "threshold": round(face - 0.05, 3), "on_negative_hit": "review"})
    above = create_filter("nudenet", {"classes": ["FACE_FEMALE"], "threshold": round(face + 0.05, 3), "on_positive_miss": "drop"})
    below_verdict, above_verdict = below.verdicts([portrait])[0], above.verdicts([portrait])[0]
    hit = below.decide(below_verdict, "not_nude")
    assert hit.fields == {"nudenet_score": pytest.approx(face, abs=1e-5), "nudenet_class": "FACE_FEMALE"}
    assert hit.flags == [("negative_hit", "review")]
    assert below.decide(below_verdict, "nude").flags == []
    assert above.decide(above_verdict, "not_nude").flags == []
    assert above.decide(above_verdict, "nude").flags == [("positive_miss", "drop")]
    assert above.decide(above_verdict, "nude").fields == hit.fields  # the score is recorded whatever the threshold
    # the judge's rule: strictly above the threshold (a score equal to it is no hit)
    equal = create_filter("nudenet", {"classes": ["FACE_FEMALE"], "threshold": face})
    assert equal.decide(equal.verdicts([portrait])[0], "not_nude").flags == []
    # through the full scoring path on the image itself
    assert below.score([sample(portrait, "not_nude")])[0].flags == [("negative_hit", "review")]


def test_nudenet_settings_are_validated():
    with pytest.raises(ValueError, match="unknown NudeNet class"):
        create_filter("nudenet", {"classes": ["FACE_CAT"]})
    with pytest.raises(ValueError, match="threshold"):
        create_filter("nudenet", {"threshold": 1.1})
    with pytest.raises(ValueError, match="unknown NudeNet preset 'i2p'; valid: dataigm, esd, esd-0.6, mace, mace-3.0.8, rece, spm, unlearndiffatk"):
        create_filter("nudenet", {"preset": "i2p"})


def test_nudenet_preset_supplies_classes_and_threshold_not_set():
    settings = FILTERS.get("nudenet").Settings
    default = settings()
    assert (default.classes, default.threshold) == (list(EXPLICIT_NUDITY_CLASSES), 0.6)
    for name, preset in NUDENET_PRESETS.items():
        s = settings(preset=name)
        assert (s.classes, s.threshold) == (list(preset.classes), preset.threshold)
    s = settings(preset="esd", threshold=0.8, classes=["ANUS_EXPOSED"])
    assert (s.classes, s.threshold) == (["ANUS_EXPOSED"], 0.8)


# --- detector agreement --------------------------------------------------------------------------------------
def write_tiny_detector(folder: Path, label_names: list[str], positive_label: int | None, threshold: float | None = 0.5) -> Path:
    """A dataigm-style exported detector: timm config.json (+ label_names, dataigm section with the positive class
    index) and model.safetensors."""
    import timm
    import torch
    from timm.models import save_for_hf

    torch.manual_seed(0)
    model = timm.create_model("resnet10t", pretrained=False, num_classes=len(label_names))
    model.pretrained_cfg = {**model.pretrained_cfg, "input_size": (3, 64, 64), "crop_pct": 1.0}
    save_for_hf(model, str(folder), model_config={"label_names": label_names, "dataigm": {"threshold": threshold, "positive_label": positive_label}},
                safe_serialization=True)
    return folder


def model_probabilities(folder: Path, images: list[Image.Image]) -> np.ndarray:
    """The exported model's own softmax, loaded and preprocessed with stock timm."""
    import timm
    import torch
    from timm.data import create_transform, resolve_data_config

    model = timm.create_model(f"local-dir:{folder}", pretrained=True).eval()
    transform = create_transform(**resolve_data_config({}, model=model))
    with torch.inference_mode():
        return torch.softmax(model(torch.stack([transform(im.convert("RGB")) for im in images])), dim=-1).numpy()


def test_detector_filter_loads_exported_folder_and_applies_threshold(tmp_path):
    folder = write_tiny_detector(tmp_path / "det", ["not_nude", "nude"], 1)
    assert (folder / "model.safetensors").exists()
    images = [draw_pattern(p, i) for i, p in enumerate(("disc", "ring", "checker"))]
    f = create_filter("detector", {"path": str(folder), "batch_size": 2})  # two model calls for three images
    probs = model_probabilities(folder, images)
    assert probs.shape == (3, 2) and np.allclose(probs.sum(1), 1.0, atol=1e-5)
    assert f.judge.threshold == 0.5 and f.judge.target == "nude"
    p_nude = probs[:, 1]
    scored = f.score([sample(im, "not_nude") for im in images])
    assert [s.fields["detector_score"] for s in scored] == pytest.approx(p_nude.tolist(), abs=1e-5)
    assert [v.scores["nude"] for v in f.verdicts(images)] == pytest.approx(p_nude.tolist(), abs=1e-5)
    # threshold 0: the detector calls everything nude -> every negative is a hit
    always = create_filter("detector", {"path": str(folder), "threshold": 0.0, "on_negative_hit": "review"})
    assert [s.flags for s in always.score([sample(im, "not_nude") for im in images])] == [[("negative_hit", "review")]] * 3
    assert all(s.fields["detector_label"] == "nude" for s in always.score([sample(im, "nude") for im in images]))
    # threshold 1: nothing is nude -> every positive is a miss
    never = create_filter("detector", {"path": str(folder), "threshold": 1.0, "on_positive_miss": "drop"})
    assert [s.flags for s in never.score([sample(im, "nude") for im in images])] == [[("positive_miss", "drop")]] * 3


def test_detector_positive_label_as_index_and_null_threshold(tmp_path):
    """The trainer's export stores the positive class as an index; a multi-class export has no threshold."""
    folder = write_tiny_detector(tmp_path / "idx", ["not_nude", "nude"], 1, threshold=0.25)
    f = create_filter("detector", {"path": str(folder)})
    assert (f.judge.target, f.judge.threshold) == ("nude", 0.25)
    folder = write_tiny_detector(tmp_path / "multi", ["church", "parachute", "other"], -1, threshold=None)
    f = create_filter("detector", {"path": str(folder)})
    assert f.judge.target is None and f.judge.threshold == 0.5
    # a binary export with a null threshold falls back to 0.5; a positive label named in the settings wins
    folder = write_tiny_detector(tmp_path / "null", ["not_nude", "nude"], 1, threshold=None)
    assert create_filter("detector", {"path": str(folder)}).judge.threshold == 0.5
    f = create_filter("detector", {"path": str(folder), "positive_label": "not_nude", "threshold": 0.3})
    assert (f.judge.target, f.judge.threshold) == ("not_nude", 0.3)
    with pytest.raises(ValueError, match="concept 'church' is not a class of detector .*valid: not_nude, nude"):
        create_filter("detector", {"path": str(folder), "positive_label": "church"})


def test_detector_filter_multiclass_disagreement(tmp_path):
    folder = write_tiny_detector(tmp_path / "det3", ["church", "parachute", "other"], None)
    f = create_filter("detector", {"path": str(folder), "on_disagree": "drop"})
    image = draw_pattern("disc", 0)
    probs = model_probabilities(folder, [image])[0]
    predicted = ["church", "parachute", "other"][int(np.argmax(probs))]
    wrong = next(n for n in ("church", "parachute", "other") if n != predicted)
    agree = f.score([sample(image, predicted)])[0]
    assert agree.flags == []
    assert agree.fields == {"detector_score": pytest.approx(float(probs.max()), abs=1e-5), "detector_label": predicted}
    assert f.score([sample(image, wrong)])[0].flags == [("disagree", "drop")]
    assert f.score([sample(image, "unknown_label")])[0].flags == []  # a label the detector does not know is not judged


def test_detector_folder_errors_name_the_file(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"config\.json"):
        create_filter("detector", {"path": str(tmp_path)})
    (tmp_path / "config.json").write_text(json.dumps({"architecture": "resnet10t", "num_classes": 2, "pretrained_cfg": {}}))
    (tmp_path / "pytorch_model.bin").write_bytes(b"never read")
    with pytest.raises(FileNotFoundError, match=r"no model\.safetensors \(found pytorch_model\.bin\).*never unpickles"):
        create_filter("detector", {"path": str(tmp_path)})
    (tmp_path / "model.safetensors").write_bytes(b"")
    with pytest.raises(ValueError, match=r"config\.json: invalid detector config: field 'label_names': Field required"):
        create_filter("detector", {"path": str(tmp_path)})


# --- CLIP score hook -----------------------------------------------------------------------------------------
def test_clip_filter_scores_prompts_with_a_tiny_clip(tmp_path):
    folder = build_tiny_clip(tmp_path / "clip")
    images = [draw_pattern("disc", 0), draw_pattern("hstripes", 1)]
    metas = [{"prompt": "a church on a hill", "pair_prompt": "a house on a hill", "role": "positive"},
             {"prompt": "a parachute", "pair_prompt": "", "role": "negative"}]
    f = create_filter("clip", {"model": str(folder)})
    scored = f.score([sample(im, **m) for im, m in zip(images, metas)])
    a, b = scored
    assert 0.0 <= a.fields["clip_score"] <= 100.0 and 0.0 <= a.fields["clip_pair_score"] <= 100.0
    assert b.fields["clip_pair_score"] == -1.0  # no pair prompt: not computed
    # the same CLIPScore computed by hand from the loaded model: max(100 * cos(image, text), 0)
    import torch

    from dataigm.judges.clip import projected

    with torch.inference_mode():
        pixels = f.clip.processor(images=[images[0]], return_tensors="pt")["pixel_values"]
        tokens = f.clip.processor(text=[metas[0]["prompt"], metas[0]["pair_prompt"]], return_tensors="pt", padding=True)
        img = projected(f.clip.model.get_image_features(pixel_values=pixels))
        txt = projected(f.clip.model.get_text_features(**tokens))
        cos = torch.nn.functional.cosine_similarity(img, txt, dim=-1)
    expected = (100 * cos).clamp(min=0).tolist()
    assert [a.fields["clip_score"], a.fields["clip_pair_score"]] == pytest.approx(expected, abs=1e-3)
    assert a.flags == [] and b.flags == []
    again = f.score([sample(images[0], **metas[0])])[0]
    assert again.fields == a.fields  # deterministic, and independent of the batch it was in
    strict = create_filter("clip", {"model": str(folder), "min_score": 100.0, "action": "drop"})
    flagged = strict.score([sample(im, **m) for im, m in zip(images, metas)])
    assert flagged[0].flags == [("low_score", "drop")] and flagged[1].flags == []  # only positives are judged


# --- config -----------------------------------------------------------------------------------------------------
def test_config_merges_default_and_category_blocks():
    cfg = parse_curation_config({
        "default": {"filters": {"blank": {"min_std": 3.0}, "phash": {}}, "pairs": {"on_positive_dropped": "drop"}},
        "categories": {"nudity": {"filters": {"phash": None, "nudenet": {"threshold": 0.7}}}},
    })
    assert cfg.filters_for("object") == {"blank": {"min_std": 3.0}, "phash": {}}
    assert cfg.filters_for("nudity") == {"blank": {"min_std": 3.0}, "nudenet": {"threshold": 0.7}}
    assert cfg.pairs_for("nudity").on_positive_dropped == "drop"


@pytest.mark.parametrize(
    "data, message",
    [
        ({"default": {"filters": {"bogus": {}}}}, "unknown filter 'bogus'; valid: blank, clip, detector, embedding, nudenet, phash"),
        ({"categories": {"nudity": {"filters": {"nudenet": {"threshold": "high"}}}}}, "categories.nudity.filters.nudenet"),
        ({"default": {"filters": {"blank": {"action": "delete"}}}}, "default.filters.blank"),
        ({"default": {"pairs": {"on_positive_dropped": "maybe"}}}, "on_positive_dropped"),
    ],
)
def test_config_errors_name_the_field(data, message):
    with pytest.raises(CurationConfigError, match=message.replace("(", r"\(")):
        parse_curation_config(data, "x.yaml")


@pytest.mark.parametrize("path", sorted((BUILDERS / "curation").glob("*.yaml")), ids=lambda p: p.name)
def test_shipped_curation_configs_are_valid(path):
    cfg = load_curation_config(path)
    assert "blank" in cfg.filters_for("object")


def test_recipe_curation_key_applies_to_its_category(tmp_path):
    recipe = tmp_path / "r.yaml"
    recipe.write_text("name: t\ncategory: nudity\nclasses: []\ncuration:\n  filters:\n    nudenet: {threshold: 0.8}\n")
    assert load_curation_config(recipe).filters_for("nudity") == {"nudenet": {"threshold": 0.8}}
    recipe.write_text("name: t\ncategory: nudity\nclasses: []\n")
    with pytest.raises(CurationConfigError, match="no 'curation:' key"):
        load_curation_config(recipe)


def test_drawn_patterns_are_reproducible():
    assert png_bytes(draw_pattern("checker", 7)) == png_bytes(draw_pattern("checker", 7))
    assert png_bytes(draw_pattern("checker", 7)) != png_bytes(draw_pattern("checker", 8))


@pytest.mark.parametrize("max_distance", [0, 4, 15, 16, 20, 32])
def test_phash_band_search_is_exact(max_distance):
    """The banded search finds exactly what comparing every pair would, at every allowed distance."""
    rng = random.Random(max_distance)
    base = [rng.getrandbits(64) for _ in range(40)]
    hashes = base + [h ^ sum(1 << b for b in rng.sample(range(64), rng.randint(0, max_distance + 2))) for h in base]
    samples = [HashedSample(f"k{i:03d}", "train", h) for i, h in enumerate(hashes)]
    found = find_duplicates(samples, max_distance)
    kept: list[HashedSample] = []
    expected = {}
    for s in samples:  # brute force, same visiting order and tie rule
        best = min(((hamming(s.phash, k.phash), j) for j, k in enumerate(kept)), default=None)
        if best is not None and best[0] <= max_distance:
            expected[s.key] = kept[best[1]].key
        else:
            kept.append(s)
    assert {k: d.dup_of for k, d in found.items()} == expected
