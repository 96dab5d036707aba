"""Unlearned checkpoints in the layouts the field ships them, loud generation failures, part identity, launchers.

The tiny pipeline's UNet and text encoder are saved in each real layout (diffusers folder, full and partial
diffusers-key dicts as .pt and .safetensors, CompVis/LDM-key dicts, ``text_model.``-prefixed CLIP dicts, a Hub-style
``REPO:SUBFOLDER``); equivalent checkpoints must give identical image bytes.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from dataigm.core.partition import RankInfo, rank_from_env
from dataigm.core.shards import iter_samples, list_shards
from dataigm.generate.engine import BuildOptions, GenerationFailed, build
from dataigm.recipe import ModelSpec, parse_recipe

LPB = 1  # the tiny UNet's layers_per_block: LPB + 1 input blocks per down block, LPB + 1 output blocks per up block


def tiny_recipe(**generation):
    return parse_recipe({
        "name": "ck", "category": "object", "labels": ["cube"], "splits": {"test": 1.0}, "models": ["tiny"],
        "images_per_prompt": 2, "shard_size": 2,
        "generation": {"width": 64, "height": 64, "steps": 2, "batch_size": 2, **generation},
        "classes": [{"name": "cube", "prompts": {"prompts": ["a red cube", "a blue ball"]}}],
    })


def images(root: Path) -> dict[str, bytes]:
    return {s.meta["pair_id"] + str(s.meta["image_index"]): s.image for s in iter_samples(list_shards(root))}


# --- the LDM (CompVis) key layout of the tiny UNet, written out here rather than taken from diffusers ---------------
RESNET = {"norm1": "in_layers.0", "conv1": "in_layers.2", "time_emb_proj": "emb_layers.1", "norm2": "out_layers.0",
          "conv2": "out_layers.3", "conv_shortcut": "skip_connection"}


def _resnet(rest: str) -> str:
    head, _, tail = rest.partition(".")
    return f"{RESNET.get(head, head)}.{tail}"


def _ldm_unet_rules(up_attention_blocks: set[int], LPB: int) -> list:  # noqa: N803
    """(diffusers key pattern, its groups -> the LDM name below ``model.diffusion_model.``), for each kind of block."""
    n = LPB + 1  # input/output blocks per down/up block
    return [
        (r"down_blocks\.(\d+)\.resnets\.(\d+)\.(.+)", lambda b, i, rest: f"input_blocks.{1 + int(b) * n + int(i)}.0.{_resnet(rest)}"),
        (r"down_blocks\.(\d+)\.attentions\.(\d+)\.(.+)", lambda b, i, rest: f"input_blocks.{1 + int(b) * n + int(i)}.1.{rest}"),
        (r"down_blocks\.(\d+)\.downsamplers\.0\.conv\.(.+)", lambda b, rest: f"input_blocks.{(int(b) + 1) * n}.0.op.{rest}"),
        (r"mid_block\.resnets\.(\d+)\.(.+)", lambda i, rest: f"middle_block.{2 * int(i)}.{_resnet(rest)}"),
        (r"mid_block\.attentions\.0\.(.+)", lambda rest: f"middle_block.1.{rest}"),
        (r"up_blocks\.(\d+)\.resnets\.(\d+)\.(.+)", lambda b, i, rest: f"output_blocks.{int(b) * n + int(i)}.0.{_resnet(rest)}"),
        (r"up_blocks\.(\d+)\.attentions\.(\d+)\.(.+)", lambda b, i, rest: f"output_blocks.{int(b) * n + int(i)}.1.{rest}"),
        (r"up_blocks\.(\d+)\.upsamplers\.0\.conv\.(.+)",
         lambda b, rest: f"output_blocks.{int(b) * n + LPB}.{2 if int(b) in up_attention_blocks else 1}.conv.{rest}"),
    ]


def to_ldm_key(key: str, up_attention_blocks: set[int], LPB: int = LPB) -> str:  # noqa: N803
    """A diffusers UNet key as the original Stable Diffusion code names it (``model.diffusion_model.`` ...)."""
    fixed = {"time_embedding.linear_1": "time_embed.0", "time_embedding.linear_2": "time_embed.2", "conv_in": "input_blocks.0.0",
             "conv_norm_out": "out.0", "conv_out": "out.2", "add_embedding.linear_1": "label_emb.0.0",
             "add_embedding.linear_2": "label_emb.0.2"}
    for old, new in fixed.items():
        if key.startswith(old + "."):
            return "model.diffusion_model." + new + key[len(old):]
    for pattern, ldm_name in _ldm_unet_rules(up_attention_blocks, LPB):
        if m := re.match(pattern, key):
            return "model.diffusion_model." + ldm_name(*m.groups())
    raise AssertionError(f"no LDM name for {key}")


VAE_ATTENTION = {"group_norm": "norm", "to_q": "q", "to_k": "k", "to_v": "v", "to_out.0": "proj_out"}


def to_ldm_vae_key(key: str, n_up: int) -> str:
    """A diffusers AutoencoderKL key as the original code names it (below ``first_stage_model.``)."""
    key = key.replace("conv_norm_out", "norm_out").replace("conv_shortcut", "nin_shortcut")
    if m := re.match(r"encoder\.down_blocks\.(\d+)\.resnets\.(\d+)\.(.+)", key):
        return f"encoder.down.{m[1]}.block.{m[2]}.{m[3]}"
    if m := re.match(r"encoder\.down_blocks\.(\d+)\.downsamplers\.0\.conv\.(.+)", key):
        return f"encoder.down.{m[1]}.downsample.conv.{m[2]}"
    if m := re.match(r"decoder\.up_blocks\.(\d+)\.resnets\.(\d+)\.(.+)", key):  # the original counts up blocks bottom-up
        return f"decoder.up.{n_up - 1 - int(m[1])}.block.{m[2]}.{m[3]}"
    if m := re.match(r"decoder\.up_blocks\.(\d+)\.upsamplers\.0\.conv\.(.+)", key):
        return f"decoder.up.{n_up - 1 - int(m[1])}.upsample.conv.{m[2]}"
    if m := re.match(r"(encoder|decoder)\.mid_block\.resnets\.(\d+)\.(.+)", key):
        return f"{m[1]}.mid.block_{int(m[2]) + 1}.{m[3]}"
    if m := re.match(r"(encoder|decoder)\.mid_block\.attentions\.0\.(.+)", key):
        rest = m[2]
        for old, new in VAE_ATTENTION.items():
            if rest.startswith(old + "."):
                rest = new + rest[len(old):]
        return f"{m[1]}.mid.attn_1.{rest}"
    return key


def write_sd_single_file(pipe, path: Path) -> None:
    """The whole pipeline as one original-layout (CompVis/LDM) Stable Diffusion 1.x checkpoint."""
    import torch
    from safetensors.torch import save_file

    up_attn = {i for i, b in enumerate(pipe.unet.config.up_block_types) if "CrossAttn" in b}
    sd = {to_ldm_key(k, up_attn): v for k, v in pipe.unet.state_dict().items()}
    n_up = len(pipe.vae.config.up_block_types)
    for k, v in pipe.vae.state_dict().items():
        name = "first_stage_model." + to_ldm_vae_key(k, n_up)
        sd[name] = v[:, :, None, None] if ".mid.attn_1." in name and v.ndim == 2 else v  # 1x1 convs in the original
    sd.update({f"cond_stage_model.transformer.text_model.{k}": v for k, v in pipe.text_encoder.state_dict().items()})
    sd = {k: v.contiguous() for k, v in sd.items()}
    save_file(sd, str(path)) if path.suffix == ".safetensors" else torch.save({"state_dict": sd}, path)


@pytest.fixture(scope="module")
def unlearned(tiny_model_dir, tmp_path_factory):
    """An ESD-x-style UNet (only cross-attention ``attn2`` changed) and a changed text encoder, in every layout."""
    import torch
    from diffusers import StableDiffusionPipeline
    from safetensors.torch import save_file

    d = tmp_path_factory.mktemp("unlearned")
    pipe = StableDiffusionPipeline.from_pretrained(tiny_model_dir)
    unet, te = pipe.unet, pipe.text_encoder
    with torch.no_grad():
        for name, p in unet.named_parameters():
            if ".attn2." in name:
                p.mul_(-1.5)
        te.final_layer_norm.weight.mul_(0.25)
    pipe.save_pretrained(d / "pipeline")  # the full diffusers folder (also the REPO:SUBFOLDER layout)
    full = {k: v.contiguous() for k, v in unet.state_dict().items()}
    partial = {k: v for k, v in full.items() if ".attn2." in k}
    save_file(full, str(d / "unet_full.safetensors"))
    save_file(partial, str(d / "unet_attn2.safetensors"))
    torch.save(partial, d / "unet_attn2.pt")  # ESD-x/UCE: trained parameters only, torch.save
    up_attn = {i for i, b in enumerate(unet.config.up_block_types) if "CrossAttn" in b}
    save_file({to_ldm_key(k, up_attn): v for k, v in full.items()}, str(d / "unet_ldm.safetensors"))
    torch.save({"state_dict": {to_ldm_key(k, up_attn): v for k, v in partial.items()}}, d / "unet_ldm_attn2.ckpt")
    te_sd = {f"text_model.{k}": v for k, v in te.state_dict().items()}  # transformers < 5 and most unlearning repos
    te_sd["text_model.embeddings.position_ids"] = torch.arange(77)[None]
    torch.save(te_sd, d / "text_encoder_old.bin")
    return d, len(partial), len(full)


UNET_LAYOUTS = {
    "diffusers folder": "pipeline/unet",
    "REPO:SUBFOLDER": "pipeline:unet",
    "full dict .safetensors": "unet_full.safetensors",
    "partial dict .safetensors": "unet_attn2.safetensors",
    "partial dict .pt": "unet_attn2.pt",
    "LDM dict": "unet_ldm.safetensors",
    "partial LDM dict .ckpt": "unet_ldm_attn2.ckpt",
}


def test_every_unet_layout_builds_identical_images(unlearned, tmp_path):
    d, n_partial, n_full = unlearned
    outs, loads = {}, {}
    for layout, rel in UNET_LAYOUTS.items():
        out = tmp_path / re.sub(r"\W+", "_", layout)
        build(tiny_recipe(), out, BuildOptions(device="cpu", progress=False), models=[ModelSpec(id="tiny", name="m", components={"unet": str(d / rel)})])
        outs[layout] = images(out)
        manifest = json.loads((out / "manifest.json").read_text())
        loads[layout] = manifest["models"]["m"]["component_loads"]["unet"]
        assert manifest["totals"]["samples"] == 4 and len(manifest["models"]["m"]["components"]["unet"]) == 64
    base = tmp_path / "base"
    build(tiny_recipe(), base, BuildOptions(device="cpu", progress=False))
    reference = outs["diffusers folder"]
    assert len(reference) == 4 and images(base).keys() == reference.keys() and images(base) != reference
    for layout, got in outs.items():
        assert got == reference, layout
    assert loads["partial dict .pt"] == {"source": str(d / "unet_attn2.pt"), "sha256": loads["partial dict .pt"]["sha256"],
                                         "format": "diffusers", "tensors_replaced": n_partial, "tensors_total": n_full, "partial": True}
    assert loads["partial LDM dict .ckpt"]["format"] == "ldm" and loads["partial LDM dict .ckpt"]["tensors_replaced"] == n_partial
    assert loads["LDM dict"]["tensors_replaced"] == n_full and loads["full dict .safetensors"]["partial"] is False
    import hashlib

    assert loads["partial dict .pt"]["sha256"] == hashlib.sha256((d / "unet_attn2.pt").read_bytes()).hexdigest()


def test_old_text_model_prefixed_text_encoder_and_subfolder_match_the_folder(unlearned):
    from dataigm.generate.engine import encode_png, generate_batch
    from dataigm.core.schema import SampleMeta
    from dataigm.generate.pipeline import load_pipeline

    d, _, _ = unlearned
    meta = SampleMeta(key="k-0", category="object", split="test", label=0, label_name="cube", label_names=["cube"],
                      prompt="a red cube", seed=3, steps=2, guidance=7.5, width=64, height=64)
    png = {}
    for layout, src in [("old dict", d / "text_encoder_old.bin"), ("folder", d / "pipeline" / "text_encoder"),
                        ("subfolder", f"{d / 'pipeline'}:text_encoder"), ("base", None)]:
        loaded = load_pipeline(ModelSpec(id="tiny", components={"text_encoder": str(src)} if src else {}))
        png[layout] = encode_png(generate_batch(loaded.pipe, [meta], "cpu")[0])
        if layout == "old dict":
            assert loaded.loads["text_encoder"]["format"] == "text_model.-prefixed"
            assert loaded.loads["text_encoder"]["partial"] is False
    assert png["old dict"] == png["folder"] == png["subfolder"] != png["base"]


def test_partial_dicts_with_wrong_shapes_or_foreign_keys_are_refused(tiny_model_dir, tmp_path):
    import torch

    from dataigm.generate.pipeline import ModelLoadError, load_pipeline

    key = "down_blocks.1.attentions.0.transformer_blocks.0.attn2.to_k.weight"
    torch.save({key: torch.zeros(3, 3)}, tmp_path / "wrong.pt")
    with pytest.raises(ModelLoadError, match=re.escape(f"{key} (3, 3) != (64, 32)")):
        load_pipeline(ModelSpec(id="tiny", components={"unet": str(tmp_path / "wrong.pt")}))
    torch.save({key.replace("to_k", "to_kk"): torch.zeros(64, 32)}, tmp_path / "foreign.pt")
    with pytest.raises(ModelLoadError, match="1 unexpected"):
        load_pipeline(ModelSpec(id="tiny", components={"unet": str(tmp_path / "foreign.pt")}))


def test_pickles_with_objects_are_not_unpickled(tiny_model_dir, tmp_path):
    import torch

    from dataigm.generate.pipeline import ModelLoadError, load_pipeline

    torch.save({"state_dict": {}, "optimizer": object.__new__(RankInfo)}, tmp_path / "full_pickle.pt")
    with pytest.raises(ModelLoadError, match="weights_only=True"):
        load_pipeline(ModelSpec(id="tiny", components={"unet": str(tmp_path / "full_pickle.pt")}))


# --- single files: the pipeline class comes from the checkpoint (diffusers' infer_diffusers_model_type) -------------
MARKERS = {  # real key names and the shapes diffusers tests, nothing else (a tiny SDXL/SD3/Flux file is not built here)
    "v1": ({"model.diffusion_model.output_blocks.11.0.skip_connection.weight": (4, 4), "first_stage_model.decoder.conv_in.weight": (1,)},
           "StableDiffusionPipeline", False),
    "v2": ({"model.diffusion_model.input_blocks.2.1.transformer_blocks.0.attn2.to_k.weight": (320, 1024),
            "first_stage_model.decoder.conv_in.weight": (1,)}, "StableDiffusionPipeline", False),
    "xl_base": ({"conditioner.embedders.1.model.transformer.resblocks.9.mlp.c_proj.bias": (4,),
                 "first_stage_model.decoder.conv_in.weight": (1,)}, "StableDiffusionXLPipeline", False),
    "sd3": ({"joint_blocks.0.context_block.adaLN_modulation.1.bias": (9216,), "pos_embed": (1, 36864, 1)}, "StableDiffusion3Pipeline", True),
    "flux-dev": ({"double_blocks.0.img_attn.norm.key_norm.scale": (4,), "guidance_in.in_layer.bias": (4,), "img_in.weight": (4, 64)},
                 "FluxPipeline", True),
    "flux-schnell": ({"double_blocks.0.img_attn.norm.key_norm.scale": (4,)}, "FluxPipeline", True),
}


@pytest.mark.parametrize("model_type", sorted(MARKERS))
@pytest.mark.parametrize("suffix", [".safetensors", ".pt"])
def test_single_file_pipeline_class_is_inferred_from_the_checkpoint(model_type, suffix, tmp_path):
    import torch
    from safetensors.torch import save_file

    from dataigm.generate.pipeline import infer_single_file

    keys, cls, transformer_only = MARKERS[model_type]
    sd = {k: torch.zeros(shape) for k, shape in keys.items()}
    path = tmp_path / f"model{suffix}"
    save_file(sd, str(path)) if suffix == ".safetensors" else torch.save({"state_dict": sd}, path)
    assert infer_single_file(path) == {"model_type": model_type, "pipeline_class": cls, "transformer_only": transformer_only}


@pytest.mark.parametrize("suffix", [".safetensors", ".ckpt"])
def test_tiny_sd_single_file_builds_the_same_images_as_its_folder(tiny_model_dir, tmp_path, suffix):
    from diffusers import StableDiffusionPipeline

    path = tmp_path / f"tiny-sd{suffix}"
    write_sd_single_file(StableDiffusionPipeline.from_pretrained(tiny_model_dir), path)
    build(tiny_recipe(), tmp_path / "file", BuildOptions(device="cpu", progress=False),
          models=[ModelSpec(id=str(path), name="m", config=str(tiny_model_dir))])
    build(tiny_recipe(), tmp_path / "folder", BuildOptions(device="cpu", progress=False), models=[ModelSpec(id="tiny", name="m")])
    assert len(images(tmp_path / "file")) == 4 and images(tmp_path / "file") == images(tmp_path / "folder")
    record = json.loads((tmp_path / "file" / "manifest.json").read_text())["models"]["m"]
    assert record["single_file"] == {"model_type": "v1", "pipeline_class": "StableDiffusionPipeline", "transformer_only": False}
    assert record["pipeline_class"] == "StableDiffusionPipeline" and record["revision"] == __import__("hashlib").sha256(path.read_bytes()).hexdigest()


OPENCLIP = {"layer_norm1": "ln_1", "layer_norm2": "ln_2", "mlp.fc1": "mlp.c_fc", "mlp.fc2": "mlp.c_proj", "self_attn.out_proj": "attn.out_proj"}


def to_open_clip(sd: dict, prefix: str = "conditioner.embedders.1.model.") -> dict:
    """A transformers CLIPTextModelWithProjection state dict in OpenCLIP's layout (SDXL's second text encoder)."""
    import torch

    out = {}
    for k, v in sd.items():
        if k == "text_model.embeddings.position_embedding.weight":
            out[prefix + "positional_embedding"] = v
        elif k == "text_model.embeddings.token_embedding.weight":
            out[prefix + "token_embedding.weight"] = v
        elif k.startswith("text_model.final_layer_norm."):
            out[prefix + "ln_final." + k.rsplit(".", 1)[1]] = v
        elif k == "text_projection.weight":
            out[prefix + "text_projection"] = v.T.contiguous()
        elif m := re.match(r"text_model\.encoder\.layers\.(\d+)\.self_attn\.q_proj\.(weight|bias)", k):  # q, k, v fused
            out[f"{prefix}transformer.resblocks.{m[1]}.attn.in_proj_{m[2]}"] = torch.cat(
                [sd[f"text_model.encoder.layers.{m[1]}.self_attn.{x}_proj.{m[2]}"] for x in "qkv"])
        elif m := re.match(r"text_model\.encoder\.layers\.(\d+)\.(.+)", k):
            if re.match(r"self_attn\.[kv]_proj\.", m[2]):
                continue
            rest = m[2]
            for old, new in OPENCLIP.items():
                rest = rest.replace(old, new)
            out[f"{prefix}transformer.resblocks.{m[1]}.{rest}"] = v
        else:
            raise AssertionError(f"no OpenCLIP name for {k}")
    return out


def tiny_sdxl(folder: Path) -> Path:
    """The tiny SDXL family with two layers per block and two transformer layers in the second (as SDXL has), and 10
    layers in the second text encoder, since diffusers recognises an SDXL file by ``resblocks.9``."""
    from dataigm.generate.tiny_families import build_tiny_family

    return build_tiny_family("sdxl", folder, layers_per_block=2, transformer_layers_per_block=(1, 2), text_encoder_2_layers=10)


def test_tiny_sdxl_single_file_is_recognised_and_builds_the_same_images_as_its_folder(tmp_path):
    from diffusers import StableDiffusionXLPipeline
    from safetensors.torch import save_file

    folder = tiny_sdxl(tmp_path / "sdxl")
    pipe = StableDiffusionXLPipeline.from_pretrained(folder)
    up_attn = {i for i, b in enumerate(pipe.unet.config.up_block_types) if "CrossAttn" in b}
    sd = {to_ldm_key(k, up_attn, pipe.unet.config.layers_per_block): v for k, v in pipe.unet.state_dict().items()}
    n_up = len(pipe.vae.config.up_block_types)
    for k, v in pipe.vae.state_dict().items():
        name = "first_stage_model." + to_ldm_vae_key(k, n_up)
        sd[name] = v[:, :, None, None] if ".mid.attn_1." in name and v.ndim == 2 else v
    sd.update({f"conditioner.embedders.0.transformer.text_model.{k}": v for k, v in pipe.text_encoder.state_dict().items()})
    sd.update(to_open_clip(pipe.text_encoder_2.state_dict()))
    path = tmp_path / "tiny-sdxl.safetensors"
    save_file({k: v.contiguous() for k, v in sd.items()}, str(path))
    build(tiny_recipe(), tmp_path / "file", BuildOptions(device="cpu", progress=False), models=[ModelSpec(id=str(path), name="m", config=str(folder))])
    build(tiny_recipe(), tmp_path / "folder", BuildOptions(device="cpu", progress=False), models=[ModelSpec(id=str(folder), name="m")])
    assert len(images(tmp_path / "file")) == 4 and images(tmp_path / "file") == images(tmp_path / "folder")
    record = json.loads((tmp_path / "file" / "manifest.json").read_text())["models"]["m"]
    assert record["single_file"] == {"model_type": "xl_base", "pipeline_class": "StableDiffusionXLPipeline", "transformer_only": False}
    assert record["pipeline_class"] == "StableDiffusionXLPipeline"


def test_partial_ldm_dict_of_an_sdxl_unet_converts_to_its_diffusers_keys():
    """SDXL's UNet reads ``label_emb`` unconditionally in diffusers' converter: a partial dict must not need it."""
    import torch

    from dataigm.generate.pipeline import apply_state_dict
    from dataigm.generate.tiny_families import sdxl_unet

    unet = sdxl_unet(layers_per_block=2, transformer_layers_per_block=(1, 2))
    up_attn = {i for i, b in enumerate(unet.config.up_block_types) if "CrossAttn" in b}
    partial = {k: torch.randn_like(v) for k, v in unet.state_dict().items() if ".attn2." in k}
    info = apply_state_dict(unet, {to_ldm_key(k, up_attn, 2): v for k, v in partial.items()}, "unet")
    assert info["format"] == "ldm" and info["tensors_replaced"] == len(partial) > 0 and info["partial"]
    own = unet.state_dict()
    assert all(torch.equal(own[k], v) for k, v in partial.items())


def test_transformer_only_file_needs_config_and_unknown_types_are_named(tiny_model_dir, tmp_path):
    import torch
    from safetensors.torch import save_file

    from dataigm.generate.pipeline import ModelLoadError, load_pipeline

    save_file({"double_blocks.0.img_attn.norm.key_norm.scale": torch.zeros(4)}, str(tmp_path / "flux1-schnell.safetensors"))
    with pytest.raises(ModelLoadError, match="transformer-only flux-schnell file .*give model_config="):
        load_pipeline(ModelSpec(id=str(tmp_path / "flux1-schnell.safetensors")))
    save_file({"model.diffusion_model.input_blocks.0.0.weight": torch.zeros(4, 9, 3, 3)}, str(tmp_path / "inpaint.safetensors"))
    with pytest.raises(ModelLoadError, match="'inpainting', not a text-to-image model"):
        load_pipeline(ModelSpec(id=str(tmp_path / "inpaint.safetensors")))


# --- failures -------------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def mismatched_text_encoder(tiny_model_dir, tmp_path_factory):
    """A text encoder whose width (16) the UNet's cross-attention (32) cannot take: every image fails."""
    from transformers import CLIPTextConfig, CLIPTextModel

    cfg = CLIPTextConfig.from_pretrained(tiny_model_dir / "text_encoder")
    cfg.hidden_size, cfg.intermediate_size = 16, 32
    folder = tmp_path_factory.mktemp("bad") / "text_encoder"
    CLIPTextModel(cfg).save_pretrained(folder)
    return folder


