"""``dataigm new-concept``: from a name to the four files that build its dataset, train its judge and benchmark it.

The kit is data only, derived from the category's file in ``builders/concepts/``:

* ``concept.yaml``: the concept (synonyms, replacement; triggers from the category's rule);
* ``build.yaml``: a builder recipe with the category's templates filled with the concept's phrases, paired
  negatives, and the category's concept-free prompts as a second class;
* ``detector.yaml``: a binary detector recipe (``detectors/tiny.yaml`` for the tiny model, else the CLIP linear
  probe of ``detectors/church_binary.yaml``), reading the built dataset;
* ``suite.yaml`` + ``forget.txt`` / ``retain.txt``: a local benchmark suite judged by the exported detector.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from dataigm.core.atomic import write_bytes_atomic
from dataigm.core.errors import DataigmError
from dataigm.core.schema import slugify
from dataigm.generate.tiny import TINY_GENERATION

DEFAULT_MODEL = "CompVis/stable-diffusion-v1-4"
# generation settings of the kit: a real model's (as the shipped builders) and the tiny model's (CPU, seconds)
GENERATION = {"real": {"steps": 30, "guidance": 7.5, "width": 512, "height": 512, "batch_size": 8},
              "tiny": {**TINY_GENERATION, "guidance": 7.5, "batch_size": 4}}
IMAGES_PER_PROMPT = {"real": 4, "tiny": 2}
KIT_FILES = ("concept.yaml", "build.yaml", "detector.yaml", "suite.yaml", "forget.txt", "retain.txt")


class ConceptKitError(DataigmError):
    """The kit cannot be written as asked (unknown category, existing concept or files)."""


@dataclass
class ConceptKit:
    """What :func:`write_concept_kit` wrote, and the commands that use it."""

    out: Path
    files: dict[str, Path]
    positives: int
    retained: int
    dropped: list[str]  # the category's concept-free prompts left out because they name this concept


def concept_spec(name: str, category: str, synonyms: list[str], replacement: str | None) -> dict[str, Any]:
    """The concept file's mapping: the name's slug, the name first among its synonyms, the category's defaults."""
    from dataigm.taxonomy import get_category

    cat = get_category(category)  # KeyError lists the valid categories
    slug = slugify(name)
    if not slug:
        raise ConceptKitError(f"concept name {name!r} has no letters or digits")
    if slug in cat.concepts:
        raise ConceptKitError(f"category {category!r} already has a concept {slug!r} ({cat.concepts[slug].source}); "
                              "pick another NAME, or write a recipe for it directly")
    names = list(dict.fromkeys([name, *synonyms]))
    return {"category": category, "name": slug, "synonyms": names,
            "replacement": cat.default_replacement if replacement is None else replacement}


def _dump(data: Any, header: str) -> bytes:
    body = yaml.safe_dump(data, sort_keys=False, allow_unicode=True, width=140)
    return ("".join(f"# {line}\n" for line in header.splitlines()) + body).encode()


def build_recipe(concept: Any, category: Any, model: str, retained: list[str]) -> dict[str, Any]:
    """The builder recipe of the kit: the concept's prompts with paired negatives, plus ``retained`` (the category's
    concept-free prompts that do not name this concept) as the other class."""
    positive, other = concept.label_name, category.negative_label
    return {
        "name": concept.name, "category": concept.name, "taxonomy": category.name, "concepts_file": "concept.yaml",
        "description": f"{concept.description} Every prompt has a paired negative (same seed) without it.",
        "labels": [other, positive],
        "classes": [{"name": positive, "concept": concept.name, "negatives": other, "prompts": {"prompts": category.prompts(concept)}},
                    {"name": other, "prompts": {"prompts": retained}}],
        "images_per_prompt": IMAGES_PER_PROMPT["tiny" if model == "tiny" else "real"], "models": [model], "generation": GENERATION["tiny" if model == "tiny" else "real"],
    }


def detector_recipe(concept: Any, data_dir: Path, model: str) -> dict[str, Any]:
    """The binary detector recipe of the kit, from a shipped detector recipe."""
    from dataigm.resources import resource_dir

    base = "tiny.yaml" if model == "tiny" else "church_binary.yaml"
    data = yaml.safe_load((resource_dir("detectors") / base).read_text())
    data.update(name=f"{concept.name}_binary", description=f"{concept.label_name} vs the rest ({base}'s model and training).",
                concept=concept.label_name)
    data["data"] = {**data["data"], "path": str(data_dir), "category": concept.name, "positive": concept.label_name}
    return data


