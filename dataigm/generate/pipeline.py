"""Loading a text-to-image ``diffusers`` pipeline the way users ship models: a Hub id or diffusers folder,
a single-file checkpoint, the embedded ``tiny`` model, and component overrides (an unlearned UNet or text
encoder as a diffusers folder or a state dict). Errors say which component failed and why.
"""

from __future__ import annotations

import hashlib
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dataigm.core.registry import did_you_mean
from dataigm.core.sources import CHECKPOINT_SUFFIXES
from dataigm.generate.checkpoints import ModelLoadError, apply_state_dict, load_state_dict_file
from dataigm.generate.single_file import TRANSFORMER_CLASSES, infer_single_file
from dataigm.generate.tiny import TINY_ID, ensure_tiny_pipeline
from dataigm.recipe import ModelSpec

__all__ = ["LoadedModel", "ModelLoadError", "apply_state_dict", "infer_single_file", "load_pipeline"]  # re-exported for callers


@dataclass
class LoadedModel:
    pipe: Any
    tag: str
    source: str  # what was loaded: Hub id, folder or file
    revision: str = ""  # Hub commit hash, or sha256 over local weight files
    components: dict[str, str] = field(default_factory=dict)  # overridden component -> its revision/sha256
    dtype: str = ""
    device: str = ""
    loads: dict[str, dict[str, Any]] = field(default_factory=dict)  # component -> format, tensors replaced, sha256
    single_file: dict[str, Any] = field(default_factory=dict)  # model type diffusers inferred, transformer-only
    memory: dict[str, Any] = field(default_factory=dict)  # offload, VAE slicing/tiling
    call: dict[str, Any] = field(default_factory=dict)  # what the pipeline's __call__ really takes (see call_settings)
    options: dict[str, Any] = field(default_factory=dict)  # safety checker, watermark, variant (see init_options)
    loras: list[dict[str, Any]] = field(default_factory=list)  # adapters: path, sha256, scale, fused

    def record(self) -> dict[str, Any]:
        """Provenance for the manifest."""
        return {"tag": self.tag, "source": self.source, "revision": self.revision, "components": self.components,
                "component_loads": self.loads, "single_file": self.single_file, "memory": self.memory,
                "dtype": self.dtype, "pipeline_class": type(self.pipe).__name__,
                "scheduler": type(self.pipe.scheduler).__name__, "call": self.call, **self.options, "loras": self.loras}


def resolve_dtype(dtype: str, device: str) -> Any:
    """``auto``: bf16 on GPUs that run it natively (:func:`dataigm.core.precision.native_bf16`), else fp16 on GPU;
    fp32 on CPU (half precision is slow there)."""
    import torch

    from dataigm.core.precision import native_bf16

    if dtype == "auto":
        if device.startswith("cuda"):
            return torch.bfloat16 if native_bf16(device) else torch.float16
        return torch.float32
    return {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}[dtype]


def weights_fingerprint(path: Path) -> str:
    """sha256 over the weight files of a local model folder (or of a single file); hashed once per node."""
    from dataigm.generate.hashing import cached_sha256

    path = Path(path)
    if path.is_file():
        return cached_sha256(path)
    h = hashlib.sha256()
    for f in sorted(p for p in path.rglob("*") if p.is_file() and p.suffix in CHECKPOINT_SUFFIXES):
        h.update(f.relative_to(path).as_posix().encode())
        h.update(cached_sha256(f).encode())
    return h.hexdigest()


def _hub_revision(repo_id: str, revision: str | None) -> str:
    """The commit hash of a cached Hub snapshot ("" when unknown)."""
    try:
        from huggingface_hub import snapshot_download

        return Path(snapshot_download(repo_id, revision=revision, local_files_only=True)).name
    except Exception:  # the revision is provenance, never a reason to fail a build
        return revision or ""


def split_subfolder(source: str) -> tuple[str, str | None]:
    """``org/repo:subfolder`` (or ``folder:subfolder``) -> (``org/repo``, ``subfolder``); an existing path is kept whole."""
    if Path(source).exists() or ":" not in source or "://" in source:
        return source, None
    repo, sub = source.rsplit(":", 1)
    if not repo or not sub:
        raise ModelLoadError(f"{source!r}: expected REPO:SUBFOLDER")
    return repo, sub


