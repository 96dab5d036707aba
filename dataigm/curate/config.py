"""The curation config: which filters run on which category, their thresholds and what a flag does.

A standalone YAML (``builders/curation/*.yaml``) or the ``curation:`` key of a builder recipe::

    default:                  # applies to every category
      filters:
        blank: {action: drop, min_std: 2.0}
        phash: {action: drop, max_distance: 4}
    categories:
      nudity:                 # merged over ``default``: same-named filters are replaced, ``null`` disables one
        filters:
          nudenet: {threshold: 0.6, on_positive_miss: review, on_negative_hit: drop}
        pairs: {on_positive_dropped: keep}

A recipe's ``curation:`` may also be just one category block (``filters:`` / ``pairs:``); it then applies to the
recipe's category. Filter settings are validated by the filter's own pydantic model (see
:mod:`dataigm.curate.filters`), so a typo names the filter, the field and the allowed values.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import Field, ValidationError, model_validator

from dataigm.core.registry import did_you_mean
from dataigm.core.atomic import json_sha256
from dataigm.core.errors import InputError
from dataigm.core.settings import SettingsError, StrictModel, first_error, read_yaml_mapping, validate

DEFAULT_CONFIG = "default.yaml"  # in builders/curation/


class CurationConfigError(SettingsError):
    """An invalid curation config; the message names the source, the field, the value and what is allowed."""


class PairPolicy(StrictModel):
    """What happens to the other member of a positive/negative pair when one is dropped."""

    on_positive_dropped: Literal["keep", "drop"] = "keep"  # the negative stays a valid hard negative by default
    on_negative_dropped: Literal["keep", "drop"] = "keep"


class CategoryCuration(StrictModel):
    """Filters (name -> settings; ``None`` disables an inherited one) and the pair policy of one category."""

    filters: dict[str, dict[str, Any] | None] = {}
    pairs: PairPolicy | None = None


class CurationConfig(StrictModel):
    """Filters for every category (``default``) merged with per-category blocks."""

    default: CategoryCuration = CategoryCuration()
    categories: dict[str, CategoryCuration] = {}
    sheet_thumbs: int = Field(48, ge=1, le=1024)  # thumbnails per contact sheet
    sheet_thumb_size: int = Field(96, ge=16, le=512)

    @model_validator(mode="after")
    def _check_filters(self) -> "CurationConfig":
        from dataigm.curate.filters import FILTERS

        blocks = {"default": self.default, **{f"categories.{k}": v for k, v in self.categories.items()}}
        for where, block in blocks.items():
            for name, settings in block.filters.items():
                if name not in FILTERS:
                    raise InputError(f"{where}.filters: unknown filter {name!r}{did_you_mean(name, FILTERS.names())}; valid: {', '.join(FILTERS.names())}")
                if settings is not None:
                    try:
                        FILTERS.get(name).Settings(**settings)
                    except ValidationError as e:
                        raise InputError(f"{where}.filters.{name}: {first_error(e)}") from None
        return self

    def filters_for(self, category: str) -> dict[str, dict[str, Any]]:
        """The merged filter settings of ``category``, in a stable order (default's first, then the category's)."""
        merged: dict[str, dict[str, Any] | None] = dict(self.default.filters)
        merged.update(self.categories.get(category, CategoryCuration()).filters)
        return {k: v for k, v in merged.items() if v is not None}

    def pairs_for(self, category: str) -> PairPolicy:
        """The pair policy of ``category``: its own block's, else ``default``'s, else keep both."""
        block = self.categories.get(category)
        return (block.pairs if block else None) or self.default.pairs or PairPolicy()

    def sha256(self) -> str:
        """A digest of the validated config (recorded in every curated sample, part and run)."""
        return json_sha256(self.model_dump(mode="json"))


def parse_curation_config(data: dict[str, Any] | None, source: str = "<curation config>", category: str | None = None) -> CurationConfig:
    """Validate a config dict. A bare category block (``filters``/``pairs`` at top level) needs ``category``."""
    data = dict(data or {})
    if category is not None and ({"filters", "pairs"} & set(data)) and not ({"default", "categories"} & set(data)):
        data = {"categories": {category: data}}
    return validate(CurationConfig, data, source, "curation config", CurationConfigError)


def load_curation_config(path: str | Path | None) -> CurationConfig:
    """Read a standalone curation YAML, or the ``curation:`` key of a builder recipe; ``None`` -> the default config."""
    if path is None:
        return default_config()
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: curation config not found")
    data = read_yaml_mapping(path, "curation config", CurationConfigError)
    if "classes" in data and "category" in data:  # a builder recipe: use its curation key
        if not data.get("curation"):
            raise CurationConfigError(f"{path}: this recipe has no 'curation:' key")
        return parse_curation_config(data["curation"], f"{path} (curation)", category=data["category"])
    return parse_curation_config(data, str(path))


def default_config() -> CurationConfig:
    """The shipped ``builders/curation/default.yaml``: blank/unreadable and perceptual-hash duplicate removal
    everywhere, NudeNet agreement on nudity (disagreements dropped). ``dataigm curate DIR`` uses it."""
    from dataigm.resources import resource_dir

    return load_curation_config(resource_dir("builders") / "curation" / DEFAULT_CONFIG)
