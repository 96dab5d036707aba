"""Human review in FiftyOne: shards -> a FiftyOne dataset (images, labels, judge scores, verdicts, provenance);
tags set in the App (``reject``, ``accept``, ``relabel:<class>``) are read back and applied by the next curation.

FiftyOne needs image files, so the images are extracted below the review folder (``DATASET_DIR/_review`` by
default). FiftyOne runs its own MongoDB; ``FIFTYONE_DATABASE_DIR`` chooses where it keeps its data.
"""

from __future__ import annotations

import hashlib
import json
import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dataigm.core.errors import InputError
from dataigm.core.atomic import write_bytes_atomic
from dataigm.core.schema import slugify
from dataigm.core.datasets import data_root_of, dataset_shards
from dataigm.core.manifest import MANIFEST, load_manifest
from dataigm.core.shards import iter_samples
from dataigm.curate.engine import CURATION_DIR, REVIEW_TAGS, CurationResult, curate

if TYPE_CHECKING:
    import fiftyone as fo

    from dataigm.curate.config import CurationConfig

log = logging.getLogger(__name__)

NEEDS_REVIEW_TAG = "needs_review"  # put on samples curation kept for review; not a decision itself
PROVENANCE_FIELDS = ("key", "category", "split", "role", "source", "concept", "subcategory", "pair_id", "prompt", "pair_prompt",
                     "model", "seed", "image_index", "original_path")


def review_name(dataset_dir: Path) -> str:
    """The FiftyOne dataset name of a dataset folder: its name plus a hash of its absolute path."""
    path = str(Path(dataset_dir).resolve())
    return f"dataigm-{slugify(Path(path).name)}-{hashlib.sha256(path.encode()).hexdigest()[:8]}"


def default_review_dir(dataset_dir: Path) -> Path:
    """``DATASET_DIR/_review`` for a build folder; next to an exported or pulled folder (``DATASET_DIR-review``),
    which is what is published, so reviewing it never adds files to it."""
    dataset_dir = Path(dataset_dir)
    manifest = load_manifest(dataset_dir) if (dataset_dir / MANIFEST).is_file() else None
    if data_root_of(dataset_dir, manifest) != dataset_dir:
        return dataset_dir.with_name(dataset_dir.name + "-review")
    return dataset_dir / "_review"


def build_review_dataset(dataset_dir: str | Path, *, name: str | None = None, review_dir: str | Path | None = None, overwrite: bool = True) -> "fo.Dataset":
    """Build a persistent FiftyOne dataset from the shards of ``dataset_dir`` and return it."""
    import fiftyone as fo

    dataset_dir = Path(dataset_dir)
    shards = dataset_shards(dataset_dir)  # a build folder, or an exported/pulled one
    if not shards:
        raise FileNotFoundError(f"{dataset_dir}: no shards (<category>/<split>/*.tar) to review")
    images = Path(review_dir) if review_dir else default_review_dir(dataset_dir)
    name = name or review_name(dataset_dir)
    if fo.dataset_exists(name) and not overwrite:
        return fo.load_dataset(name)
    samples = []
    for raw in iter_samples(shards):
        m = raw.meta
        path = images / "images" / m["category"] / m["split"] / f"{raw.key}.png"
        if not path.exists():
            write_bytes_atomic(path, raw.image)
        curation: dict[str, Any] = m.get("curation", {})
        sample = fo.Sample(filepath=str(path.resolve()), ground_truth=fo.Classification(label=m["label_name"]),
                           label_names=list(m.get("label_names", [])))
        for f in PROVENANCE_FIELDS:
            sample[f] = m.get(f)
        for k, v in sorted(curation.items()):
            sample[f"curation_{k}"] = v
        if curation.get("verdict") == "review":
            sample.tags.append(NEEDS_REVIEW_TAG)
        samples.append(sample)
    dataset = fo.Dataset(name, overwrite=True, persistent=True)
    dataset.add_samples(samples, progress=False)
    dataset.info = {"dataigm_dataset": str(dataset_dir.resolve()), "review_tags": list(REVIEW_TAGS)}
    dataset.save()
    return dataset


