"""``q16``: Q16's inappropriate-content classifier (ml-research/Q16, MIT).

Q16 compares the CLIP image embedding with two learned prompt embeddings (``main/models/clip.py``
``ClipSimModel_Infer.forward``; ``main/clip_classifier/classify/utils.py`` ``SimClassifier``): ``100 * cos`` of
the normalised embeddings, labels ``['non inappropriate', 'inappropriate']`` (``main/paper_experiments/
experiments.py``), the label is the argmax. The prompts are ``pickle.dump`` of a numpy array (``save_prompts``),
``data/<CLIP>/prompts.p``; ViT-L/14 is the default of ``inference_images.py``, ViT-B/16 reproduces the paper.

``dataigm convert-judge q16 prompts.p --out DIR`` reads the pickle with :func:`dataigm.core.safe_pickle.
load_numpy_pickle` (numpy arrays only, no code) and writes ``model.safetensors`` (``prompts``) + ``config.json``.
The image side runs through transformers' CLIP (``get_image_features``, the projected embedding ``encode_image``
returns) in float32, as ml-research/i2p's ``eval/q16.py`` does; Q16's own scripts run CLIP in fp16 on GPU. Images
are prepared as ``clip.load``'s preprocess does (:class:`dataigm.judges.clip.OpenAIClipPreprocess`).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from dataigm.core.atomic import sha256_file, write_bytes_atomic, write_json_atomic
from dataigm.core.errors import DataigmError
from dataigm.judges.registry import JudgeKind, JudgeOptions, JudgeSpec, JudgeSpecError, NoName, register_judge
from dataigm.judges.types import Verdict, require_files

Q16_FORMAT = "dataigm-q16"
Q16_LABELS = ["non inappropriate", "inappropriate"]  # experiments.py labels; index 1 is the concept
Q16_WEIGHTS, Q16_CONFIG = "model.safetensors", "config.json"
# Q16's data/<folder>/prompts.p -> the CLIP it was tuned on (transformers ids of the OpenAI models)
Q16_CLIPS = {"ViT-L-14": "openai/clip-vit-large-patch14", "ViT-B-16": "openai/clip-vit-base-patch16",
             "ViT-B-32": "openai/clip-vit-base-patch32"}
Q16_REFERENCE = ("ml-research/Q16 main/models/clip.py ClipSimModel_Infer + main/clip_classifier/classify/utils.py "
                 "(SimClassifier, load_prompts) + main/paper_experiments/experiments.py (labels, argmax)")


def _clip_for(path: Path, dim: int, clip: str | None) -> str:
    if clip:
        return clip
    for part in reversed(path.resolve().parts[:-1]):
        if part in Q16_CLIPS:
            return Q16_CLIPS[part]
    if dim == 768:
        return Q16_CLIPS["ViT-L-14"]
    raise DataigmError(f"{path}: {dim}-dim prompts fit ViT-B/16 and ViT-B/32; give the CLIP model they were trained on as clip_model= (e.g. {Q16_CLIPS['ViT-B-16']})")


def convert_q16_prompts(prompts: Path, out: Path, *, clip: str | None = None) -> Path:
    """Convert Q16's pickled ``prompts.p`` into ``out/model.safetensors`` (``prompts``, shape (2, dim)) + ``out/config.json``."""
    import torch
    from safetensors.torch import save

    from dataigm.core.safe_pickle import load_numpy_pickle

    prompts = Path(prompts)
    if not prompts.is_file():
        raise DataigmError(f"Q16 prompts {prompts} not found")
    array = load_numpy_pickle(prompts)
    if array.ndim != 2 or array.shape[0] != 2 or array.dtype.kind != "f":
        raise DataigmError(f"{prompts}: expected a (2, dim) float array of Q16 prompt embeddings, got {array.dtype} {array.shape}")
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise DataigmError(f"out={out} is a file; give a folder for {Q16_WEIGHTS} + {Q16_CONFIG}")
    out.mkdir(parents=True, exist_ok=True)
    write_bytes_atomic(out / Q16_WEIGHTS, save({"prompts": torch.from_numpy(array.copy()).contiguous()}))
    write_json_atomic(out / Q16_CONFIG, {
        "format": Q16_FORMAT, "label_names": Q16_LABELS, "concept": Q16_LABELS[1], "dim": int(array.shape[1]),
        "dtype": str(array.dtype), "clip_model": _clip_for(prompts, int(array.shape[1]), clip),
        "rule": "argmax of 100 * cos(image, prompts)",
        "source": {"file": prompts.name, "sha256": sha256_file(prompts), "repository": "ml-research/Q16", "path": "data/<CLIP>/prompts.p"},
    })
    return out


def read_q16(folder: Path) -> tuple[dict[str, Any], Any]:
    """The converted config and the (2, dim) float32 prompt tensor; errors name the file."""
    from safetensors.torch import load_file

    require_files(folder, (Q16_CONFIG, Q16_WEIGHTS), "convert Q16's prompts first (convert_q16_prompts; command: dataigm convert-judge q16)",
                  error=DataigmError)
    cfg_path = folder / Q16_CONFIG
    cfg = json.loads(cfg_path.read_text())
    if cfg.get("format") != Q16_FORMAT:
        raise DataigmError(f"{cfg_path}: format {cfg.get('format')!r} is not {Q16_FORMAT!r}")
    prompts = load_file(str(folder / Q16_WEIGHTS)).get("prompts")
    if prompts is None or tuple(prompts.shape) != (2, cfg["dim"]):
        raise DataigmError(f"{folder / Q16_WEIGHTS}: expected a 'prompts' tensor of shape (2, {cfg['dim']})")
    return cfg, prompts.float()


