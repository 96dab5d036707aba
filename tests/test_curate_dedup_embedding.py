"""Embedding near-duplicates: the blockwise search against a brute-force one (ties, chunk boundaries, input order),
the ``embedding`` filter with a tiny CLIP and a tiny exported detector on drawn images, the engine's global decision
(storage beside the score files, fixed json fields, leaks, conflicts, report) and its independence of the ranks."""

from __future__ import annotations

import io
import json
import random
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageEnhance

from dataigm.core.schema import SPLITS, SampleMeta
from dataigm.core.shards import ShardSpec, iter_samples, list_shards
from dataigm.curate import curate, parse_curation_config
from dataigm.curate.config import CurationConfigError
from dataigm.curate.dedup import EmbeddingDuplicate, find_embedding_duplicates
from dataigm.curate.engine import embedding_path, score_path
from dataigm.curate.filters import Decoded, create_filter
from dataigm.generate.tiny import build_tiny_clip
from dataigm.synthetic import PATTERNS, draw_pattern, png_bytes, write_samples

from curation_helpers import curate_on_two_ranks, tree_digest

from test_curate_filters import write_tiny_detector

# With random tiny models every drawn image looks alike (cosine ~0.95-0.995 between different drawings), while a
# copy stays above 0.9995: this threshold separates the two, and each test checks that the gap really is there.
THRESHOLD = 0.998


def brute_force(keys, splits, x, threshold) -> dict[str, EmbeddingDuplicate]:
    """The rule spelled out: visit in (split, key) order, compare with every kept sample in float64, first best wins."""
    x = np.asarray(x, dtype=np.float64)
    order = sorted(range(len(keys)), key=lambda i: (SPLITS.index(splits[i]), keys[i]))
    kept: list[int] = []
    out = {}
    for i in order:
        best, rep = -np.inf, -1
        for k in kept:
            sim = float(x[i] @ x[k])
            if sim > best:
                best, rep = sim, k
        if rep >= 0 and best >= threshold:
            out[keys[i]] = EmbeddingDuplicate(keys[i], keys[rep], best, splits[i] != splits[rep])
        else:
            kept.append(i)
    return out


def assert_same(found: dict[str, EmbeddingDuplicate], expected: dict[str, EmbeddingDuplicate]) -> None:
    """Same duplicates, representatives and leaks; similarities equal up to float32 rounding."""
    assert {k: (d.dup_of, d.leak) for k, d in found.items()} == {k: (d.dup_of, d.leak) for k, d in expected.items()}
    assert [found[k].similarity for k in expected] == pytest.approx([d.similarity for d in expected.values()], abs=1e-5)


def quarter_vectors(rng: np.random.Generator, n: int, dim: int = 16) -> np.ndarray:
    """Unit vectors with four entries of +-0.5: every dot product is an exact multiple of 1/4, so ties are exact."""
    x = np.zeros((n, dim), dtype=np.float32)
    for row in x:
        row[rng.choice(dim, 4, replace=False)] = rng.choice([-0.5, 0.5], 4)
    return x


def random_keys_and_splits(rng: np.random.Generator, n: int) -> tuple[list[str], list[str]]:
    keys = [f"k{v:05d}" for v in rng.permutation(10 * n)[:n]]
    return keys, [str(s) for s in rng.choice(["train", "train", "val", "test"], n)]


# --- the blockwise search --------------------------------------------------------------------------------------
@pytest.mark.parametrize("threshold", [0.25, 0.5, 0.75, 1.0])
def test_blockwise_search_equals_brute_force_with_exact_ties(threshold):
    rng = np.random.default_rng(1)
    x = quarter_vectors(rng, 240)
    x[200:] = x[rng.integers(0, 200, 40)]  # exact copies too
    keys, splits = random_keys_and_splits(rng, len(x))
    expected = brute_force(keys, splits, x, threshold)
    assert 0 < len(expected) < len(x)
    sims = x.astype(np.float64) @ x.T.astype(np.float64)
    assert any((np.sort(row)[-2] == np.sort(row)[-3]) for row in sims), "the data must contain ties"
    for chunk in (1, 7, 64, 4096):
        assert find_embedding_duplicates(keys, splits, x, threshold, chunk=chunk) == expected, chunk


