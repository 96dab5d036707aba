"""``unlearncanvas:style`` / ``unlearncanvas:object``: UnlearnCanvas' style and object classifiers.

The reference is OPTML-Group/UnlearnCanvas ``machine_unlearning/evaluation/quantitative/accuracy.py``: timm
``vit_large_patch16_224.augreg_in21k`` with its head replaced by ``nn.Linear(1024, num_classes)`` (51 styles of
``constants/const.py``'s ``theme_available``, 61 in its commented 60-style version, or its 20 ``class_available``
objects), loaded from ``torch.load(ckpt)["model_state_dict"]``. Each image goes through
``Resize((224, 224))``, ``ToTensor()``, ``Normalize([0.5], [0.5])``; the prediction is ``argmax``. UA, IRA and CRA
(``dataigm.evaluation.metrics.unlearncanvas_accuracy``) are computed from these predictions.

``dataigm convert-judge unlearncanvas CKPT --out DIR`` reads the checkpoint with ``torch.load(weights_only=True)``
(tensors only) and writes timm's local-dir layout (``config.json`` with the label names + ``model.safetensors``),
which ``timm.create_model("local-dir:DIR")`` loads. :class:`UnlearnCanvasJudge` reads only that folder.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dataigm.core.registry import did_you_mean
from dataigm.core.atomic import sha256_file, write_json_atomic
from dataigm.core.devices import pick_device
from dataigm.core.errors import DataigmError
from dataigm.judges.types import Verdict, pick_autocast_dtype, require_files, run_inference, stack

UNLEARNCANVAS_ARCH = "vit_large_patch16_224.augreg_in21k"
UNLEARNCANVAS_FORMAT = "dataigm-unlearncanvas/1"
# constants/const.py: theme_available (the "50 style version": 51 names with Seed_Images), its commented 60-style
# version (61) and class_available (20), in their order: the heads' class indices.
STYLES_51 = ("Abstractionism Artist_Sketch Blossom_Season Bricks Byzantine Cartoon Cold_Warm Color_Fantasy Comic_Etch Crayon "
             "Cubism Dadaism Dapple Defoliation Early_Autumn Expressionism Fauvism French Glowing_Sunset Gorgeous_Love Greenfield "
             "Impressionism Ink_Art Joy Liquid_Dreams Magic_Cube Meta_Physics Meteor_Shower Monet Mosaic Neon_Lines On_Fire Pastel "
             "Pencil_Drawing Picasso Pop_Art Red_Blue_Ink Rust Seed_Images Sketch Sponge_Dabbed Structuralism Superstring "
             "Surrealism Ukiyoe Van_Gogh Vibrant_Flow Warm_Love Warm_Smear Watercolor Winter").split()
STYLES_61 = ("Abstractionism Artist_Sketch Blossom_Season Blue_Blooming Bricks Byzantine Cartoon Cold_Warm Color_Fantasy Comic_Etch "
             "Crayon Crypto_Punks Cubism Dadaism Dapple Defoliation Dreamweave Early_Autumn Expressionism Fauvism Foliage_Patchwork "
             "French Glowing_Sunset Gorgeous_Love Greenfield Impasto Impressionism Ink_Art Joy Liquid_Dreams Palette_Knife Magic_Cube "
             "Meta_Physics Meteor_Shower Monet Mosaic Neon_Lines On_Fire Pastel Pencil_Drawing Picasso Pointillism Pop_Art Rainwash "
             "Realistic_Watercolor Red_Blue_Ink Rust Seed_Images Sketch Sponge_Dabbed Structuralism Superstring Surrealism Techno "
             "Ukiyoe Van_Gogh Vibrant_Flow Warm_Love Warm_Smear Watercolor Winter").split()
OBJECTS_20 = ("Architectures Bears Birds Butterfly Cats Dogs Fishes Flame Flowers Frogs Horses Human Jellyfish Rabbits Sandwiches "
              "Sea Statues Towers Trees Waterfalls").split()
TASKS = {"style": "theme_available", "object": "class_available"}
UNLEARNCANVAS_REFERENCE = "OPTML-Group/UnlearnCanvas machine_unlearning/evaluation/quantitative/accuracy.py (+ constants/const.py)"


def label_names_for(num_classes: int) -> tuple[str, list[str]]:
    """(task, label names) of a head with ``num_classes`` outputs (51 or 61 styles, 20 objects)."""
    table = {len(STYLES_51): ("style", STYLES_51), len(STYLES_61): ("style", STYLES_61), len(OBJECTS_20): ("object", OBJECTS_20)}
    if num_classes not in table:
        raise DataigmError(f"an UnlearnCanvas head has 51 or 61 style classes or 20 object classes, not {num_classes}")
    return table[num_classes]


def canonical_class(name: str, label_names: list[str]) -> str:
    """``van gogh``, ``van-gogh``, ``Van_Gogh`` -> ``Van_Gogh`` (their spelling); unknown names list the valid ones."""
    key = name.strip().replace(" ", "_").replace("-", "_").lower()
    for label in label_names:
        if label.lower() == key:
            return label
    raise DataigmError(f"unknown UnlearnCanvas class {name!r}{did_you_mean(name, label_names)}; valid: {', '.join(label_names)}")


def _read_checkpoint(ckpt: Path) -> dict[str, Any]:
    import torch

    if not ckpt.is_file():
        raise FileNotFoundError(f"UnlearnCanvas checkpoint {ckpt} not found")
    try:
        state = torch.load(ckpt, map_location="cpu", weights_only=True)
    except Exception as e:
        raise DataigmError(f"{ckpt}: torch.load(weights_only=True) refused it ({type(e).__name__}); dataigm never runs pickled code") from e
    state = state.get("model_state_dict", state) if isinstance(state, dict) else state  # accuracy.py: ["model_state_dict"]
    if not isinstance(state, dict) or "head.weight" not in state:
        raise DataigmError(f"{ckpt}: not an UnlearnCanvas classifier checkpoint (expected model_state_dict with head.weight)")
    return state


def vit_args(state: dict[str, Any]) -> dict[str, Any]:
    """depth, width and MLP ratio of a timm ViT state dict (their ViT-L/16: 24, 1024, 4.0)."""
    depth = len({k.split(".")[1] for k in state if k.startswith("blocks.")})
    width = int(state["cls_token"].shape[-1])
    return {"depth": depth, "embed_dim": width, "mlp_ratio": int(state["blocks.0.mlp.fc1.weight"].shape[0]) / width}


def convert_unlearncanvas(ckpt: Path, out: Path, *, arch: str = UNLEARNCANVAS_ARCH) -> Path:
    """Convert their ``{"model_state_dict": ...}`` checkpoint into a timm local-dir folder at ``out``.

    The state dict must fit timm ``arch`` (their ViT-L/16 by default) exactly, with the depth and width it has.
    """
    import timm
    from timm.models import save_for_hf

    ckpt, out = Path(ckpt), Path(out)
    state = _read_checkpoint(ckpt)
    task, labels = label_names_for(int(state["head.weight"].shape[0]))
    model_args = vit_args(state) if "cls_token" in state and "blocks.0.mlp.fc1.weight" in state else None
    model = timm.create_model(arch.split(".")[0], pretrained=False, num_classes=len(labels), **(model_args or {}))
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as e:
        raise DataigmError(f"{ckpt}: does not fit timm {arch}: {' '.join(str(e).split())[:300]}") from None
    if out.exists() and not out.is_dir():
        raise DataigmError(f"out={out} is a file; give a folder for config.json + model.safetensors")
    out.mkdir(parents=True, exist_ok=True)
    save_for_hf(model, out, model_config={"label_names": labels}, model_args=model_args, safe_serialization=True)
    write_json_atomic(out / "unlearncanvas.json", {
        "format": UNLEARNCANVAS_FORMAT, "task": task, "architecture": arch, "label_names": labels,
        "preprocessing": "Resize((224, 224)), ToTensor(), Normalize([0.5], [0.5])",
        "source": {"file": ckpt.name, "sha256": sha256_file(ckpt), "repository": "OPTML-Group/UnlearnCanvas",
                   "reference": "machine_unlearning/evaluation/quantitative/accuracy.py"},
    })
    return out


@dataclass
class UnlearnCanvasTransform:
    """accuracy.py's ``Resize((224, 224))``, ``ToTensor()``, ``Normalize([0.5], [0.5])`` (picklable)."""

    size: int = 224

    def __call__(self, image: Any) -> Any:
        from torchvision import transforms

        tf = transforms.Compose([transforms.Resize((self.size, self.size)), transforms.ToTensor(), transforms.Normalize([0.5], [0.5])])
        return tf(image.convert("RGB"))