def component_fingerprint(source: str) -> str:
    """What identifies a component source: sha256 of a local file or folder, else the cached Hub commit."""
    repo, sub = split_subfolder(source)
    path = Path(repo) / sub if sub else Path(repo)
    if path.exists():
        return weights_fingerprint(path)
    return _hub_revision(repo, None) + (f":{sub}" if sub else "")


def local_fingerprint(source: str) -> str:
    """sha256 of a local file or folder (``DIR:SUBFOLDER`` too); "" for a Hub id."""
    repo, sub = split_subfolder(source)
    path = Path(repo) / sub if sub else Path(repo)
    return weights_fingerprint(path) if path.exists() else ""


def _override_component(pipe: Any, name: str, source: str, dtype: Any) -> tuple[str, dict[str, Any]]:
    """Replace ``pipe.<name>`` by weights from a diffusers folder, Hub id (``REPO:SUBFOLDER``) or state-dict file."""
    current = getattr(pipe, name, None)
    if current is None:
        valid = sorted(k for k, v in pipe.components.items() if hasattr(v, "state_dict"))
        raise ModelLoadError(f"component {name!r}: the pipeline has no such component; valid: {valid}")
    path = Path(source)
    try:
        if path.is_file() and path.suffix in CHECKPOINT_SUFFIXES:
            info = apply_state_dict(current, load_state_dict_file(path), f"component {name!r} from {source}")
            sha = weights_fingerprint(path)
            return sha, {"source": source, "sha256": sha, **info}
        repo, sub = split_subfolder(source)
        kwargs = {"subfolder": sub} if sub else {}
        replacement = type(current).from_pretrained(repo, torch_dtype=dtype, **kwargs)
        setattr(pipe, name, replacement)
        fingerprint = component_fingerprint(source)
        return fingerprint, {"source": source, "sha256": fingerprint, "format": "diffusers-folder" if Path(repo).exists() else "hub",
                             "tensors_replaced": len(replacement.state_dict()), "partial": False}
    except ModelLoadError:
        raise
    except Exception as e:
        raise ModelLoadError(f"component {name!r} could not be loaded from {source}: {type(e).__name__}: {e}") from e


def _load_single_file(diffusers: Any, spec: ModelSpec, path: Path, torch_dtype: Any) -> tuple[Any, dict[str, Any]]:
    info = infer_single_file(path)
    cls_name = spec.pipeline_class or info["pipeline_class"]
    cls = getattr(diffusers, cls_name, None)
    if cls is None or not hasattr(cls, "from_single_file"):
        raise ModelLoadError(f"pipeline_class {cls_name!r} cannot load single-file checkpoints")
    info["pipeline_class"] = cls_name
    if info["transformer_only"] and cls_name in TRANSFORMER_CLASSES:
        if not spec.config:
            raise ModelLoadError(f"{path} is a transformer-only {info['model_type']} file (no VAE, no text encoders): "
                                 "give model_config= the diffusers folder or Hub id of the base model for the other components")
        model_cls = getattr(diffusers, TRANSFORMER_CLASSES[cls_name])
        transformer = model_cls.from_single_file(str(path), config=spec.config, subfolder="transformer", torch_dtype=torch_dtype)
        return cls.from_pretrained(spec.config, transformer=transformer, torch_dtype=torch_dtype), info
    return cls.from_single_file(str(path), config=spec.config, torch_dtype=torch_dtype), info


def check_scheduler(pipe: Any, scheduler: str) -> Any:
    """The scheduler class named ``scheduler`` if it is one of ``pipe.scheduler.compatibles``, else a clear error."""
    import diffusers

    sched_cls = getattr(diffusers, scheduler, None)
    if sched_cls is None or not scheduler.endswith("Scheduler"):
        valid = sorted(n for n in dir(diffusers) if n.endswith("Scheduler") and not n.startswith("_"))
        raise ModelLoadError(f"unknown scheduler {scheduler!r}{did_you_mean(scheduler, valid)}; valid: {', '.join(valid)}")
    compatible = {c.__name__ for c in getattr(pipe.scheduler, "compatibles", [])} | {type(pipe.scheduler).__name__}
    if sched_cls.__name__ not in compatible:
        raise ModelLoadError(f"scheduler {scheduler!r} is not compatible with {type(pipe).__name__} "
                             f"(its {type(pipe.scheduler).__name__}); compatible: {', '.join(sorted(compatible))}")
    return sched_cls


