"""LoRA adapters on a loaded pipeline, through diffusers' own ``load_lora_weights`` (diffusers/PEFT and kohya layouts;
diffusers converts kohya keys itself). Needs ``peft``.

Adapters stay unfused: each is a named PEFT adapter with its scale set by ``set_adapters``. Fusing would save a
little time per step on a GPU, but it rewrites the base weights in the pipeline's dtype, so the base model's
numbers are no longer the ones the unfused scale-0 run reproduces exactly. Only ``.safetensors`` files are read.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

from dataigm.generate.checkpoints import ModelLoadError
from dataigm.recipe import LoraSpec


def lora_identity(lora: LoraSpec) -> dict[str, Any]:
    """What identifies an adapter's effect: its file's sha256 and its scale (the path may move)."""
    from dataigm.generate.hashing import cached_sha256

    path = Path(lora.path)
    return {"sha256": cached_sha256(path) if path.is_file() else "", "scale": lora.scale}


def check_lora_file(lora: LoraSpec) -> Path:
    """The adapter's path, if it is an existing ``.safetensors`` file (no pickles), else :class:`ModelLoadError`."""
    path = Path(lora.path)
    if not path.is_file():
        raise ModelLoadError(f"LoRA {lora.path!r}: no such file")
    if path.suffix != ".safetensors":
        raise ModelLoadError(f"LoRA {lora.path!r}: only .safetensors adapters are read (convert a .ckpt/.pt/.bin first)")
    return path


def load_loras(pipe: Any, loras: Sequence[LoraSpec]) -> list[dict[str, Any]]:
    """Load ``loras`` onto ``pipe`` as adapters ``lora_0``, ``lora_1``... at their scales; their records for the model."""
    if not loras:
        return []
    if not hasattr(pipe, "load_lora_weights"):
        raise ModelLoadError(f"{type(pipe).__name__} takes no LoRA adapters (diffusers has no LoRA loader for it)")
    names, records = [], []
    for i, lora in enumerate(loras):
        path = check_lora_file(lora)
        name = f"lora_{i}"
        try:
            pipe.load_lora_weights(str(path), adapter_name=name)
        except Exception as e:
            raise ModelLoadError(f"LoRA {lora.path!r} could not be loaded onto {type(pipe).__name__}: {type(e).__name__}: "
                                 f"{str(e).splitlines()[0] if str(e) else ''}") from e
        names.append(name)
        records.append({"path": str(path), "adapter": name, **lora_identity(lora), "fused": False})
    pipe.set_adapters(names, adapter_weights=[lora.scale for lora in loras])
    return records