def test_blockwise_search_equals_brute_force_on_gaussian_vectors():
    rng = np.random.default_rng(2)
    base = rng.standard_normal((300, 32)).astype(np.float32)
    near = base[:120] + 0.15 * rng.standard_normal((120, 32)).astype(np.float32)  # near copies, cosine ~0.99
    x = np.concatenate([base, near])
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    keys, splits = random_keys_and_splits(rng, len(x))
    threshold = 0.97
    expected = brute_force(keys, splits, x, threshold)
    sims = x.astype(np.float64) @ x.T.astype(np.float64)
    assert np.abs(sims - threshold).min() > 1e-4, "no similarity sits on the threshold within float32 rounding"
    assert 60 < len(expected) <= 120 and any(d.leak for d in expected.values()) and not all(d.leak for d in expected.values())
    for chunk in (13, 100, 4096):
        assert_same(find_embedding_duplicates(keys, splits, x, threshold, chunk=chunk), expected)
    # l2_normalize, as the filter stores embeddings: float32 unit rows; a norm below eps=1e-12 is divided by eps
    from dataigm.curate.dedup import l2_normalize

    unit = l2_normalize(np.concatenate([3 * base[:2].astype(np.float64), np.zeros((1, 32)), np.eye(1, 32) * 1e-20]))
    assert unit.dtype == np.float32 and unit.shape == (4, 32)
    np.testing.assert_allclose(unit[:2], base[:2] / np.linalg.norm(base[:2], axis=1, keepdims=True), rtol=1e-6)
    assert not unit[2].any() and unit[3, 0] == pytest.approx(1e-8) and not unit[3, 1:].any()


def test_chunk_boundaries_ties_and_input_order():
    e = np.eye(4, dtype=np.float32)
    tie = (e[1] + e[2]) / np.sqrt(np.float32(2))  # equally similar to a1 and a2
    x = np.stack([e[0], e[1], e[2], e[3], e[3], tie, e[0], e[2], e[1]])
    keys = [f"a{i}" for i in range(len(x))]
    splits = ["train"] * 8 + ["test"]
    expected = {
        "a4": EmbeddingDuplicate("a4", "a3", 1.0, False),  # first row of block 2 copies the last row of block 1
        "a5": EmbeddingDuplicate("a5", "a5", 0.0, False),  # placeholder, replaced below
        "a6": EmbeddingDuplicate("a6", "a0", 1.0, False),
        "a7": EmbeddingDuplicate("a7", "a2", 1.0, False),
        "a8": EmbeddingDuplicate("a8", "a1", 1.0, True),  # test copy of a train sample: a leak
    }
    found = find_embedding_duplicates(keys, splits, x, 0.7, chunk=4)
    assert found["a5"].dup_of == "a1" and found["a5"].similarity == pytest.approx(float(tie @ e[1]))  # tie: the earliest
    expected["a5"] = found["a5"]
    assert found == expected
    assert found == brute_force(keys, splits, x, 0.7)
    for chunk in (1, 2, 3, 5, 9, 4096):
        for seed in range(3):
            perm = list(range(len(x)))
            random.Random(seed).shuffle(perm)
            assert find_embedding_duplicates([keys[i] for i in perm], [splits[i] for i in perm], x[perm], 0.7, chunk=chunk) == found
    assert find_embedding_duplicates(keys, splits, x, 0.75, chunk=4).keys() == {"a4", "a6", "a7", "a8"}  # 0.707 < 0.75


