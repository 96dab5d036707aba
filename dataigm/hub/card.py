"""The dataset card of an exported repo: YAML front matter for the Hub and ``datasets``, a body from a Jinja template.

The front matter carries one ``configs:`` entry per category (``data_files`` per split, one ``default: true``),
``dataset_info`` features, licence, task categories, tags, size category, pretty name, and gating fields for NSFW
categories. The body (``cards/dataset.md.j2``) is rendered from the manifest: what the data is for, how it was
built, counts, schema, how to load it, limitations, licences and citation.
"""

from __future__ import annotations

import dataclasses
import os
import re
from pathlib import Path
from typing import Any, Literal

from pydantic import Field

import dataigm
from dataigm.core.manifest import CurationRecord, PartRecord, part_records
from dataigm.core.schema import SampleMeta, field_docs
from dataigm.core.settings import StrictModel
from dataigm.hub import DATA_DIR
from dataigm.taxonomy import CATEGORIES

TEMPLATE_NAME = "dataset.md.j2"
PAPER_URL = "https://arxiv.org/abs/2506.02761"
BASE_TAGS = ("machine-unlearning", "image-generation", "diffusion", "evaluation", "synthetic", "webdataset", "dataigm")
NSFW_TAG = "not-for-all-audiences"  # the Hub's own tag for content that needs a warning
TASK_CATEGORIES = ("image-classification", "text-to-image")
HF_SPLIT_NAMES = {"val": "validation"}  # split folder -> the `datasets` canonical split name

# What the card says about each field: the sample schema's own docs, plus the key curation adds.
FIELD_DOCS = {**field_docs(), "curation": "scores and decisions of the curation filters"}
MODEL_LICENSES_FILE = "model_licenses.yaml"  # in the shipped cards/ folder


def model_licenses() -> dict[str, str]:
    """Licences of well-known generators (Hub id -> licence), from ``cards/model_licenses.yaml``."""
    import yaml

    from dataigm.resources import resource_dir

    return dict(yaml.safe_load((resource_dir("cards") / MODEL_LICENSES_FILE).read_text()) or {})


_GATED_FIELDS = {
    "I want to use this dataset for": {"type": "select", "options": ["Research", "Evaluation of unlearning methods", "Other"]},
    "I agree to use this dataset only for research on content safety and to not redistribute the sensitive images": "checkbox",
}


class CardOptions(StrictModel):
    """What the card says beyond the manifest: names, licence, where it is published, gating of NSFW configs."""

    repo_id: str = Field("ORG/dataigm", description="Hub id used in the card's loading examples")
    pretty_name: str = "DataIGM"
    license: str = "other"
    license_name: str = "dataigm-mixed"
    license_link: str = ""  # default: the card's "Licences of the sources" section
    tags: list[str] = []
    gated: Literal["auto", "manual"] = "manual"  # gating the card asks for when an NSFW config is present
    template: Path | None = None  # a Jinja template to use instead of cards/dataset.md.j2


def size_category(n: int) -> str:
    """The Hub's size bucket for ``n`` samples ("n<1K", "1K<n<10K", ...)."""
    bounds = [(10**3, "n<1K"), (10**4, "1K<n<10K"), (10**5, "10K<n<100K"), (10**6, "100K<n<1M"), (10**7, "1M<n<10M"),
              (10**8, "10M<n<100M"), (10**9, "100M<n<1B"), (10**10, "1B<n<10B"), (10**11, "10B<n<100B"), (10**12, "100B<n<1T")]
    for bound, name in bounds:
        if n < bound:
            return name
    return "n>1T"


def taxonomy_of(category: str, counts: dict[str, Any]) -> str:
    """The taxonomy category behind a dataset category (``church`` -> ``object``), from its manifest counts."""
    return counts.get("taxonomy") or category


def is_nsfw(category: str, counts: dict[str, Any] | None = None) -> bool:
    """Whether a category needs a content warning and gating (unknown categories are treated as safe)."""
    taxonomy = taxonomy_of(category, counts or {})
    return taxonomy in CATEGORIES and CATEGORIES.get(taxonomy).nsfw


def nsfw_categories(manifest: dict[str, Any]) -> list[str]:
    """The manifest's categories that need gating, sorted."""
    return [c for c in sorted(manifest["counts"]) if is_nsfw(c, manifest["counts"][c])]


def config_entries(manifest: dict[str, Any]) -> list[dict[str, Any]]:
    """The ``configs:`` list: one per category, ``data_files`` per split; the first non-NSFW one is the default."""
    categories = sorted(manifest["counts"])
    nsfw = nsfw_categories(manifest)
    safe = [c for c in categories if c not in nsfw]
    default = (safe or categories)[0]
    entries = []
    for cat in categories:
        splits = _ordered_splits(manifest["counts"][cat]["splits"])
        entry: dict[str, Any] = {"config_name": cat}
        if cat == default:
            entry["default"] = True
        entry["data_files"] = [{"split": hf_split(s), "path": f"{DATA_DIR}/{cat}/{s}/*.tar"} for s in splits]
        entries.append(entry)
    return entries


