"""Builder recipes: YAML files validated with pydantic before any work starts.

A recipe names a category, its label names, and one entry per class with the prompts that draw it. A class
bound to a taxonomy concept can ask for paired negatives: each of its prompts is rendered a second time with
the concept removed (same seed), labelled with the class given in ``negatives``. See ``builders/*.yaml``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from dataigm.core.registry import did_you_mean
from dataigm.core.atomic import json_sha256
from dataigm.core.errors import InputError
from dataigm.core.schema import SPLITS, slugify
from dataigm.core.settings import SettingsError, StrictModel, apply_overrides, read_yaml_mapping, slug_name, validate
from dataigm.prompts import PromptRecord, read_prompt_jsonl
from dataigm.taxonomy import CATEGORIES, register_concepts_file


class RecipeError(SettingsError):
    """A recipe is invalid; the message names the file, the field, the value and what is allowed."""


class PromptSet(StrictModel):
    """Prompts of a class: literal ``prompts``, ``templates`` x ``subjects``, and imported JSONL ``files``."""

    prompts: list[str] = []
    templates: list[str] = []
    subjects: list[str] = []
    files: list[str] = []

    @model_validator(mode="after")
    def _check(self) -> "PromptSet":
        if not (self.prompts or self.templates or self.files):
            raise InputError("a prompt set needs at least one of 'prompts', 'templates' or 'files'")
        for t in self.templates:
            if "{subject}" in t and not self.subjects:
                raise InputError(f"template {t!r} uses {{subject}} but 'subjects' is empty")
        return self

    def expand(self, base_dir: Path) -> list[PromptRecord]:
        records = [PromptRecord(p) for p in self.prompts]
        for t in self.templates:
            subjects = self.subjects if "{subject}" in t else [""]
            records += [PromptRecord(t.format(subject=s)) for s in subjects]
        for f in self.files:
            path = Path(f) if Path(f).is_absolute() else base_dir / f
            records += read_prompt_jsonl(path)
        return records


class ClassSpec(StrictModel):
    """One label of the category and how to draw it."""

    name: str
    concept: str | None = None
    prompts: PromptSet
    negatives: str | None = None  # label name given to the paired negatives (concept removed)
    for_each: list[str] | None = None  # one class per item; "{item}" is replaced in name, concept and prompts

    def expand(self) -> list["ClassSpec"]:
        if not self.for_each:
            return [self]
        out = []
        for item in self.for_each:
            data = json.loads(json.dumps(self.model_dump(exclude={"for_each"})).replace("{item}", item.replace('"', '\\"')))
            data["name"] = slugify(data["name"])
            out.append(ClassSpec(**data))
        return out


class LoraSpec(StrictModel):
    """A LoRA adapter file (diffusers/PEFT or kohya layout) and its scale; ``FILE[:SCALE]`` as a string."""

    path: str
    scale: float = Field(1.0, ge=-10.0, le=10.0)

    @model_validator(mode="before")
    @classmethod
    def _from_string(cls, v: Any) -> Any:
        if not isinstance(v, str):
            return v
        head, sep, tail = v.rpartition(":")
        try:
            return {"path": head, "scale": float(tail)} if sep and head else {"path": v}
        except ValueError:  # a path with a colon and no scale
            return {"path": v}


class ModelSpec(StrictModel):
    """A text-to-image model: Hub id, diffusers folder, single-file checkpoint, or ``tiny``; optional overrides."""

    id: str
    name: str | None = None  # short tag recorded per sample; defaults to a slug of the id
    revision: str | None = None
    variant: str | None = None  # diffusers weight variant, e.g. fp16 (folders that hold only *.fp16.safetensors)
    pipeline_class: str | None = None  # e.g. StableDiffusionXLPipeline for single-file checkpoints
    config: str | None = None  # diffusers folder/Hub id whose configs a single-file checkpoint uses
    components: dict[str, str] = {}  # e.g. {unet: path/to/unlearned_unet}
    loras: list[LoraSpec] = []  # adapters loaded with diffusers' load_lora_weights, in order
    generation: "GenerationOverride | None" = None  # this model's settings over the recipe's (a preset name, or fields)

    @field_validator("generation", mode="before")
    @classmethod
    def _preset_name(cls, v: Any) -> Any:
        return {"preset": v} if isinstance(v, str) else v

    @property
    def tag(self) -> str:
        """``name``, else the id's last part plus each overridden component (``stable_diffusion_v1_4_unet_esd_x``)."""
        if self.name:
            return slugify(self.name)

        def stem(source: str) -> str:
            return source.rstrip("/").replace(":", "/").split("/")[-1].rsplit(".", 1)[0]

        parts = [stem(self.id)] + [f"{k}_{stem(v)}" for k, v in sorted(self.components.items())]
        parts += [f"lora_{stem(lora.path)}" for lora in self.loras]
        return slugify("_".join(parts))