def test_a_duplicate_of_a_duplicate_is_compared_with_kept_samples_only():
    angles = np.radians([0.0, 20.0, 40.0])
    x = np.stack([np.cos(angles), np.sin(angles)], axis=1).astype(np.float32)  # a-b and b-c 20 degrees apart, a-c 40
    threshold = float(np.cos(np.radians(25.0)))
    found = find_embedding_duplicates(["a", "b", "c"], ["train"] * 3, x, threshold, chunk=2)
    assert list(found) == ["b"] and found["b"].dup_of == "a"  # b is not kept, so c (40 degrees from a) is kept
    assert found == brute_force(["a", "b", "c"], ["train"] * 3, x, threshold)


def test_search_input_errors():
    with pytest.raises(ValueError, match="embeddings must be"):
        find_embedding_duplicates(["a"], ["train"], np.zeros((2, 3)), 0.9)
    with pytest.raises(ValueError, match="NaN"):
        find_embedding_duplicates(["a"], ["train"], np.full((1, 3), np.nan), 0.9)
    with pytest.raises(ValueError, match="unique"):
        find_embedding_duplicates(["a", "a"], ["train", "test"], np.eye(2), 0.9)
    assert find_embedding_duplicates([], [], np.zeros((0, 4)), 0.9) == {}


# --- settings ---------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "settings, field",
    [
        ({"model": "m", "treshold": 0.9}, "treshold"),
        ({"model": "m", "threshold": 1.5}, "threshold"),
        ({"model": "m", "threshold": 0.0}, "threshold"),
        ({"model": "m", "threshold": "high"}, "threshold"),
        ({"model": "m", "action": "delete"}, "action"),
        ({"model": "m", "batch_size": 0}, "batch_size"),
        ({"threshold": 0.9}, "model"),
    ],
)
def test_settings_errors_name_the_field(settings, field):
    with pytest.raises(CurationConfigError, match=rf"default\.filters\.embedding: field '{field}'"):
        parse_curation_config({"default": {"filters": {"embedding": settings}}}, "x.yaml")
    with pytest.raises(ValueError, match=field):
        create_filter("embedding", settings)


def test_embedding_is_off_by_default_and_shipped_example_is_valid():
    from dataigm.curate.config import default_config, load_curation_config

    cfg = default_config()
    assert all("embedding" not in cfg.filters_for(c) for c in ("object", "nudity", "style"))
    path = Path(__file__).resolve().parents[1] / "builders" / "curation" / "second_round.yaml"
    example = load_curation_config(path).filters_for("style")["embedding"]
    assert example["threshold"] == 0.95 and example["model"]


# --- the filter on drawn images -----------------------------------------------------------------------------------
def copies_and_distinct() -> tuple[list[Image.Image], list[Image.Image]]:
    """A drawn image, its exact copy (PNG round trip), faint noise, +4% brightness; then distinct drawings."""
    base = draw_pattern("checker", 7)
    exact = Image.open(io.BytesIO(png_bytes(base))).convert("RGB")
    noise = np.random.default_rng(0).integers(-4, 5, (64, 64, 3))
    noisy = Image.fromarray(np.clip(np.asarray(base).astype(np.int16) + noise, 0, 255).astype(np.uint8))
    bright = ImageEnhance.Brightness(base).enhance(1.04)
    distinct = [draw_pattern(p, 100 + i) for i, p in enumerate(PATTERNS) if p not in ("checker", "plain")] + [draw_pattern("checker", 8)]
    return [base, exact, noisy, bright], distinct


@pytest.fixture(scope="module")
def tiny_clip(tmp_path_factory) -> Path:
    return build_tiny_clip(tmp_path_factory.mktemp("clip") / "clip")


@pytest.fixture(scope="module")
def tiny_detector(tmp_path_factory) -> Path:
    return write_tiny_detector(tmp_path_factory.mktemp("det") / "det", ["church", "parachute", "other"], -1, threshold=None)


def clip_by_hand(folder: Path, images: list[Image.Image]) -> np.ndarray:
    import torch
    from transformers import CLIPModel

    from clip_references import openai_pixels  # dataigm's CLIP wrapper prepares images as clip.load does
    from dataigm.judges.clip import projected

    model = CLIPModel.from_pretrained(folder).eval()
    with torch.inference_mode():
        feats = model.get_image_features(pixel_values=openai_pixels(images, model.config.vision_config.image_size))
    feats = projected(feats).numpy()
    return feats / np.linalg.norm(feats, axis=1, keepdims=True)