def front_matter(manifest: dict[str, Any], dataset_info: list[dict[str, Any]], options: CardOptions) -> dict[str, Any]:
    """The card's YAML metadata as a plain dict (keys in the order the Hub shows them)."""
    nsfw = nsfw_categories(manifest)
    meta: dict[str, Any] = {"pretty_name": options.pretty_name, "license": options.license}
    if options.license == "other":
        link = options.license_link or f"https://huggingface.co/datasets/{options.repo_id}#licences-of-the-sources"
        meta |= {"license_name": options.license_name, "license_link": link}
    meta |= {
        "task_categories": list(TASK_CATEGORIES),
        "tags": list(dict.fromkeys([*BASE_TAGS, *([NSFW_TAG] if nsfw else []), *options.tags])),
        "size_categories": [size_category(manifest["totals"]["samples"])],
        "configs": config_entries(manifest),
        "dataset_info": dataset_info,
    }
    if nsfw:
        meta |= {
            "extra_gated_heading": f"Access to sensitive configs of {options.pretty_name}",
            "extra_gated_prompt": (
                f"The config{'s' if len(nsfw) > 1 else ''} {', '.join(nsfw)} contain{'' if len(nsfw) > 1 else 's'} sensitive imagery "
                "(e.g. nudity) generated to evaluate unlearning. "
                "Access is granted for research on content safety only."
            ),
            "extra_gated_fields": _GATED_FIELDS,
            "extra_gated_button_content": "Agree and request access",
        }
    return meta


def render_card(manifest: dict[str, Any], dataset_info: list[dict[str, Any]], options: CardOptions) -> str:
    """The full README.md: YAML front matter + the rendered body. Parses with ``huggingface_hub.DatasetCard``."""
    import jinja2
    from huggingface_hub import DatasetCard, DatasetCardData

    template_path = options.template or default_template()
    if not template_path.exists():
        raise FileNotFoundError(f"card template {template_path} not found; give card_template= a template path")
    env = jinja2.Environment(undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=True)
    body = env.from_string(template_path.read_text(encoding="utf-8")).render(**card_context(manifest, dataset_info, options))
    card_data = DatasetCardData(**front_matter(manifest, dataset_info, options))
    return str(DatasetCard(f"---\n{card_data.to_yaml()}\n---\n\n{body.strip()}\n"))


def default_template() -> Path:
    """The shipped ``cards/dataset.md.j2``."""
    from dataigm.resources import resource_dir

    return resource_dir("cards") / TEMPLATE_NAME


def card_context(manifest: dict[str, Any], dataset_info: list[dict[str, Any]], options: CardOptions) -> dict[str, Any]:
    """Everything the template shows, computed from the manifest (the template only lays it out)."""
    counts = manifest["counts"]
    categories = [_category_context(cat, counts[cat]) for cat in sorted(counts)]
    configs = config_entries(manifest)
    default = next(c["config_name"] for c in configs if c.get("default"))
    json_fields = _json_fields(dataset_info)
    parts = sorted(part_records(manifest.get("parts", {})).items())
    return {
        "options": options,
        "repo_id": options.repo_id,
        "pretty_name": options.pretty_name,
        "categories": categories,
        "nsfw_categories": [c["name"] for c in categories if c["nsfw"]],
        "default_config": default,
        "default_split": hf_split(default_dir := _default_split(counts[default]["splits"])),
        "default_split_dir": default_dir,
        "totals": manifest["totals"],
        "models": _models_context(counts, dict(parts)),
        "parts": [_part_context(name, part) for name, part in parts],
        "curation": [_curation_context(name, part.curation) for name, part in parts if part.curation is not None],
        "schema": [
            {"name": name, "type": json_fields.get(name, ""), "doc": FIELD_DOCS.get(name, "")} for name in _field_order(json_fields)
        ],
        "versions": manifest.get("versions", {}),
        "paper_url": PAPER_URL,
        "dataigm_version": dataigm.__version__,
    }


def hf_split(folder: str) -> str:
    """The ``datasets`` split name of a split folder: ``val`` is published as ``validation``, the canonical name
    (``load_dataset(repo, config, split="validation")``); other names are kept."""
    return HF_SPLIT_NAMES.get(folder, folder)


def _ordered_splits(splits: dict[str, Any]) -> list[str]:
    """The split folders that hold samples (a split emptied by curation has no shard and no config entry), in
    train, val, test order."""
    order = {"train": 0, "val": 1, "validation": 1, "test": 2}
    return sorted((s for s, sp in splits.items() if sp.get("n", 0) > 0), key=lambda s: (order.get(s, 3), s))


