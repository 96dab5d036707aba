"""Loading a text-to-image ``diffusers`` pipeline the way users ship models: a Hub id or diffusers folder,
a single-file checkpoint, the embedded ``tiny`` model, and component overrides (an unlearned UNet or text
encoder as a diffusers folder or a state dict). Errors say which component failed and why.
"""

from __future__ import annotations

import hashlib
import logging
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dataigm.core.atomic import sha256_file
from dataigm.core.errors import DataigmError
from dataigm.generate.tiny import TINY_ID, ensure_tiny_pipeline
from dataigm.recipe import ModelSpec

log = logging.getLogger(__name__)

SINGLE_FILE_SUFFIXES = (".safetensors", ".ckpt")
STATE_DICT_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth", ".ckpt")
WEIGHT_SUFFIXES = (".safetensors", ".bin", ".ckpt", ".pt", ".pth")


class ModelLoadError(DataigmError, RuntimeError):
    """A model or one of its components could not be loaded; the message names it."""


@dataclass
class LoadedModel:
    pipe: Any
    tag: str
    source: str  # what was loaded: Hub id, folder or file
    revision: str = ""  # Hub commit hash, or sha256 over local weight files
    components: dict[str, str] = field(default_factory=dict)  # overridden component -> its revision/sha256
    dtype: str = ""
    device: str = ""

    def record(self) -> dict[str, Any]:
        """Provenance for the manifest."""
        return {"tag": self.tag, "source": self.source, "revision": self.revision, "components": self.components,
                "dtype": self.dtype, "pipeline_class": type(self.pipe).__name__}


def resolve_dtype(dtype: str, device: str) -> Any:
    """``auto``: bf16 on GPUs that support it, else fp16 on GPU; fp32 on CPU (half precision is slow there)."""
    import torch

    if dtype == "auto":
        if device.startswith("cuda"):
            return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
        return torch.float32
    return {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}[dtype]


def weights_fingerprint(path: Path) -> str:
    """sha256 over the weight files of a local model folder (or of a single file)."""
    path = Path(path)
    if path.is_file():
        return sha256_file(path)
    h = hashlib.sha256()
    for f in sorted(p for p in path.rglob("*") if p.is_file() and p.suffix in WEIGHT_SUFFIXES):
        h.update(f.relative_to(path).as_posix().encode())
        h.update(sha256_file(f).encode())
    return h.hexdigest()


def _hub_revision(repo_id: str, revision: str | None) -> str:
    """The commit hash of a cached Hub snapshot ("" when unknown)."""
    try:
        from huggingface_hub import snapshot_download

        return Path(snapshot_download(repo_id, revision=revision, local_files_only=True)).name
    except Exception:  # the revision is provenance, never a reason to fail a build
        return revision or ""


def _load_state_dict(path: Path) -> dict[str, Any]:
    import torch

    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        sd = load_file(str(path))
    else:
        sd = torch.load(str(path), map_location="cpu", weights_only=True)  # never unpickle arbitrary objects
    for wrapper in ("state_dict", "model", "module"):
        if isinstance(sd, dict) and wrapper in sd and isinstance(sd[wrapper], dict):
            sd = sd[wrapper]
    return sd


def _override_component(pipe: Any, name: str, source: str, dtype: Any) -> str:
    """Replace ``pipe.<name>`` by weights from a diffusers folder / Hub id or a state-dict file."""
    current = getattr(pipe, name, None)
    if current is None:
        valid = sorted(k for k, v in pipe.components.items() if hasattr(v, "state_dict"))
        raise ModelLoadError(f"component {name!r}: the pipeline has no such component; valid: {valid}")
    path = Path(source)
    try:
        if path.is_file() and path.suffix in STATE_DICT_SUFFIXES:
            sd = _load_state_dict(path)
            result = current.load_state_dict(sd, strict=False)
            if result.missing_keys or result.unexpected_keys:
                raise ModelLoadError(
                    f"component {name!r} from {source}: keys do not match {type(current).__name__} "
                    f"({len(result.missing_keys)} missing, e.g. {result.missing_keys[:2]}; {len(result.unexpected_keys)} unexpected, "
                    f"e.g. {result.unexpected_keys[:2]}). A diffusers-format state dict is expected; an original (LDM) "
                    "checkpoint of the whole model loads as --model FILE instead"
                )
            return sha256_file(path)
        replacement = type(current).from_pretrained(source, torch_dtype=dtype)
        setattr(pipe, name, replacement)
        return weights_fingerprint(path) if path.exists() else _hub_revision(source, None)
    except ModelLoadError:
        raise
    except Exception as e:
        raise ModelLoadError(f"component {name!r} could not be loaded from {source}: {type(e).__name__}: {e}") from e


def load_pipeline(spec: ModelSpec, device: str = "cpu", dtype: str = "auto", scheduler: str | None = None) -> LoadedModel:
    """Load the pipeline ``spec`` names, apply component overrides and the scheduler, move it to ``device``."""
    import diffusers
    import transformers

    diffusers.utils.logging.disable_progress_bar()  # our own bar counts images; per-component bars are noise
    transformers.utils.logging.disable_progress_bar()
    # ``torch_dtype`` works on every diffusers we support; newer ones only warn that ``dtype`` is its new name.
    warnings.filterwarnings("ignore", message=".*torch_dtype.*", category=FutureWarning)
    torch_dtype = resolve_dtype(dtype, device)
    source = str(ensure_tiny_pipeline()) if spec.id == TINY_ID else spec.id
    path = Path(source)
    try:
        if path.is_file() and path.suffix in SINGLE_FILE_SUFFIXES:
            cls_name = spec.pipeline_class or "StableDiffusionPipeline"
            cls = getattr(diffusers, cls_name, None)
            if cls is None or not hasattr(cls, "from_single_file"):
                raise ModelLoadError(f"pipeline_class {cls_name!r} cannot load single-file checkpoints")
            pipe = cls.from_single_file(source, config=spec.config, torch_dtype=torch_dtype)
            revision = sha256_file(path)
        else:
            cls = getattr(diffusers, spec.pipeline_class) if spec.pipeline_class else diffusers.DiffusionPipeline
            pipe = cls.from_pretrained(source, revision=spec.revision, torch_dtype=torch_dtype)
            revision = weights_fingerprint(path) if path.is_dir() else _hub_revision(source, spec.revision)
    except ModelLoadError:
        raise
    except Exception as e:
        raise ModelLoadError(f"model {spec.id!r} could not be loaded: {type(e).__name__}: {e}") from e

    components = {name: _override_component(pipe, name, src, torch_dtype) for name, src in sorted(spec.components.items())}
    if scheduler:
        sched_cls = getattr(diffusers, scheduler, None)
        if sched_cls is None or not scheduler.endswith("Scheduler"):
            valid = sorted(n for n in dir(diffusers) if n.endswith("Scheduler") and not n.startswith("_"))
            raise ModelLoadError(f"unknown scheduler {scheduler!r}; valid: {', '.join(valid)}")
        pipe.scheduler = sched_cls.from_config(pipe.scheduler.config)
    if getattr(pipe, "safety_checker", None) is not None:
        # Concept datasets need the concept: the checker would blacken exactly the images we build.
        pipe.safety_checker = None
    pipe = pipe.to(device)
    pipe.set_progress_bar_config(disable=True)
    return LoadedModel(pipe, spec.tag, spec.id, revision, components, str(torch_dtype).removeprefix("torch."), device)
