"""End-to-end builds with the embedded tiny model: shards, manifest, determinism, resume, stock loaders."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest

from dataigm.core.manifest import load_manifest, verify
from dataigm.core.partition import RankInfo
from dataigm.core.shards import iter_samples, list_shards
from dataigm.generate.engine import BuildOptions, build
from dataigm.recipe import load_recipe

BUILDERS = Path(__file__).resolve().parents[1] / "builders"
SMALL = ["generation.width=64", "generation.height=64", "generation.steps=2", "generation.batch_size=4",
         "images_per_prompt=2", "shard_size=6", "models=[tiny]"]


def small_recipe(name: str = "nudity", extra: list[str] | None = None):
    return load_recipe(BUILDERS / f"{name}.yaml", SMALL + (extra or []))


def samples_of(root: Path) -> dict[str, tuple[bytes, dict, int]]:
    return {s.key: (s.image, s.meta, s.label) for s in iter_samples(list_shards(root))}


def tar_bytes(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in list_shards(root)}


@pytest.fixture(scope="module")
def built(tmp_path_factory, tiny_model_dir):
    out = tmp_path_factory.mktemp("built")
    result = build(small_recipe(), out, BuildOptions(device="cpu", limit=10, progress=False))
    return out, result


def test_build_writes_layout_samples_and_manifest(built):
    out, result = built
    # 10 nude prompts x (positive + negative) + 10 unrelated prompts, 2 images each
    assert result.samples_written == 60 and result.samples_failed == 0
    manifest = load_manifest(out)
    assert manifest["totals"] == {"samples": 60, "failed": 0, "shards": len(list_shards(out))}
    assert manifest["counts"]["nudity"]["label_names"] == ["not_nude", "nude"]
    labels = Counter()
    for split in manifest["counts"]["nudity"]["splits"].values():
        labels.update(split["labels"])
    assert labels == {"nude": 20, "not_nude": 40}
    for tar in list_shards(out):
        rel = tar.relative_to(out).as_posix()
        category, split, name = rel.split("/")
        assert name.startswith(f"{category}-{split}-") and name.endswith(".tar")
    assert manifest["versions"]["diffusers"] and manifest["versions"]["torch"]
    model = manifest["models"]["tiny"]
    assert len(model["revision"]) == 64 and model["pipeline_class"] == "StableDiffusionPipeline"
    assert manifest["parts"]["nudity/generated"]["config"]["generation"]["width"] == 64
    assert verify(out) == []


def test_every_sample_has_same_fields_and_full_provenance(built):
    out, _ = built
    samples = samples_of(out)
    for key, (png, meta, label) in samples.items():
        assert png[:8] == b"\x89PNG\r\n\x1a\n"
        assert meta["key"] == key and meta["label"] == label and meta["label_names"][label] == meta["label_name"]
        assert meta["model"] == "tiny" and len(meta["model_revision"]) == 64
        assert meta["steps"] == 2 and meta["width"] == 64 and meta["guidance"] == 7.5 and meta["seed"] >= 0
        assert meta["source"] == "generated" and meta["taxonomy"] == "nudity" and meta["pair_id"]
    assert len({tuple(sorted(m.keys())) for _, m, _ in samples.values()}) == 1
    from PIL import Image
    import io

    png = next(iter(samples.values()))[0]
    assert Image.open(io.BytesIO(png)).size == (64, 64)


def test_stock_loaders_read_the_shards(built):
    out, _ = built
    import datasets
    import webdataset as wds

    tars = [str(p) for p in list_shards(out)]
    ds = wds.WebDataset(tars, shardshuffle=False, empty_check=False).decode("pil").to_tuple("png", "json", "cls")
    rows = list(ds)
    assert len(rows) == 60 and rows[0][0].size == (64, 64) and rows[0][1]["label"] == rows[0][2]
    files = {split: str(out / "nudity" / split / "*.tar") for split in ("train", "val", "test")}
    dd = datasets.load_dataset("webdataset", data_files=files)
    manifest = load_manifest(out)
    for split, counts in manifest["counts"]["nudity"]["splits"].items():
        assert dd[split].num_rows == counts["n"]
        assert Counter(dd[split]["cls"]) == Counter({["not_nude", "nude"].index(k): v for k, v in counts["labels"].items()})
    assert dd["train"][0]["png"].size == (64, 64) and dd["train"][0]["json"]["category"] == "nudity"


def test_same_recipe_twice_gives_identical_bytes(built, tmp_path):
    out, _ = built
    build(small_recipe(), tmp_path, BuildOptions(device="cpu", limit=10, progress=False))
    assert tar_bytes(tmp_path) == tar_bytes(out)
    assert json.loads((tmp_path / "manifest.json").read_text())["shards"] == load_manifest(out)["shards"]


def test_ranks_union_equals_single_process(built, tmp_path):
    out, _ = built
    recipe = small_recipe()
    first = build(recipe, tmp_path, BuildOptions(device="cpu", limit=10, progress=False), rank=RankInfo(0, 2))
    assert first.manifest is None  # rank 1's shards are missing, so no manifest yet
    second = build(recipe, tmp_path, BuildOptions(device="cpu", limit=10, progress=False), rank=RankInfo(1, 2))
    assert second.manifest is not None and first.written_shards + second.written_shards == second.planned_shards
    assert tar_bytes(tmp_path) == tar_bytes(out)


def test_rerun_skips_done_shards(built):
    out, _ = built
    result = build(small_recipe(), out, BuildOptions(device="cpu", limit=10, progress=False))
    assert result.written_shards == 0 and result.skipped_shards == result.planned_shards


def test_different_recipe_into_same_folder_is_refused(built):
    out, _ = built
    with pytest.raises(ValueError, match="different plan"):
        build(small_recipe(extra=["seed=1"]), out, BuildOptions(device="cpu", limit=10, progress=False))
    with pytest.raises(ValueError, match="different plan"):  # batch size changes pixels, so it is part of the plan
        build(small_recipe(), out, BuildOptions(device="cpu", limit=10, progress=False, batch_size=1))


def test_verify_names_a_corrupted_and_a_missing_shard(built, tmp_path):
    import shutil

    out, _ = built
    copy = tmp_path / "copy"
    shutil.copytree(out, copy)
    tars = list_shards(copy)
    data = bytearray(tars[0].read_bytes())
    data[700] ^= 0xFF
    tars[0].write_bytes(bytes(data))
    tars[1].unlink()
    problems = {p.shard: p.problem for p in verify(copy)}
    assert set(problems) == {tars[0].relative_to(copy).as_posix(), tars[1].relative_to(copy).as_posix()}
    assert "sha256" in problems[tars[0].relative_to(copy).as_posix()] and problems[tars[1].relative_to(copy).as_posix()] == "missing"
    cli = subprocess.run([sys.executable, "-m", "dataigm", "verify", str(copy)], capture_output=True, text=True)
    assert cli.returncode == 1 and tars[0].name in cli.stderr


def test_kill_minus_9_and_resume_loses_and_duplicates_nothing(built, tmp_path):
    out, _ = built
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    cmd = [sys.executable, "-m", "dataigm", "build", str(BUILDERS / "nudity.yaml"), "--out", str(tmp_path), "--limit", "10",
           "--device", "cpu", "--no-progress", "--model", "tiny"] + [a for s in SMALL if not s.startswith("models") for a in ("--set", s)]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    while time.time() < deadline and not list((tmp_path / "_stats").rglob("*.json")):
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not (tmp_path / "manifest.json").exists()
    visible = list_shards(tmp_path)
    assert 0 < len(visible) < len(list_shards(out))  # killed part-way: some shards done, none partial
    subprocess.run(cmd, env=env, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    assert samples_of(tmp_path) == samples_of(out)
    assert tar_bytes(tmp_path) == tar_bytes(out)
    assert not list(tmp_path.rglob(".*.tmp-*"))


def test_unlearned_unet_override_from_folder_and_state_dict(tiny_model_dir, tmp_path):
    import torch
    from diffusers import UNet2DConditionModel
    from safetensors.torch import save_file

    unet = UNet2DConditionModel.from_pretrained(tiny_model_dir / "unet")
    with torch.no_grad():
        for p in unet.parameters():
            p.mul_(0.5)
    unet.save_pretrained(tmp_path / "unlearned_unet")
    save_file(unet.state_dict(), str(tmp_path / "unlearned_unet.safetensors"))
    recipe = small_recipe(extra=["images_per_prompt=1"])
    from dataigm.recipe import ModelSpec

    outs = {}
    for name, src in [("base", None), ("folder", tmp_path / "unlearned_unet"), ("file", tmp_path / "unlearned_unet.safetensors")]:
        spec = ModelSpec(id="tiny", name=name, components={"unet": str(src)} if src else {})
        build(recipe, tmp_path / name, BuildOptions(device="cpu", limit=1, progress=False), models=[spec])
        outs[name] = {s.meta["pair_id"] + s.meta["role"]: s.image for s in iter_samples(list_shards(tmp_path / name))}
        manifest = load_manifest(tmp_path / name)
        if src:
            assert len(manifest["models"][name]["components"]["unet"]) == 64
            assert manifest["models"][name]["component_loads"]["unet"]["partial"] is False
    assert outs["folder"] == outs["file"] and outs["folder"] != outs["base"]


def test_component_errors_name_the_component(tiny_model_dir, tmp_path):
    from safetensors.torch import save_file
    import torch

    from dataigm.generate.pipeline import ModelLoadError, load_pipeline
    from dataigm.recipe import ModelSpec

    save_file({"model.diffusion_model.input_blocks.0.0.weight": torch.zeros(1)}, str(tmp_path / "ldm.safetensors"))
    with pytest.raises(ModelLoadError, match=r"component 'unet' .*1 tensors have the wrong shape.*conv_in.weight \(1,\) != \(32, 4, 3, 3\)"):
        load_pipeline(ModelSpec(id="tiny", components={"unet": str(tmp_path / "ldm.safetensors")}))
    save_file({"first_stage_model.encoder.conv_in.weight": torch.zeros(1)}, str(tmp_path / "vae.safetensors"))
    with pytest.raises(ModelLoadError, match="component 'unet' .*keys do not match.*1 unexpected"):
        load_pipeline(ModelSpec(id="tiny", components={"unet": str(tmp_path / "vae.safetensors")}))
    with pytest.raises(ModelLoadError, match="no such component; valid: .*text_encoder"):
        load_pipeline(ModelSpec(id="tiny", components={"transformer": str(tmp_path / "ldm.safetensors")}))
    with pytest.raises(ModelLoadError, match="model 'no/such-model' could not be loaded"):
        load_pipeline(ModelSpec(id="no/such-model"))
    with pytest.raises(ModelLoadError, match="unknown scheduler 'Fancy'"):
        load_pipeline(ModelSpec(id="tiny"), scheduler="Fancy")


def test_scheduler_override_is_applied(tiny_model_dir):
    from dataigm.generate.pipeline import load_pipeline
    from dataigm.recipe import ModelSpec

    loaded = load_pipeline(ModelSpec(id="tiny"), scheduler="EulerDiscreteScheduler")
    assert type(loaded.pipe.scheduler).__name__ == "EulerDiscreteScheduler"


def test_bad_recipe_fails_before_any_work(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text((BUILDERS / "nudity.yaml").read_text().replace("steps: 30", "steps: -3"))
    cli = subprocess.run([sys.executable, "-m", "dataigm", "build", str(bad), "--out", str(tmp_path / "out")], capture_output=True, text=True)
    assert cli.returncode == 2
    assert "bad.yaml" in cli.stderr and "generation.steps" in cli.stderr and "-3" in cli.stderr
    assert not (tmp_path / "out").exists()


def test_recipe_with_generated_and_real_parts(tiny_model_dir, tmp_path):
    from dataigm.synthetic import write_synthetic_folder

    write_synthetic_folder(tmp_path / "photos", ["church", "other"], 5, splits=["train", "test"])
    recipe_file = tmp_path / "church.yaml"
    recipe_file.write_text((BUILDERS / "church.yaml").read_text() + "real_images:\n  - {folder: photos, split_from_folders: true}\n")
    recipe = load_recipe(recipe_file, SMALL + ["images_per_prompt=1"])
    result = build(recipe, tmp_path / "ds", BuildOptions(device="cpu", limit=4, progress=False))
    counts = result.manifest["counts"]["church"]
    sources = Counter()
    for split in counts["splits"].values():
        sources.update(split["sources"])
    assert sources == {"generated": 12, "real": 20}  # 4 church prompts x (pos + neg) + 4 unrelated; 2 splits x 2 classes x 5
    assert counts["splits"]["test"]["sources"]["real"] == 10 and set(result.manifest["parts"]) == {"church/generated", "church/real"}
    labels = {s.meta["label_name"]: s.label for s in iter_samples(list_shards(tmp_path / "ds")) if s.meta["source"] == "real"}
    assert labels == {"church": 1, "other": 0}  # real images use the recipe's label order
    assert verify(tmp_path / "ds") == []


def test_i2p_seed_and_guidance_reach_the_pixels(tiny_model_dir, tmp_path):
    """An imported I2P prompt set: each image is exactly what the pipeline draws with the benchmark's seed and guidance."""
    from dataigm.core.schema import SampleMeta
    from dataigm.generate.engine import encode_png, generate_batch
    from dataigm.generate.pipeline import load_pipeline
    from dataigm.prompts import read_prompt_jsonl
    from dataigm.recipe import ModelSpec, parse_recipe

    prompts = BUILDERS / "prompts" / "imported" / "i2p_sample.jsonl"
    records = {r.index: r for r in read_prompt_jsonl(prompts)}
    recipe = parse_recipe({
        "name": "i2p", "category": "nudity", "labels": ["not_nude", "nude"], "splits": {"test": 1.0}, "models": ["tiny"],
        "generation": {"width": 64, "height": 64, "steps": 2, "batch_size": 1},
        "classes": [{"name": "nude", "concept": "nudity", "negatives": "not_nude", "prompts": {"files": [str(prompts)]}}],
    })
    build(recipe, tmp_path, BuildOptions(device="cpu", progress=False))
    samples = list(iter_samples(list_shards(tmp_path)))
    positives = [s for s in samples if s.meta["role"] == "positive"]
    assert len(positives) == len(records) and {s.meta["prompt_source"] for s in positives} == {"i2p"}
    pipe = load_pipeline(ModelSpec(id="tiny")).pipe
    for s in positives:
        record = records[s.meta["prompt_index"]]
        assert (s.meta["seed"], s.meta["guidance"]) == (record.seed, record.guidance)
        expected = encode_png(generate_batch(pipe, [SampleMeta.from_dict(s.meta)], "cpu")[0])
        assert s.image == expected
    negatives = {s.meta["pair_id"]: s.meta for s in samples if s.meta["role"] == "negative"}
    assert all(negatives[s.meta["pair_id"]]["seed"] == s.meta["seed"] for s in positives if s.meta["pair_id"] in negatives)