def test_all_failing_build_exits_non_zero_publishes_nothing_and_the_fixed_rerun_builds_all(mismatched_text_encoder, tmp_path):
    recipe = tmp_path / "ck.yaml"
    recipe.write_text(json.dumps(tiny_recipe().model_dump(mode="json")))
    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "dataigm", "build", str(recipe), "--out", str(out), "--device", "cpu", "--no-progress", "--model", "tiny",
           "--model-name", "m"]
    broken = subprocess.run(cmd + ["--text-encoder", str(mismatched_text_encoder)], capture_output=True, text=True)
    assert broken.returncode != 0
    assert "every image of a batch of 2 failed" in broken.stderr and "RuntimeError" in broken.stderr
    assert "Traceback" not in broken.stderr
    assert not list_shards(out) and not (out / "_stats").exists() and not (out / "manifest.json").exists()
    fixed = subprocess.run(cmd, capture_output=True, text=True)
    assert fixed.returncode == 0, fixed.stderr
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["totals"] == {"samples": 4, "failed": 0, "shards": 2}


def write_one_shard(out: Path, spec, rows: list, max_failure_rate: float):
    """The engine's writer thread run through one shard of ``rows`` (sample, image or None, error or None), unchecked."""
    from dataigm.core.shards import ShardSink
    from dataigm.generate.engine import _Writer

    writer = _Writer(out, lambda n: None, max_failure_rate=max_failure_rate)
    writer.start()
    writer.put("open", ShardSink(out, spec, len(rows)))
    writer.put("batch", rows)
    writer.put("close")
    writer.put("stop")
    writer.join()
    return writer


