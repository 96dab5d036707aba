"""Hub publishing: a dataset folder becomes a Hub dataset repo that stock ``datasets`` and ``webdataset`` read.

- :func:`dataigm.hub.export.export_dataset`: dataset folder -> ``data/<category>/<split>/*.tar`` + ``manifest.json``
  + ``README.md`` (dataset card with one ``configs:`` entry per category).
- :func:`dataigm.hub.push.push_folder`: upload an exported dataset (or a detector folder) in bounded, resumable commits.
- :func:`dataigm.hub.pull.pull_dataset`: download a snapshot (or some categories) and verify it against the manifest.

Heavy libraries (``datasets``, ``huggingface_hub``, ``jinja2``) are imported inside the functions that use them.
"""

from dataigm.core.datasets import DATA_DIR
from dataigm.core.schema import SPLITS
README = "README.md"


def category_of(shard_path: str) -> str:
    """The category of a manifest shard path, in a dataset folder (``<category>/<split>/<name>.tar``) or in an
    exported repo (``data/<category>/<split>/<name>.tar``)."""
    parts = shard_path.split("/")
    # data/<category>/<split>/<name>.tar, or a stray tar directly below data/<category>/ (not data/<split>/)
    return parts[1] if parts[0] == DATA_DIR and (len(parts) == 4 or (len(parts) == 3 and parts[1] not in SPLITS)) else parts[0]