def detector_by_hand(folder: Path, images: list[Image.Image]) -> np.ndarray:
    import timm
    import torch
    from timm.data import create_transform, resolve_data_config

    model = timm.create_model(f"local-dir:{folder}", pretrained=True).eval()
    transform = create_transform(**resolve_data_config({}, model=model))
    with torch.inference_mode():
        feats = model.forward_head(model.forward_features(torch.stack([transform(im) for im in images])), pre_logits=True).numpy()
    return feats / np.linalg.norm(feats, axis=1, keepdims=True)


@pytest.mark.parametrize("kind", ["clip", "detector"])
def test_filter_flags_copies_and_not_distinct_drawings(kind, tiny_clip, tiny_detector):
    copies, distinct = copies_and_distinct()
    images = copies + distinct
    spec = str(tiny_clip) if kind == "clip" else f"local-dir:{tiny_detector}"
    f = create_filter("embedding", {"model": spec, "threshold": THRESHOLD, "batch_size": 5})  # several model calls
    assert f.kind == kind
    scored = f.score([Decoded(f"s{i}", {"label_name": "other"}, im) for i, im in enumerate(images)])
    assert all(s.fields == {} and s.flags == [] for s in scored)  # duplicates are decided globally, not here
    x = np.stack([s.embedding for s in scored])
    assert x.dtype == np.float32 and np.allclose(np.linalg.norm(x, axis=1), 1.0, atol=1e-5)
    by_hand = clip_by_hand(tiny_clip, images) if kind == "clip" else detector_by_hand(tiny_detector, images)
    assert x.shape == by_hand.shape and np.allclose(x, by_hand, atol=1e-5)
    # the gap that makes the threshold meaningful: every copy is closer to the original than any two drawings
    sims = x.astype(np.float64) @ x.T.astype(np.float64)
    n = len(copies)
    drawings = [0, *range(n, len(images))]  # the original and every distinct drawing
    between = sims[np.ix_(drawings, drawings)][~np.eye(len(drawings), dtype=bool)]
    assert sims[0, 1] == pytest.approx(1.0, abs=1e-5)
    assert sims[0, 1:n].min() >= THRESHOLD > between.max()
    keys = [f"s{i:02d}" for i in range(len(images))]
    found = find_embedding_duplicates(keys, ["train"] * len(images), x, THRESHOLD)
    assert {k: d.dup_of for k, d in found.items()} == {"s01": "s00", "s02": "s00", "s03": "s00"}
    assert_same(found, brute_force(keys, ["train"] * len(images), x, THRESHOLD))


def test_loader_choice(tiny_clip, tiny_detector):
    from dataigm.curate.filters import is_dataigm_detector

    assert is_dataigm_detector(str(tiny_detector)) and is_dataigm_detector(f"local-dir:{tiny_detector}")
    assert is_dataigm_detector("dataigm:org/name") and not is_dataigm_detector(str(tiny_clip))
    assert not is_dataigm_detector("openai/clip-vit-base-patch32")
    assert create_filter("embedding", {"model": str(tiny_detector)}).kind == "detector"


# --- the engine -----------------------------------------------------------------------------------------------------
LABELS = ["church", "other"]


def _meta(key: str, split: str, label: int) -> SampleMeta:
    return SampleMeta(key=key, category="object", split=split, label=label, label_name=LABELS[label], label_names=LABELS,
                      role="positive" if label == 0 else "negative", concept="church", prompt=f"a {LABELS[label]}", model="m")


