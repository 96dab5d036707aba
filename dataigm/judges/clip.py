"""The one CLIP wrapper: a transformers CLIP model + processor from a Hub id or a local folder, with normalised image
and text embeddings, and the CLIP image preprocessings the references ran.

Every CLIP user in dataigm goes through here: the curation filters (``clip``, ``embedding``), CSDR and the CLIP-based
judges (``q16``, ``i2p``, ``clip``, ``igmu``, ``sd-safety-checker``). :func:`projected` is the one place that
handles transformers 5's ``get_image_features`` / ``get_text_features`` returning an output object
(``pooler_output``) instead of a tensor.

Image preprocessing, one per reference (:data:`CLIP_PREPROCESSINGS`, :func:`clip_preprocess`):

* ``openai``: OpenAI ``clip.load``'s ``preprocess`` (openai/CLIP ``clip/clip.py`` ``_transform(n_px)``: torchvision
  ``Resize(n_px, BICUBIC)`` on the short side of a PIL image, ``CenterCrop(n_px)``, RGB, ``ToTensor``,
  ``Normalize`` with OpenAI's mean and std), for the references that load CLIP with the ``clip`` package: Q16,
  MACE's and SPM's CLIP accuracy. :class:`OpenAIClipPreprocess` rebuilds it with PIL and numpy (no torchvision).
* ``transformers-pil``: the model folder's ``CLIPImageProcessor`` on its PIL path (``CLIPImageProcessorPil`` in
  transformers 5; the only path of the transformers 4 releases the references ran), for the references that call
  transformers: IGMU's ``benchmark.py`` (``CLIPProcessor``), CSDR (torchmetrics' ``clip_score``) and diffusers'
  safety checker (its ``feature_extractor``). Its centre crop starts at ``(size - crop) // 2`` where torchvision
  rounds ``(size - crop) / 2`` half to even: the two differ by one pixel when the resized long side minus the crop
  is 3 modulo 4 (a 640x427 photo at 224: 335 - 224 = 111), up to 2.9 after normalisation.

transformers 5's default ``CLIPImageProcessor`` resizes with torchvision's tensor backend, which no reference ran
(inputs differ by up to one grey level, 0.015 after normalisation); it is used nowhere.
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
    """PIL image -> pixel values with a transformers image processor (picklable, for DataLoader workers)."""

    processor: Any

    def __call__(self, image: Any) -> Any:
        return self.processor(images=image.convert("RGB"), return_tensors="pt")["pixel_values"][0]


OPENAI_CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)  # openai/CLIP clip/clip.py _transform
OPENAI_CLIP_STD = (0.26862954, 0.26130258, 0.27577711)
CLIP_PREPROCESSINGS = ("openai", "transformers-pil")


@dataclass(frozen=True)
class OpenAIClipPreprocess:
    """OpenAI ``clip.load``'s preprocess for input size ``size`` (openai/CLIP ``clip/clip.py`` ``_transform``), on a
    PIL image: the short side resized to ``size`` with PIL's bicubic filter, the long side to
    ``int(size * long / short)`` (torchvision ``Resize``), a ``size`` square cut at ``round((h - size) / 2)``,
    ``round((w - size) / 2)`` (torchvision ``CenterCrop``), ``/ 255`` and OpenAI's mean and std, as a float32
    (3, size, size) tensor. The image is made RGB first (``_transform`` converts after the crop: the same for RGB
    and grey images; dataigm decodes every image to RGB).

    Example::

        >>> from PIL import Image
        >>> OpenAIClipPreprocess(224)(Image.new("RGB", (640, 427))).shape
        torch.Size([3, 224, 224])
    """

    size: int = 224

    def __call__(self, image: Any) -> Any:
        import numpy as np
        import torch
        from PIL import Image

        image = image.convert("RGB")
        w, h = image.size
        short, long = (w, h) if w <= h else (h, w)
        new_short, new_long = self.size, int(self.size * long / short)
        new_w, new_h = (new_short, new_long) if w <= h else (new_long, new_short)
        image = image.resize((new_w, new_h), Image.Resampling.BICUBIC)
        top, left = int(round((new_h - self.size) / 2.0)), int(round((new_w - self.size) / 2.0))
        image = image.crop((left, top, left + self.size, top + self.size))
        pixels = np.asarray(image, dtype=np.uint8).astype(np.float32) / np.float32(255)
        pixels = (pixels - np.asarray(OPENAI_CLIP_MEAN, np.float32)) / np.asarray(OPENAI_CLIP_STD, np.float32)
        return torch.from_numpy(np.ascontiguousarray(pixels.transpose(2, 0, 1)))


def transformers_pil_processor(location: str | Path | None = None, revision: str | None = None) -> Any:
    """The ``CLIPImageProcessor`` of ``location``'s ``preprocessor_config.json`` (CLIP's defaults, 224, without one)
    on its PIL path, as the transformers 4 releases ran it."""
    from transformers import CLIPImageProcessorPil

    return CLIPImageProcessorPil.from_pretrained(str(location), revision=revision) if location else CLIPImageProcessorPil()


def clip_preprocess(preprocessing: str, *, size: int = 224, location: str | Path | None = None, revision: str | None = None) -> Any:
    """The picklable PIL image -> pixel values transform of ``preprocessing`` (:data:`CLIP_PREPROCESSINGS`):
    ``openai`` at input size ``size``, or ``transformers-pil`` with ``location``'s processor settings.

    Example::

        >>> clip_preprocess("openai", size=224)
        OpenAIClipPreprocess(size=224)
    """
    if preprocessing == "openai":
        return OpenAIClipPreprocess(int(size))
    if preprocessing == "transformers-pil":
        return ClipPreprocess(transformers_pil_processor(location, revision))
    raise InputError(f"CLIP preprocessing must be one of {', '.join(CLIP_PREPROCESSINGS)}, got {preprocessing!r}")


def _location(model: str | Path) -> str:
    return str(model).removeprefix("local-dir:").removeprefix("hf-hub:")


class Clip:
    """A CLIP model (``CLIPModel.from_pretrained``, safetensors only) and its tokenizer, on ``device``.

    ``dtype`` (``float32``, ``float16``, ``bfloat16``) applies on GPU only; on CPU the model stays float32.
    Embeddings come back as float32 CPU tensors. Images are prepared with ``preprocessing`` (see the module's
    docstring): ``openai`` (default) at the model's input size, or ``transformers-pil`` with the folder's processor.
    """

    def __init__(self, model: str | Path, *, revision: str | None = None, device: str = "cpu", dtype: str = "float32",
                 preprocessing: str = "openai") -> None:
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
        self.preprocessing = preprocessing
        self._preprocess = clip_preprocess(preprocessing, size=int(self.model.config.vision_config.image_size),
                                           location=self.location, revision=revision)

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
    def preprocess(self) -> Any:
        """The picklable PIL image -> pixel values transform of this model (its ``preprocessing``)."""
        return self._preprocess

    def pixel_embeddings(self, pixels: Any, normalize: bool = True) -> Any:
        """CLIP image embeddings (float32, CPU) of a batch of pixel values (see :attr:`preprocess`)."""
        import torch

        with torch.inference_mode():
            emb = projected(self.model.get_image_features(pixel_values=pixels.to(self.device, self.model.dtype))).float()
        return (torch.nn.functional.normalize(emb, dim=-1) if normalize else emb).cpu()

    def image_embeddings(self, images: Sequence[Any], normalize: bool = True) -> Any:
        """CLIP image embeddings (float32, CPU; L2-normalised unless ``normalize=False``) of PIL images."""
        import torch

        return self.pixel_embeddings(torch.stack([self._preprocess(im) for im in images]), normalize)

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