def test_failed_images_are_recorded_under_the_rate_and_retried_by_a_rerun(tiny_model_dir, tmp_path):
    from dataclasses import replace

    from dataigm.generate.engine import generate_batch
    from dataigm.generate.pipeline import load_pipeline
    from dataigm.generate.plan import plan_build

    recipe = tiny_recipe()
    clean = tmp_path / "clean"
    build(recipe, clean, BuildOptions(device="cpu", progress=False))
    # A run in which one of the first shard's two images failed (a per-image failure, under the allowed rate).
    out = tmp_path / "out"
    build(recipe, out, BuildOptions(device="cpu", progress=False))
    shard = plan_build(recipe).shards[0]
    pipe = load_pipeline(ModelSpec(id="tiny")).pipe
    good = [replace(m, scheduler="DDIMScheduler") for m in shard.samples]
    image = generate_batch(pipe, good[:1], "cpu")[0]
    write_one_shard(out, shard.spec, [(good[0], image, None), (good[1], None, "ValueError: NaN/inf in generated image")], 0.5).check()
    stats = json.loads(shard.spec.stats_path(out).read_text())
    assert (stats["ok"], stats["failed"]) == (1, 1) and stats["errors"][0]["error"].startswith("ValueError")
    rerun = build(recipe, out, BuildOptions(device="cpu", progress=False))
    assert (rerun.written_shards, rerun.skipped_shards, rerun.samples_failed) == (1, 1, 0)
    assert images(out) == images(clean) and json.loads(shard.spec.stats_path(out).read_text())["failed"] == 0
    # Over the rate: the same shard is not published and the error names it.
    writer = write_one_shard(tmp_path / "strict", shard.spec, [(good[0], image, None), (good[1], None, "ValueError: NaN")], 0.05)
    with pytest.raises(GenerationFailed, match=r"object-test-000000.tar: 1 of 2 images failed .*not published"):
        writer.check()
    assert not list_shards(tmp_path / "strict")