class GenerationSpec(StrictModel):
    scheduler: str | None = None  # a diffusers scheduler class name, e.g. DPMSolverMultistepScheduler
    steps: int = Field(30, ge=1, le=1000)
    guidance: float = Field(7.5, ge=0.0, le=50.0)
    width: int = Field(512, ge=8, le=4096)
    height: int = Field(512, ge=8, le=4096)
    dtype: Literal["auto", "float32", "float16", "bfloat16"] = "auto"
    batch_size: int = Field(8, ge=1, le=1024)
    negative_prompt: str = ""
    threads: int | None = Field(None, ge=1, le=1024)  # CPU intra-op threads; None: as launched (see docs/build.md)

    @field_validator("width", "height")
    @classmethod
    def _multiple_of_8(cls, v: int) -> int:
        if v % 8:
            raise InputError(f"must be a multiple of 8 (latent diffusion models downsample by 8), got {v}")
        return v

GENERATION_PRESETS = "generation"  # builders/generation/<name>.yaml: per-family defaults a model can name


def generation_presets() -> dict[str, Path]:
    """The shipped per-family generation defaults (``sd1``, ``sdxl``, ``flux-dev`` ...), name -> file."""
    from dataigm.resources import resource_dir

    return {p.stem: p for p in sorted((resource_dir("builders") / GENERATION_PRESETS).glob("*.yaml"))}


class GenerationOverride(StrictModel):
    """A model's own generation settings: a shipped ``preset`` (``builders/generation/``), then these fields over it."""

    preset: str | None = None
    scheduler: str | None = None
    steps: int | None = Field(None, ge=1, le=1000)
    guidance: float | None = Field(None, ge=0.0, le=50.0)
    width: int | None = Field(None, ge=8, le=4096)
    height: int | None = Field(None, ge=8, le=4096)
    dtype: Literal["auto", "float32", "float16", "bfloat16"] | None = None
    batch_size: int | None = Field(None, ge=1, le=1024)
    negative_prompt: str | None = None

    @field_validator("preset")
    @classmethod
    def _known_preset(cls, v: str | None) -> str | None:
        if v is not None and v not in generation_presets():
            raise ValueError(f"unknown generation preset {v!r}{did_you_mean(v, generation_presets())}; valid: {', '.join(generation_presets())}")
        return v

    @field_validator("width", "height")
    @classmethod
    def _multiple_of_8(cls, v: int | None) -> int | None:
        return v if v is None else GenerationSpec._multiple_of_8(v)

    def apply(self, base: GenerationSpec) -> GenerationSpec:
        """``base`` with the preset's values, then this override's set fields, in place of its own."""
        update: dict[str, Any] = {}
        if self.preset:
            preset = read_yaml_mapping(generation_presets()[self.preset], "generation preset", RecipeError)
            update.update(GenerationOverride(**preset).model_dump(exclude_none=True, exclude={"preset"}))
        update.update(self.model_dump(exclude_none=True, exclude={"preset"}))
        return GenerationSpec(**(base.model_dump() | update))