def crafted_images() -> dict[str, tuple[str, int, int, bytes]]:
    """key -> (split, shard index, label, png): distinct drawings plus planted copies across shards and splits."""
    copies, distinct = copies_and_distinct()
    base, exact, noisy, bright = (png_bytes(im) for im in copies)
    out = {f"d{i:02d}": ("train", i % 2, i % 2, png_bytes(im)) for i, im in enumerate(distinct)}
    out["c0-orig"] = ("train", 0, 0, base)
    out["c1-copy"] = ("train", 1, 0, exact)  # same split and label, another shard: a duplicate
    out["c2-noisy"] = ("test", 0, 0, noisy)  # in test: a leak
    out["c3-bright"] = ("train", 1, 1, bright)  # another label: a conflict, both flagged
    out["c4-corrupt"] = ("train", 0, 0, base[:200])  # unreadable: no embedding
    return out


def write_dataset(root: Path) -> Path:
    images = crafted_images()
    shards = {
        ShardSpec("object", split, index): [(_meta(k, split, images[k][2]), images[k][3])
                                            for k in sorted(k for k, (s, i, _, _) in images.items() if (s, i) == (split, index))]
        for split, index in (("train", 0), ("train", 1), ("test", 0))
    }
    write_samples(root, "object", LABELS, shards, part="generated")
    return root


@pytest.fixture(scope="module")
def dataset(tmp_path_factory) -> Path:
    return write_dataset(tmp_path_factory.mktemp("emb-dataset"))


def config_for(clip: Path):
    return parse_curation_config({"default": {"filters": {"blank": {}, "embedding": {"model": str(clip), "threshold": THRESHOLD, "batch_size": 4}}}})


@pytest.fixture(scope="module")
def curated(dataset, tiny_clip, tmp_path_factory):
    return curate(dataset, tmp_path_factory.mktemp("emb-out") / "out", config_for(tiny_clip), progress=False, batch_size=3)


def dataset_images(root: Path) -> dict[str, tuple[str, Image.Image]]:
    """key -> (split, decoded image) of every readable sample in the dataset folder."""
    out = {}
    for s in iter_samples(list_shards(root)):
        try:
            out[s.key] = (s.meta["split"], Image.open(io.BytesIO(s.image)).convert("RGB"))
        except OSError:
            continue
    return out


def test_engine_finds_exactly_the_pairs_the_embeddings_give(dataset, curated, tiny_clip):
    images = dataset_images(dataset)
    readable = sorted(images)
    assert "c4-corrupt" not in readable and len(readable) == len(crafted_images()) - 1
    x = clip_by_hand(tiny_clip, [images[k][1] for k in readable])
    expected = brute_force(readable, [images[k][0] for k in readable], x, THRESHOLD)
    assert {k: (d.dup_of, d.leak) for k, d in expected.items()} == {"c1-copy": ("c0-orig", False), "c2-noisy": ("c0-orig", True), "c3-bright": ("c0-orig", False)}
    d = curated.decisions
    for key, dup in expected.items():
        assert (d[key].fields["emb_dup_of"], d[key].fields["emb_leak"]) == (dup.dup_of, dup.leak)
        assert d[key].fields["emb_similarity"] == pytest.approx(dup.similarity, abs=1e-5)
    assert (d["c1-copy"].verdict, d["c1-copy"].reasons) == ("drop", ["embedding:duplicate"])
    assert (d["c2-noisy"].verdict, d["c2-noisy"].reasons) == ("drop", ["embedding:leak"])
    assert (d["c3-bright"].verdict, d["c3-bright"].reasons) == ("review", ["embedding:conflict"])
    assert (d["c0-orig"].verdict, d["c0-orig"].reasons) == ("review", ["embedding:conflict"])  # both copies of a conflict
    assert d["c0-orig"].fields["emb_dup_of"] == "c3-bright"
    assert (d["c4-corrupt"].verdict, d["c4-corrupt"].reasons) == ("drop", ["unreadable"])
    flagged = {k for k, v in d.items() if v.fields["emb_dup_of"]}
    assert flagged == {"c0-orig", "c1-copy", "c2-noisy", "c3-bright"}
    assert all(v.verdict == "keep" and v.reasons == [] for k, v in d.items() if k.startswith("d"))