# --- part identity --------------------------------------------------------------------------------------------------
def test_rebuild_with_another_unet_never_reuses_images(unlearned, tmp_path):
    d, _, _ = unlearned
    recipe = tiny_recipe()
    build(recipe, tmp_path, BuildOptions(device="cpu", progress=False), models=[ModelSpec(id="tiny", name="m")])
    before = images(tmp_path)
    for unet in ("unet_attn2.pt", "unet_ldm.safetensors"):
        with pytest.raises(ValueError, match=r"part object/generated was built with other models \(m\.unet base -> [0-9a-f]{12}\)"):
            build(recipe, tmp_path, BuildOptions(device="cpu", progress=False),
                  models=[ModelSpec(id="tiny", name="m", components={"unet": str(d / unet)})])
    assert images(tmp_path) == before
    part = json.loads((tmp_path / "_parts" / "object" / "generated.json").read_text())
    assert part["models"][0]["components"] == {}


def test_default_tag_names_the_overridden_components():
    assert ModelSpec(id="CompVis/stable-diffusion-v1-4", components={"unet": "runs/esd-x.pt"}).tag == "stable_diffusion_v1_4_unet_esd_x"
    assert ModelSpec(id="org/sd", components={"text_encoder": "OPTML-Group/AdvUnlearn:nudity_unlearned"}).tag == "sd_text_encoder_nudity_unlearned"
    assert ModelSpec(id="org/sd", name="esd", components={"unet": "x.pt"}).tag == "esd"