def call_settings(pipe: Any) -> dict[str, Any]:
    """Which shared ``__call__`` arguments this pipeline honours.

    A pipeline without ``negative_prompt`` ignores it; Flux takes one but uses it only with ``true_cfg_scale > 1``,
    which dataigm does not set, so the negative prompt is neither passed nor recorded there.
    """
    import inspect

    params = inspect.signature(pipe.__call__).parameters
    negative = "negative_prompt" in params and "true_cfg_scale" not in params
    settings = {"negative_prompt": negative, "guidance_scale": "guidance_scale" in params}
    if "use_resolution_binning" in params:  # PixArt would render at its base size and resize to the one asked for
        settings["resolution_binning"] = False
    return settings


def init_options(cls: Any, variant: str | None = None) -> tuple[dict[str, Any], dict[str, Any]]:
    """``from_pretrained`` arguments for pipeline class ``cls`` and what they mean for the model record.

    The safety checker and its feature extractor are not loaded at all (a folder whose ``model_index.json`` names
    them without their files still loads, and 1.2 GB are skipped): concept datasets need the concept, which the
    checker would blacken. SDXL's invisible watermark is off: it changes pixels whenever the package is installed.
    """
    import inspect

    params = inspect.signature(cls.__init__).parameters if cls is not None else {}
    kwargs: dict[str, Any] = {"use_safetensors": True}  # never fall back silently to .bin pickles
    if variant:
        kwargs["variant"] = variant
    if "safety_checker" in params:
        kwargs["safety_checker"] = None
        if "feature_extractor" in params:
            kwargs["feature_extractor"] = None
        if "requires_safety_checker" in params:
            kwargs["requires_safety_checker"] = False
    if "add_watermarker" in params:
        kwargs["add_watermarker"] = False
    record = {"safety_checker": "off" if "safety_checker" in params else "none in pipeline",
              "watermark": "off" if "add_watermarker" in params else "none in pipeline", "variant": variant or ""}
    return kwargs, record


def placement_kwargs(device: str, offload: str | None) -> dict[str, Any]:
    """Load straight onto the GPU (``device_map`` of the device type: the current device, which the build set to
    this rank's GPU), with weights read one at a time, so 8 ranks do not each hold a whole model in host memory."""
    kwargs: dict[str, Any] = {"low_cpu_mem_usage": True}
    if offload is None and device.startswith("cuda"):
        kwargs["device_map"] = "cuda"
    return kwargs


def resolve_pipeline_class(diffusers: Any, spec: ModelSpec, repo: str, sub: str | None) -> Any:
    """The class ``from_pretrained`` will build: ``pipeline_class``, else ``model_index.json``'s, else the generic one."""
    if spec.pipeline_class:
        cls = getattr(diffusers, spec.pipeline_class, None)
        if cls is None:
            raise ModelLoadError(f"pipeline_class {spec.pipeline_class!r}: diffusers has no such class")
        return cls
    try:
        config = diffusers.DiffusionPipeline.load_config(repo, revision=spec.revision, **({"subfolder": sub} if sub else {}))
        return getattr(diffusers, config.get("_class_name", ""), diffusers.DiffusionPipeline)
    except Exception:  # the load itself then reports what is missing
        return diffusers.DiffusionPipeline