def _default_split(splits: dict[str, Any]) -> str:
    ordered = _ordered_splits(splits)
    return "test" if "test" in ordered or not ordered else ordered[0]


def _category_context(name: str, counts: dict[str, Any]) -> dict[str, Any]:
    label_names = list(counts.get("label_names") or sorted({l for sp in counts["splits"].values() for l in sp["labels"]}))
    rows = []
    for split in _ordered_splits(counts["splits"]):
        sp = counts["splits"][split]
        rows.append({"split": split, "labels": [sp["labels"].get(l, 0) for l in label_names], "n": sp["n"], "failed": sp.get("failed", 0)})
    taxonomy = taxonomy_of(name, counts)
    description = CATEGORIES.get(taxonomy).description if taxonomy in CATEGORIES else ""
    return {"name": name, "description": description, "nsfw": is_nsfw(name, counts), "label_names": label_names, "rows": rows,
            "total": sum(r["n"] for r in rows)}


def _models_context(counts: dict[str, Any], parts: dict[str, PartRecord]) -> list[dict[str, Any]]:
    n_by_model: dict[str, int] = {}
    for cat in counts.values():
        for sp in cat["splits"].values():
            for model, n in sp.get("models", {}).items():
                n_by_model[model] = n_by_model.get(model, 0) + n
    ids = {}  # model tag -> Hub id / path when the part records it
    for part in parts.values():
        for m in part.models:
            tag = m.get("tag") or m.get("name") or m.get("id", "")
            ids[tag] = m.get("id", tag)
    rows, licenses = [], model_licenses()
    for tag, n in sorted(n_by_model.items()):
        model_id = ids.get(tag, tag)
        rows.append({"tag": tag, "id": model_id, "n": n, "license": licenses.get(model_id, "see the model's card")})
    return rows


def _part_context(name: str, part: PartRecord) -> dict[str, Any]:
    seeds = sorted({str(s) for s in _find_keys(part.config, ("seed", "seeds", "base_seed"))})
    models = [m.get("id", m.get("name", "")) for m in part.models]
    return {
        "name": name,
        "kind": part.kind,
        "sha": str(getattr(part, "recipe_sha256", None) or part.config_sha256)[:16],
        "seeds": ", ".join(seeds) or "-",
        "shards": len(part.shards),
        "models": ", ".join(models) or "-",
    }


def _curation_context(name: str, curation: CurationRecord) -> dict[str, Any]:
    """The filters a curated part went through, each with its full settings."""
    rows = [{"name": filter_name, "settings": ", ".join(f"{k}={v}" for k, v in sorted(settings.items())) or "-"}
            for filter_name, settings in curation.filters.items()]
    return {"name": name, "sha": curation.config_sha256[:16], "filters": rows}


def _json_fields(dataset_info: list[dict[str, Any]]) -> dict[str, str]:
    """Field name -> short type of the ``json`` struct, over all configs (the first config that has a field types it)."""
    fields: dict[str, str] = {}
    for info in dataset_info:
        for feature in info.get("features", []):
            if feature.get("name") != "json":
                continue
            for sub in feature.get("struct", []):
                fields.setdefault(sub["name"], _short_type(sub))
    return fields


def _short_type(feature: dict[str, Any]) -> str:
    if "dtype" in feature:
        return str(feature["dtype"])
    if "list" in feature:
        inner = feature["list"]
        return f"list[{inner if isinstance(inner, str) else _short_type(inner)}]"
    if "struct" in feature:
        return "struct"
    return "?"


def _field_order(json_fields: dict[str, str]) -> list[str]:
    declared = [f.name for f in dataclasses.fields(SampleMeta)]
    return [f for f in declared if f in json_fields] + sorted(f for f in json_fields if f not in declared)


def _find_keys(obj: Any, names: tuple[str, ...]) -> list[Any]:
    found = []
    if isinstance(obj, dict):
        for k, v in obj.items():
            if k in names and isinstance(v, (int, str)):
                found.append(v)
            elif k in names and isinstance(v, list):
                found.extend(x for x in v if isinstance(x, (int, str)))
            else:
                found.extend(_find_keys(v, names))
    elif isinstance(obj, list):
        for v in obj:
            found.extend(_find_keys(v, names))
    return found


_TOKEN_RE = re.compile(r"\bhf_[A-Za-z0-9]{30,}\b")


def find_token(text: str) -> str | None:
    """A Hub access token in ``text`` (masked), if any: cards and manifests must never carry one."""
    match = _TOKEN_RE.search(text)
    if match:
        return match.group(0)[:5] + "..."
    for var in ("HF_TOKEN", "HUGGING_FACE_HUB_TOKEN"):
        value = os.environ.get(var, "")
        if len(value) >= 8 and value in text:
            return f"${var}"
    return None