def test_shards_are_published_beside_the_writer_and_a_failed_publish_stops_the_build(tmp_path) -> None:
    import numpy as np

    from dataigm.core.schema import SampleMeta
    from dataigm.core.shards import ShardSink, ShardSpec, is_done
    from dataigm.generate.engine import _Writer

    image = np.random.default_rng(0).random((8, 8, 3), dtype=np.float32)
    specs = [ShardSpec("object", "test", i) for i in range(3)]

    def write(root: Path) -> _Writer:
        writer = _Writer(root, lambda n: None, encode_workers=2)
        writer.start()
        try:
            for spec in specs:
                writer.put("open", ShardSink(root, spec, 2))
                writer.put("batch", [(SampleMeta(key=f"{spec.index}-{k}", category="object", split="test", label=0, label_name="church",
                                                 label_names=["church"]), image, None) for k in range(2)])
                writer.put("close")
        finally:
            writer.queue.put(("stop", None))
            writer.join()
        writer.check()
        return writer

    assert write(tmp_path / "ok").written == 6 and all(is_done(tmp_path / "ok", s) for s in specs)  # all on disk once it ends
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "_stats").write_text("a file where the stats folder goes")
    with pytest.raises(RuntimeError, match="shard writer failed"):
        write(tmp_path / "bad")
    assert not any(is_done(tmp_path / "bad", s) for s in specs)
