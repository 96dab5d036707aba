"""Generation on tiny SD/SDXL/SD3/Flux/PixArt pipelines in their real layouts (VAE factor 8, real patch sizes),
through the real build engine: sizes checked per pipeline, noise from CPU generators, effective settings per
sample, safety checker/watermark/binning off and recorded, variants, LoRA adapters, per-model settings."""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from dataigm.core.shards import iter_samples, list_shards
from dataigm.generate.engine import BuildOptions, GenerationFailed, MemoryGuard, _generate_safely, build
from dataigm.generate.tiny_families import FAMILIES, build_tiny_family
from dataigm.recipe import ModelSpec, generation_presets, parse_recipe


@pytest.fixture(scope="session")
def family_dirs(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("families")
    return {f: build_tiny_family(f, root / f) for f in FAMILIES}


def recipe(models: list, **generation):
    gen = {"steps": 2, "width": 64, "height": 64, "batch_size": 2, "guidance": 4.0, "negative_prompt": "blurry"} | generation
    return parse_recipe({"name": "t", "category": "church", "taxonomy": "object", "labels": ["other", "church"],
                         "classes": [{"name": "church", "concept": "church", "negatives": "other",
                                      "prompts": {"prompts": ["a church in the snow", "a church at sunset"]}}],
                         "models": models, "generation": gen, "splits": {"train": 1.0}, "shard_size": 8})


def samples(out: Path) -> dict[str, tuple[bytes, dict]]:
    return {s.key: (s.image, s.meta) for s in iter_samples(list_shards(out))}


def png_size(data: bytes) -> tuple[int, int]:
    import io

    from PIL import Image

    return Image.open(io.BytesIO(data)).size


@pytest.mark.parametrize("family", FAMILIES)
def test_each_family_builds_at_its_size_with_effective_settings_recorded(family, family_dirs, tmp_path):
    out = tmp_path / "out"
    result = build(recipe([str(family_dirs[family])], width=64, height=48 if family in ("sd", "sdxl") else 64), out,
                   BuildOptions(device="cpu", progress=False))
    assert result.samples_written == 4 and result.samples_failed == 0
    got = samples(out)
    for image, meta in got.values():
        assert png_size(image) == (meta["width"], meta["height"])
        assert meta["generator_device"] == "cpu" and meta["batch_size"] == 2
    record = json.loads(next((out / "_models").glob("*.json")).read_text())
    assert record["safety_checker"] == ("off" if family == "sd" else "none in pipeline")
    assert record["watermark"] == ("off" if family == "sdxl" else "none in pipeline")
    assert record["call"].get("resolution_binning", "absent") == (False if family == "pixart" else "absent")
    negative = {m["negative_prompt"] for _, m in got.values()}
    assert negative == ({""} if family == "flux" else {"blurry"})  # Flux takes none (true_cfg_scale unset)


@pytest.mark.parametrize("family, multiple", [("flux", 16), ("sd3", 16), ("pixart", 16)])
def test_a_size_the_pipeline_cannot_render_is_refused_before_the_first_batch(family, multiple, family_dirs, tmp_path):
    from dataigm.generate.sizes import UnsupportedSize

    out = tmp_path / "out"
    with pytest.raises(UnsupportedSize, match=rf"renders sizes in multiples of {multiple} px .*72x64 is not one: "
                                              r"nearest valid 64x64, 80x64$"):
        build(recipe([str(family_dirs[family])], width=72, height=64), out, BuildOptions(device="cpu", progress=False))
    assert list_shards(out) == []


def test_noise_comes_from_cpu_generators_whatever_the_device(family_dirs):
    """The image a build makes for a seed is the one the pipeline makes from a CPU generator of that seed."""
    import torch

    from dataigm.generate.engine import generate_batch
    from dataigm.generate.pipeline import load_pipeline
    from dataigm.generate.plan import plan_build

    r = recipe([str(family_dirs["flux"])])
    metas = list(plan_build(r).shards[0].samples[:2])
    model = load_pipeline(r.models[0], "cpu", "float32")
    ours = generate_batch(model.pipe, metas, "cpu")
    direct = model.pipe(prompt=[m.prompt for m in metas], num_inference_steps=2, height=64, width=64, guidance_scale=4.0,
                        generator=[torch.Generator("cpu").manual_seed(m.seed) for m in metas], output_type="np").images
    assert np.array_equal(np.stack(ours), direct)


def test_negative_prompt_with_guidance_at_most_1_is_recorded_as_unused(family_dirs, tmp_path):
    build(recipe(["tiny"], guidance=1.0), tmp_path / "a", BuildOptions(device="cpu", progress=False))
    assert {m["negative_prompt"] for _, m in samples(tmp_path / "a").values()} == {""}


def test_a_partial_download_listing_the_safety_checker_loads_with_it_off(family_dirs, tmp_path):
    import shutil

    from dataigm.generate.pipeline import load_pipeline

    folder = shutil.copytree(family_dirs["sd"], tmp_path / "sd")
    index = json.loads((folder / "model_index.json").read_text())
    index |= {"safety_checker": ["stable_diffusion", "StableDiffusionSafetyChecker"],
              "feature_extractor": ["transformers", "CLIPImageProcessor"], "requires_safety_checker": True}
    (folder / "model_index.json").write_text(json.dumps(index))  # as a download without those folders leaves it
    model = load_pipeline(ModelSpec(id=str(folder)), "cpu", "float32")
    assert model.pipe.safety_checker is None and model.record()["safety_checker"] == "off"


def test_a_folder_with_only_fp16_variant_weights_loads_with_variant(tmp_path):
    from dataigm.generate.checkpoints import ModelLoadError
    from dataigm.generate.pipeline import load_pipeline

    folder = build_tiny_family("sd", tmp_path / "sd16", variant="fp16")
    assert sorted(p.name for p in (folder / "unet").iterdir()) == ["config.json", "diffusion_pytorch_model.fp16.safetensors"]
    model = load_pipeline(ModelSpec(id=str(folder), variant="fp16"), "cpu", "float32")
    assert model.record()["variant"] == "fp16"
    with pytest.raises(ModelLoadError, match="could not be loaded"):
        load_pipeline(ModelSpec(id=str(folder)), "cpu", "float32")


@pytest.fixture(scope="module")
def lora_file(tmp_path_factory, tiny_model_dir) -> Path:
    """A LoRA on the tiny UNet's attention, saved by diffusers in its PEFT layout, with non-zero up weights."""
    import torch
    from diffusers import StableDiffusionPipeline
    from diffusers.utils import convert_state_dict_to_diffusers
    from peft import LoraConfig
    from peft.utils import get_peft_model_state_dict

    pipe = StableDiffusionPipeline.from_pretrained(tiny_model_dir)
    pipe.unet.add_adapter(LoraConfig(r=4, lora_alpha=4, init_lora_weights="gaussian", target_modules=["to_q", "to_k", "to_v", "to_out.0"]))
    torch.manual_seed(5)
    with torch.no_grad():
        for name, p in pipe.unet.named_parameters():
            if "lora_B" in name:
                p.normal_(0, 0.5)
    folder = tmp_path_factory.mktemp("lora")
    StableDiffusionPipeline.save_lora_weights(folder, unet_lora_layers=convert_state_dict_to_diffusers(get_peft_model_state_dict(pipe.unet)),
                                              safe_serialization=True)
    return folder / "pytorch_lora_weights.safetensors"


def test_lora_scale_0_gives_the_base_images_exactly_and_scale_1_others(lora_file, tmp_path):
    from dataigm.generate.hashing import cached_sha256

    options = BuildOptions(device="cpu", progress=False)
    build(recipe([{"id": "tiny", "name": "m"}]), tmp_path / "base", options)
    build(recipe([{"id": "tiny", "name": "m", "loras": [f"{lora_file}:0"]}]), tmp_path / "zero", options)
    build(recipe([{"id": "tiny", "name": "m", "loras": [{"path": str(lora_file), "scale": 1.0}]}]), tmp_path / "one", options)
    base, zero, one = (samples(tmp_path / d) for d in ("base", "zero", "one"))
    assert {k: v[0] for k, v in zero.items()} == {k: v[0] for k, v in base.items()}
    assert all(one[k][0] != base[k][0] for k in base)
    record = json.loads((tmp_path / "one" / "_models" / "m.json").read_text())
    assert record["loras"] == [{"path": str(lora_file), "adapter": "lora_0", "sha256": cached_sha256(lora_file), "scale": 1.0, "fused": False}]
    parts = [json.loads((tmp_path / d / "_parts" / "church" / "generated.json").read_text()) for d in ("base", "zero", "one")]
    assert len({p["models_sha256"] for p in parts}) == 3  # the adapter and its scale are part of the part's identity
    assert parts[2]["models"][0]["loras"] == [{"sha256": cached_sha256(lora_file), "scale": 1.0}]


def test_lora_errors_name_the_file(tmp_path):
    from dataigm.generate.checkpoints import ModelLoadError
    from dataigm.generate.pipeline import load_pipeline

    pickle = tmp_path / "adapter.pt"
    pickle.write_bytes(b"x")
    with pytest.raises(ModelLoadError, match=r"adapter.pt'?: only .safetensors adapters"):
        load_pipeline(ModelSpec(id="tiny", loras=[str(pickle)]), "cpu", "float32")


def test_lora_strings_parse_file_and_scale():
    spec = ModelSpec(id="tiny", loras=["a/b.safetensors", "c.safetensors:0.5", {"path": "d:e.safetensors"}])
    assert [(lora.path, lora.scale) for lora in spec.loras] == [("a/b.safetensors", 1.0), ("c.safetensors", 0.5), ("d:e.safetensors", 1.0)]
    assert spec.tag == "tiny_lora_b_lora_c_lora_e"


@pytest.mark.parametrize("name", sorted(generation_presets()))
def test_every_shipped_preset_applies(name):
    r = recipe([{"id": "tiny", "generation": name}])
    gen = r.model_generation(r.models[0])
    assert gen.width >= 512 and gen.steps >= 1 and gen.batch_size == 2  # fields the preset does not set stay the recipe's


def test_per_model_settings_reach_the_samples():
    from dataigm.generate.plan import plan_build

    r = recipe(["tiny", {"id": "tiny", "name": "schnell", "generation": {"preset": "flux-schnell", "width": 64, "height": 64}}])
    by_model = {m.model: m for s in plan_build(r).shards for m in s.samples}
    assert (by_model["tiny"].steps, by_model["tiny"].guidance) == (2, 4.0)
    assert (by_model["schnell"].steps, by_model["schnell"].guidance, by_model["schnell"].width) == (4, 0.0, 64)
    with pytest.raises(ValueError, match=r"unknown generation preset 'sdx' \(did you mean 'sdxl'\?\); valid: flux-dev, flux-schnell, pixart, sd1"):
        recipe([{"id": "tiny", "generation": "sdx"}])


def test_the_resolved_dtype_is_in_the_part_hash(tmp_path):
    options = BuildOptions(device="cpu", progress=False, limit=1)
    build(recipe(["tiny"], dtype="auto"), tmp_path / "auto", options)
    build(recipe(["tiny"], dtype="float32"), tmp_path / "f32", options)
    auto, f32 = (json.loads((tmp_path / d / "_parts" / "church" / "generated.json").read_text()) for d in ("auto", "f32"))
    assert auto["config_sha256"].endswith("-dtypefloat32") and auto["resolved_dtypes"] == ["float32"]
    assert f32["resolved_dtypes"] == [] and "-dtype" not in f32["config_sha256"]


def test_encoder_pool_size_does_not_change_the_bytes(tmp_path):
    build(recipe(["tiny"]), tmp_path / "one", BuildOptions(device="cpu", progress=False, encode_workers=1))
    build(recipe(["tiny"]), tmp_path / "three", BuildOptions(device="cpu", progress=False, encode_workers=3))
    assert [p.read_bytes() for p in list_shards(tmp_path / "one")] == [p.read_bytes() for p in list_shards(tmp_path / "three")]


class OutOfMemoryPipe:
    """Stands in for a GPU running out of memory (no GPU here): batches above ``fits`` images raise CUDA's OOM."""

    def __init__(self, fits: int) -> None:
        self.fits, self.calls = fits, []

    def __call__(self, prompt: list[str], **kwargs):
        import torch

        self.calls.append(len(prompt))
        if len(prompt) > self.fits:
            raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
        return type("Out", (), {"images": [np.zeros((8, 8, 3))] * len(prompt)})()


def test_out_of_memory_retries_one_by_one_once_then_is_fatal_with_advice():
    from dataigm.generate.plan import plan_build

    metas = list(plan_build(recipe(["tiny"])).shards[0].samples)
    pipe, guard = OutOfMemoryPipe(fits=1), MemoryGuard()
    results = _generate_safely(pipe, metas[:2], "cpu", guard)
    assert [m.batch_size for m, _, error in results if error is None] == [1, 1] and pipe.calls == [2, 1, 1]
    with pytest.raises(GenerationFailed, match=r"out of memory generating a batch of 2 again .*lower batch_size=, or add offload="):
        _generate_safely(pipe, metas[2:4], "cpu", guard)
    with pytest.raises(GenerationFailed, match=r"out of memory generating one image"):
        _generate_safely(OutOfMemoryPipe(fits=0), metas[:1], "cpu", MemoryGuard())


class FailingPipe(OutOfMemoryPipe):
    """A pipeline that raises ``error`` for any batch holding the prompt ``bad`` (every prompt when ``bad`` is None)."""

    def __init__(self, bad: str | None, error: BaseException) -> None:
        super().__init__(fits=1000)
        self.bad, self.error = bad, error

    def __call__(self, prompt: list[str], **kwargs):
        if len(prompt) <= self.fits and (self.bad is None or self.bad in prompt):
            self.calls.append(len(prompt))
            raise self.error
        return super().__call__(prompt, **kwargs)


def test_a_failing_image_is_recorded_and_the_rest_of_its_batch_kept():
    from dataigm.generate.plan import plan_build

    metas = list(plan_build(recipe(["tiny"])).shards[0].samples)[:3]
    guard = MemoryGuard()
    results = _generate_safely(FailingPipe(metas[1].prompt, ValueError("height must be divisible by 8")), metas, "cpu", guard)
    assert [(m.key, m.batch_size, error) for m, _, error in results] == [
        (metas[0].key, 1, None), (metas[1].key, 1, "ValueError: height must be divisible by 8"), (metas[2].key, 1, None)]
    assert guard.oom_batches == 0  # not a memory error: the guard is untouched
    with pytest.raises(GenerationFailed, match=r"every image of a batch of 3 failed, also one by one .*ValueError: nope"):
        _generate_safely(FailingPipe(None, ValueError("nope")), metas, "cpu", MemoryGuard())
    assert _generate_safely(FailingPipe(None, ValueError("nope")), metas[:1], "cpu")[0][2] == "ValueError: nope"  # one image: recorded
    for fatal in (RuntimeError("CUDA error: device-side assert triggered"), torch_accelerator_error("CUDA error: illegal address")):
        pipe = FailingPipe(None, fatal)
        with pytest.raises(GenerationFailed, match=rf"CUDA error while generating {metas[0].key}: "):
            _generate_safely(pipe, metas, "cpu")  # the whole batch: a broken context, not retried
        assert pipe.calls == [3]
        pipe = FailingPipe(metas[1].prompt, fatal)
        pipe.fits = 1  # the batch runs out of memory, then image 1 alone breaks the context
        with pytest.raises(GenerationFailed, match=rf"CUDA error while generating {metas[1].key}"):
            _generate_safely(pipe, metas, "cpu")  # found while retrying one by one


def torch_accelerator_error(message: str) -> BaseException:
    import torch

    return torch.AcceleratorError(message)


def test_which_errors_are_fatal_and_which_are_out_of_memory():
    import torch

    from dataigm.generate.engine import is_fatal, is_out_of_memory

    oom = torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
    assert not is_fatal(oom) and is_out_of_memory(oom)
    assert is_fatal(torch_accelerator_error("an accelerator failed")) and is_fatal(RuntimeError("CUDA error: misaligned address"))
    assert not is_fatal(RuntimeError("cuda error in lower case is not CUDA's")) and not is_fatal(ValueError("bad size"))
    assert is_out_of_memory(RuntimeError("MPS backend Out Of Memory (MPS allocated: 8 GiB)"))  # any casing
    assert not is_out_of_memory(ValueError("bad size")) and not is_out_of_memory(RuntimeError("CUDA error: misaligned address"))


def test_the_first_memory_error_is_retried_once_per_build():
    from dataigm.generate.plan import plan_build

    metas = list(plan_build(recipe(["tiny"])).shards[0].samples)
    guard = MemoryGuard()
    guard.on_oom(RuntimeError("out of memory"), metas[:2])
    assert guard.oom_batches == 1
    with pytest.raises(GenerationFailed, match=rf"out of memory generating a batch of 3 again \({metas[0].key}, "):
        guard.on_oom(RuntimeError("out of memory"), metas[:3])
    with pytest.raises(GenerationFailed, match=rf"out of memory generating one image \({metas[0].key}, "):
        MemoryGuard().on_oom(RuntimeError("out of memory"), metas[:1])


@pytest.mark.parametrize("device,requested,workers", [("cpu", None, 1), ("mps", None, 1), ("cuda", None, "cores"), ("cuda:1", None, "cores"),
                                                      ("cpu", 3, 3), ("cuda", 2, 2)])
def test_png_encoders_are_one_on_the_cpu_and_one_per_core_beside_a_gpu(device, requested, workers):
    import os

    from dataigm.generate.engine import encoder_workers

    want = len(os.sched_getaffinity(0)) if workers == "cores" else workers
    assert encoder_workers(device, requested) == want
    with pytest.raises(ValueError, match="encode_workers must be >= 1, got 0"):
        encoder_workers(device, 0)


def test_loading_goes_straight_to_the_gpu_unless_offloaded():
    from dataigm.generate.pipeline import placement_kwargs

    assert placement_kwargs("cuda:3", None) == {"low_cpu_mem_usage": True, "device_map": "cuda"}
    assert placement_kwargs("cuda:3", "model") == placement_kwargs("cpu", None) == {"low_cpu_mem_usage": True}


def test_build_command_flags_name_variant_and_adapters(tmp_path):
    import argparse

    from dataigm.commands import build as command
    from dataigm.generate.sources import ModelSourceError, check_models

    parser = argparse.ArgumentParser()
    command.add_arguments(parser)
    args = parser.parse_args(["r.yaml", "--out", "o", "--model", "org/model", "--weights-variant", "fp16", "--lora", "a.safetensors:0.5", "--lora", "b.safetensors"])
    spec = command.model_override(args)
    assert spec.variant == "fp16" and [(lora.path, lora.scale) for lora in spec.loras] == [("a.safetensors", 0.5), ("b.safetensors", 1.0)]
    with pytest.raises(ModelSourceError, match=r"lora='a.safetensors': no such file"):
        check_models([spec.model_copy(update={"id": "tiny"})])


@pytest.mark.parametrize("device", ["cuda", "cuda:1", "mps"])
def test_the_generators_are_made_on_the_cpu_for_a_gpu_device(family_dirs, device):
    """The decision itself, for device strings other than cpu: the pipeline receives one CPU generator per image,
    seeded with that image's seed, whatever device the build names (the real tiny pipeline runs here on the CPU)."""
    import torch

    from dataigm.generate.engine import GENERATOR_DEVICE, generate_batch
    from dataigm.generate.pipeline import load_pipeline
    from dataigm.generate.plan import plan_build

    r = recipe([str(family_dirs["flux"])])
    by_seed = {m.seed: m for shard in plan_build(r).shards for m in shard.samples}
    metas = list(by_seed.values())[:3]  # images of different seeds
    model = load_pipeline(r.models[0], "cpu", "float32")
    seen: list[Any] = []

    class Spy:
        """The real pipeline, recording the generators it is called with (its ``__call__`` keeps the pipeline's
        signature, which :func:`dataigm.generate.pipeline.call_settings` reads)."""

        def __init__(self) -> None:
            @functools.wraps(model.pipe.__call__)
            def call(**kwargs: Any) -> Any:
                seen.extend(kwargs["generator"])
                return model.pipe(**kwargs)

            self.__call__ = call

        def __getattr__(self, name: str) -> Any:
            return getattr(model.pipe, name)

        def __call__(self, **kwargs: Any) -> Any:
            return self.__dict__["__call__"](**kwargs)

    images = generate_batch(Spy(), metas, device)
    assert GENERATOR_DEVICE == "cpu"
    assert len(metas) >= 2 and len(images) == len(metas)
    assert [g.device for g in seen] == [torch.device("cpu")] * len(metas)
    assert [g.initial_seed() for g in seen] == [m.seed for m in metas]
