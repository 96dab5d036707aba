"""The one CLIP wrapper: a transformers CLIP model + processor from a Hub id or a local folder, with normalised image
and text embeddings.

Every CLIP user in dataigm goes through here: the curation filters (``clip``, ``embedding``), CSDR and the CLIP-based
judges (``q16``, ``clip``, ``igmu``'s preprocessing). :func:`projected` is the one place that handles transformers 5's
``get_image_features`` / ``get_text_features`` returning an output object (``pooler_output``) instead of a tensor.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

from dataigm.core.errors import DataigmError, InputError

TRUNCATIONS = ("tokenizer", "slice")


class ClipLoadError(DataigmError, OSError):
    """A CLIP model that cannot be loaded (not cached offline, no safetensors, not a CLIP folder)."""


def projected(features: Any) -> Any:
    """The projected embedding tensor of ``get_image_features`` / ``get_text_features`` (transformers 5 returns a
    model output whose ``pooler_output`` holds it; earlier versions return the tensor itself)."""
    import torch

    return features if isinstance(features, torch.Tensor) else features.pooler_output


@dataclass
class ClipPreprocess:
    """PIL image -> CLIP pixel values with the model's own ``CLIPImageProcessor`` (picklable, for DataLoader workers)."""

    processor: Any

    def __call__(self, image: Any) -> Any:
        return self.processor(images=image.convert("RGB"), return_tensors="pt")["pixel_values"][0]


def _location(model: str | Path) -> str:
    return str(model).removeprefix("local-dir:").removeprefix("hf-hub:")


class Clip:
    """A CLIP model (``CLIPModel.from_pretrained``, safetensors only) and its processor, on ``device``.

    ``dtype`` (``float32``, ``float16``, ``bfloat16``) applies on GPU only; on CPU the model stays float32.
    Embeddings come back as float32 CPU tensors.
    """

    def __init__(self, model: str | Path, *, revision: str | None = None, device: str = "cpu", dtype: str = "float32") -> None:
        import torch
        from transformers import CLIPModel, CLIPProcessor

        self.location = _location(model)
        torch_dtype = getattr(torch, dtype) if not device.startswith("cpu") else torch.float32
        try:
            local = hub_load_options(self.location)
            self.model = CLIPModel.from_pretrained(self.location, revision=revision, dtype=torch_dtype, use_safetensors=True, **local).eval().to(device)
            self.processor = CLIPProcessor.from_pretrained(self.location, revision=revision, **local)
        except OSError as e:  # not cached offline, no safetensors, or not a CLIP folder
            raise ClipLoadError(f"CLIP model {self.location!r} could not be loaded ({type(e).__name__}: {str(e).splitlines()[0][:200]}); "
                               "give a local folder saved with save_pretrained (model.safetensors) or a cached Hub id") from None
        self.device = device
        self.max_length = int(self.model.config.text_config.max_position_embeddings)

    def weights_sha256(self) -> str | None:
        """sha256 of the loaded ``model.safetensors`` (the local folder's or the Hub cache's), hashed once; None if not found."""
        if not hasattr(self, "_sha256"):
            from dataigm.core.atomic import sha256_file

            path = Path(self.location).expanduser() / "model.safetensors"
            if not path.is_file():
                from huggingface_hub import try_to_load_from_cache

                cached = try_to_load_from_cache(self.location, "model.safetensors")
                path = Path(cached) if isinstance(cached, str) else path
            self._sha256 = sha256_file(path) if path.is_file() else None
        return self._sha256

    @property
    def preprocess(self) -> ClipPreprocess:
        """The picklable PIL image -> pixel values transform of this model."""
        return ClipPreprocess(self.processor.image_processor)

    def pixel_embeddings(self, pixels: Any, normalize: bool = True) -> Any:
        """CLIP image embeddings (float32, CPU) of a batch of pixel values (see :attr:`preprocess`)."""
        import torch

        with torch.inference_mode():
            emb = projected(self.model.get_image_features(pixel_values=pixels.to(self.device, self.model.dtype))).float()
        return (torch.nn.functional.normalize(emb, dim=-1) if normalize else emb).cpu()

    def image_embeddings(self, images: Sequence[Any], normalize: bool = True) -> Any:
        """CLIP image embeddings (float32, CPU; L2-normalised unless ``normalize=False``) of PIL images."""
        pixels = self.processor(images=[im.convert("RGB") for im in images], return_tensors="pt")["pixel_values"]
        return self.pixel_embeddings(pixels, normalize)

    def text_embeddings(self, texts: Sequence[str], truncation: str = "tokenizer", normalize: bool = True) -> Any:
        """CLIP text embeddings (float32, CPU; L2-normalised unless ``normalize=False``), cut to CLIP's context length.

        ``tokenizer``: the tokenizer truncates and keeps the end-of-text token (as ``clip.tokenize(truncate=True)``);
        ``slice``: the token ids are cut after tokenizing, as torchmetrics' ``clip_score`` does.
        """
        import torch

        if truncation not in TRUNCATIONS:
            raise InputError(f"truncation must be one of {', '.join(TRUNCATIONS)}, got {truncation!r}")
        if truncation == "slice":
            tok = self.processor.tokenizer(list(texts), padding=True, return_tensors="pt")
            tok = {k: v[..., : self.max_length] for k, v in tok.items()}
        else:
            tok = self.processor.tokenizer(list(texts), padding=True, truncation=True, max_length=self.max_length, return_tensors="pt")
        with torch.inference_mode():
            emb = projected(self.model.get_text_features(input_ids=tok["input_ids"].to(self.device),
                                                         attention_mask=tok["attention_mask"].to(self.device))).float()
        return (torch.nn.functional.normalize(emb, dim=-1) if normalize else emb).cpu()


def hub_load_options(location: str) -> dict[str, Any]:
    """Keyword arguments for ``from_pretrained(location)`` that spare a minute of Hub retries: offline
    (:func:`dataigm.core.network.offline`) a cached Hub id loads with ``local_files_only=True``, and one that is not
    cached raises OSError at once. A local folder, or an online machine, gets no option."""
    from dataigm.core.network import offline

    if location.startswith(("/", ".", "~")) or Path(location).expanduser().exists() or not offline():
        return {}
    if hub_cached(location, "config.json"):
        return {"local_files_only": True}
    raise OSError(f"{location} is not in the local Hub cache, and the Hub is offline or unreachable")


def hub_cached(repo: str, filename: str = "model.safetensors") -> bool:
    """Whether ``filename`` of Hub repository ``repo`` is in the local Hub cache (nothing is downloaded)."""
    from huggingface_hub import try_to_load_from_cache

    return isinstance(try_to_load_from_cache(repo, filename), str)
