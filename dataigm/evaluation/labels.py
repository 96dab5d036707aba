"""Human labels for a judge audit: which images show the concept.

Three layouts, each read into ``{image id: {"label": str, **fields}}`` (the image id as the image walker names it,
:mod:`dataigm.judges.images`: a path relative to the images folder, or ``<shard>#<key>``):

* a CSV with a header ``file,label``; further columns (method, source, generator, ...) are fields ``--group-by``
  can use;
* the JSON ``dataigm review --export-labels`` writes (``{"format": "dataigm-review-labels/1", "samples": [{"file",
  "label", ...}]}``), or any JSON list of such objects;
* the images folder itself, laid out ``<label>/...``: each image's label is its top folder.

:func:`binary_labels` turns label values into booleans: ``1``/``0`` (also true/false, yes/no, positive/negative),
or the concept's own label name against anything else.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

from dataigm.core.errors import DataigmError

REVIEW_LABELS_FORMAT = "dataigm-review-labels/1"
POSITIVE_WORDS = {"1", "true", "yes", "positive"}
NEGATIVE_WORDS = {"0", "false", "no", "negative"}


class LabelsError(DataigmError, ValueError):
    """A labels file that cannot be used (missing columns, unknown images, labels without the concept)."""


def read_labels(labels: str | Path, images: str | Path) -> dict[str, dict[str, Any]]:
    """``{image id: {"label", **fields}}`` from a CSV, a review-labels JSON, or the ``<label>/`` layout of
    ``images`` (``labels`` is then the images folder itself)."""
    path, root = Path(labels).expanduser(), Path(images).expanduser()
    if path.is_dir():
        if path.resolve() != root.resolve():
            raise LabelsError(f"labels={path}: a folder of labels must be the images folder itself ({root}), laid out <label>/IMAGE")
        return _folder_labels(root)
    if not path.is_file():
        raise LabelsError(f"labels={path} not found: give a CSV (file,label), a review-labels JSON or the <label>/ images folder")
    rows = _json_rows(path) if path.suffix.lower() == ".json" else _csv_rows(path)
    out: dict[str, dict[str, Any]] = {}
    for i, row in enumerate(rows, 2):
        file, label = str(row.get("file") or "").strip(), str(row.get("label") if row.get("label") is not None else "").strip()
        if not file or not label:
            raise LabelsError(f"{path}: row {i} needs a file and a label, got {row}")
        if file in out:
            raise LabelsError(f"{path}: {file!r} is labelled twice")
        out[file] = {**{k: v for k, v in row.items() if k not in ("file", "label") and k}, "label": label}
    if not out:
        raise LabelsError(f"{path}: no labelled images")
    return out


def _csv_rows(path: Path) -> list[dict[str, Any]]:
    with path.open(newline="", encoding="utf-8-sig") as f:
        reader = csv.DictReader(f)
        if not reader.fieldnames or not {"file", "label"} <= set(reader.fieldnames):
            raise LabelsError(f"{path}: the header must name the columns file and label, got {reader.fieldnames}")
        return list(reader)


def _json_rows(path: Path) -> list[dict[str, Any]]:
    try:
        data = json.loads(path.read_text())
    except json.JSONDecodeError as e:
        raise LabelsError(f"{path}: not JSON ({e})") from e
    rows = data.get("samples") if isinstance(data, dict) else data
    if not isinstance(rows, list) or not all(isinstance(r, dict) for r in rows):
        raise LabelsError(f"{path}: expected {{\"format\": \"{REVIEW_LABELS_FORMAT}\", \"samples\": [{{\"file\", \"label\"}}, ...]}}")
    return rows


def _folder_labels(root: Path) -> dict[str, dict[str, Any]]:
    from dataigm.judges.images import resolve_images

    out = {}
    for ref in resolve_images(root).files:
        top, sep, _ = ref.id.partition("/")
        if not sep:
            raise LabelsError(f"{root}: {ref.id} is not inside a <label>/ folder")
        out[ref.id] = {"label": top}
    return out


def binary_labels(labels: dict[str, dict[str, Any]], concept: str | None) -> tuple[dict[str, bool], str]:
    """``({image id: shows the concept}, rule)``. Labels that are all 1/0-like words are read as such; otherwise
    an image is positive when its label is ``concept`` (case-insensitive) and negative for anything else."""
    values = {str(r["label"]).strip().lower() for r in labels.values()}
    if values <= POSITIVE_WORDS | NEGATIVE_WORDS:
        return {f: str(r["label"]).strip().lower() in POSITIVE_WORDS for f, r in labels.items()}, "1/0"
    if not concept:
        raise LabelsError(f"labels {sorted(values)[:8]} are not 1/0: give concept=NAME (the label that means the concept)")
    if concept.lower() not in values:
        raise LabelsError(f"no image is labelled {concept!r}; labels: {', '.join(sorted(values)[:12])}")
    return {f: str(r["label"]).strip().lower() == concept.lower() for f, r in labels.items()}, f"{concept} against anything else"