def apply_memory_options(pipe: Any, device: str, offload: str | None = None, vae_slicing: bool = False,
                         vae_tiling: bool = False) -> tuple[Any, dict[str, Any]]:
    """Move ``pipe`` to ``device``, or offload it there (``model``: whole components; ``sequential``: submodules)."""
    if offload not in (None, "model", "sequential"):
        raise ModelLoadError(f"offload {offload!r}: expected model or sequential")
    if offload and not device.startswith("cuda"):
        raise ModelLoadError(f"offload={offload} needs a CUDA device, got {device!r}")
    vae = getattr(pipe, "vae", None)
    if vae_slicing or vae_tiling:
        if vae is None:
            raise ModelLoadError(f"{type(pipe).__name__} has no VAE to slice or tile")
        if vae_slicing:
            vae.enable_slicing()
        if vae_tiling:
            vae.enable_tiling()
    if offload:
        gpu = int(device.split(":", 1)[1]) if ":" in device else 0
        (pipe.enable_model_cpu_offload if offload == "model" else pipe.enable_sequential_cpu_offload)(gpu_id=gpu)
    else:
        pipe = pipe.to(device)
    return pipe, {"offload": offload or "", "vae_slicing": vae_slicing, "vae_tiling": vae_tiling}


def _load_base(diffusers: Any, spec: ModelSpec, source: str, torch_dtype: Any, device: str,
               offload: str | None) -> tuple[Any, str, dict[str, Any], dict[str, Any]]:
    """The pipeline from a single file or ``from_pretrained``; its revision, single-file info and init record."""
    path = Path(source)
    if path.is_file() and path.suffix in CHECKPOINT_SUFFIXES:
        pipe, single_file = _load_single_file(diffusers, spec, path, torch_dtype)
        return pipe, weights_fingerprint(path), single_file, init_options(type(pipe), spec.variant)[1]
    repo, sub = split_subfolder(source)
    cls = resolve_pipeline_class(diffusers, spec, repo, sub)
    kwargs, record = init_options(cls, spec.variant)
    kwargs |= placement_kwargs(device, offload) | ({"subfolder": sub} if sub else {})
    pipe = cls.from_pretrained(repo, revision=spec.revision, torch_dtype=torch_dtype, **kwargs)
    revision = weights_fingerprint(path) if path.is_dir() else _hub_revision(repo, spec.revision)
    return pipe, revision, {}, record


def load_pipeline(spec: ModelSpec, device: str = "cpu", dtype: str = "auto", scheduler: str | None = None,
                  offload: str | None = None, vae_slicing: bool = False, vae_tiling: bool = False) -> LoadedModel:
    """Load the pipeline ``spec`` names, apply component overrides, LoRA adapters, the scheduler and memory options,
    place it on ``device``."""
    import diffusers
    import transformers

    from dataigm.generate.lora import load_loras

    diffusers.utils.logging.disable_progress_bar()  # our own bar counts images; per-component bars are noise
    transformers.utils.logging.disable_progress_bar()
    # ``torch_dtype`` works on every diffusers we support; newer ones only warn that ``dtype`` is its new name.
    warnings.filterwarnings("ignore", message=".*torch_dtype.*", category=FutureWarning)
    torch_dtype = resolve_dtype(dtype, device)
    source = str(ensure_tiny_pipeline()) if spec.id == TINY_ID else spec.id
    try:
        pipe, revision, single_file, options = _load_base(diffusers, spec, source, torch_dtype, device, offload)
    except ModelLoadError:
        raise
    except Exception as e:
        raise ModelLoadError(f"model {spec.id!r} could not be loaded: {type(e).__name__}: {e}") from e

    components, loads = {}, {}
    for name, src in sorted(spec.components.items()):
        components[name], loads[name] = _override_component(pipe, name, src, torch_dtype)
    loras = load_loras(pipe, spec.loras)
    if scheduler:
        pipe.scheduler = check_scheduler(pipe, scheduler).from_config(pipe.scheduler.config)
    if getattr(pipe, "safety_checker", None) is not None:  # a single-file checkpoint may bring one
        # Concept datasets need the concept: the checker would blacken exactly the images we build.
        pipe.safety_checker = None
    pipe, memory = apply_memory_options(pipe, device, offload, vae_slicing, vae_tiling)
    pipe.set_progress_bar_config(disable=True)
    return LoadedModel(pipe, spec.tag, spec.id, revision, components, str(torch_dtype).removeprefix("torch."), device,
                       loads=loads, single_file=single_file, memory=memory, call=call_settings(pipe), options=options, loras=loras)