def read_review_tags(name: str) -> dict[str, str]:
    """Decision tags per sample key: ``reject``, ``accept`` or ``relabel:<class>`` (other tags are ignored)."""
    import fiftyone as fo

    if not fo.dataset_exists(name):
        raise FileNotFoundError(f"no FiftyOne dataset {name!r}; run `dataigm review DATASET_DIR` first (have: {', '.join(fo.list_datasets()) or 'none'})")
    dataset = fo.load_dataset(name)
    out: dict[str, str] = {}
    for key, tags in zip(dataset.values("key"), dataset.values("tags")):
        decisions = sorted(t for t in tags if t in ("reject", "accept") or t.startswith("relabel:"))
        if len(decisions) > 1:
            raise InputError(f"FiftyOne dataset {name!r}, sample {key!r}: conflicting review tags {decisions}; keep one of {', '.join(REVIEW_TAGS)}")
        if decisions:
            out[key] = decisions[0]
    return dict(sorted(out.items()))


REVIEW_LABELS_FORMAT = "dataigm-review-labels/1"  # read by dataigm.evaluation.labels (``dataigm audit --labels``)
LABEL_FIELDS = ("key", "category", "split", "source", "model", "subcategory", "concept")


def export_review_labels(name: str, out: str | Path) -> Path:
    """Write the reviewed labels of FiftyOne dataset ``name`` as ``dataigm audit --labels`` reads them: per sample
    its image path relative to the review images folder, its label (``relabel:<class>`` replaces the dataset's
    label; ``reject``ed samples are left out) and provenance fields to group by."""
    import fiftyone as fo

    tags = read_review_tags(name)
    dataset = fo.load_dataset(name)
    rows = []
    for sample in dataset.sort_by("key"):
        decision = tags.get(sample.key, "")
        if decision == "reject":
            continue
        path = Path(sample.filepath)
        label = decision.removeprefix("relabel:") if decision.startswith("relabel:") else sample.ground_truth.label
        rows.append({"file": Path(*path.parts[-3:]).as_posix(), "label": label, "reviewed": bool(decision),
                     **{f: "" if sample[f] is None else str(sample[f]) for f in LABEL_FIELDS}})
    out = Path(out)
    write_bytes_atomic(out, json.dumps({"format": REVIEW_LABELS_FORMAT, "dataset": name, "samples": rows}, indent=1).encode())
    return out


def recorded_config(dataset_dir: Path) -> "CurationConfig | None":
    """The curation config that produced ``dataset_dir`` (if it is a curated folder)."""
    from dataigm.curate.config import parse_curation_config

    run = Path(dataset_dir) / CURATION_DIR / "run.json"
    return parse_curation_config(json.loads(run.read_text())["config"], str(run)) if run.exists() else None


def apply_review(dataset_dir: str | Path, out: str | Path, *, name: str | None = None, config: "CurationConfig | None" = None, progress: bool = True) -> CurationResult:
    """Curate ``dataset_dir`` into ``out`` with the review tags of its FiftyOne dataset applied.

    Without ``config`` the config that produced ``dataset_dir`` is reused (the default config otherwise).
    """
    dataset_dir = Path(dataset_dir)
    tags = read_review_tags(name or review_name(dataset_dir))
    log.info("applying %d review tag(s) from FiftyOne", len(tags))
    return curate(dataset_dir, out, config or recorded_config(dataset_dir), review_tags=tags, progress=progress)


def open_app(dataset: "fo.Dataset", port: int = 5151, remote: bool = False) -> "fo.Session":
    """Serve the FiftyOne App on ``dataset`` at ``port`` (``remote``: for a browser elsewhere, no window opened here)
    and return its session; tags set through the App or the session land in the database ``--apply`` reads."""
    import fiftyone as fo

    return fo.launch_app(dataset, port=port, remote=remote)


def launch(dataset: "fo.Dataset", port: int = 5151, remote: bool = False) -> None:
    """Open the FiftyOne App on ``dataset`` and block until it is closed."""
    open_app(dataset, port=port, remote=remote).wait()
