"""The README.md of an answer sheet (:mod:`dataigm.report.answers`): the Hub's YAML front matter (configs from
:func:`dataigm.hub.card.config_entries`, gating for sensitive concepts as dataset cards have it) and
``cards/answers.md.j2``."""

from __future__ import annotations

from typing import Any

ANSWERS_TEMPLATE = "answers.md.j2"


def render_answers_card(sheet: dict[str, Any], manifest: dict[str, Any], repo_id: str = "ORG/answers") -> str:
    """The card text; it parses with ``huggingface_hub.DatasetCard``."""
    import jinja2
    from huggingface_hub import DatasetCard, DatasetCardData

    import dataigm
    from dataigm.hub.card import _GATED_FIELDS, BASE_TAGS, config_entries, nsfw_categories, size_category
    from dataigm.resources import resource_dir

    nsfw = bool(nsfw_categories(manifest))
    n = manifest["totals"]["samples"]
    meta: dict[str, Any] = {"pretty_name": "dataigm answer sheet", "license": "other", "tags": [*BASE_TAGS, "answer-sheet"],
                            "size_categories": [size_category(n)], "configs": config_entries(manifest)}
    if nsfw:
        meta |= {"extra_gated_prompt": "These images were generated from prompts of a sensitive concept to evaluate unlearning. "
                 "Access is granted for research on content safety only.", "extra_gated_fields": _GATED_FIELDS}
    env = jinja2.Environment(undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=True)
    body = env.from_string((resource_dir("cards") / ANSWERS_TEMPLATE).read_text(encoding="utf-8")).render(
        n=n, nsfw=nsfw, category=sheet.get("category") or "", judges=sheet["judges"], methods=sheet["methods"], repo_id=repo_id,
        dataigm_version=dataigm.__version__)
    return str(DatasetCard(f"---\n{DatasetCardData(**meta).to_yaml()}\n---\n\n{body.strip()}\n"))