def suite_file(concept: Any, category: Any, judge_dir: Path, model: str) -> dict[str, Any]:
    """The local benchmark suite of the kit: forget.txt (the concept's prompts) and retain.txt (concept-free ones)."""
    tiny = model == "tiny"
    gen = {k: v for k, v in GENERATION["tiny" if tiny else "real"].items() if k != "batch_size"}
    return {
        "name": concept.name.replace("_", "-"), "description": f"{concept.label_name}: the category's templates (forget) and concept-free prompts (retain)",
        "reference": "dataigm new-concept (builders/concepts)", "concepts_file": "concept.yaml",
        "files": {"forget": {"path": "forget.txt", "format": "txt"}, "retain": {"path": "retain.txt", "format": "txt"}},
        "taxonomy": category.name, "target": concept.label_name, "retain_label": category.negative_label,
        "forget": [{"file": "forget", "category": category.name, "concept": concept.name}], "retain": [{"file": "retain"}],
        "seeds": {"from_file": False, "start": 0}, "images_per_prompt": 1, "generation": gen,
        "judges": [{"detector": f"local-dir:{judge_dir}"}],
        "metrics": ["forgetting", "preservation"] if tiny else ["forgetting", "preservation", "lpips", "fid"],
    }


def _check_prompts(concept: Any, category: Any) -> list[str]:
    prompts = category.prompts(concept)
    if not prompts or not category.retain_templates:
        raise ConceptKitError(f"category {category.name!r} needs 'templates' and 'retain_templates' ({category.source}) for a kit")
    missed = [p for p in prompts if not concept.mentions(p)]
    if missed:
        raise ConceptKitError(f"concept {concept.name!r}: its triggers miss the prompt {missed[0]!r}; give synonyms that appear in its phrases")
    return prompts


def concept_free(concept: Any, category: Any) -> tuple[list[str], list[str]]:
    """The category's concept-free prompts split into (kept, dropped): a prompt naming this concept (one of its
    triggers matches, e.g. "a photo of a lighthouse" for a new concept lighthouse) would label the concept as 'other'
    in the dataset and sit among the retain prompts of the suite, so it is dropped."""
    kept = [p for p in category.retain_templates if not concept.mentions(p)]
    dropped = [p for p in category.retain_templates if concept.mentions(p)]
    if not kept:
        raise ConceptKitError(f"every concept-free prompt of category {category.name!r} names concept {concept.name!r}; "
                              f"add retain_templates without it to {category.source}")
    return kept, dropped


def write_concept_kit(name: str, category: str, out: str | Path, synonyms: list[str] | None = None, replacement: str | None = None,
                      model: str = DEFAULT_MODEL, force: bool = False) -> ConceptKit:
    """Write concept.yaml, build.yaml, detector.yaml, suite.yaml (+ its prompt files) for a new concept into ``out``."""
    from dataigm.taxonomy import get_category, parse_concept

    # 1. Check inputs: the concept, its prompts, no kit already there
    out = Path(out).resolve()
    spec = concept_spec(name, category, synonyms or [], replacement)
    cat = get_category(category)
    concept = parse_concept(spec, str(out / "concept.yaml"))
    positives = _check_prompts(concept, cat)
    retained, dropped = concept_free(concept, cat)
    existing = [f for f in KIT_FILES if (out / f).exists()]
    if existing and not force:
        raise ConceptKitError(f"{out} already holds {', '.join(existing)}; write the kit to another folder, or pass force=True to overwrite")

    # 2. Write the kit
    files = {f: out / f for f in KIT_FILES}
    write_bytes_atomic(files["concept.yaml"], _dump(spec, f"Concept {concept.name} (category {category}); list it with dataigm concepts.\n"
                                                          "Triggers come from the category's trigger rule over the synonyms unless 'triggers' is given."))
    write_bytes_atomic(files["build.yaml"], _dump(build_recipe(concept, cat, model, retained), f"Builder recipe of {concept.name} (build it with dataigm build)"))
    write_bytes_atomic(files["detector.yaml"], _dump(detector_recipe(concept, out / "data", model), "Binary judge of the kit (train it with dataigm train)"))
    write_bytes_atomic(files["suite.yaml"], _dump(suite_file(concept, cat, out / "judge", model), "Local suite, prompt files beside it (run it with dataigm benchmark)"))
    write_bytes_atomic(files["forget.txt"], ("\n".join(positives) + "\n").encode())
    write_bytes_atomic(files["retain.txt"], ("\n".join(retained) + "\n").encode())
    return ConceptKit(out, files, len(positives), len(retained), dropped)