# --- memory, precision, schedulers, what the pipeline really used --------------------------------------------------
def test_scheduler_override_must_be_compatible(tiny_model_dir):
    from dataigm.generate.pipeline import ModelLoadError, load_pipeline

    with pytest.raises(ModelLoadError, match="'FlowMatchEulerDiscreteScheduler' is not compatible with StableDiffusionPipeline"):
        load_pipeline(ModelSpec(id="tiny"), scheduler="FlowMatchEulerDiscreteScheduler")


def test_memory_options_and_call_settings(tiny_model_dir):
    import diffusers

    from dataigm.generate.pipeline import ModelLoadError, call_settings, load_pipeline, resolve_dtype

    loaded = load_pipeline(ModelSpec(id="tiny"), vae_slicing=True, vae_tiling=True)
    assert loaded.pipe.vae.use_slicing and loaded.pipe.vae.use_tiling
    assert loaded.record()["memory"] == {"offload": "", "vae_slicing": True, "vae_tiling": True}
    with pytest.raises(ModelLoadError, match="offload=model needs a CUDA device"):
        load_pipeline(ModelSpec(id="tiny"), offload="model")
    assert str(resolve_dtype("auto", "cpu")) == "torch.float32"
    assert call_settings(diffusers.FluxPipeline)["negative_prompt"] is False  # needs true_cfg_scale > 1
    assert call_settings(diffusers.StableDiffusion3Pipeline)["negative_prompt"] is True
    assert call_settings(loaded.pipe) == {"negative_prompt": True, "guidance_scale": True}