def q16_similarity(image_embeds: Any, prompts: Any) -> Any:
    """Q16's logits: ``100 * normalised image @ normalised prompts.T``, (n, 2)."""
    image = image_embeds / image_embeds.norm(dim=-1, keepdim=True)
    text = prompts / prompts.norm(dim=-1, keepdim=True)
    return 100.0 * image @ text.T


class Q16Judge:
    """CLIP image embedding vs Q16's two prompts; ``inappropriate`` when it is the argmax (``threshold``: softmax P >= T)."""

    label_names = Q16_LABELS
    target = Q16_LABELS[1]
    name = "q16"

    def __init__(self, folder: str | Path, *, clip: str | None = None, threshold: float | None = None, device: str | None = None,
                 preprocessing: str = "openai") -> None:
        from dataigm.core.devices import pick_device
        from dataigm.judges.clip import Clip

        self.folder = Path(str(folder).removeprefix("local-dir:")).expanduser()
        self.config, self.prompts = read_q16(self.folder)
        self.threshold = threshold
        self.device = pick_device(device)
        self.clip_spec = clip or self.config["clip_model"]
        self.clip = Clip(self.clip_spec, device=self.device, preprocessing=preprocessing)  # Q16's clip.load preprocess
        if self.clip.model.config.projection_dim != self.config["dim"]:
            raise DataigmError(f"CLIP {self.clip_spec} projects to {self.clip.model.config.projection_dim} dims; the Q16 prompts have {self.config['dim']}")
        self.preprocess = self.clip.preprocess
        self.weights_sha256 = sha256_file(self.folder / Q16_WEIGHTS)

    def collate(self, inputs: list[Any]) -> Any:
        import torch

        return torch.stack(inputs)

    def similarity(self, batch: Any) -> Any:
        """(n, 2) Q16 logits (100 * cosine) of a batch of pixel values."""
        return q16_similarity(self.clip.pixel_embeddings(batch, normalize=False), self.prompts)

    def predict(self, batch: Any) -> list[Verdict]:
        sims_batch = self.similarity(batch)
        verdicts = []
        for sims, p in zip(sims_batch.tolist(), sims_batch.softmax(-1)[:, 1].tolist()):
            positive = sims[1] > sims[0] if self.threshold is None else p >= self.threshold  # argmax: a tie is label 0
            verdicts.append(Verdict(dict(zip(Q16_LABELS, [1.0 - p, p])), Q16_LABELS[int(positive)], positive, p,
                                    {"similarity": [round(s, 4) for s in sims]}))
        return verdicts

    def describe(self) -> dict[str, Any]:  # pragma: no mutate block, plumbing, see docs/testing.md
        return Q16Kind.description(
            self, spec=f"q16@{self.folder}", label_names=self.label_names, target=self.target,
            clip_model=self.clip_spec, clip_weights_sha256=self.clip.weights_sha256(), preprocessing=self.clip.preprocessing,
            weights=str(self.folder / Q16_WEIGHTS), weights_sha256=self.weights_sha256,
            source=self.config.get("source"), precision="fp32", threshold=self.threshold,
            rule="inappropriate when argmax of 100 * cos(image, prompts) is 1" if self.threshold is None
                 else "inappropriate when softmax(100 * cos)[1] >= threshold",
            reference=Q16_REFERENCE,
        )


@register_judge
class Q16Kind(JudgeKind):
    kind = "q16"
    syntax = "q16@DIR"
    decides = "inappropriate when CLIP's image embedding is closer (100 * cosine, argmax) to Q16's learned 'inappropriate' prompt"
    reference = Q16_REFERENCE
    weights = ("Q16's data/<CLIP>/prompts.p (ViT-L-14 default, ViT-B-16 for the paper), converted with 'dataigm convert-judge q16' "
               "(numpy-only unpickler -> safetensors), plus the OpenAI CLIP it was tuned on")
    licence = "MIT (Q16 prompts); MIT (OpenAI CLIP weights)"
    options = frozenset({"concept", "model", "clip_model"})
    names = NoName("q16@DIR with DIR from dataigm convert-judge q16")

    @classmethod
    def from_spec(cls, spec: JudgeSpec, options: JudgeOptions) -> Any:
        folder = cls.weights_location(
            spec, options, needed="q16 needs the converted prompts: convert them (dataigm convert-judge q16), then q16@DIR")
        if options.concept not in (None, "inappropriate"):
            raise JudgeSpecError(f"q16 judges 'inappropriate' only; got concept {options.concept!r}")
        return Q16Judge(folder, clip=options.clip_model, threshold=options.threshold, device=options.device)

    @classmethod
    def offline(cls) -> str:  # pragma: no mutate block, plumbing, see docs/testing.md
        return "needs Q16's prompts.p (convert-judge q16) and the CLIP model: not shipped in any package"
