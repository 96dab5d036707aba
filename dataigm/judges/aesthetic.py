"""``aesthetic``: the LAION aesthetic predictor v2 (christophschuhmann/improved-aesthetic-predictor), as HUB runs it.

Reference: ``simple_inference.py`` of the predictor's repository, and HUB ``source/quality/evaluation.py``
(``evaluate_aesthetic``, weights ``sac+logos+ava1-l14-linearMSE.pth``): OpenAI ``clip.load("ViT-L/14")``'s
preprocess (PIL bicubic resize of the short side to 224, centre crop, ``ToTensor``, OpenAI's mean/std),
``encode_image``, the embedding L2-normalised (a zero norm left as is), then the MLP
``Linear(768, 1024) Dropout(0.2) Linear(1024, 128) Dropout(0.2) Linear(128, 64) Dropout(0.1) Linear(64, 16)
Linear(16, 1)`` in eval mode (no activations: the ReLUs are commented out in the reference). The score is on a
1-10 scale; HUB reports its mean per method on the target images.

The published ``.pth`` is a plain state dict: :func:`convert_aesthetic` reads it with ``torch.load(weights_only=True)``
(no code runs) and writes ``model.safetensors`` + ``config.json``; the judge reads only the converted folder. CLIP
runs through transformers' ``CLIPModel.get_image_features`` (``encode_image``'s projected embedding) in float32.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Sequence

from dataigm.core.atomic import sha256_file, write_bytes_atomic, write_json_atomic
from dataigm.core.errors import DataigmError
from dataigm.judges.registry import JudgeKind, JudgeOptions, JudgeSpec, NoName, register_judge
from dataigm.judges.scoring import ScoreJudge, build_score_mlp, load_plain_state_dict, openai_clip_transform
from dataigm.judges.types import require_files

AESTHETIC_FORMAT = "dataigm-aesthetic"
AESTHETIC_CLIP = "openai/clip-vit-large-patch14"  # clip.load("ViT-L/14")
AESTHETIC_FILE = "sac+logos+ava1-l14-linearMSE.pth"
AESTHETIC_URL = "https://github.com/christophschuhmann/improved-aesthetic-predictor/raw/main/sac%2Blogos%2Bava1-l14-linearMSE.pth"
AESTHETIC_REFERENCE = ("christophschuhmann/improved-aesthetic-predictor simple_inference.py (MLP, normalized); "
                       "ml-postech/HUB source/quality/evaluation.py (evaluate_aesthetic)")
AESTHETIC_LAYERS = (1024, 128, 64, 16, 1)
WEIGHTS, CONFIG = "model.safetensors", "config.json"


def convert_aesthetic(pth: Path, out: Path, *, clip: str = AESTHETIC_CLIP) -> Path:
    """Convert the predictor's ``.pth`` (a plain state dict, read with ``weights_only=True``) into ``out/model.safetensors``
    (keys ``layers.N.weight`` / ``layers.N.bias``, as in the reference) + ``out/config.json``."""
    from safetensors.torch import save

    pth, out = Path(pth), Path(out)
    state = {k.removeprefix("module."): v for k, v in load_plain_state_dict(pth, f"aesthetic weights (download {AESTHETIC_URL}):").items()}
    if "layers.0.weight" not in state:
        raise DataigmError(f"{pth}: not the aesthetic predictor's MLP state dict (no layers.0.weight)")
    dim = int(state["layers.0.weight"].shape[1])
    try:
        build_score_mlp(dim).load_state_dict({k.removeprefix("layers."): v for k, v in state.items()})
    except (RuntimeError, KeyError) as e:
        raise DataigmError(f"{pth}: not the aesthetic predictor's MLP state dict ({str(e).splitlines()[0][:200]})") from None
    out.mkdir(parents=True, exist_ok=True)
    write_bytes_atomic(out / WEIGHTS, save({k: v.float().contiguous() for k, v in state.items()}))
    write_json_atomic(out / CONFIG, {"format": AESTHETIC_FORMAT, "input_size": dim, "clip_model": clip,
                                     "source": {"file": pth.name, "sha256": sha256_file(pth), "url": AESTHETIC_URL}})
    return out


def read_aesthetic(folder: Path) -> tuple[dict[str, Any], Any]:
    """The converted config and the MLP (eval mode) with its weights; errors name the file."""
    from safetensors.torch import load_file

    require_files(folder, (CONFIG, WEIGHTS), f"convert the predictor first ({AESTHETIC_FILE}; command: dataigm convert-judge aesthetic)",
                  error=DataigmError)
    cfg = json.loads((folder / CONFIG).read_text())
    if cfg.get("format") != AESTHETIC_FORMAT:
        raise DataigmError(f"{folder / CONFIG}: format {cfg.get('format')!r} is not {AESTHETIC_FORMAT!r}")
    mlp = build_score_mlp(int(cfg["input_size"]))
    mlp.load_state_dict({k.removeprefix("layers."): v for k, v in load_file(str(folder / WEIGHTS)).items()})
    return cfg, mlp.eval()


class AestheticJudge(ScoreJudge):
    """The aesthetic score (1-10) of each image; the prompt plays no part."""

    name = "aesthetic"
    needs_text = False

    def __init__(self, folder: str | Path, *, clip: str | None = None, concept: str | None = None, settings: dict[str, Any] | None = None,
                 device: str | None = None) -> None:
        from dataigm.core.devices import pick_device
        from dataigm.judges.clip import Clip

        self.folder = Path(str(folder).removeprefix("local-dir:")).expanduser()
        self.config, self.mlp = read_aesthetic(self.folder)
        self._init_decision("aesthetic", concept, dict(settings or {}), None)
        self.device = pick_device(device)
        self.clip_spec = clip or self.config["clip_model"]
        self.clip = Clip(self.clip_spec, device=self.device)
        if self.clip.model.config.projection_dim != self.config["input_size"]:
            raise DataigmError(f"CLIP {self.clip_spec} projects to {self.clip.model.config.projection_dim} dims; the predictor takes {self.config['input_size']}")
        self.mlp.to(self.device)
        self.preprocess = openai_clip_transform(int(self.clip.model.config.vision_config.image_size))
        self.weights_sha256 = sha256_file(self.folder / WEIGHTS)

    def score(self, batch: Any, texts: Sequence[str] = ()) -> list[float]:
        import torch

        emb = self.clip.pixel_embeddings(batch, normalize=False)
        norm = torch.linalg.vector_norm(emb, dim=-1, keepdim=True)
        emb = emb / torch.where(norm == 0, torch.ones_like(norm), norm)  # normalized(): a zero norm divides by 1
        with torch.inference_mode():
            return self.mlp(emb.to(self.device)).squeeze(-1).float().cpu().tolist()

    def describe(self) -> dict[str, Any]:
        return AestheticKind.description(
            self, "transformers", spec=f"aesthetic@{self.folder}", clip_model=self.clip_spec, clip_weights_sha256=self.clip.weights_sha256(),
            weights=str(self.folder / WEIGHTS), weights_sha256=self.weights_sha256, source=self.config.get("source"),
            min_score=self.min_score, rule=self.decision(), preprocessing="OpenAI clip.load preprocess (PIL bicubic, centre crop)",
            reference=AESTHETIC_REFERENCE)


@register_judge
class AestheticKind(JudgeKind):
    kind = "aesthetic"
    syntax = "aesthetic@DIR"
    decides = ("a score, not a decision: the LAION aesthetic predictor v2 (1-10) = MLP(normalised CLIP ViT-L/14 image embedding); "
               "the quality table's mean per method; positive only with settings min_score")
    reference = AESTHETIC_REFERENCE
    weights = (f"{AESTHETIC_FILE} ({AESTHETIC_URL}), converted with 'dataigm convert-judge aesthetic' (torch.load weights_only -> "
               f"safetensors), plus {AESTHETIC_CLIP}")
    licence = "Apache-2.0 (improved-aesthetic-predictor); MIT (OpenAI CLIP weights)"
    options = frozenset({"concept", "model", "clip_model"})
    settings = frozenset({"prompt", "min_score"})
    names = NoName("aesthetic@DIR with DIR from dataigm convert-judge aesthetic")

    @classmethod
    def from_spec(cls, spec: JudgeSpec, options: JudgeOptions) -> Any:
        folder = cls.weights_location(spec, options, needed=f"aesthetic needs the converted predictor: convert "
                                                            f"{AESTHETIC_FILE} (dataigm convert-judge aesthetic), then aesthetic@DIR")
        return AestheticJudge(folder, clip=options.clip_model, concept=options.concept, settings=options.settings, device=options.device)

    @classmethod
    def offline(cls) -> str:
        return f"needs {AESTHETIC_FILE} (convert-judge aesthetic) and {AESTHETIC_CLIP}: not shipped in any package"