def test_samples_record_the_scheduler_really_used(tiny_model_dir, tmp_path):
    build(tiny_recipe(scheduler="EulerDiscreteScheduler", negative_prompt="blurry"), tmp_path, BuildOptions(device="cpu", progress=False))
    metas = [s.meta for s in iter_samples(list_shards(tmp_path))]
    assert {(m["scheduler"], m["negative_prompt"]) for m in metas} == {("EulerDiscreteScheduler", "blurry")}
    base = tmp_path / "base"
    build(tiny_recipe(), base, BuildOptions(device="cpu", progress=False))
    assert {s.meta["scheduler"] for s in iter_samples(list_shards(base))} == {"DDIMScheduler"}


# --- launchers ------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("env,expected", [
    ({}, RankInfo(0, 1, 0)),
    ({"RANK": "5", "WORLD_SIZE": "8", "LOCAL_RANK": "1"}, RankInfo(5, 8, 1)),  # torchrun / accelerate
    ({"SLURM_PROCID": "9", "SLURM_STEP_NUM_TASKS": "16", "SLURM_NTASKS": "32", "SLURM_LOCALID": "1"}, RankInfo(9, 16, 1)),  # srun step
    ({"SLURM_PROCID": "0", "SLURM_NTASKS": "1", "SLURM_JOB_ID": "7"}, RankInfo(0, 1, 0)),  # a one-task batch script
])
def test_rank_from_env(env, expected):
    assert rank_from_env(env) == expected


