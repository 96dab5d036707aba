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

DEFAULT_MODEL = "CompVis/stable-diffusion-v1-4"
# generation settings of the kit: a real model's (as the shipped builders) and the tiny model's (CPU, seconds)
GENERATION = {"real": {"steps": 30, "guidance": 7.5, "width": 512, "height": 512, "batch_size": 8},
              "tiny": {"steps": 2, "guidance": 7.5, "width": 64, "height": 64, "batch_size": 4}}
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
    steps: list[str]


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


def build_recipe(concept: Any, category: Any, model: str) -> dict[str, Any]:
    """The builder recipe of the kit: the concept's prompts with paired negatives, plus the retained prompts."""
    positive, other = concept.label_name, category.negative_label
    return {
        "name": concept.name, "category": concept.name, "taxonomy": category.name, "concepts_file": "concept.yaml",
        "description": f"{concept.description} Every prompt has a paired negative (same seed) without it.",
        "labels": [other, positive],
        "classes": [{"name": positive, "concept": concept.name, "negatives": other, "prompts": {"prompts": category.prompts(concept)}},
                    {"name": other, "prompts": {"prompts": list(category.retain_templates)}}],
        "images_per_prompt": 4, "models": [model], "generation": GENERATION["tiny" if model == "tiny" else "real"],
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


def next_steps(out: Path, model: str) -> list[str]:
    """The commands that build, train, export and benchmark the kit in ``out`` (absolute paths)."""
    unet = "" if model == "tiny" else " --unet UNLEARNED_UNET"
    return [
        f"dataigm build {out / 'build.yaml'} --out {out / 'data'}",
        f"dataigm train {out / 'detector.yaml'} --out {out / 'runs' / 'judge'}",
        f"dataigm export-detector {out / 'runs' / 'judge'} --out {out / 'judge'}",
        f"dataigm benchmark {out / 'suite.yaml'} --model {model}{unet} --name METHOD --out {out / 'benchmark'}",
    ]


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
    existing = [f for f in KIT_FILES if (out / f).exists()]
    if existing and not force:
        raise ConceptKitError(f"{out} already holds {', '.join(existing)}; use another --out or --force")

    # 2. Write the kit
    files = {f: out / f for f in KIT_FILES}
    write_bytes_atomic(files["concept.yaml"], _dump(spec, f"Concept {concept.name} (category {category}); see `dataigm concepts --file concept.yaml`.\n"
                                                          "Triggers come from the category's trigger rule over the synonyms unless 'triggers' is given."))
    write_bytes_atomic(files["build.yaml"], _dump(build_recipe(concept, cat, model), f"Builder recipe of {concept.name}: dataigm build build.yaml --out DIR"))
    write_bytes_atomic(files["detector.yaml"], _dump(detector_recipe(concept, out / "data", model), "Binary judge of the kit: dataigm train detector.yaml"))
    write_bytes_atomic(files["suite.yaml"], _dump(suite_file(concept, cat, out / "judge", model), "Local suite (prompt files beside it): dataigm benchmark suite.yaml"))
    write_bytes_atomic(files["forget.txt"], ("\n".join(positives) + "\n").encode())
    write_bytes_atomic(files["retain.txt"], ("\n".join(cat.retain_templates) + "\n").encode())
    return ConceptKit(out, files, len(positives), len(cat.retain_templates), next_steps(out, model))
