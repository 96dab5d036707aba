"""Curation: judges in the loop, near-duplicate removal, human review in FiftyOne, contact sheets.

``curate(DATASET_DIR, OUT_DIR, config)`` reads a dataset folder shard by shard and writes a curated one with the
same layout, manifest and checksums, each sample's filter scores under its ``curation`` json key, and a report.
"""

from dataigm.curate.config import CurationConfig, CurationConfigError, default_config, load_curation_config, parse_curation_config
from dataigm.curate.engine import CurationResult, curate
from dataigm.curate.filters import FILTERS, create_filter

__all__ = [
    "FILTERS",
    "CurationConfig",
    "CurationConfigError",
    "CurationResult",
    "create_filter",
    "curate",
    "default_config",
    "load_curation_config",
    "parse_curation_config",
]