def test_sbatch_with_many_tasks_outside_srun_is_refused():
    with pytest.raises(ValueError, match="SLURM_NTASKS=4 but not inside an srun step"):
        rank_from_env({"SLURM_PROCID": "0", "SLURM_NTASKS": "4", "SLURM_JOB_ID": "7"})


def test_temp_names_carry_host_and_random_suffix(tmp_path):
    import os
    import socket

    from dataigm.core.atomic import tmp_path_for

    a, b = tmp_path_for(tmp_path / "x.tar"), tmp_path_for(tmp_path / "x.tar")
    host = re.sub(r"[^A-Za-z0-9]+", "_", socket.gethostname())[:40]
    assert a != b and a.name.startswith(f".x.tar.tmp-{host}_{os.getpid()}_") and a.name.count("-") == 1


def test_weights_are_hashed_once_per_node(tmp_path, monkeypatch):
    import hashlib
    import os

    from dataigm.generate.hashing import cached_sha256

    monkeypatch.setenv("DATAIGM_CACHE", str(tmp_path / "cache"))
    f = tmp_path / "w.safetensors"
    f.write_bytes(b"a" * 1000)
    first = cached_sha256(f)
    assert first == hashlib.sha256(b"a" * 1000).hexdigest()
    st = f.stat()
    f.write_bytes(b"b" * 1000)  # same size and mtime: another rank on this node reads the cached hash, not the file
    os.utime(f, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert cached_sha256(f) == first
    os.utime(f, ns=(st.st_atime_ns, st.st_mtime_ns + 1))  # a changed file is hashed again
    assert cached_sha256(f) == hashlib.sha256(b"b" * 1000).hexdigest()