class UnlearnCanvasJudge:
    """Their style or object classifier; positive when the argmax is the concept's class (accuracy.py's
    ``torch.argmax(res) == theme_label``). With ``threshold``: P(concept) >= threshold, which they do not use."""

    def __init__(self, task: str, folder: str | Path | None, *, concept: str | None = None, threshold: float | None = None,
                 device: str | None = None, precision: str = "fp32") -> None:
        import timm

        if folder is None:
            raise DataigmError("unlearncanvas needs the converted classifier folder (dataigm convert-judge unlearncanvas), "
                               "then unlearncanvas:<style|object>@DIR")
        self.folder = Path(str(folder).removeprefix("local-dir:")).expanduser()
        require_files(self.folder, ("unlearncanvas.json", "model.safetensors"), "convert it first (convert_unlearncanvas; command: dataigm convert-judge unlearncanvas)")
        meta_path = self.folder / "unlearncanvas.json"
        self.meta = json.loads(meta_path.read_text())
        if task and task != self.meta["task"]:
            raise DataigmError(f"unlearncanvas:{task} asked, but {self.folder} holds the {self.meta['task']} classifier")
        self.task, self.label_names = self.meta["task"], list(self.meta["label_names"])
        self.target = canonical_class(concept, self.label_names) if concept else None
        self.name = f"unlearncanvas:{self.task}"
        self.threshold = threshold
        self.device = pick_device(device)
        self.autocast_dtype = pick_autocast_dtype(self.device, precision)
        self.model = timm.create_model(f"local-dir:{self.folder}", pretrained=True).eval().to(self.device)
        self.preprocess = UnlearnCanvasTransform()
        self.weights_sha256 = sha256_file(self.folder / "model.safetensors")

    def collate(self, inputs: list[Any]) -> Any:
        return stack(inputs)

    def predict(self, batch: Any) -> list[Verdict]:
        probs = run_inference(self.model, batch, self.device, self.autocast_dtype).softmax(-1)
        verdicts = []
        for row in probs:
            top = int(row.argmax())
            predicted = self.label_names[top]
            p = float(row[self.label_names.index(self.target)]) if self.target else float(row[top])
            positive = bool(self.target) and (predicted == self.target if self.threshold is None else p >= self.threshold)
            verdicts.append(Verdict(dict(zip(self.label_names, row.tolist())), predicted, positive, p, {"top1": top}))
        return verdicts

    def describe(self) -> dict[str, Any]:  # pragma: no mutate block, plumbing, see docs/testing.md
        return UnlearnCanvasKind.description(
            self, "timm", spec=f"unlearncanvas:{self.task}@{self.folder}", task=self.task, category=self.task,
            label_names=self.label_names, target=self.target, architecture=self.meta["architecture"],
            rule="argmax == target" if self.threshold is None else "P(target) >= threshold",
            preprocessing=self.meta["preprocessing"], weights_sha256=self.weights_sha256, source=self.meta.get("source", {}),
            reference=UNLEARNCANVAS_REFERENCE,
        )


# --- the kind ------------------------------------------------------------------------------------------------------
from dataigm.judges.registry import JudgeKind, JudgeOptions, JudgeSpec, NameIn, register_judge  # noqa: E402


@register_judge
class UnlearnCanvasKind(JudgeKind):
    kind = "unlearncanvas"
    syntax = "unlearncanvas:<style|object>@DIR"
    decides = ("UnlearnCanvas' ViT-L/16 style (51/61 classes) or object (20 classes) classifier: positive when the argmax is the "
               "concept's class; UA/IRA/CRA from its predictions")
    reference = UNLEARNCANVAS_REFERENCE
    weights = "their cls_model checkpoints (Google Drive), converted with 'dataigm convert-judge unlearncanvas'"
    licence = "UnlearnCanvas repository's licence (MIT); backbone timm vit_large_patch16_224.augreg_in21k (Apache-2.0)"
    options = frozenset({"concept", "model"})
    names = NameIn(TASKS, "UnlearnCanvas task")

    @classmethod
    def from_spec(cls, spec: JudgeSpec, options: JudgeOptions) -> Any:
        return UnlearnCanvasJudge(spec.name, cls.weights_location(spec, options), concept=options.concept,
                                  threshold=options.threshold, device=options.device, precision=options.precision)