ModelSpec.model_rebuild()


class RealImagesSpec(StrictModel):
    """A folder of real images added to the category as its own part (see :mod:`dataigm.ingest.images`).

    The folder holds one sub-folder per class, optionally below a split level (``train``, ``validation``/``val``/
    ``valid``/``dev``, ``test``: detected by name, as Hugging Face's imagefolder does; ``split_from_folders: false``
    reads them as classes); otherwise each class is split by ``splits`` (default: the recipe's splits).
    ``source_from_name`` is a regular expression with a group ``source`` that names each file's source.
    Folder names are the class names unless ``class_map`` (or the YAML/JSON ``class_map_file``) maps them
    onto the category's label names. Images larger than ``max_size`` are downscaled, never upscaled.
    """

    folder: str
    part: str = Field("real", pattern=r"^[a-z0-9_]+$")
    split_from_folders: bool | None = None  # None: detect split folders by name
    splits: dict[str, float] | None = None  # fractions per split; None: the recipe's splits
    source_from_name: str | None = None  # regex with a group "source" searched in file names (default source: real)
    class_map: dict[str, str] = {}  # folder name -> label name
    class_map_file: str | None = None  # YAML/JSON mapping folder name -> label name (merged under class_map)
    max_size: int = Field(1024, ge=8)
    shard_size: int | None = Field(None, ge=1)  # None: the recipe's shard_size

    @model_validator(mode="after")
    def _check(self) -> "RealImagesSpec":
        if self.split_from_folders and self.splits is not None:
            raise InputError("give either split_from_folders or splits, not both")
        if self.splits is not None:
            bad = set(self.splits) - set(SPLITS)
            if bad:
                raise InputError(f"unknown split(s) {sorted(bad)}; allowed: {list(SPLITS)}")
            if any(f < 0 for f in self.splits.values()) or abs(sum(self.splits.values()) - 1.0) > 1e-6:
                raise InputError(f"split fractions must be >= 0 and sum to 1, got {self.splits}")
        return self


