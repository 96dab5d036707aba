"""Human labels for a judge audit: which images show the concept.

Three layouts, each read into ``{image id: {"label": str, **fields}}`` (the image id as the image walker names it,
:mod:`dataigm.judges.images`: a path relative to the images folder, or ``<shard>#<key>``):

* a CSV with a header ``file,label``; further columns (method, source, generator, ...) are fields to group by.
  Lines starting with ``#`` and blank lines are skipped; rows are numbered as the file's lines;
* the JSON ``dataigm review --export-labels`` writes (``{"format": "dataigm-review-labels/1", "samples": [{"file",
  "label", ...}]}``), or any JSON list of such objects;
* the images folder itself, laid out ``<label>/...``: each image's label is its top folder.

:func:`binary_labels` turns label values into booleans: ``1``/``0`` (also true/false, yes/no, positive/negative),
or the concept's own label name against the judge's other classes. Given the judge's classes, any other value
(``maybe``) is refused in one line that names its row.

Example::

    >>> rows = read_labels("labels.csv", "images/")  # doctest: +SKIP
    >>> truth, rule = binary_labels(rows, "church", classes=["church", "other"])  # doctest: +SKIP
"""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any, Sequence

from dataigm.core.errors import DataigmError

REVIEW_LABELS_FORMAT = "dataigm-review-labels/1"
ROW = "_row"  # where a label came from ("labels.csv row 7"), for errors
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
    for i, (line, row) in enumerate(rows, 1):
        where = f"row {line}" if line else f"entry {i}"
        file, label = str(row.get("file") or "").strip(), str(row.get("label") if row.get("label") is not None else "").strip()
        if not file or not label:
            raise LabelsError(f"{path}: {where} needs a file and a label, got {row}")
        if file in out:
            raise LabelsError(f"{path}: {where}: {file!r} is labelled twice")
        out[file] = {**{k: v for k, v in row.items() if k not in ("file", "label") and k}, "label": label, ROW: f"{path.name} {where}"}
    if not out:
        raise LabelsError(f"{path}: no labelled images")
    return out


def _csv_rows(path: Path) -> list[tuple[int, dict[str, Any]]]:
    """(line number, row) of each data row; ``#`` comment lines and blank lines are skipped."""
    lines = [(n, line) for n, line in enumerate(path.read_text(encoding="utf-8-sig").splitlines(), 1)
             if line.strip() and not line.lstrip().startswith("#")]
    reader = csv.DictReader([line for _, line in lines])
    if not reader.fieldnames or not {"file", "label"} <= {f.strip() for f in reader.fieldnames}:
        raise LabelsError(f"{path}: the header must name the columns file and label, got {reader.fieldnames}")
    rows = [{(k or "").strip(): v for k, v in row.items()} for row in reader]
    return [(n, row) for (n, _), row in zip(lines[1:], rows)]  # one row per line: labels hold no line breaks


def _json_rows(path: Path) -> list[tuple[int, dict[str, Any]]]:
    try:
        data = json.loads(path.read_text())
    except json.JSONDecodeError as e:
        raise LabelsError(f"{path}: not JSON ({e})") from e
    rows = data.get("samples") if isinstance(data, dict) else data
    if not isinstance(rows, list) or not all(isinstance(r, dict) for r in rows):
        raise LabelsError(f"{path}: expected {{\"format\": \"{REVIEW_LABELS_FORMAT}\", \"samples\": [{{\"file\", \"label\"}}, ...]}}")
    return [(0, r) for r in rows]


def _folder_labels(root: Path) -> dict[str, dict[str, Any]]:
    from dataigm.judges.images import resolve_images

    out = {}
    for ref in resolve_images(root).files:
        top, sep, _ = ref.id.partition("/")
        if not sep:
            raise LabelsError(f"{root}: {ref.id} is not inside a <label>/ folder")
        out[ref.id] = {"label": top}
    return out


def binary_labels(labels: dict[str, dict[str, Any]], concept: str | None, classes: Sequence[str] | None = None) -> tuple[dict[str, bool], str]:
    """``({image id: shows the concept}, rule)``. Labels that are all 1/0-like words are read as such; otherwise
    an image is positive when its label is ``concept`` (case-insensitive) and negative for anything else.

    With ``classes`` (the judge's class names), every value must be one of them, ``concept``, or a 1/0-like word
    (1/0, yes/no, true/false, positive/negative): anything else (``maybe``) is refused in one line naming its row,
    instead of silently counting as a negative."""
    words = POSITIVE_WORDS | NEGATIVE_WORDS
    if classes is not None:
        allowed = {str(c).strip().lower() for c in classes} | ({concept.lower()} if concept else set()) | words
        for r in labels.values():
            value = str(r["label"]).strip().lower()
            if value not in allowed:
                shown = sorted(allowed - words)
                listed = ", ".join(shown[:12]) + (f" ... ({len(shown)} classes)" if len(shown) > 12 else "")
                raise LabelsError(f"{r.get(ROW, 'labels')}: label {r['label']!r} is not 1/0, yes/no, true/false or one of the judge's classes ({listed})")
    values = {str(r["label"]).strip().lower() for r in labels.values()}
    if values <= words:
        return {f: str(r["label"]).strip().lower() in POSITIVE_WORDS for f, r in labels.items()}, "1/0"
    if not concept:
        raise LabelsError(f"labels {sorted(values)[:8]} are not 1/0: give concept=NAME (the label that means the concept)")
    if concept.lower() not in values - words:
        raise LabelsError(f"no image is labelled {concept!r}; labels: {', '.join(sorted(values)[:12])}")
    lower = concept.lower()
    return {f: (v in POSITIVE_WORDS or v == lower) for f, r in labels.items() for v in [str(r["label"]).strip().lower()]}, f"{concept} against anything else"