def test_embeddings_live_beside_the_score_files_not_in_the_json(dataset, curated, tiny_clip):
    out = curated.out
    spec = ShardSpec("object", "train", 0)
    path = embedding_path(out, spec)
    assert path.parent == score_path(out, spec).parent and path.name == "object-train-000000.emb.npy"
    rows = [json.loads(line) for line in score_path(out, spec).read_text().splitlines()]
    x = np.load(path, allow_pickle=False)
    readable = [r for r in rows if "error" not in r]
    assert x.dtype == np.float32 and x.shape == (len(readable), 16)
    assert [r["emb_row"] for r in readable] == list(range(len(readable))) and all("emb_row" not in r for r in rows if "error" in r)
    by_key = dict(zip((r["key"] for r in readable), x))
    images = dataset_images(dataset)
    by_hand = clip_by_hand(tiny_clip, [images[k][1] for k in by_key])
    assert np.allclose(np.stack(list(by_key.values())), by_hand, atol=1e-5)
    metas = {s.key: s.meta for s in iter_samples(list_shards(out))}
    schemas = {json.dumps(sorted((k, type(v).__name__) for k, v in m["curation"].items())) for m in metas.values()}
    assert len(schemas) == 1, "every sample carries the same curation keys and types"
    plain = metas["d00"]["curation"]
    assert (plain["emb_dup_of"], plain["emb_similarity"], plain["emb_leak"]) == ("", -1.0, False)
    assert metas["c3-bright"]["curation"]["emb_dup_of"] == "c0-orig"
    assert max(len(json.dumps(m)) for m in metas.values()) < 2000, "no vector in the sample json"


def test_report_counts_embedding_duplicates_and_leaks(curated):
    report = json.loads((curated.out / "curation_report.json").read_text())
    by = {r["by"]: r for r in report["duplicates"]}
    assert by["embedding"] == {"category": "object", "by": "embedding", "near_duplicates": 4, "same_split": 3, "leaks": 1, "conflicts": 2}
    assert {"key": "c2-noisy", "dup_of": "c0-orig", "by": "embedding"} in report["leaks"]
    md = curated.report.read_text()
    assert "| object | embedding | 4 | 3 | 1 | 2 |" in md
    assert "`c2-noisy` duplicates `c0-orig` (embedding)" in md
    assert "| object | embedding:duplicate | 1 | 0 | 0 | 1 |" in md and "| object | embedding:conflict | 2 | 0 | 2 | 0 |" in md


@pytest.mark.slow  # end to end: the faster tests state its parts
def test_one_and_two_ranks_give_the_same_bytes(dataset, curated, tiny_clip, tmp_path):
    out = tmp_path / "ranks"
    curate_on_two_ranks(dataset, out, config_for(tiny_clip), batch_size=3)
    digest = tree_digest(out)
    assert any(k.endswith(".emb.npy") for k in digest)
    assert digest == tree_digest(curated.out)


def test_resume_and_a_missing_embedding_file(dataset, curated, tiny_clip, tmp_path):
    import shutil

    out = tmp_path / "resume"
    shutil.copytree(curated.out, out)
    spec = ShardSpec("object", "test", 0)
    score_path(out, spec).unlink()
    embedding_path(out, spec).unlink()
    curate(dataset, out, config_for(tiny_clip), progress=False, batch_size=3)
    assert tree_digest(out) == tree_digest(curated.out)
    embedding_path(out, spec).unlink()  # the score file remains: the decision cannot be made
    with pytest.raises(FileNotFoundError, match="embeddings of shard object/test/object-test-000000.tar"):
        curate(dataset, out, config_for(tiny_clip), progress=False, batch_size=3)


def test_no_embedding_files_without_the_filter(dataset, tmp_path):
    result = curate(dataset, tmp_path / "plain", parse_curation_config({"default": {"filters": {"blank": {}}}}), progress=False)
    assert not list((tmp_path / "plain" / "_curation").rglob("*.npy"))
    assert {d.fields["emb_dup_of"] for d in result.decisions.values()} == {""}
    assert {d.fields["emb_similarity"] for d in result.decisions.values()} == {-1.0}