class Recipe(StrictModel):
    name: str
    category: str  # the dataset's category: its folder and its config name on the Hub (e.g. nudity, church, style)
    taxonomy: str | None = None  # the taxonomy category its concepts come from; default: ``category``
    concepts_file: str | None = None  # YAML with the recipe's own concepts (or category); relative to the recipe
    description: str = ""
    labels: list[str] | None = None  # label names in label order; default: classes, then negatives targets
    classes: list[ClassSpec] = Field(min_length=1)
    paired_negatives: bool = True
    images_per_prompt: int = Field(1, ge=1, le=10000)
    seed: int = Field(0, ge=0)
    models: list[ModelSpec] = Field(default_factory=lambda: [ModelSpec(id="tiny")], min_length=1)
    generation: GenerationSpec = GenerationSpec()
    splits: dict[str, float] = {"train": 0.8, "val": 0.1, "test": 0.1}
    shard_size: int = Field(1000, ge=1)
    real_images: list[RealImagesSpec] = []
    curation: dict[str, Any] | None = None  # validated by the curation stage (dataigm.curate)

    @field_validator("models", mode="before")
    @classmethod
    def _models_from_strings(cls, v: Any) -> Any:
        if isinstance(v, (str, dict)):
            v = [v]
        return [{"id": m} if isinstance(m, str) else m for m in v]

    @field_validator("category")
    @classmethod
    def _folder_safe(cls, v: str) -> str:
        return slug_name(v, "folders and Hub configs")

    @property
    def taxonomy_name(self) -> str:
        return self.taxonomy or self.category

    @field_validator("splits")
    @classmethod
    def _check_splits(cls, v: dict[str, float]) -> dict[str, float]:
        bad = set(v) - set(SPLITS)
        if bad:
            raise InputError(f"unknown split(s) {sorted(bad)}; allowed: {list(SPLITS)}")
        if any(f < 0 for f in v.values()) or abs(sum(v.values()) - 1.0) > 1e-6:
            raise InputError(f"split fractions must be >= 0 and sum to 1, got {v}")
        return {k: v[k] for k in SPLITS if k in v}

    @model_validator(mode="after")
    def _check_classes(self) -> "Recipe":
        if self.taxonomy_name not in CATEGORIES:
            field = "taxonomy" if self.taxonomy else "category"
            raise InputError(f"{field}: unknown taxonomy category {self.taxonomy_name!r}; allowed: {', '.join(CATEGORIES.names())} "
                             "(a dataset category of another name sets 'taxonomy')")
        category = CATEGORIES.get(self.taxonomy_name)
        classes = self.expanded_classes()
        names = [c.name for c in classes]
        if len(set(names)) != len(names):
            raise InputError(f"class names must be unique, got {names}")
        labels = self.label_names()
        for c in classes:
            if c.name not in labels:
                raise InputError(f"class {c.name!r} is not in labels {labels}")
            if c.concept is not None:
                try:
                    category.get(c.concept)
                except KeyError as e:
                    raise InputError(str(e.args[0])) from None
            if c.negatives is not None:
                if c.concept is None:
                    raise InputError(f"class {c.name!r} asks for negatives but names no concept to remove")
                if c.negatives not in labels:
                    raise InputError(f"class {c.name!r}: negatives label {c.negatives!r} is not in labels {labels}")
        if len({m.tag for m in self.models}) != len(self.models):
            raise InputError(f"models need distinct names, got {[m.tag for m in self.models]}")
        return self

    def model_generation(self, model: ModelSpec) -> GenerationSpec:
        """The generation settings ``model`` renders with: the recipe's, under the model's preset and overrides."""
        return model.generation.apply(self.generation) if model.generation else self.generation

    def expanded_classes(self) -> list[ClassSpec]:
        return [e for c in self.classes for e in c.expand()]

    def label_names(self) -> list[str]:
        if self.labels is not None:
            return list(self.labels)
        classes = self.expanded_classes()
        out = [c.name for c in classes]
        return out + sorted({c.negatives for c in classes if c.negatives and c.negatives not in out})

    def sha256(self) -> str:
        data = self.model_dump(mode="json")
        if data["generation"]["threads"] is None:  # unset: the hash of recipes written before the field existed
            del data["generation"]["threads"]
        if data["concepts_file"] is None:  # unset: likewise
            del data["concepts_file"]
        for model in data["models"]:  # likewise for model fields added later, when unset
            for key in ("variant", "loras", "generation"):
                if not model[key]:
                    del model[key]
        return json_sha256(data)


def parse_recipe(data: dict[str, Any], source: str = "<recipe>", base_dir: Path | None = None) -> Recipe:
    """Validate a recipe dict (its ``concepts_file`` read relative to ``base_dir``, default the working directory);
    raises :class:`RecipeError` naming the source, field and value."""
    if isinstance(data, dict):
        register_concepts_file(data.get("concepts_file"), base_dir or Path.cwd(), source, RecipeError)
    return validate(Recipe, data, source, "recipe", RecipeError)


def load_recipe(path: str | Path, overrides: list[str] | None = None) -> Recipe:
    """Load and validate a recipe YAML file, with optional ``field.sub=value`` overrides."""
    path = Path(path)
    data = apply_overrides(read_yaml_mapping(path, "recipe", RecipeError), overrides or [], str(path), RecipeError)
    recipe = parse_recipe(data, str(path), path.parent)
    recipe._base_dir = path.parent.resolve()  # type: ignore[attr-defined]
    return recipe


def recipe_base_dir(recipe: Recipe) -> Path:
    return getattr(recipe, "_base_dir", Path.cwd())
